"""Reading JSONL data files line by line with errors that name the line (never a byte offset).

``read_jsonl_records(path, fields)`` returns one dict per non-blank line and refuses, in one
line naming the file, line number and field:

* malformed JSON, JSON nested too deeply, integers beyond Python's digit limit;
* a line that is not a JSON object;
* a value in one of ``fields`` (text or label columns) that is an object or a list: it would
  otherwise be stringified (``"{'a': 1}"``) and scored as if it were text.

``.gz`` files are read transparently; a UTF-8 byte-order mark on the first line is ignored.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import DataError
from .jsonio import parse_json


def is_jsonl(path: str | Path) -> bool:
    """True for ``.jsonl`` / ``.json`` files (optionally ``.gz``), as the table reader decides."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith((".jsonl", ".json"))


def _kind(v: Any) -> str:
    return "an object" if isinstance(v, dict) else "a list"


def read_jsonl_records(path: str | Path, fields: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every record of a JSONL file, checked as described in the module doc."""
    return [rec for _, rec in iter_jsonl_records(path, fields)]


def iter_jsonl_records(path: str | Path, fields: Iterable[str] = (), require: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a JSONL file, one line at a time (streaming), checked as
    described in the module doc; ``require``: every one of ``fields`` must be present."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; fix: check the path")
    wanted = [f for f in dict.fromkeys(fields) if f]
    opener = (lambda: gzip.open(p, "rb")) if p.name.lower().endswith(".gz") else (lambda: open(p, "rb"))
    try:
        with opener() as f:
            for n, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{p}: line {n}: not UTF-8 (byte {e.start} of the line); fix: re-save the file as UTF-8") from None
                if n == 1:
                    line = line.lstrip("\ufeff")
                if not line.strip():
                    continue
                rec = parse_json(line.rstrip("\r\n"), f"{p}", DataError, line=n)
                if not isinstance(rec, dict):
                    raise DataError(
                        f"{p}: line {n}: a JSON {type(rec).__name__ if rec is not None else 'null'} where an object "
                        "{\"field\": value, …} is expected; fix: write one JSON object per line"
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
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{p}: cannot read ({e}); fix: check the file (a truncated or corrupt .gz?)") from None
