"""The results store: one append-only JSONL file per results folder.

Layout of ``<results>/results.jsonl``: every line is one JSON object.

- ``{"type": "row", "write_id": W, "config_hash": H, ...}`` — one row per evaluated stage
- ``{"type": "cell_complete", "write_id": W, "config_hash": H, "n_rows": N, "rows_sha256": S}``
  (plus ``"supersedes": W0`` when the cell was recomputed: its inputs changed, or ``--rerun-stale``)

A row's content is a :class:`pet.bench.rows.ResultRow` (``to_dict``); :meth:`ResultsStore.result_rows`
reads rows of every schema back as ``ResultRow``.

All lines of one cell (its rows, then its ``cell_complete`` marker) are written by ONE
``write()`` on an ``O_APPEND`` descriptor while holding an exclusive ``fcntl`` lock on
``<results>/results.jsonl.lock``, then fsync'ed. Readers accept a row only when the marker with
its ``write_id`` follows with the right row count and the SHA-256 of the row lines, so a run
killed at any moment (even inside the write) leaves at most an incomplete tail that is ignored;
the next writer truncates a partial last line (a line without its newline) before appending.
Before appending, the writer re-reads the store under the lock and refuses to write a cell
whose ``config_hash`` is already complete, unless the write names the complete write it
replaces (``supersedes``) and that write is still the current one: two runs on one store never
duplicate a cell, nor both recompute a stale one. Readers keep, per config hash, the latest
write of the chain (superseded rows are counted, not returned).

While a cell is being computed, its runner holds ``<results>/.locks/<hash>.lock`` (fcntl,
released by the OS if the process dies), so a concurrent run skips it instead of computing it
twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import ConfigError
from .rows import SCHEMA_VERSION as ROW_SCHEMA
from .rows import ResultRow

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
ERRORS_FILE = "errors.jsonl"
LOCK_SUFFIX = ".lock"
SCHEMA_VERSION = 2  # of the marker lines; rows carry their own (pet.bench.rows.SCHEMA_VERSION)


@dataclass
class StoreScan:
    """What a read of the store found."""

    rows: list[dict] = field(default_factory=list)  # rows of complete cells (the current write of each), in write order
    complete: dict[str, str] = field(default_factory=dict)  # config_hash -> write_id of its current complete write
    incomplete_writes: int = 0  # rows whose cell marker never came (killed mid-write)
    corrupt_lines: int = 0  # lines that are not JSON (not counting a partial last line)
    partial_tail: bool = False  # the file ends inside a line
    duplicate_cells: int = 0  # complete writes of a config_hash already complete (ignored)
    superseded_rows: int = 0  # rows replaced by a recomputation of their cell
    row_lines: list[int] = field(default_factory=list)  # the line of results.jsonl of each of ``rows``
    #: schema number -> lines of that schema newer than this pet reads (rows: pet.bench.rows.SCHEMA_VERSION,
    #: cell markers: SCHEMA_VERSION); such lines are read as far as this pet understands them
    newer_row_schemas: dict[int, int] = field(default_factory=dict)
    newer_marker_schemas: dict[int, int] = field(default_factory=dict)

    def result_rows(self) -> list[ResultRow]:
        """The rows as :class:`ResultRow` (rows of older schemas included)."""
        return [ResultRow.from_dict(r) for r in self.rows]

    @property
    def has_results(self) -> bool:
        """Whether pet wrote any of the lines read (complete cells or rows of an interrupted write)."""
        return bool(self.complete or self.incomplete_writes)

    def damage(self) -> str:
        """What the read skipped, in words ('' when nothing): an interrupted write, unreadable lines."""
        parts = []
        if self.incomplete_writes or self.partial_tail:
            parts.append(f"an interrupted write ({self.incomplete_writes} rows without their cell marker"
                         f"{', a partial last line' if self.partial_tail else ''})")
        if self.corrupt_lines:
            parts.append(f"{self.corrupt_lines} unreadable line{'s' if self.corrupt_lines != 1 else ''}")
        return " and ".join(parts)

    def schema_note(self) -> str:
        """'' or one line saying that rows or cell markers of a newer schema were read (written by
        a newer pet: read as this one understands them, its unknown fields left out), with the fix."""
        parts = []
        for what, found, known in (("rows", self.newer_row_schemas, ROW_SCHEMA), ("cell markers", self.newer_marker_schemas, SCHEMA_VERSION)):
            if found:
                parts.append(f"{sum(found.values())} {what} of schema {', '.join(str(v) for v in sorted(found))} "
                             f"(this pet reads {what} up to schema {known})")
        if not parts:
            return ""
        return (f"{' and '.join(parts)} were written by a newer pet: they are read as this pet understands them, "
                "and the fields it does not know take no part in the report; fix: upgrade pet (pip install -U pet-fewshot) to read them in full")

    def cell_rows(self, config_hash: str) -> list[dict]:
        """The current rows of one cell (empty if it is not complete)."""
        return [r for r in self.rows if r.get("config_hash") == config_hash]


def _count_newer(counts: dict[int, int], obj: dict, known: int) -> None:
    """Count ``obj`` under its ``schema`` when that is a number above ``known``."""
    v = obj.get("schema")
    if isinstance(v, int) and not isinstance(v, bool) and v > known:
        counts[v] = counts.get(v, 0) + 1


def _lines_sha(lines: list[bytes]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line)
    return h.hexdigest()


def _dumps(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, sort_keys=True, allow_nan=True, default=str) + "\n").encode("utf-8")


#: What a results folder holds besides results.jsonl (resume folders, splits, locks, the run's
#: experiment and task records, the report) — any of them marks the folder as pet's.
STORE_ENTRIES = ("partial", "splits", ".locks", "experiments", "tasks.json", "report", ERRORS_FILE)


class ResultsStore:
    """Append-only JSONL results store of one results folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / RESULTS_FILE
        self.lock_path = self.root / (RESULTS_FILE + LOCK_SUFFIX)
        self.errors_path = self.root / ERRORS_FILE

    def check_is_store(self) -> None:
        """Refuse a results folder that pet must not write into: a file, or a folder that is not
        empty and is not a results store (none of pet's entries, no line of pet's in its
        ``results.jsonl``), e.g. a user's folder that happens to hold a ``results.jsonl``."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"{self.root}: the results folder is a file; fix: choose another results folder (`results` / --results)")
        if not self.root.is_dir() or not any(self.root.iterdir()):
            return
        if any((self.root / name).exists() for name in (self.lock_path.name, *STORE_ENTRIES)):
            return  # pet's own (a run killed before its first row leaves partial/, splits/ …)
        scan = self.scan()
        if scan.has_results:
            return
        held = f"its {RESULTS_FILE} holds no pet results: {scan.damage() or 'no rows'}" if self.path.is_file() else f"it has no {RESULTS_FILE}"
        raise ConfigError(f"{self.root}: not a pet results store and not empty ({held}); writing there would mix pet's files with yours; "
                          "fix: choose a new or empty results folder (`results` / --results)")

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def cell_lock(self, config_hash: str, blocking: bool = False) -> Iterator[bool]:
        """Hold the per-cell lock while computing a cell; yields False if another process has it."""
        d = self.root / ".locks"
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / f"{config_hash}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ reading

    def scan(self) -> StoreScan:
        """Read every complete cell; ignore (and count) incomplete or corrupt tails."""
        out = StoreScan()
        if not self.path.is_file():
            return out
        data = self.path.read_bytes()
        raw_lines = data.split(b"\n")
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        elif raw_lines:
            out.partial_tail = True
            raw_lines.pop()  # the last line has no newline: a write was cut off
        pending: dict[str, list[tuple[bytes, dict, int]]] = {}
        cells: dict[str, list[tuple[int, dict]]] = {}  # config_hash -> (line, row) of its current write, in write order
        for line_no, raw in enumerate(raw_lines, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                out.corrupt_lines += 1
                continue
            if not isinstance(obj, dict):
                out.corrupt_lines += 1
                continue
            wid = obj.get("write_id")
            if obj.get("type") == "row":
                pending.setdefault(wid, []).append((raw + b"\n", obj, line_no))
            elif obj.get("type") == "cell_complete":
                rows = pending.pop(wid, [])
                if len(rows) != obj.get("n_rows") or _lines_sha([r for r, _, _ in rows]) != obj.get("rows_sha256"):
                    out.incomplete_writes += len(rows)
                    continue
                _count_newer(out.newer_marker_schemas, obj, SCHEMA_VERSION)
                self._accept(out, cells, obj, [(n, o) for _, o, n in rows])
            else:
                out.corrupt_lines += 1
        out.incomplete_writes += sum(len(v) for v in pending.values())
        current = [r for rows in cells.values() for r in rows]
        out.rows, out.row_lines = [o for _, o in current], [n for n, _ in current]
        for r in out.rows:
            _count_newer(out.newer_row_schemas, r, ROW_SCHEMA)
        return out

    @staticmethod
    def _accept(out: StoreScan, cells: dict[str, list[tuple[int, dict]]], marker: dict, rows: list[tuple[int, dict]]) -> None:
        """A complete write: the first of its cell, a recomputation of the current one, or a duplicate."""
        h, wid = marker.get("config_hash"), marker.get("write_id")
        if h in out.complete:
            if marker.get("supersedes") != out.complete[h]:
                out.duplicate_cells += 1
                return
            out.superseded_rows += len(cells.pop(h))
        out.complete[h] = wid
        cells[h] = rows

    def completed_hashes(self) -> set[str]:
        return set(self.scan().complete)

    def rows(self) -> list[dict]:
        return self.scan().rows

    def result_rows(self) -> list[ResultRow]:
        """Every current row as a :class:`ResultRow` (rows of older schemas included)."""
        return self.scan().result_rows()

    def current_write(self, config_hash: str) -> str | None:
        """The write id of the cell's current complete write (None: not complete)."""
        return self.scan().complete.get(config_hash)

    # ------------------------------------------------------------------ writing

    def append_cell(self, config_hash: str, rows: Sequence[ResultRow | dict], cell_info: dict | None = None,
                    supersedes: str | None = None) -> bool:
        """Append all rows of one cell plus its ``cell_complete`` marker in one atomic write.

        ``supersedes``: the write id of the complete write this one replaces (a recomputation).
        Returns False (and writes nothing) when the cell's current complete write is not
        ``supersedes`` (None: the cell must not be complete yet), e.g. another run got there first.
        """
        wid = uuid.uuid4().hex
        dicts = [r.to_dict() if isinstance(r, ResultRow) else dict(r) for r in rows]
        lines = [_dumps({**r, "type": "row", "write_id": wid, "config_hash": config_hash}) for r in dicts]
        marker = {
            "type": "cell_complete",
            "write_id": wid,
            "config_hash": config_hash,
            "n_rows": len(lines),
            "rows_sha256": _lines_sha(lines),
            "schema": SCHEMA_VERSION,
            **(cell_info or {}),
            **({"supersedes": supersedes} if supersedes else {}),
        }
        payload = b"".join(lines) + _dumps(marker)
        with self._locked():
            self._repair_tail()
            if self.scan().complete.get(config_hash) != supersedes:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(payload)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
        return True

    def _repair_tail(self) -> None:
        """Truncate a partial last line left by a killed writer (call with the lock held)."""
        if not self.path.is_file():
            return
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            # find the last newline
            pos, chunk = size, 65536
            cut = 0
            while pos > 0:
                start = max(0, pos - chunk)
                f.seek(start)
                buf = f.read(pos - start)
                i = buf.rfind(b"\n")
                if i >= 0:
                    cut = start + i + 1
                    break
                pos = start
            log.warning("%s: removing a partial last line (%d bytes) left by an interrupted write", self.path, size - cut)
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())

    def update_json(self, name: str, update: Callable[[dict], Any]) -> None:
        """Read-modify-write ``<results>/<name>`` (a JSON object) under the store's lock, so that
        concurrent runs never lose each other's entries; ``update`` changes the dict in place."""
        from ..utils.io import atomic_write_json

        with self._locked():
            path = self.root / name
            try:
                data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            except json.JSONDecodeError:
                data = {}
            update(data)
            atomic_write_json(path, data)

    def log_error(self, record: dict) -> None:
        """Append a failed cell to ``errors.jsonl`` (informational; never read for resume)."""
        with self._locked():
            fd = os.open(self.errors_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, _dumps(record))
            finally:
                os.close(fd)


