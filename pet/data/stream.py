"""Reading a CSV/TSV/JSONL(.gz) file (or any iterable of records) in chunks, with bounded memory:
pandas' chunked reader for CSV/TSV, line by line for JSONL (line-numbered errors, as the
whole-file reader gives). Used by ``pet predict`` and ``pet zero-shot --data`` through
:mod:`pet.evaluation.streaming`, and by the ``hf:`` reader (:mod:`pet.data.hub`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import DataError
from ..examples import Example
from ..utils.jsonl import iter_jsonl_records
from .tables import cell_text as _cell

DEFAULT_CHUNK_SIZE = 1024


def _fmt(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    return "tsv" if name.endswith(".tsv") else "csv"


def _csv_rows(path: Path, wanted: Sequence[str], chunk_size: int) -> Iterator[tuple[int, dict]]:
    """(row number, {column: value}) of a CSV/TSV file, read ``chunk_size`` rows at a time by pandas."""
    import pandas as pd

    tsv = _fmt(path) == "tsv"
    kw: dict[str, Any] = dict(sep="\t" if tsv else ",", dtype=str, keep_default_na=False, na_filter=False,
                              quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, encoding="utf-8-sig", compression="infer",
                              chunksize=chunk_size)
    row = 0
    try:
        with pd.read_csv(path, **kw) as reader:
            for df in reader:
                df.columns = [str(c).strip() for c in df.columns]
                missing = [c for c in wanted if c not in df.columns]
                if missing:
                    raise DataError(f"{path}: no column '{missing[0]}'; columns present: {list(df.columns)}; fix: name an existing column in --text-field/--label-field")
                cols = {c: df[c].tolist() for c in wanted}
                for i in range(len(df)):
                    row += 1
                    yield row, {c: cols[c][i] for c in wanted}
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start}); fix: re-save the file as UTF-8") from None
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        return
    except Exception as e:  # pandas parser errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot read as {'tsv' if tsv else 'csv'}: {msg}; fix: check the file's format") from None


def iter_records(path: str | Path, columns: Sequence[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[tuple[int, dict]]:
    """(row/line number, record) of a file, streamed; ``columns`` must exist in every record."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; fix: check the path")
    wanted = [c for c in dict.fromkeys(columns) if c]
    return iter_jsonl_records(p, wanted, require=True) if _fmt(p) == "jsonl" else _csv_rows(p, wanted, chunk_size)


def iter_chunks(
    source: str | Path | Iterable[dict],
    fields: dict[str, str],
    label_field: str | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    labels: Sequence[str] | None = None,
    empty_text: str = "keep",
    name: str | None = None,
) -> Iterator[list[Example]]:
    """Lists of at most ``chunk_size`` Examples from a file (or an iterable of dict records, e.g.
    a Hugging Face dataset), in order. ``fields`` maps template fields to columns; text is kept
    exactly as read; ``empty_text``: keep (as "") or error. ``labels`` restricts label ids."""
    if chunk_size < 1:
        raise DataError(f"chunk_size={chunk_size}; fix: 1 or more")
    columns = [*fields.values(), *([label_field] if label_field else [])]
    if isinstance(source, (str, Path)):
        where, unit, prefix = str(source), "line" if _fmt(Path(source)) == "jsonl" else "row", Path(source).stem
        records: Iterable[tuple[int, dict]] = iter_records(source, columns, chunk_size)
    else:
        where, unit, prefix = name or "records", "record", name or "record"
        records = enumerate(source, 1)
    chunk: list[Example] = []
    for n, rec in records:
        values = {}
        for f, col in fields.items():
            if col not in rec:
                raise DataError(f"{where}: {unit} {n}: no field '{col}'; fields present: {list(rec)}; fix: name an existing field in --text-field")
            text = _cell(rec[col])
            if text is None or not text.strip():
                if empty_text == "error":
                    raise DataError(f"{where}: {unit} {n}: field '{f}' (column {col}) is empty; fix: remove or fill in that {unit}")
                text = text or ""
            values[f] = text
        label = None
        if label_field:
            raw = _cell(rec.get(label_field))
            label = raw.strip() if raw is not None else ""
            if not label:
                raise DataError(f"{where}: {unit} {n}: empty label in column '{label_field}'; fix: fill in the label or drop the {unit}")
            if labels is not None and label not in labels:
                raise DataError(f"{where}: {unit} {n}: label '{label}' is not one of {list(labels)}; fix: correct the {unit} or the verbalizer")
        chunk.append(Example(fields=values, label=label, guid=f"{prefix}-{n}", meta={unit: n}))
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def own_task_spec(source: str, fields: dict[str, str], label_field: str | None, labels: Sequence[str],
                  metric: str = "accuracy", max_length: int | None = None) -> Any:
    """The task of a user's own data (a file or ``hf:`` dataset) without reading its rows: what
    :func:`pet.data.own_data_task` builds, with the labels given (e.g. from :func:`scan_labels`)."""
    from .registry import TaskSpec
    from ..utils.defaults import DEFAULT_MAX_LENGTH

    name = Path(source[3:] if source.startswith("hf:") else source).stem or "data"
    return TaskSpec(name=name, folder="", labels={lab: lab for lab in labels}, splits={}, fields={k: (v,) for k, v in fields.items()},
                    label=label_field or "", metric=metric, default_pvps=(), max_length=max_length or DEFAULT_MAX_LENGTH,
                    path=None if source.startswith("hf:") else Path(source))


def scan_labels(source: str | Path | Iterable[dict], label_field: str, fields: dict[str, str] | None = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE, empty_text: str = "keep") -> list[str]:
    """The sorted label ids of a source's label column (numbers numerically), in one streaming
    pass that also checks every record's ``fields`` (line-numbered errors before any model loads)."""
    found: set[str] = set()
    for chunk in iter_chunks(source, fields or {}, label_field, chunk_size=chunk_size, empty_text=empty_text):
        found.update(e.label for e in chunk)
    return sorted(found, key=lambda s: (len(s), s) if s.isdigit() else (0, s))


def check_source(source: str | Path, fields: dict[str, str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Read a whole file once, chunk by chunk, checking every row (columns, JSONL objects, text
    values): errors surface before a model is loaded; memory stays flat. Returns the row count."""
    return sum(len(c) for c in iter_chunks(source, fields, chunk_size=chunk_size))
