"""The task registry: ``data/tasks/*.json`` (validated against ``pet/prompts/schemas/task.schema.json``)
-> ``TaskSpec``; the shipped pattern/verbalizer files; the data root.

A task file says where the task's files live under the data root, how to read each split
(CSV/TSV/JSONL, optionally gzipped; header or not; which columns hold which template field and
the label), the label ids and their names, the metric and the default PVPs. The data root is
never hard-coded: it comes from ``--data-dir`` or ``PET_DATA_DIR`` (see ``resolve_data_dir``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError, SpecError
from ..utils.jsonio import read_json
from ..utils.resources import shipped_dir
from ..utils.schema import schema_problems
from ..prompts.spec import PVP, load_patterns, load_verbalizers, make_pvps

#: The splits every task may define; a task file may add more (e.g. yahoo's ``test_subset``).
SPLITS = ("train", "dev", "test", "unlabelled")
FORMATS = ("csv", "tsv", "jsonl")
DATA_ENV = "PET_DATA_DIR"


# ----------------------------------------------------------------------------- task spec


@dataclass(frozen=True)
class FileSpec:
    """How to read one data file of a split (task-level ``fields``/``label`` already merged in)."""

    file: str  # relative to the task folder; may contain ``{seed}``
    fields: dict[str, tuple[str, ...]]  # template field -> column(s), joined by one space
    label: str | None  # label column; None for unlabelled files
    folder: str | None = None  # overrides the task folder (relative to the data root)
    format: str | None = None  # csv | tsv | jsonl; inferred from the extension when None
    header: bool = True
    columns: tuple[str, ...] | None = None  # names for header-less files (else "0", "1", ...)
    max_columns: int | None = None  # rows with a variable number of fields (SNLI k-shot)
    quoting: str | None = None  # "none" | "minimal"; default none for TSV, minimal for CSV
    label_last_nonempty: bool = False  # label = last non-empty field of the row (SNLI)
    label_map: dict[str, str] = field(default_factory=dict)  # raw label -> task label id
    extra: bool = False  # opt-in pool file (e.g. a lowercased pool); skipped unless asked for
    note: str = ""

    @property
    def seeded(self) -> bool:
        return "{seed}" in self.file

    def relpath(self, task_folder: str, seed: int | None = None) -> str:
        name = self.file.replace("{seed}", str(seed)) if seed is not None else self.file
        return f"{self.folder or task_folder}/{name}"

    def fmt(self) -> str:
        if self.format:
            return self.format
        name = self.file[:-3] if self.file.endswith(".gz") else self.file
        ext = name.rsplit(".", 1)[-1].lower()
        if ext in ("json", "jsonl"):
            return "jsonl"
        if ext in ("csv", "tsv"):
            return ext
        raise DataError(f"{self.file}: cannot tell the format from the extension; fix: set \"format\" to csv, tsv or jsonl")


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task, as read from ``data/tasks/<name>.json``."""

    name: str
    folder: str
    labels: dict[str, str]  # label id (as in the data, a string) -> human name; ordered
    splits: dict[str, tuple[FileSpec, ...]]
    fields: dict[str, tuple[str, ...]]
    label: str
    metric: str
    default_pvps: tuple[tuple[str, str], ...]
    max_length: int
    description: str = ""
    seeds: tuple[int, ...] = ()
    k_shot: int | None = None
    extra_metrics: tuple[str, ...] = ()
    positive_label: str | None = None
    test_subset: bool = False
    test_note: str = ""
    unlabelled_note: str = ""
    clean: tuple[str, ...] = ()  # text clean-ups: backslash_to_space, backslash_escapes, html_breaks
    #: regression through two label words (STS-B): {low, high, threshold, low_label, high_label}
    regression: dict | None = None
    empty_text: str = "error"  # a row whose text field is empty: error | keep (as "") | skip
    patterns_file: str | None = None
    verbalizers_file: str | None = None
    path: Path | None = None  # the JSON file this spec was read from

    @property
    def label_ids(self) -> list[str]:
        return list(self.labels)

    @property
    def patterns_path(self) -> Path:
        return self._resolve(self.patterns_file) if self.patterns_file else shipped_dir("patterns") / f"{self.name}.json"

    @property
    def verbalizers_path(self) -> Path:
        return self._resolve(self.verbalizers_file) if self.verbalizers_file else shipped_dir("verbalizers") / f"{self.name}.json"

    def _resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() or self.path is None else self.path.parent / q

    def has_split(self, split: str) -> bool:
        return split in self.splits

    def pvp_ids(self) -> list[str]:
        """Default PVPs as ``"pattern:verbalizer"`` strings (the form ``spec.make_pvps`` takes)."""
        return [f"{p}:{v}" for p, v in self.default_pvps]



