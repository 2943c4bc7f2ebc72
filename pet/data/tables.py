"""Reading tables: a CSV/TSV/JSONL(.gz) file -> ``Example`` lists, with one-line errors naming the
file, row/line and column; and the JSONL example files that few-shot splits are written as."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd

from ..errors import DataError
from ..examples import Example
from ..utils.io import atomic_write_text
from ..utils.jsonl import iter_jsonl_records, iter_lines, read_jsonl_records
from .registry import DATA_ENV, FileSpec, norm_fields


def cell_text(v: Any) -> str | None:
    """A cell as a string; JSON booleans become ``"true"``/``"false"``, NaN/None become None."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or type(v).__name__ == "bool_":
        return "true" if bool(v) else "false"
    if isinstance(v, float) or type(v).__name__.startswith("float"):
        f = float(v)
        if math.isnan(f):
            return None
        return str(int(f)) if f.is_integer() else str(f)
    return str(v)


csv.field_size_limit(2**31 - 1)  # one long text is one field; the csv module's default limit is 128 KiB


_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


def _padded(columns: list[str], max_columns: int | None) -> list[str]:
    return columns + [f"_extra{i}" for i in range(len(columns), max_columns or 0)]


def csv_rows(path: Path, fmt: str, *, quoting: str | None = None, header: bool = True,
             names: Sequence[str] | None = None, max_columns: int | None = None) -> Iterator[tuple[int, list[str], str]]:
    """The rows of a CSV/TSV(.gz) file, read by Python's csv module: first ``(0, column names, "")``,
    then ``(row number, cells, lines)`` of every data row (blank lines skipped; ``lines``: its line
    in the file, "7", or "7-9" for a quoted field holding line breaks). TSV is read without
    quoting unless ``quoting="minimal"`` (GLUE files hold bare quotes). Column names are the
    header row's (stripped; a name given twice is an error), else ``names``, else "0", "1", ….
    Every row must have one cell per column (``max_columns``: up to that many, padded with ""),
    else a one-line error naming the row, its line and the fix."""
    tsv = fmt == "tsv"
    quoting = quoting or ("none" if tsv else "minimal")
    # the csv module wants a lone "\r" (a line break, or text in a quoted field) to end a line
    lines = (part for _, line in iter_lines(path) for part in (_LONE_CR.split(line) if "\r" in line else (line,)))
    reader = csv.reader(lines, delimiter="\t" if tsv else ",", strict=True,
                        quoting=csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL)
    columns: list[str] | None = None
    if not header and names:
        columns = _padded(list(names), max_columns)
        yield 0, columns, ""
    row, line = 0, 0
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not cells:  # a blank line
                continue
            if columns is None:
                if header:
                    columns = [c.strip() for c in cells]
                    dup = next((c for i, c in enumerate(columns) if c in columns[:i]), None)
                    if dup is not None:
                        raise DataError(f"{path}: column '{dup}' appears twice in the header; fix: give every column its own name")
                else:
                    columns = [str(i) for i in range(len(cells))]
                columns = _padded(columns, max_columns)
                yield 0, columns, ""
                if header:
                    continue
            row += 1
            lines = f"{start}" if line == start else f"{start}-{line}"
            width = max_columns or len(columns)
            if len(cells) > width or (len(cells) < width and not max_columns):
                where = f"{path}: row {row} (line {lines})"
                if len(cells) > width:
                    fix = "remove the tab characters inside fields" if tsv else 'quote fields that contain commas ("a, b")'
                else:
                    fix = "fill in the missing fields" + ("" if tsv else ", and quote a field that holds a line break")
                raise DataError(f"{where} has {len(cells)} field{'s' * (len(cells) != 1)} but the file has {width} columns; fix: {fix}")
            yield row, cells + [""] * (width - len(cells)), lines
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: {e}; fix: check the file's {fmt.upper()} quoting") from None
    if columns is None:
        yield 0, [], ""


