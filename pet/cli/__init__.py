"""The ``pet`` console script: a thin face over the Python API.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func``. Errors from the ``PetError`` family print as one line (no
traceback unless ``--debug``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import PetError

#: Sub-command modules, in the order ``pet --help`` lists them.
COMMANDS = ["zero_shot", "show", "validate", "train", "predict", "compare_prompts", "bench", "report"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    debug = args.debug or os.environ.get("PET_DEBUG") == "1"
    _quiet_libraries(debug)
    try:
        return int(args.func(args) or 0)
    except PetError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


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


def require_model(args) -> str:
    if not args.model:
        raise PetError("no model given; fix: pass --model PATH_OR_HUB_NAME or set PET_MODEL")
    return args.model


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