#: Rows recorded before methods marked their final stage: the stage that stood for the method.
LEGACY_HEADLINE_STAGES = ("final", "distilled", "ensemble")


def headline(rows: Sequence[dict]) -> dict | None:
    """The row that stands for one cell's method in summaries, reports and selection: the stage
    the method marked ``final`` (the one ``PetClassifier`` predicts with).

    Rows recorded before methods marked it (no ``final`` key) use the rule of that time:
    ``final`` > ``distilled`` > ``ensemble`` > the mean of the per-PVP rows (stage
    ``mean-of-pvps``) > the last row.
    """
    rows = list(rows)
    if not rows:
        return None
    marked = [r for r in rows if r.get("final") is True]
    if marked:
        return marked[0]
    if any("final" in r for r in rows):
        return rows[-1]
    for stage in LEGACY_HEADLINE_STAGES:
        for r in rows:
            if r.get("stage") == stage:
                return r
    if len(rows) > 1 and all(r.get("stage") == "pvp" for r in rows):
        out = {**rows[0], "stage": "mean-of-pvps", "pvp": None, "score": sum(r["score"] for r in rows) / len(rows)}
        if all(isinstance(r.get("accuracy"), (int, float)) for r in rows):
            out["accuracy"] = sum(r["accuracy"] for r in rows) / len(rows)
        elif "accuracy" in out:
            out["accuracy"] = float("nan")
        return out
    return rows[-1]
