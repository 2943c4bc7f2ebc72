"""Reading JSON files with one-line errors, and JSON paths for error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .errors import PetError, SpecError


def read_json(path: str | Path, error: type[PetError] = SpecError) -> Any:
    """Read a JSON file; every failure is a one-line ``error`` naming the file and the fix."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: file not found; fix: check the path")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{p}: not UTF-8 (byte {e.start}); fix: save the file as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{p}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}; fix: correct the JSON") from None


def json_path(parts: Iterable[Any]) -> str:
    """``["splits", "train", 0, "file"]`` -> ``$.splits.train[0].file``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
