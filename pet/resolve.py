"""From user choices (a task name or an own data file; PVP files; PVP ids) to a task spec,
examples and PVPs. Shared by the CLI commands and usable from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .errors import DataError, SpecError
from .examples import Example
from .spec import PVP, load_patterns, load_verbalizers, make_pvps
from .tasks import TaskSpec, load_table, load_task


def task_pvps(
    task: TaskSpec | None,
    patterns: str | Path | None = None,
    verbalizers: str | Path | None = None,
    ids: Sequence[str] | None = None,
    include_soft: bool = False,
) -> list[PVP]:
    """The PVPs to use: ``ids`` if given, else the task's defaults, else every pattern with the
    first verbalizer. ``patterns``/``verbalizers`` files override the task's own."""
    if task is None and (patterns is None or verbalizers is None):
        raise SpecError("own data needs both --patterns FILE and --verbalizers FILE; fix: pass both")
    pats = load_patterns(patterns or task.patterns_path)
    verbs = load_verbalizers(verbalizers or task.verbalizers_path)
    if not ids and task is not None and patterns is None and verbalizers is None:
        ids = task.pvp_ids()
    pvps = make_pvps(pats, verbs, list(ids) if ids else None)
    if not include_soft and not ids:
        pvps = [p for p in pvps if not p.pattern.is_soft] or pvps
    if task is not None:
        for p in pvps:
            p.check_labels(task.label_ids, f"task '{task.name}'")
    return pvps


def own_data_task(
    path: str | Path,
    text_fields: dict[str, str],
    label_field: str | None,
    labels: Sequence[str] | None = None,
    metric: str = "accuracy",
    max_length: int = 256,
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
