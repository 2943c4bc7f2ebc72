"""Reading JSON with one-line errors (the single JSON reader), and JSON paths for messages.

Hostile input is refused in one line too: a key given twice in one object (line, column and
JSON path of the object), nesting deeper than Python's parser allows,
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


class _DuplicateKey(Exception):
    """Raised by :func:`_refuse_duplicates` inside ``json.loads`` (positions are found afterwards)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook``: the object as a dict, or :class:`_DuplicateKey` for a key given twice
    (``json.loads`` alone keeps the last value without a word)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out


_WS = re.compile(r"[ \t\n\r]*")


def _first_duplicate(text: str) -> tuple[tuple, str, int, int] | None:
    """(JSON path of the object, key, offset of its first and of its second occurrence) of the
    first key that one object of ``text`` repeats, scanning left to right; None when there is
    none or the text stops parsing before one (only called after ``json.loads`` met a duplicate,
    so everything before it parses). Iterative: no depth limit."""
    from json.decoder import scanstring

    raw = json.JSONDecoder(object_pairs_hook=lambda pairs: None, parse_constant=lambda c: None)
    stack: list[list] = []  # [path, seen keys -> offset (object) or None (array), next index (array)]
    try:
        i = _WS.match(text, 0).end()
        path: tuple = ()
        while True:
            c = text[i]
            if c in "{[":  # open a container and read up to its first value (or its end)
                i = _WS.match(text, i + 1).end()
                frame = [path, {} if c == "{" else None, 0]
                if text[i] in "}]":
                    i = _WS.match(text, i + 1).end()
                else:
                    stack.append(frame)
                    if c == "[":
                        path = (*frame[0], 0)
                        continue
                    found, key, i = _object_key(text, i, frame, scanstring)
                    if found:
                        return found
                    path = (*frame[0], key)
                    continue
            else:  # a scalar
                i = _WS.match(text, raw.raw_decode(text, i)[1]).end()
            while stack:  # after a value: the next one, or close containers
                frame = stack[-1]
                if text[i] == ",":
                    i = _WS.match(text, i + 1).end()
                    if frame[1] is None:
                        frame[2] += 1
                        path = (*frame[0], frame[2])
                    else:
                        found, key, i = _object_key(text, i, frame, scanstring)
                        if found:
                            return found
                        path = (*frame[0], key)
                    break
                stack.pop()  # "}" or "]"
                i = _WS.match(text, i + 1).end()
            else:
                return None
    except (IndexError, ValueError, RecursionError):
        return None


def _object_key(text: str, i: int, frame: list, scanstring) -> tuple[tuple | None, str, int]:
    """Read the key at ``text[i]`` (a ``"``) and its ``:``; (duplicate found or None, key, offset of the value)."""
    if text[i] != '"':
        raise ValueError("expected a key")
    key, end = scanstring(text, i + 1)
    if key in frame[1]:
        return (frame[0], key, frame[1][key], i), key, i
    frame[1][key] = i
    end = _WS.match(text, end).end()
    if text[end] != ":":
        raise ValueError("expected ':'")
    return None, key, _WS.match(text, end + 1).end()


def _line_col(text: str, pos: int) -> tuple[int, int]:
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _duplicate_error(text: str, where: str, key: str, error: type[PetError], line: int | None) -> PetError:
    """The one-line error for a key given twice in one object: where both are, and the object's path."""
    found = _first_duplicate(text)
    if found is None:  # not located (should not happen): name the key alone
        at = f" at line {line}" if line is not None else ""
        return error(f"{where}: malformed JSON{at}: duplicate key {key!r}; fix: keep one of them")
    path, key, first, second = found
    (ln1, col1), (ln2, col2) = _line_col(text, first), _line_col(text, second)
    if line is not None:  # one line of a JSONL file: its number, the columns within it
        at, first_at = f"line {line} column {col2}", f"column {col1}"
    else:
        at, first_at = f"line {ln2} column {col2}", f"line {ln1}" + (f" column {col1}" if ln1 == ln2 else "")
    return error(f"{where}: malformed JSON at {at}: {json_path(path)}: duplicate key {key!r} (first at {first_at}); "
                 "fix: keep one of them")


def parse_json(text: str, where: str, error: type[PetError] = SpecError, line: int | None = None,
               fix: str = "correct the JSON") -> Any:
    """``json.loads`` whose every failure is a one-line ``error`` starting with ``where``.

    ``line`` (for one line of a JSONL file) is named instead of the parser's own line number;
    ``fix`` is what a malformed-JSON message tells the user to do. A key given twice in one
    object is refused (plain ``json.loads`` would keep the last value without a word), naming
    both places and the object's JSON path, as the YAML reader does.
    """
    at = (lambda ln, col: f"line {line} column {col}") if line is not None else (lambda ln, col: f"line {ln} column {col}")
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as e:
        raise _duplicate_error(text, where, e.key, error, line) from None
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
