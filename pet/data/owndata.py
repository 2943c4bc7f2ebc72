"""A task built on the fly for a user's own data (``--data --text-field --label-field``): a
CSV/TSV/JSONL(.gz) file or ``hf:NAME[:CONFIG]``, read by the one reader in
:mod:`pet.data.stream`; no registry entry, labels from the data unless given."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import DataError, UsageError
from ..examples import Example
from ..utils.defaults import DEFAULT_MAX_LENGTH
from .registry import TaskSpec
from .stream import DEFAULT_CHUNK_SIZE, Source, iter_chunks, scan_source


def own_task_spec(source: str | Path | Source, fields: dict[str, str], label_field: str | None, labels: Sequence[str],
                  metric: str = "accuracy", max_length: int | None = None) -> TaskSpec:
    """The task of a user's own data (a file or ``hf:`` dataset) with the labels given, without
    reading its rows."""
    src = Source.of(source)
    return TaskSpec(name=src.stem, folder="", labels={lab: lab for lab in labels}, splits={}, fields={k: (v,) for k, v in fields.items()},
                    label=label_field or "", metric=metric, default_pvps=(), max_length=max_length or DEFAULT_MAX_LENGTH,
                    path=None if src.is_hf else Path(src.spec))


def own_labels(found: Sequence[str], verbalizer_labels: Sequence[str]) -> list[str]:
    """The labels of a user's data scored with a verbalizer: the verbalizer's (in its order) when
    every label ``found`` in the data is among them — a test file need not hold every class, e.g.
    a file of positive reviews alone — else the data's own (the PVPs' label check then names the
    labels that have no words)."""
    return list(verbalizer_labels) if set(found) <= set(verbalizer_labels) else list(found)


def read_own(source: str | Path | Source, text_fields: dict[str, str], label_field: str | None, *,
             labels: Sequence[str] | None = None, split: str | None = None, default_split: str = "train",
             chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[Example]:
    """Every row of a user's file or ``hf:`` split as Examples (empty text is an error); the
    split defaults to ``default_split`` (``train`` for training data, ``test`` for test data)."""
    if not text_fields:
        raise DataError(f"{source}: no text field given; fix: pass --text-field COLUMN")
    src = Source.of(source, split, default_split)
    return [e for chunk in iter_chunks(src, text_fields, label_field, chunk_size=chunk_size, labels=labels, empty_text="error") for e in chunk]


def own_data_task(
    path: str | Path | Source,
    text_fields: dict[str, str],
    label_field: str | None,
    labels: Sequence[str] | None = None,
    metric: str = "accuracy",
    max_length: int = DEFAULT_MAX_LENGTH,
    *,
    split: str | None = None,
    default_split: str = "train",
) -> tuple[TaskSpec, list[Example]]:
    """A task built on the fly for a user's own file or ``hf:`` dataset, and its examples; labels
    come from the data (a ``ClassLabel``'s names, else sorted) unless given."""
    src = Source.of(path, split, default_split)
    examples = read_own(src, text_fields, label_field, labels=labels)
    if not examples:
        raise DataError(f"{src}: no rows; fix: give data with at least one example")
    if labels is None:
        if src.is_hf and label_field:
            labels = scan_source(src, label_field, text_fields)[0]
        else:
            found = {e.label for e in examples if e.label is not None}
            labels = sorted(found, key=lambda s: (len(s), s) if s.isdigit() else (0, s))
    return own_task_spec(src, text_fields, label_field, labels, metric, max_length), examples


def parse_field_map(values: Sequence[str] | None, text_b: str | None = None) -> dict[str, str]:
    """Template field → column, from ``--text-field`` values (and ``--text-b-field``).

    ``["review"]`` → ``{"text_a": "review"}``; ``["q", "ctx"]`` → ``{"text_a": "q", "text_b": "ctx"}``
    (a bare column fills ``{text_a}``, then ``{text_b}``); ``["question=q"]`` → ``{"question": "q"}``
    for a pattern's ``{question}``; ``text_b`` is ``--text-b-field``, the same as a second bare
    column. No values at all: ``{"text_a": "text"}``. A value splits at its first ``=``, so a
    column whose name holds ``=`` is given with its field: ``text_a=score=1-5``. A field named
    twice, a third bare column or an empty name or column is an error naming the flag and the fix."""
    out: dict[str, str] = {}

    def put(name: str, column: str, flag: str) -> None:
        if not name.isidentifier():
            raise UsageError(f"{flag} {name}={column}: '{name}' is not a template field name; fix: give NAME=COLUMN "
                             "with NAME as the pattern writes it, e.g. question=q for {question} (a column whose name "
                             f"holds '=': text_a={name}={column})")
        if not column:
            raise UsageError(f"{flag}: no column for {{{name}}}; fix: name the column that holds it")
        if name in out:
            raise UsageError(f"{flag}: {{{name}}} is given two columns ('{out[name]}' and '{column}'); fix: give one column per field")
        out[name] = column

    bare = iter(("text_a", "text_b"))
    for v in values or []:
        name, sep, column = (x.strip() for x in str(v).partition("="))
        if not sep:
            name, column = next((n for n in bare if n not in out), None), name
            if name is None:
                raise UsageError(f"--text-field {v}: a third bare column; only {{text_a}} and {{text_b}} are filled in order; "
                                 f"fix: name the field, e.g. --text-field question={v}")
            if not column:
                raise UsageError("--text-field '': no column; fix: give the column that holds the text")
        put(name, column, "--text-field")
    if text_b is not None:
        put("text_b", str(text_b).strip(), "--text-b-field")
    return out or {"text_a": "text"}
