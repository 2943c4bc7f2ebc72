"""The one reader of a user's own data: a CSV/TSV/JSONL(.gz) file or a Hugging Face dataset
(``hf:NAME[:CONFIG]``), streamed in chunks of ``Example`` with bounded memory.

    for chunk in iter_chunks("reviews.csv", {"text_a": "review"}, "stars", chunk_size=512): ...
    for chunk in iter_chunks(Source("hf:./my_ds", split="train"), {"text_a": "sentence"}, "label"): ...

CSV/TSV go through :func:`pet.data.tables.csv_rows` row by row, JSONL line by line (line-numbered errors, as the
whole-file reader gives), ``hf:`` through :class:`pet.data.hub.HubData`. ``pet train``,
``zero-shot``, ``predict`` and ``search-verbalizer`` all read user data here (through
:func:`pet.data.owndata.own_data_task` where a whole list is needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import DataError
from ..examples import Example
from ..utils.jsonl import iter_jsonl_records
from .hub import HubData, is_hf
from .tables import cell_text as _cell
from .tables import csv_rows

DEFAULT_CHUNK_SIZE = 1024


@dataclass(frozen=True)
class Source:
    """Where a user's rows come from: a file path, or ``hf:NAME[:CONFIG]`` plus a split
    (``split`` None: ``default_split`` when the dataset has it, else its only split)."""

    spec: str
    split: str | None = None
    default_split: str = "test"

    @classmethod
    def of(cls, source: str | Path | Source, split: str | None = None, default_split: str = "test") -> Source:
        return source if isinstance(source, Source) else cls(str(source), split, default_split)

    @property
    def is_hf(self) -> bool:
        return is_hf(self.spec)

    @property
    def stem(self) -> str:
        """A short name: the file's stem, or the dataset folder's / hub name's last part."""
        body = self.spec[3:] if self.is_hf else self.spec
        return Path(body.rstrip("/")).stem or "data"

    def hub(self, columns: Sequence[str], label_field: str | None) -> HubData:
        return HubData(self.spec, self.split, columns, label_field, default_split=self.default_split)

    def describe(self) -> str:
        """The source as reports and errors name it: the path, or ``hf:NAME:SPLIT``."""
        return f"{self.spec}:{self.hub([], None).split}" if self.is_hf else self.spec

    def __str__(self) -> str:
        return self.spec


#: data file extensions (each optionally ``.gz``) -> format; ``.json`` is read as JSON Lines
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


def _fmt(path: Path) -> str:
    """The format a data file's extension names, else a one-line error listing the formats."""
    name = path.name.lower().removesuffix(".gz")
    fmt = FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise DataError(f"{path}: unknown data format '{Path(name).suffix or '(no extension)'}'; "
                        f"fix: give a {', '.join(FORMATS)} file (optionally .gz), or hf:NAME for a Hugging Face dataset")
    return fmt


def _csv_rows(path: Path, wanted: Sequence[str], all_columns: bool = False) -> Iterator[tuple[int, dict, str]]:
    """(row number, {column: value}, its lines in the file) of a CSV/TSV file, streamed;
    ``wanted`` columns only, or every column with ``all_columns``."""
    rows = csv_rows(path, _fmt(path))
    _, present, _ = next(rows)
    if not present:  # an empty file: no rows
        return
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DataError(f"{path}: no column '{missing[0]}'; columns present: {present}; "
                        "fix: name an existing column in --text-field/--label-field/--keep")
    names = present if all_columns else list(wanted)
    index = [present.index(c) for c in names]
    for row, cells, lines in rows:
        yield row, {c: cells[i] for c, i in zip(names, index)}, lines