def validate_task_dict(data: Any, where: str = "task") -> list[str]:
    """Every problem in a task definition, one line each (schema first, then cross-checks)."""
    problems = schema_problems(data, read_json(shipped_dir("schemas") / "task.schema.json"), where)
    if problems:
        return problems
    labels = data["labels"]
    if data.get("positive_label") is not None and data["positive_label"] not in labels:
        problems.append(f"{where}: $.positive_label: '{data['positive_label']}' is not a label id; fix: use one of {list(labels)}")
    if "f1" in [data["metric"], *data.get("extra_metrics", [])] and len(labels) != 2:
        problems.append(f"{where}: $.metric: binary f1 needs exactly 2 labels; fix: use macro_f1")
    if "f1" in [data["metric"], *data.get("extra_metrics", [])] and "positive_label" not in data:
        problems.append(f"{where}: $.positive_label: missing although the metric is f1; fix: name the positive label id")
    reg = data.get("regression")
    if reg is not None:
        for key in ("low_label", "high_label"):
            if reg[key] not in labels:
                problems.append(f"{where}: $.regression.{key}: '{reg[key]}' is not a label id; fix: use one of {list(labels)}")
        if not reg["low"] < reg["threshold"] <= reg["high"]:
            problems.append(f"{where}: $.regression: need low < threshold <= high; fix: correct the bounds")
    uses_reg = {"pearson", "spearman"} & {data["metric"], *data.get("extra_metrics", [])}
    if uses_reg and reg is None:
        problems.append(f"{where}: $.metric: {sorted(uses_reg)[0]} needs a regression task; fix: add \"regression\" or use a classification metric")
    for split, spec in data["splits"].items():
        for i, fs in enumerate(spec if isinstance(spec, list) else [spec]):
            at = f"$.splits.{split}" + (f"[{i}]" if isinstance(spec, list) else "")
            for raw, mapped in fs.get("label_map", {}).items():
                if mapped not in labels:
                    problems.append(f"{where}: {at}.label_map.{raw}: maps to unknown label '{mapped}'; fix: use one of {list(labels)}")
            if fs.get("columns") and fs.get("header", True):
                problems.append(f"{where}: {at}.columns: only for header-less files; fix: set \"header\": false or drop \"columns\"")
            if "{seed}" in fs["file"] and not data.get("seeds"):
                problems.append(f"{where}: {at}.file: uses {{seed}} but the task lists no seeds; fix: add \"seeds\"")
    return problems


def norm_fields(raw: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {k: tuple(str(c) for c in (v if isinstance(v, list) else [v])) for k, v in raw.items()}


def task_from_dict(data: dict, path: Path | None = None) -> TaskSpec:
    """Build a ``TaskSpec`` from an already-parsed task definition (validated here)."""
    where = str(path) if path else "task"
    problems = validate_task_dict(data, where)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    fields = norm_fields(data["fields"])
    label = str(data["label"])
    splits: dict[str, tuple[FileSpec, ...]] = {}
    for split, spec in data["splits"].items():
        specs = []
        for fs in spec if isinstance(spec, list) else [spec]:
            lab = fs["label"] if "label" in fs else label
            specs.append(
                FileSpec(
                    file=fs["file"],
                    fields=norm_fields(fs["fields"]) if "fields" in fs else fields,
                    label=None if lab is None else str(lab),
                    folder=fs.get("folder"),
                    format=fs.get("format"),
                    header=fs.get("header", True),
                    columns=tuple(fs["columns"]) if "columns" in fs else None,
                    max_columns=fs.get("max_columns"),
                    quoting=fs.get("quoting"),
                    label_last_nonempty=fs.get("label_last_nonempty", False),
                    label_map=dict(fs.get("label_map", {})),
                    extra=fs.get("extra", False),
                    note=fs.get("note", ""),
                )
            )
        splits[split] = tuple(specs)
    return TaskSpec(
        name=data["name"],
        folder=data["folder"],
        labels=dict(data["labels"]),
        splits=splits,
        fields=fields,
        label=label,
        metric=data["metric"],
        default_pvps=tuple((p, v) for p, v in data["default_pvps"]),
        max_length=data["max_length"],
        description=data.get("description", ""),
        seeds=tuple(data.get("seeds", ())),
        k_shot=data.get("k_shot"),
        extra_metrics=tuple(data.get("extra_metrics", ())),
        positive_label=data.get("positive_label"),
        test_subset=data.get("test_subset", False),
        test_note=data.get("test_note", ""),
        unlabelled_note=data.get("unlabelled_note", ""),
        clean=tuple(data.get("clean", ())),
        regression=dict(data["regression"]) if "regression" in data else None,
        empty_text=data.get("empty_text", "error"),
        patterns_file=data.get("patterns"),
        verbalizers_file=data.get("verbalizers"),
        path=path,
    )


def list_tasks() -> list[str]:
    """Names of the shipped tasks (the file stems under ``data/tasks``)."""
    d = shipped_dir("tasks")
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []



def load_task(name_or_path: str | Path | TaskSpec) -> TaskSpec:
    """A shipped task by name, or any task JSON file by path."""
    if isinstance(name_or_path, TaskSpec):
        return name_or_path
    s = str(name_or_path)
    p = Path(s)
    if s.endswith(".json") or os.sep in s or "/" in s:
        if not p.is_file():
            raise DataError(f"{p}: task file not found; fix: check the path, or give a shipped task name ({', '.join(list_tasks())})")
    else:
        p = shipped_dir("tasks") / f"{s}.json"
        if not p.is_file():
            raise DataError(f"task '{s}': unknown task; fix: use one of {', '.join(list_tasks())} or pass a task JSON file")
    return task_from_dict(read_json(p, error=DataError), p)


# ----------------------------------------------------------------------------- data root


def resolve_data_dir(arg: str | Path | None = None) -> Path:
    """The benchmark data root: ``arg`` if given, else ``$PET_DATA_DIR``; never a built-in path."""
    raw = str(arg) if arg not in (None, "") else os.environ.get(DATA_ENV, "")
    if not raw:
        raise DataError(f"data root not set; fix: pass --data-dir DIR or set {DATA_ENV}=DIR (the folder holding SST-2/, MNLI/, ...)")
    p = Path(raw).expanduser()
    if not p.is_dir():
        src = "--data-dir" if arg not in (None, "") else DATA_ENV
        raise DataError(f"{p}: data root ({src}) is not a directory; fix: point {src} at the benchmark data folder")
    return p




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
