"""Reading JSONL data files line by line with errors that name the line (never a byte offset).

``read_jsonl_records(path, fields)`` returns one dict per non-blank line and refuses, in one
line naming the file, line number and field:

* malformed JSON, JSON nested too deeply, integers beyond Python's digit limit;
* a line that is not a JSON object;
* a value in one of ``fields`` (text or label columns) that is an object or a list: it would
  otherwise be stringified (``"{'a': 1}"``) and scored as if it were text;
* an unpaired surrogate escape (``"\\ud800"``) anywhere in a line (see :func:`parse_json`).

A ``.json`` data file is read the same way; its errors say so (a JSON array is the usual
mistake).

``.gz`` files are read transparently; a UTF-8 byte-order mark on the first line is ignored.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import DataError
from .jsonio import parse_json


def _is_json(path: Path) -> bool:
    """A ``.json`` (or ``.json.gz``) file, as opposed to ``.jsonl``."""
    return path.name.lower().removesuffix(".gz").endswith(".json")


def _kind(v: Any) -> str:
    return "an object" if isinstance(v, dict) else "a list"


def read_jsonl_records(path: str | Path, fields: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every record of a JSONL file, checked as described in the module doc."""
    return [rec for _, rec in iter_jsonl_records(path, fields)]


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a UTF-8 text file (``.gz`` read transparently, a
    byte-order mark on the first line dropped, line endings kept); a line that is not UTF-8
    or an unreadable file is a one-line ``DataError`` naming the line."""
    p = Path(path)
    opener = (lambda: gzip.open(p, "rb")) if p.name.lower().endswith(".gz") else (lambda: open(p, "rb"))
    try:
        with opener() as f:
            for n, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{p}: line {n}: not UTF-8 (byte {e.start} of the line); fix: re-save the file as UTF-8") from None
                yield n, line.lstrip("\ufeff") if n == 1 else line
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{p}: cannot read ({e}); fix: check the file (a truncated or corrupt .gz?)") from None


def iter_jsonl_records(path: str | Path, fields: Iterable[str] = (), require: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a JSONL file, one line at a time (streaming), checked as
    described in the module doc; ``require``: every one of ``fields`` must be present."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; fix: check the path")
    wanted = [f for f in dict.fromkeys(fields) if f]
    one_per_line = "write one JSON object per line" + (" (a .json data file is read as JSON Lines)" if _is_json(p) else "")
    for n, line in iter_lines(p):
        if not line.strip():
            continue
        rec = parse_json(line.rstrip("\r\n"), f"{p}", DataError, line=n, fix=one_per_line if _is_json(p) else "correct the JSON")
        if not isinstance(rec, dict):
            raise DataError(
                f"{p}: line {n}: a JSON {type(rec).__name__ if rec is not None else 'null'} where an object "
                f"{{\"field\": value, …}} is expected; fix: {one_per_line}"
            )
        for field in wanted:
            v = rec.get(field)
            if isinstance(v, (dict, list)):
                raise DataError(
                    f"{p}: line {n}: field '{field}' is {_kind(v)}, not text; "
                    f"fix: give a string there (or point --text-field / the task's fields at a text field)"
                )
            if require and field not in rec:
                raise DataError(f"{p}: line {n}: no field '{field}'; fields present: {list(rec)}; "
                                "fix: name an existing field in --text-field/--label-field")
        yield n, rec