def iter_records(path: str | Path, columns: Sequence[str], *, carried: Sequence[str] | bool = ()) -> Iterator[tuple[int, dict, str]]:
    """(row/line number, record, where in the file) of a file, streamed: ``where`` is a CSV/TSV
    row's line, " (line 7)" (its row number counts data rows, the header not included), and ""
    for JSONL, whose records are numbered by line. ``columns`` (text and labels) must exist in
    every record and hold text; ``carried`` columns (True: all) are read too, as they are."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; fix: check the path (or write hf:NAME for a Hugging Face dataset)")
    wanted = [c for c in dict.fromkeys(columns) if c]
    if _fmt(p) == "jsonl":  # every field of a line is read; carried ones are checked by iter_chunks
        return ((n, rec, "") for n, rec in iter_jsonl_records(p, wanted, require=True))
    extra = [] if isinstance(carried, bool) else list(carried)
    return ((n, rec, f" (line {lines})") for n, rec, lines in _csv_rows(p, list(dict.fromkeys([*wanted, *extra])), carried is True))


def _open(source: str | Path | Source | Iterable[dict], columns: list[str], label_field: str | None,
          carried: Sequence[str] | bool, name: str | None) -> tuple[str, str, str, Iterable[tuple[int, dict, str]]]:
    """(where, unit, guid prefix, numbered records) of any source (:func:`iter_records`' triples)."""
    if isinstance(source, (str, Path, Source)):
        src = Source.of(source)
        if src.is_hf:
            hub = src.hub(columns, label_field)
            return f"{src.spec}:{hub.split}", "record", src.stem, ((n, rec, "") for n, rec in enumerate(hub.records(), 1))
        p = Path(src.spec)
        return str(p), "line" if _fmt(p) == "jsonl" else "row", p.stem, iter_records(p, columns, carried=carried)
    return name or "records", "record", name or "record", ((n, rec, "") for n, rec in enumerate(source, 1))


def iter_chunks(
    source: str | Path | Source | Iterable[dict],
    fields: dict[str, str],
    label_field: str | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    labels: Sequence[str] | None = None,
    empty_text: str = "keep",
    name: str | None = None,
    keep: Sequence[str] | bool = False,
) -> Iterator[list[Example]]:
    """Lists of at most ``chunk_size`` Examples from a file, an ``hf:`` dataset (a string or a
    :class:`Source`) or an iterable of dict records, in order. ``fields`` maps template fields
    to columns; text is kept exactly as read; ``empty_text``: keep (as "") or error. ``labels``
    restricts label ids. ``keep`` (True: every column; or a list) carries input columns through
    in ``example.meta["columns"]`` (what ``pet predict`` writes beside its predictions)."""
    if chunk_size < 1:
        raise DataError(f"chunk_size={chunk_size}; fix: 1 or more")
    kept = [] if isinstance(keep, bool) else list(keep)
    columns = [*fields.values(), *([label_field] if label_field else [])]
    where, unit, prefix, records = _open(source, columns, label_field, keep, name)
    chunk: list[Example] = []
    for n, rec, lines in records:
        at = f"{where}: {unit} {n}{lines}"
        values = {}
        for f, col in fields.items():
            if col not in rec:
                raise DataError(f"{at}: no field '{col}'; fields present: {list(rec)}; fix: name an existing field in --text-field")
            text = _cell(rec[col])
            if text is None or not text.strip():
                if empty_text == "error":
                    raise DataError(f"{at}: field '{f}' (column {col}) is empty; fix: remove or fill in that {unit}")
                text = text or ""
            values[f] = text
        label = None
        if label_field:
            raw = _cell(rec.get(label_field))
            label = raw.strip() if raw is not None else ""
            if not label:
                raise DataError(f"{at}: empty label in column '{label_field}'; fix: fill in the label or drop the {unit}")
            if labels is not None and label not in labels:
                raise DataError(f"{at}: label '{label}' is not one of {list(labels)}; fix: correct the {unit} or the verbalizer")
        meta: dict[str, Any] = {unit: n}
        if keep:
            missing = next((c for c in kept if c not in rec), None)
            if missing is not None:
                raise DataError(f"{at}: no field '{missing}'; fields present: {list(rec)}; fix: name existing columns in --keep")
            meta["columns"] = dict(rec) if keep is True else {c: rec[c] for c in kept}
        chunk.append(Example(fields=values, label=label, guid=f"{prefix}-{n}", meta=meta))
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sorted_labels(found: Iterable[str]) -> list[str]:
    return sorted(found, key=lambda s: (len(s), s) if s.isdigit() else (0, s))


def scan_source(source: str | Path | Source, label_field: str | None, fields: dict[str, str] | None = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE, empty_text: str = "keep", keep: Sequence[str] | bool = False) -> tuple[list[str], int]:
    """(label ids, row count) of a source. Files are read once, chunk by chunk, checking every
    row (columns, JSONL objects, text values) so errors surface before a model loads; label ids
    are sorted (numbers numerically). An ``hf:`` dataset with a ``ClassLabel`` column gives its
    names in order and its length without a pass."""
    src = Source.of(source)
    if src.is_hf:
        hub = src.hub(list((fields or {}).values()), label_field)
        if hub.label_names is not None or not label_field:
            return (list(hub.label_names or []), len(hub))
    found: set[str] = set()
    n = 0
    for chunk in iter_chunks(src, fields or {}, label_field, chunk_size=chunk_size, empty_text=empty_text, keep=keep):
        found.update(e.label for e in chunk if e.label is not None)
        n += len(chunk)
    return _sorted_labels(found), n


def scan_labels(source: str | Path | Source, label_field: str, fields: dict[str, str] | None = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE, empty_text: str = "keep") -> list[str]:
    """The label ids of a source (see :func:`scan_source`)."""
    return scan_source(source, label_field, fields, chunk_size, empty_text)[0]


def check_source(source: str | Path | Source, fields: dict[str, str], chunk_size: int = DEFAULT_CHUNK_SIZE,
                 keep: Sequence[str] | bool = False) -> int:
    """The row count of a source, every file row checked on the way (see :func:`scan_source`)."""
    return scan_source(source, None, fields, chunk_size, keep=keep)[1]
