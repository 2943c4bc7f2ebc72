"""A task built on the fly for a user's own CSV/TSV/JSONL file (``--data --text-field
--label-field``): no registry entry, labels from the data unless given."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import DataError
from ..examples import Example
from ..utils.defaults import DEFAULT_MAX_LENGTH
from .registry import TaskSpec
from .tables import load_table


def own_data_task(
    path: str | Path,
    text_fields: dict[str, str],
    label_field: str | None,
    labels: Sequence[str] | None = None,
    metric: str = "accuracy",
    max_length: int = DEFAULT_MAX_LENGTH,
) -> tuple[TaskSpec, list[Example]]:
    """A task built on the fly for a user's own CSV/TSV/JSONL file; labels come from the data
    (sorted) unless given."""
    examples = load_table(path, text_fields, label_field)
    if not examples:
        raise DataError(f"{path}: no rows; fix: give a file with at least one example")
    if labels is None:
        found = {e.label for e in examples if e.label is not None}
        labels = sorted(found, key=lambda s: (len(s), s) if s.isdigit() else (0, s))
    spec = TaskSpec(
        name=Path(path).stem,
        folder="",
        labels={lab: lab for lab in labels},
        splits={},
        fields={k: (v,) for k, v in text_fields.items()},
        label=label_field or "",
        metric=metric,
        default_pvps=(),
        max_length=max_length,
        path=Path(path),
    )
    return spec, examples


def parse_field_map(values: Sequence[str] | None, default: str = "text_a") -> dict[str, str]:
    """``--text-field review`` → {"text_a": "review"}; ``--text-field text_b=answer`` too."""
    out: dict[str, str] = {}
    names = ["text_a", "text_b"]
    for i, v in enumerate(values or []):
        key, sep, col = v.partition("=")
        if sep:
            out[key.strip()] = col.strip()
        else:
            out[names[i] if i < len(names) else f"text_{i}"] = v.strip()
    return out
