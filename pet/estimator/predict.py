"""``pet predict``: a saved classifier's predictions written chunk by chunk, atomically, in the
format the output's extension names, with the input's columns carried through.

Each output row: the carried input columns (``example.meta["columns"]``, see
:func:`pet.data.stream.iter_chunks`), then ``label`` (the predicted label) and the
probabilities — a ``probabilities`` object ``{label: p}`` in JSONL, one ``p_<label>`` column per
label in CSV/TSV. An input column whose name is taken by a prediction column is written as
``input_<name>`` (a labelled file's gold ``label`` becomes ``input_label``). When the input
already has a column of that name too (``label`` and ``input_label``), nothing is renamed
further: ``pet predict`` stops with a one-line error naming both columns before the model loads
(:func:`check_input`; nothing is written),
because a name pet made up (``input_label_2``…) could differ from row to row in a JSONL file and
would be one more name to guess; rename a column in the input, or leave one out with ``--keep``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..data.stream import Source, check_source, iter_chunks
from ..errors import UsageError
from ..examples import Example
from ..utils.io import atomic_output

#: output extension -> format
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}


def output_format(path: str | Path) -> str:
    """The format the file name's extension names (``.csv``, ``.tsv``, ``.jsonl``), else a one-line error."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"--output {path}: unknown format '{Path(path).suffix or '(no extension)'}'; "
                         f"fix: end the file name in {', '.join(FORMATS)}")
    return fmt


def predict_stream(
    predict_log_proba: Callable[[list[Example]], np.ndarray], chunks: Iterable[list[Example]]
) -> Iterator[tuple[list[Example], np.ndarray]]:
    """(chunk, label log-probs ``[len(chunk), L]``) for every chunk, scored one chunk at a time."""
    for chunk in chunks:
        yield chunk, np.asarray(predict_log_proba(chunk))


def prediction_columns(labels: Sequence[str]) -> set[str]:
    """The names the prediction takes in any output format: ``label``, ``probabilities`` (JSONL)
    and one ``p_<label>`` per label (CSV/TSV)."""
    return {"label", "probabilities", *(f"p_{lab}" for lab in labels)}


def _carried(ex: Example, taken: set[str]) -> dict[str, Any]:
    """The input columns ``ex`` carries, those named like a prediction column renamed
    ``input_<name>``; a one-line error when that name is an input column too (see the module doc)."""
    columns = ex.meta.get("columns", {})
    out: dict[str, Any] = {}
    for k, v in columns.items():
        name = k
        if k in taken:
            name = f"input_{k}"
            if name in columns:
                raise UsageError(f"--input column '{k}' would be written as '{name}' (the output's '{k}' is the prediction), but the input "
                                 f"also has a column '{name}'; fix: rename one of the two columns in the input, or leave one out with --keep")
        out[name] = v
    return out


def check_input(source: Source, fields: dict[str, str], keep: Sequence[str] | bool, labels: Callable[[], Sequence[str]],
                chunk_size: int) -> int:
    """The row count of ``source``, every row checked before a model loads: its text fields and
    ``keep``'s columns (as :func:`pet.data.stream.check_source` does), then, with the labels
    ``labels()`` gives (called after the scan, so the input's own errors come first), that no
    carried column collides with the prediction's (see the module doc). A file is read once,
    chunk by chunk; an ``hf:`` dataset has one schema, so its first row stands for all."""
    if source.is_hf:
        total = check_source(source, fields, chunk_size, keep=keep)
        chunks: Iterable[list[Example]] = [next(iter_chunks(source, fields, chunk_size=1, keep=keep), [])]
    else:
        total, chunks = 0, iter_chunks(source, fields, chunk_size=chunk_size, keep=keep)
    both: dict[str, Example] = {}  # column name -> the first row that also has input_<name>
    for chunk in chunks:
        for ex in chunk:
            columns = ex.meta.get("columns", {})
            for k in columns:
                if f"input_{k}" in columns:
                    both.setdefault(k, ex)
        total += 0 if source.is_hf else len(chunk)
    if both:
        taken = prediction_columns(labels())
        for ex in both.values():
            _carried(ex, taken)  # the collision's one-line error, if the name is a prediction's
    return total


def _flat(v: Any) -> Any:
    """A JSON value as one CSV cell: None -> empty, lists and objects as JSON text."""
    if v is None:
        return ""
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v


class _TableWriter:
    """CSV/TSV rows; the header is the first row's columns (carried ones, then predictions).
    TSV is written as pet reads it, without quoting, so a cell holding a tab or a line break is
    refused (the whole output with it: the file is written atomically)."""

    def __init__(self, f, fmt: str, labels: list[str], output: str | Path):
        self.f, self.labels, self.output, self.tsv = f, labels, output, fmt == "tsv"
        self.dialect: dict[str, Any] = dict(delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None) if self.tsv else dict(delimiter=",")
        self.writer: csv.DictWriter | None = None
        self.n = 0

    def write(self, carried: dict, label: str, proba: np.ndarray) -> None:
        row = {k: _flat(v) for k, v in carried.items()}
        row["label"] = label
        row.update({f"p_{lab}": round(float(p), 6) for lab, p in zip(self.labels, proba)})
        self.n += 1
        if self.tsv:
            bad = next(((k, v) for k, v in row.items() if any(c in f"{k}{v}" for c in "\t\n\r")), None)
            if bad is not None:
                raise UsageError(f"--output {self.output}: row {self.n}, column '{bad[0]}' holds a tab or a line break, which a "
                                 "TSV file cannot hold (pet reads TSV without quoting); fix: write .csv or .jsonl")
        if self.writer is None:
            self.writer = csv.DictWriter(self.f, fieldnames=list(row), lineterminator="\n", restval="", **self.dialect)
            self.writer.writeheader()
        extra = [k for k in row if k not in self.writer.fieldnames]
        if extra:
            raise UsageError(f"input column '{extra[0]}' is missing from the first row, so it has no place in the table; "
                             "fix: name the columns to carry with --keep, or write .jsonl")
        if not self.tsv and any("\r" in str(v) for v in row.values()):
            # the csv module quotes a cell with "\n" but not a lone "\r" (with "\n" line ends), which a
            # reader takes for a line break: such a row is written fully quoted
            csv.DictWriter(self.f, fieldnames=self.writer.fieldnames, lineterminator="\n", restval="",
                           quoting=csv.QUOTE_ALL, **self.dialect).writerow(row)
        else:
            self.writer.writerow(row)

    def close(self) -> None:
        if self.writer is None:  # no rows: a header with the prediction columns alone
            csv.writer(self.f, lineterminator="\n", **self.dialect).writerow(["label", *(f"p_{lab}" for lab in self.labels)])


def write_predictions(clf: Any, chunks: Iterable[list[Example]], output: str | Path) -> int:
    """Every input example's prediction, written chunk by chunk into ``output`` (atomically: a
    failure leaves no file and an older one untouched), in the format its extension names.
    Returns the number of rows written."""
    fmt = output_format(output)
    labels = [str(x) for x in clf.labels_]
    taken = prediction_columns(labels)
    n = 0
    with atomic_output(output) as f:
        table = _TableWriter(f, fmt, labels, output) if fmt != "jsonl" else None
        for chunk, lp in predict_stream(clf.predict_log_proba, chunks):
            proba = np.exp(lp)
            for ex, row in zip(chunk, proba):
                label = labels[int(row.argmax())]
                if table is not None:
                    table.write(_carried(ex, taken), label, row)
                else:
                    rec = {**_carried(ex, taken), "label": label, "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, row)}}
                    f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
                n += 1
        if table is not None:
            table.close()
    return n
