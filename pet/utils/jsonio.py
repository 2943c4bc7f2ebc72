"""Reading JSON with one-line errors (the single JSON reader), and JSON paths for messages.

Hostile input is refused in one line too: nesting deeper than Python's parser allows,
integers longer than Python's digit limit (``sys.get_int_max_str_digits``) and unpaired
surrogate escapes (``"\\ud800"``: valid JSON, but not text) name the line or the JSON path.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from ..errors import PetError, SpecError


def _digits_limit() -> int:
    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300


#: a JSON escape of a UTF-16 surrogate: the quick test before looking for an unpaired one
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _unpaired_surrogate(value: Any, path: tuple = ()) -> tuple[tuple, str] | None:
    """(JSON path, the character) of the first string (or key) in ``value`` that holds an
    unpaired surrogate, which cannot be encoded as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return path, value[e.start]
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _unpaired_surrogate(k, path) or _unpaired_surrogate(v, (*path, k))
        if found:
            return found
    return None


def parse_json(text: str, where: str, error: type[PetError] = SpecError, line: int | None = None,
               fix: str = "correct the JSON") -> Any:
    """``json.loads`` whose every failure is a one-line ``error`` starting with ``where``.

    ``line`` (for one line of a JSONL file) is named instead of the parser's own line number;
    ``fix`` is what a malformed-JSON message tells the user to do.
    """
    at = (lambda ln, col: f"line {line} column {col}") if line is not None else (lambda ln, col: f"line {ln} column {col}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{where}: malformed JSON at {at(e.lineno, e.colno)}: {e.msg}; fix: {fix}") from None
    except RecursionError:
        raise error(
            f"{where}: JSON nested too deeply{' at line ' + str(line) if line is not None else ''} "
            f"(more than ~{sys.getrecursionlimit()} levels); fix: flatten the data"
        ) from None
    except ValueError as e:  # int('<5000 digits>'): "Exceeds the limit (4300 digits) ..."
        limit = _digits_limit()
        m = re.search(r"\d{%d,}" % (limit + 1), text)
        if m is None:
            raise error(f"{where}: unreadable JSON ({str(e).splitlines()[0]}); fix: correct the JSON") from None
        ln = line if line is not None else text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        raise error(
            f"{where}: line {ln} column {col}: a number with {len(m.group())} digits (at most {limit} are read); "
            "fix: write it as a string or remove it"
        ) from None
    found = _unpaired_surrogate(data) if _SURROGATE_ESCAPE.search(text) else None
    if found:
        at_line = f"line {line}: " if line is not None else ""
        raise error(
            f"{where}: {at_line}{json_path(found[0])}: an unpaired surrogate escape ({ascii(found[1])[1:-1]}) is not text; "
            "fix: remove it, or escape the whole character (a pair such as \\ud83d\\ude00)"
        )
    return data


def read_text(path: str | Path, error: type[PetError] = SpecError, missing: str = "file not found; fix: check the path") -> str:
    """A UTF-8 text file's content; every failure is a one-line ``error`` naming the file and the
    fix (``missing``: what to say when there is no such file)."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: is a folder; fix: give a file")
    if not p.is_file():
        raise error(f"{p}: {missing}")
    try:
        return p.read_bytes().decode("utf-8-sig")  # a byte-order mark (Windows editors) is dropped
    except UnicodeDecodeError as e:
        raise error(f"{p}: not UTF-8 (byte {e.start}); fix: save the file as UTF-8") from None
    except OSError as e:
        raise error(f"{p}: cannot read ({e.strerror}); fix: check the file's permissions") from None


def read_json(path: str | Path, error: type[PetError] = SpecError) -> Any:
    """Read a JSON file; every failure is a one-line ``error`` naming the file and the fix."""
    return parse_json(read_text(path, error), str(path), error)


def json_path(parts: Iterable[Any]) -> str:
    """``["splits", "train", 0, "file"]`` -> ``$.splits.train[0].file``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