def _read_frame(path: Path, fs: FileSpec):
    """(frame, lines): a whole file, every value kept as a string (labels stay ``"0"``), and each
    CSV/TSV row's line in the file (:func:`csv_rows`; None for JSONL, whose rows are lines)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; fix: check --data-dir / {DATA_ENV} points at the benchmark data root")
    fmt = fs.fmt()
    if fmt == "jsonl":  # line-numbered errors; an object or list where text belongs is refused
        needed = [c for cols in fs.fields.values() for c in cols] + ([fs.label] if fs.label else [])
        df = pd.DataFrame.from_records(read_jsonl_records(path, needed))
        df.columns = [str(c).strip() for c in df.columns]
        return df, None
    rows = csv_rows(path, fmt, quoting=fs.quoting, header=fs.header, names=fs.columns, max_columns=fs.max_columns)
    _, columns, _ = next(rows)
    body = list(rows)
    return pd.DataFrame([cells for _, cells, _ in body], columns=columns, dtype=object), [lines for _, _, lines in body]


#: Text clean-ups a task may ask for, each PET's rule for its source (``pet/tasks.py``):
#: ``backslash_to_space``: AG News uses a lone backslash as its line break
#: (``social\\network``); PET's AgnewsProcessor replaces every backslash by a space.
#: ``backslash_escapes``: the Yelp and Yahoo CSVs escape newlines as backslash-n; PET's
#: processors replace ``\\n`` by a space first, then any other backslash.
#: ``csv_doubled_quotes``: the Yelp and Yahoo texts of the USB and RLPrompt copies still carry
#: the Zhang et al. CSV escaping of a quote (``""``; e.g. ``\\""the Dirty Bird\\""``), which
#: PET's ``csv.reader`` of the original files decodes to ``"``; run it before the backslash rules.
#: ``html_breaks``: IMDB reviews contain ``<br />`` tags.
CLEANERS = {
    "csv_doubled_quotes": lambda t: t.replace('""', '"'),
    "backslash_to_space": lambda t: t.replace("\\", " "),
    "backslash_escapes": lambda t: t.replace("\\n", " ").replace("\\", " "),
    "html_breaks": lambda t: t.replace("<br />", " ").replace("<br/>", " ").replace("<br>", " "),
}


def _clean(text: str, clean: Sequence[str]) -> str:
    """Apply the task's clean-ups. The text is otherwise kept exactly as in the file (no strip):
    LM-BFF and PET feed it as read, and a trailing space is a token for byte-level BPE."""
    for c in clean:
        text = CLEANERS[c](text)
    return text


def _needed_columns(path: Path, fs: FileSpec, present: Sequence[str]) -> set[str]:
    """The text (and label) columns the file spec names; a missing one is an error naming the columns present."""
    needed = {c for cols in fs.fields.values() for c in cols}
    if fs.label is not None and not fs.label_last_nonempty:
        needed.add(fs.label)
    for c in sorted(needed):
        if c not in present:
            what = "label" if c == fs.label else "text"
            raise DataError(
                f"{path}: no column '{c}' ({what}); columns present: {present}; "
                f"fix: name an existing column in the task/--text-field/--label-field settings"
            )
    return needed


def _row_texts(cols: dict[str, list], i: int, fs: FileSpec, clean: Sequence[str], empty_text: str, where: str, unit: str) -> tuple[dict[str, str], bool]:
    """(template field -> text, whether a field is empty) of row ``i``; ``where`` is "<path>: <unit> <n>"."""
    values: dict[str, str] = {}
    empty = False
    for name, srcs in fs.fields.items():
        if not srcs:  # the file has no such text (e.g. AG News k-shot: title and body in one column)
            values[name] = ""
            continue
        parts = [cell_text(cols[c][i]) for c in srcs]
        cleaned = [_clean(x, clean) for x in parts if x is not None]
        # one column: exactly as read; several: joined by one space, skipping empty ones
        text = cleaned[0] if len(cleaned) == 1 else " ".join(p for p in cleaned if p.strip())
        if not text.strip():
            if empty_text == "error":
                raise DataError(
                    f"{where}: field '{name}' (column {'+'.join(srcs)}) is empty; "
                    f"fix: remove or fill in that {unit} (or set \"empty_text\" to keep/skip in the task file)"
                )
            empty = True
        values[name] = text
    return values, empty


def _raw_label(cols: dict[str, list], all_cols: list[list], i: int, fs: FileSpec) -> str | None:
    """Row ``i``'s label cell, stripped (``label_last_nonempty``: the row's last non-empty cell)."""
    if fs.label_last_nonempty:
        cells = [cell_text(col[i]) for col in all_cols]
        nonempty = [c.strip() for c in cells if c is not None and c.strip()]
        return nonempty[-1] if nonempty else None
    raw = cell_text(cols[fs.label][i])
    return raw.strip() if raw is not None else None


def _label_id(raw: str | None, fs: FileSpec, labels: Sequence[str] | None, regression: dict | None, meta: dict, where: str, unit: str) -> str:
    """The task's label id of a raw label cell: a regression score is thresholded (the score goes
    to ``meta["score"]``), then ``label_map`` applied; checked against ``labels``."""
    if not raw:
        raise DataError(f"{where}: empty label in column '{fs.label}'; fix: fill in the label or drop the {unit}")
    if regression is not None:
        try:
            score = float(raw)
        except ValueError:
            score = math.nan
        if not (regression["low"] <= score <= regression["high"]):
            raise DataError(
                f"{where}: score '{raw}' in column '{fs.label}' is not a number in "
                f"[{regression['low']}, {regression['high']}]; fix: correct the {unit}"
            )
        meta["score"] = score
        raw = regression["high_label"] if score >= regression["threshold"] else regression["low_label"]
    if fs.label_map:
        if raw not in fs.label_map:
            raise DataError(
                f"{where}: label '{raw}' is not in the file's label_map {list(fs.label_map)}; "
                f"fix: correct the {unit} or extend label_map in the task file"
            )
        label = fs.label_map[raw]
    else:
        label = raw
    if labels is not None and label not in labels:
        raise DataError(
            f"{where}: label '{raw}' is not one of the task's labels {list(labels)}; "
            f"fix: correct the {unit}, or add the label (or a label_map) to the task file"
        )
    return label


def read_file(
    path: Path,
    fs: FileSpec,
    labels: Sequence[str] | None,
    guid_prefix: str,
    clean: Sequence[str] = (),
    drop_labels: bool = False,
    empty_text: str = "error",
    regression: dict | None = None,
) -> list[Example]:
    """One file -> Examples, checking columns, empty text and label ids with one-line errors
    naming the file, the row (line for JSONL) and the column. ``drop_labels`` keeps the label
    in ``meta["gold_label"]`` only (unlabelled pools)."""
    df, lines = _read_frame(path, fs)
    present = list(df.columns)
    unit = "line" if fs.fmt() == "jsonl" else "row"
    cols = {c: df[c].tolist() for c in _needed_columns(path, fs, present)}
    all_cols = [df[c].tolist() for c in present] if fs.label_last_nonempty else []
    out: list[Example] = []
    for i in range(len(df)):
        row = i + 1
        where = f"{path}: {unit} {row}" + ("" if lines is None else f" (line {lines[i]})")
        values, empty = _row_texts(cols, i, fs, clean, empty_text, where, unit)
        if empty and empty_text == "skip":
            continue
        label: str | None = None
        meta: dict[str, Any] = {"file": str(path), unit: row}
        if fs.label is not None:
            label = _label_id(_raw_label(cols, all_cols, i, fs), fs, labels, regression, meta, where, unit)
            if drop_labels:
                meta["gold_label"] = label
                label = None
        out.append(Example(fields=values, label=label, guid=f"{guid_prefix}-{row}", meta=meta))
    return out


def load_table(
    path: str | Path,
    text_fields: dict[str, str] | str,
    label_field: str | None = None,
    *,
    format: str | None = None,
    header: bool = True,
    labels: Sequence[str] | None = None,
    empty_text: str = "error",
) -> list[Example]:
    """A user's own CSV/TSV/JSONL(.gz) file -> Examples.

    ``text_fields`` maps template field names to columns (a bare string means ``{"text_a": it}``);
    ``label_field`` is the label column or None for unlabelled text; ``labels`` (optional)
    restricts the allowed label ids; ``empty_text`` says what an empty text cell does
    (error, keep as "", or skip the row).
    """
    p = Path(path)
    tf = {"text_a": text_fields} if isinstance(text_fields, str) else dict(text_fields)
    if not tf:
        raise DataError(f"{p}: no text field given; fix: pass --text-field COLUMN")
    fs = FileSpec(
        file=p.name,
        fields=norm_fields(tf),
        label=label_field,
        format=format,
        header=header,
    )
    if empty_text not in ("error", "keep", "skip"):
        raise DataError(f"empty_text='{empty_text}': unknown rule; fix: use error, keep or skip")
    return read_file(p, fs, labels, guid_prefix=p.stem, empty_text=empty_text)



def write_examples(path: str | Path, examples: Sequence[Example]) -> str:
    """Write examples as JSONL (atomically); returns the file's SHA-256."""
    text = "".join(
        json.dumps({"guid": e.guid, "label": e.label, "fields": e.fields, "meta": e.meta}, ensure_ascii=False, sort_keys=True) + "\n"
        for e in examples
    )
    atomic_write_text(path, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_examples(path: str | Path) -> list[Example]:
    """Read examples written by ``write_examples``; a line that is not such a record is a
    one-line DataError naming the file and the line."""
    out = []
    for n, d in iter_jsonl_records(path):
        try:
            if not isinstance(d.get("fields"), dict):
                raise ValueError("'fields' must be an object")
            out.append(Example(fields=dict(d["fields"]), label=d.get("label"), guid=d.get("guid", ""), meta=d.get("meta") or {}))
        except (TypeError, ValueError, AttributeError) as e:
            raise DataError(f"{path}: line {n}: not an example record ({type(e).__name__}: {e}); fix: regenerate the file") from None
    return out


