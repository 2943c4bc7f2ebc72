"""The ``pet`` console script: a thin face over the Python API.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func``. Exit statuses and what is printed (always one line on stderr;
the traceback too only with ``--debug`` or ``PET_DEBUG=1``):

* 0 — success; 130 — interrupted (Ctrl-C);
* 2 — a usage or input error: a bad flag (``argparse`` messages, range-checked numeric flags
  from ``pet.cli.args``), any ``PetError``, or a file the user named that cannot be read or
  written (``OSError`` with a file name): ``error: <culprit>: <problem>; fix: <what to do>``;
* 1 — an internal error (a bug): ``internal error: <type>: <message> (rerun with --debug for
  the traceback)``; also ``pet`` without a command (help is printed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from ..errors import PetError, UsageError

#: Sub-command modules, in the order ``pet --help`` lists them.
COMMANDS = ["zero_shot", "show", "validate", "train", "predict", "compare_prompts", "bench", "report", "search_verbalizer"]


class PetArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are ``UsageError`` (one line, exit 2) instead of a usage
    block and ``SystemExit``; sub-command parsers inherit the class."""

    def error(self, message: str):  # type: ignore[override]
        message = one_line(message)
        if "fix:" not in message:
            message += f"; fix: see `{self.prog} --help`"
        raise UsageError(f"{self.prog}: {message}")


def one_line(text: str) -> str:
    """A message on one line: line breaks (and the blanks around them) become single spaces."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = PetArgumentParser(
        prog="pet", description="Few-shot text classification with Pattern-Verbalizer Pairs on masked LMs."
    )
    parser.add_argument("--version", action="version", version=f"pet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # command not built in this version
            raise
        module.register(sub)
    return parser


#: OSErrors about a path the user gave (not found, permissions, a file where a folder is needed …)
_USER_OS_ERRORS = (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv[: argv.index("--") if "--" in argv else len(argv)] or os.environ.get("PET_DEBUG") == "1"
    try:
        parser = build_parser()
        # sub-commands whose flags depend on another flag (``pet train --method M``: M's options)
        # parse their own arguments again from ``args.argv``; every other command is strict
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "reparse", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.argv = argv
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        debug = debug or args.debug
        _quiet_libraries(debug)
        return int(args.func(args) or 0)
    except PetError as e:
        if debug:
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise  # --help / --version
    except _USER_OS_ERRORS as e:
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {one_line(where + (e.strerror or str(e)))}; fix: check the path and its permissions", file=sys.stderr)
        return 2
    except Exception as e:  # a bug in pet (or a library): one line, traceback with --debug
        if debug:
            raise
        msg = one_line(e) or "(no message)"
        if len(msg) > 300:
            msg = msg[:300] + "…"
        print(f"internal error: {type(e).__name__}: {msg} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


def _quiet_libraries(debug: bool) -> None:
    """Hide library chatter (weight-loading bars, warnings) unless debugging."""
    if debug:
        return
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--model`` / ``--data-dir`` with ``PET_MODEL`` / ``PET_DATA_DIR`` as defaults."""
    p.add_argument("--model", default=os.environ.get("PET_MODEL"), help="masked LM: local folder or hub name (default: $PET_MODEL)")
    p.add_argument("--data-dir", default=os.environ.get("PET_DATA_DIR"), help="benchmark data root (default: $PET_DATA_DIR)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available)")


def add_run_args(p: argparse.ArgumentParser, progress: bool = True) -> None:
    """The flags every long command shares: ``--threads`` and (``progress``) ``--no-progress``."""
    from .args import positive_int

    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch CPU threads (default: the cores not taken by other running pet commands, at most $OMP_NUM_THREADS)")
    if progress:
        p.add_argument("--no-progress", action="store_true",
                       help="no progress output (default: a bar on a terminal, one line per 10%% otherwise)")


def apply_threads_flag(n: int | None) -> int:
    """Apply ``--threads`` (see :mod:`pet.utils.threads`) and return the count set. More threads
    than the CPU cores this process may use only slow torch down (many-fold): they are capped at
    the core count, with a note."""
    from ..utils import threads

    cores = threads.cpu_count()
    if n is not None and n > cores:
        print(f"note: --threads {n}: only {cores} CPU core{'s' if cores != 1 else ''} available; using {cores}", file=sys.stderr)
        n = cores
    return threads.apply_threads(n)


def start_run(args) -> str:
    """Apply ``--threads`` and return the progress mode (``bar`` | ``lines`` | ``off``, see
    :mod:`pet.utils.progress`) for a command built with :func:`add_run_args`."""
    from ..utils.progress import progress_mode

    apply_threads_flag(getattr(args, "threads", None))
    return progress_mode(getattr(args, "no_progress", False))


def help_text(description: str, *examples: str) -> dict:
    """``add_parser`` keyword arguments: the description (wrapped) and an epilog of two or three
    real example command lines, kept as written (``RawDescriptionHelpFormatter``)."""
    import textwrap

    return {"description": textwrap.fill(description, 100), "epilog": "examples:\n" + "\n".join(f"  {e}" for e in examples),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def require_model(args) -> str:
    if not args.model:
        raise UsageError("no model given; fix: pass --model PATH_OR_HUB_NAME or set PET_MODEL")
    return args.model


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
