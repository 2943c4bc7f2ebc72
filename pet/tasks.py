"""Task registry and data loading: benchmark files on disk -> ``Example`` lists.

A task is one small JSON file under ``data/tasks/`` (validated against
``pet/schemas/task.schema.json``) that says where the task's files live under the data root,
how to read each split (CSV/TSV/JSONL, optionally gzipped; header or not; which columns hold
which template field and the label), the label ids and their names, the metric and the default
PVPs. The data root itself is never hard-coded: it comes from ``--data-dir`` or the
``PET_DATA_DIR`` environment variable (see ``resolve_data_dir``).

Few-shot splits: with K=16 and one of the task's seeds the fixed LM-BFF/RLPrompt ``16-<seed>``
folders are used as they are; any other K (or seed) is drawn by balanced, seeded sampling from
the task's train-side pool and, given ``out_dir``, written to disk with a SHA-256 checksum file
so that every method sees identical examples.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import math
import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import DataError
from .examples import Example

log = logging.getLogger(__name__)

#: The splits every task may define; a task file may add more (e.g. yahoo's ``test_subset``).
SPLITS = ("train", "dev", "test", "unlabelled")
FORMATS = ("csv", "tsv", "jsonl")
DATA_ENV = "PET_DATA_DIR"

_REPO_ROOT = Path(__file__).resolve().parent.parent
_SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "task.schema.json"


def tasks_dir() -> Path:
    """The shipped task registry (``data/tasks`` in the repository)."""
    return _REPO_ROOT / "data" / "tasks"


def patterns_dir() -> Path:
    """The shipped pattern files (``patterns/<task>.json``)."""
    return _REPO_ROOT / "patterns"


def verbalizers_dir() -> Path:
    """The shipped verbalizer files (``verbalizers/<task>.json``)."""
    return _REPO_ROOT / "verbalizers"


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
    clean: tuple[str, ...] = ()  # text clean-ups: backslash_escapes, html_breaks
    empty_text: str = "error"  # a row whose text field is empty: error | keep (as "") | skip
    patterns_file: str | None = None
    verbalizers_file: str | None = None
    path: Path | None = None  # the JSON file this spec was read from

    @property
    def label_ids(self) -> list[str]:
        return list(self.labels)

    @property
    def field_names(self) -> list[str]:
        return list(self.fields)

    @property
    def patterns_path(self) -> Path:
        return self._resolve(self.patterns_file) if self.patterns_file else patterns_dir() / f"{self.name}.json"

    @property
    def verbalizers_path(self) -> Path:
        return self._resolve(self.verbalizers_file) if self.verbalizers_file else verbalizers_dir() / f"{self.name}.json"

    def _resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() or self.path is None else self.path.parent / q

    def has_split(self, split: str) -> bool:
        return split in self.splits

    def pvp_ids(self) -> list[str]:
        """Default PVPs as ``"pattern:verbalizer"`` strings (the form ``spec.make_pvps`` takes)."""
        return [f"{p}:{v}" for p, v in self.default_pvps]


def _schema() -> dict:
    return json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))


def _json_path(parts: Iterable[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def validate_task_dict(data: Any, where: str = "task") -> list[str]:
    """Every problem in a task definition, one line each (schema first, then cross-checks)."""
    import jsonschema
    from jsonschema.exceptions import best_match

    validator = jsonschema.Draft202012Validator(_schema())
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        leaf = best_match([err])  # descends into anyOf branches to the most specific error
        path = _json_path(leaf.absolute_path)
        problems.append(f"{where}: {path}: {leaf.message}; fix: see pet/schemas/task.schema.json")
    if problems:
        return problems
    labels = data["labels"]
    if data.get("positive_label") is not None and data["positive_label"] not in labels:
        problems.append(f"{where}: $.positive_label: '{data['positive_label']}' is not a label id; fix: use one of {list(labels)}")
    if "f1" in [data["metric"], *data.get("extra_metrics", [])] and len(labels) != 2:
        problems.append(f"{where}: $.metric: binary f1 needs exactly 2 labels; fix: use macro_f1")
    if "f1" in [data["metric"], *data.get("extra_metrics", [])] and "positive_label" not in data:
        problems.append(f"{where}: $.positive_label: missing although the metric is f1; fix: name the positive label id")
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


def _norm_fields(raw: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {k: tuple(str(c) for c in (v if isinstance(v, list) else [v])) for k, v in raw.items()}


def task_from_dict(data: dict, path: Path | None = None) -> TaskSpec:
    """Build a ``TaskSpec`` from an already-parsed task definition (validated here)."""
    where = str(path) if path else "task"
    problems = validate_task_dict(data, where)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    fields = _norm_fields(data["fields"])
    label = str(data["label"])
    splits: dict[str, tuple[FileSpec, ...]] = {}
    for split, spec in data["splits"].items():
        specs = []
        for fs in spec if isinstance(spec, list) else [spec]:
            lab = fs["label"] if "label" in fs else label
            specs.append(
                FileSpec(
                    file=fs["file"],
                    fields=_norm_fields(fs["fields"]) if "fields" in fs else fields,
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
        empty_text=data.get("empty_text", "error"),
        patterns_file=data.get("patterns"),
        verbalizers_file=data.get("verbalizers"),
        path=path,
    )


def list_tasks() -> list[str]:
    """Names of the shipped tasks (the file stems under ``data/tasks``)."""
    d = tasks_dir()
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []


def _read_json_file(p: Path) -> Any:
    from .spec import read_json

    return read_json(p, error=DataError)


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
        p = tasks_dir() / f"{s}.json"
        if not p.is_file():
            raise DataError(f"task '{s}': unknown task; fix: use one of {', '.join(list_tasks())} or pass a task JSON file")
    return task_from_dict(_read_json_file(p), p)


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


# ----------------------------------------------------------------------------- file reading


def _cell(v: Any) -> str | None:
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


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8-sig") if path.suffix == ".gz" else open(path, encoding="utf-8-sig")


def _read_frame(path: Path, fs: FileSpec):
    """Read a whole file with pandas, every value kept as a string (labels stay ``"0"``)."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: file not found; fix: check --data-dir / {DATA_ENV} points at the benchmark data root")
    fmt = fs.fmt()
    try:
        if fmt == "jsonl":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = pd.read_json(path, lines=True, dtype=False, convert_dates=False, compression="infer", encoding="utf-8")
        else:
            quoting = fs.quoting or ("none" if fmt == "tsv" else "minimal")
            kw: dict[str, Any] = dict(
                sep="\t" if fmt == "tsv" else ",",
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                quoting=csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL,
                encoding="utf-8-sig",
                compression="infer",
            )
            if fs.max_columns:
                names: list[str] = []
                if fs.header:
                    with _open_text(path) as f:
                        names = [c.strip() for c in f.readline().rstrip("\r\n").split(kw["sep"])]
                elif fs.columns:
                    names = list(fs.columns)
                names += [f"_extra{i}" for i in range(len(names), fs.max_columns)]
                kw.update(header=None, names=names, skiprows=1 if fs.header else 0)
            elif not fs.header:
                kw.update(header=None, names=list(fs.columns) if fs.columns else None)
            df = pd.read_csv(path, **kw)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start}); fix: re-save the file as UTF-8") from None
    except DataError:
        raise
    except Exception as e:  # pandas parser / JSON errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot read as {fmt}: {msg}; fix: check the file's format and the task's reader settings") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


#: Text clean-ups a task may ask for. ``backslash_escapes``: the Zhang et al. CSVs (AG News,
#: Yelp, Yahoo) escape newlines as a literal backslash-n; PET's processors replace those and any
#: other backslash by a space. ``html_breaks``: IMDB reviews contain ``<br />`` tags.
CLEANERS = {
    "backslash_escapes": lambda t: t.replace("\\n", " ").replace("\\", " "),
    "html_breaks": lambda t: t.replace("<br />", " ").replace("<br/>", " ").replace("<br>", " "),
}


def _clean(text: str, clean: Sequence[str]) -> str:
    for c in clean:
        text = CLEANERS[c](text)
    return text.strip()


def _read_file(
    path: Path,
    fs: FileSpec,
    labels: Sequence[str] | None,
    guid_prefix: str,
    clean: Sequence[str] = (),
    drop_labels: bool = False,
    empty_text: str = "error",
) -> list[Example]:
    """One file -> Examples, checking columns, empty text and label ids with one-line errors."""
    df = _read_frame(path, fs)
    present = list(df.columns)
    is_json = fs.fmt() == "jsonl"
    unit = "line" if is_json else "row"
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
    cols = {c: df[c].tolist() for c in needed}
    all_cols = [df[c].tolist() for c in present] if fs.label_last_nonempty else []
    out: list[Example] = []
    for i in range(len(df)):
        row = i + 1
        values: dict[str, str] = {}
        empty = False
        for name, srcs in fs.fields.items():
            parts = [_cell(cols[c][i]) for c in srcs]
            text = " ".join(p for p in (_clean(x, clean) for x in parts if x is not None) if p)
            if not text:
                if empty_text == "error":
                    raise DataError(
                        f"{path}: {unit} {row}: field '{name}' (column {'+'.join(srcs)}) is empty; "
                        f"fix: remove or fill in that {unit} (or set \"empty_text\" to keep/skip in the task file)"
                    )
                empty = True
            values[name] = text
        if empty and empty_text == "skip":
            continue
        label: str | None = None
        meta: dict[str, Any] = {"file": str(path), unit: row}
        if fs.label is not None:
            if fs.label_last_nonempty:
                cells = [_cell(col[i]) for col in all_cols]
                nonempty = [c.strip() for c in cells if c is not None and c.strip()]
                raw = nonempty[-1] if nonempty else None
            else:
                raw = _cell(cols[fs.label][i])
                raw = raw.strip() if raw is not None else None
            if not raw:
                raise DataError(f"{path}: {unit} {row}: empty label in column '{fs.label}'; fix: fill in the label or drop the {unit}")
            if fs.label_map:
                if raw not in fs.label_map:
                    raise DataError(
                        f"{path}: {unit} {row}: label '{raw}' is not in the file's label_map {list(fs.label_map)}; "
                        f"fix: correct the {unit} or extend label_map in the task file"
                    )
                label = fs.label_map[raw]
            else:
                label = raw
            if labels is not None and label not in labels:
                raise DataError(
                    f"{path}: {unit} {row}: label '{raw}' is not one of the task's labels {list(labels)}; "
                    f"fix: correct the {unit}, or add the label (or a label_map) to the task file"
                )
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
        fields=_norm_fields(tf),
        label=label_field,
        format=format,
        header=header,
    )
    if empty_text not in ("error", "keep", "skip"):
        raise DataError(f"empty_text='{empty_text}': unknown rule; fix: use error, keep or skip")
    return _read_file(p, fs, labels, guid_prefix=p.stem, empty_text=empty_text)


# ----------------------------------------------------------------------------- splits


def _seed_check(task: TaskSpec, split: str, seed: int | None) -> None:
    if seed is None:
        raise DataError(
            f"{task.path or task.name}: $.splits.{split}: the {split} files depend on the seed; "
            f"fix: pass --seed (one of {', '.join(map(str, task.seeds))})"
        )


def _load_split(
    task: TaskSpec, split: str, root: Path, seed: int | None, include_extra: bool = False, drop_labels: bool = False
) -> list[Example]:
    if split not in task.splits:
        note = ""
        if split == "test" and task.test_note:
            note = f" ({task.test_note})"
        elif split == "unlabelled" and task.unlabelled_note:
            note = f" ({task.unlabelled_note})"
        elif split in ("train", "dev"):
            note = " (draw one with few_shot / --k, which samples from the train-side pool)"
        raise DataError(
            f"{task.path or task.name}: $.splits.{split}: task '{task.name}' has no {split} split{note}; "
            f"fix: use one of {', '.join(task.splits)}"
        )
    out: list[Example] = []
    for fs in task.splits[split]:
        if fs.extra and not include_extra:
            continue
        if fs.seeded:
            _seed_check(task, split, seed)
        rel = fs.relpath(task.folder, seed if fs.seeded else None)
        prefix = f"{task.name}-{split}" + (f"-{seed}" if fs.seeded else "")
        if len(task.splits[split]) > 1:
            prefix += f"-f{task.splits[split].index(fs)}"
        exs = _read_file(root / rel, fs, task.label_ids, prefix, task.clean, drop_labels or fs.label is None, task.empty_text)
        for e in exs:
            e.meta["file"] = rel  # relative to the data root: portable in logs and manifests
        out.extend(exs)
    return out


def load_examples(
    task: str | Path | TaskSpec, split: str, data_dir: str | Path | None = None, seed: int | None = None
) -> list[Example]:
    """All examples of one split (train/dev/test/unlabelled or a task-specific extra split).

    ``unlabelled`` is the task's whole train-side pool with labels removed (gold labels kept in
    ``meta["gold_label"]``); use ``unlabelled_pool`` to exclude the labelled examples.
    """
    t = load_task(task)
    root = resolve_data_dir(data_dir)
    if split == "unlabelled":
        return [_strip(e) for e in _train_side(t, root)]
    return _load_split(t, split, root, seed)


def _strip(e: Example) -> Example:
    meta = dict(e.meta)
    if e.label is not None:
        meta["gold_label"] = e.label
    return Example(fields=dict(e.fields), label=None, guid=e.guid, meta=meta)


def _key(e: Example) -> tuple[tuple[str, str], ...]:
    """Identity of an example for de-duplication and exclusion: its text, field by field."""
    return tuple(sorted((k, " ".join(v.split()).lower()) for k, v in e.fields.items()))


def _train_side(task: TaskSpec, root: Path, include_extra: bool = False) -> list[Example]:
    """Every train-side example (labelled where the file has labels), de-duplicated by text.

    Sources, in order: the task's ``unlabelled`` pool files, then the train and dev files of
    every seed (LM-BFF's k-shot dev sets are drawn from the official training set too).
    """
    out: list[Example] = []
    seen: set = set()

    def add(exs: list[Example]) -> None:
        for e in exs:
            k = _key(e)
            if k not in seen:
                seen.add(k)
                out.append(e)

    if "unlabelled" in task.splits:
        add(_load_split(task, "unlabelled", root, None, include_extra=include_extra))
    for split in ("train", "dev"):
        if split not in task.splits:
            continue
        if any(fs.seeded for fs in task.splits[split]):
            for s in task.seeds:
                add(_load_split(task, split, root, s))
        else:
            add(_load_split(task, split, root, None))
    return out


# ----------------------------------------------------------------------------- few-shot


def write_examples(path: str | Path, examples: Sequence[Example]) -> str:
    """Write examples as JSONL (atomically); returns the file's SHA-256."""
    from .io import atomic_write_text

    text = "".join(
        json.dumps({"guid": e.guid, "label": e.label, "fields": e.fields, "meta": e.meta}, ensure_ascii=False, sort_keys=True) + "\n"
        for e in examples
    )
    atomic_write_text(path, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_examples(path: str | Path) -> list[Example]:
    """Read examples written by ``write_examples``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; fix: check the path")
    out = []
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                out.append(Example(fields=dict(d["fields"]), label=d.get("label"), guid=d.get("guid", ""), meta=d.get("meta") or {}))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise DataError(f"{p}: line {n}: not an example record ({e}); fix: regenerate the file") from None
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CHECKSUM_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"


def verify_split_dir(out_dir: str | Path) -> None:
    """Check ``train.jsonl``/``dev.jsonl`` against ``SHA256SUMS``; raise ``DataError`` on mismatch."""
    d = Path(out_dir)
    sums = d / CHECKSUM_FILE
    if not sums.is_file():
        raise DataError(f"{sums}: checksum file missing; fix: delete {d} and sample again")
    for line in sums.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        f = d / name.strip()
        if not f.is_file():
            raise DataError(f"{f}: listed in {CHECKSUM_FILE} but missing; fix: delete {d} and sample again")
        if _sha256(f) != digest.strip():
            raise DataError(f"{f}: SHA-256 does not match {CHECKSUM_FILE} (file was modified); fix: delete {d} and sample again")


def load_split_dir(out_dir: str | Path) -> tuple[list[Example], list[Example]]:
    """(train, dev) from a folder written by ``few_shot``, after verifying the checksums."""
    d = Path(out_dir)
    verify_split_dir(d)
    return read_examples(d / "train.jsonl"), read_examples(d / "dev.jsonl")


def _fixed_available(task: TaskSpec, root: Path, k: int | None, seed: int) -> bool:
    if "train" not in task.splits:
        return False
    train = task.splits["train"]
    seeded = any(fs.seeded for fs in train)
    if k is None:
        return True
    if not seeded or k != task.k_shot:
        return False
    return all((root / fs.relpath(task.folder, seed)).is_file() for fs in train)


def few_shot(
    task: str | Path | TaskSpec,
    data_dir: str | Path | None = None,
    k: int | None = 16,
    seed: int = 13,
    out_dir: str | Path | None = None,
    dev_k: int | None = None,
) -> tuple[list[Example], list[Example]]:
    """The (train, dev) few-shot split for K examples per class and a seed.

    K equal to the task's ``k_shot`` with a seed that has a fixed folder -> those files as
    published (LM-BFF/RLPrompt ``16-<seed>``). ``k=None`` -> the task's fixed train/dev files
    (e.g. FewGLUE for BoolQ/CB). Otherwise K (train) + ``dev_k`` (dev, default K) per class are
    drawn, without overlap, from the train-side pool with ``random.Random(seed)``.
    With ``out_dir`` the split is written there (``train.jsonl``, ``dev.jsonl``,
    ``manifest.json``, ``SHA256SUMS``); if the folder already holds the same split it is
    verified and read back instead, so every method sees identical examples.
    """
    t = load_task(task)
    root = resolve_data_dir(data_dir)
    dk = k if dev_k is None else dev_k
    params = {"task": t.name, "k": k, "dev_k": dk, "seed": seed}
    if out_dir is not None and (Path(out_dir) / MANIFEST_FILE).is_file():
        d = Path(out_dir)
        man = _read_json_file(d / MANIFEST_FILE)
        if {x: man.get(x) for x in params} != params:
            raise DataError(
                f"{d / MANIFEST_FILE}: holds a split for {({x: man.get(x) for x in params})}, not {params}; "
                f"fix: use another output folder or delete this one"
            )
        return load_split_dir(d)

    if k is not None and k < 1:
        raise DataError(f"k={k}: must be at least 1; fix: pass a positive --k")
    if _fixed_available(t, root, k, seed):
        source = "fixed"
        train = _load_split(t, "train", root, seed)
        dev = _load_split(t, "dev", root, seed) if "dev" in t.splits else []
    else:
        if k is None:
            raise DataError(f"task '{t.name}': has no fixed train split; fix: pass --k to sample one")
        source = "sampled"
        train, dev = _sample(t, root, k, dk, seed)
    if out_dir is not None:
        _write_split_dir(Path(out_dir), train, dev, {**params, "source": source, "n_train": len(train), "n_dev": len(dev)})
    return train, dev


def _sample(task: TaskSpec, root: Path, k: int, dev_k: int, seed: int) -> tuple[list[Example], list[Example]]:
    pool = [e for e in _train_side(task, root) if e.label is not None]
    by_label: dict[str, list[Example]] = {lab: [] for lab in task.label_ids}
    for e in pool:
        by_label[e.label].append(e)
    need = k + dev_k
    for lab, exs in by_label.items():
        if len(exs) < need:
            raise DataError(
                f"task '{task.name}': label '{lab}' ({task.labels[lab]}) has only {len(exs)} labelled train-side examples, "
                f"{need} needed (k={k} train + {dev_k} dev); fix: use a smaller --k (or dev_k)"
            )
    rng = random.Random(seed)
    train: list[Example] = []
    dev: list[Example] = []
    for lab in task.label_ids:
        picked = rng.sample(by_label[lab], need)
        train.extend(picked[:k])
        dev.extend(picked[k:])
    rng.shuffle(train)
    rng.shuffle(dev)
    tag = f"{task.name}-k{k}-s{seed}"
    train = [Example(fields=e.fields, label=e.label, guid=f"{tag}-train-{i}", meta={**e.meta, "orig_guid": e.guid}) for i, e in enumerate(train)]
    dev = [Example(fields=e.fields, label=e.label, guid=f"{tag}-dev-{i}", meta={**e.meta, "orig_guid": e.guid}) for i, e in enumerate(dev)]
    return train, dev


def _write_split_dir(d: Path, train: list[Example], dev: list[Example], manifest: dict) -> None:
    from .io import atomic_write_json, atomic_write_text

    d.mkdir(parents=True, exist_ok=True)
    h_train = write_examples(d / "train.jsonl", train)
    h_dev = write_examples(d / "dev.jsonl", dev)
    atomic_write_json(d / MANIFEST_FILE, manifest)
    # The checksum file goes last: its presence marks the folder complete.
    atomic_write_text(d / CHECKSUM_FILE, f"{h_train}  train.jsonl\n{h_dev}  dev.jsonl\n")


# ----------------------------------------------------------------------------- unlabelled pool


def unlabelled_pool(
    task: str | Path | TaskSpec,
    data_dir: str | Path | None = None,
    exclude: Iterable[Example] = (),
    size: int | None = 10000,
    seed: int = 0,
    include_extra: bool = False,
) -> list[Example]:
    """Up to ``size`` unlabelled train-side examples (labels removed), minus ``exclude`` (by text).

    Shuffled with ``seed``. When fewer than ``size`` exist, a warning gives the task's
    ``unlabelled_note`` and the actual size (LM-BFF tasks only have the k-shot folders).
    """
    t = load_task(task)
    root = resolve_data_dir(data_dir)
    excl = {_key(e) for e in exclude}
    pool = [_strip(e) for e in _train_side(t, root, include_extra=include_extra) if _key(e) not in excl]
    random.Random(seed).shuffle(pool)
    if size is not None and len(pool) < size:
        log.warning(
            "task %s: unlabelled pool has %d examples (asked for %d)%s",
            t.name, len(pool), size, f"; {t.unlabelled_note}" if t.unlabelled_note else "",
        )
    return pool if size is None else pool[:size]


def label_counts(examples: Iterable[Example]) -> dict[str | None, int]:
    """Examples per label (handy for reports and sanity checks)."""
    out: dict[str | None, int] = {}
    for e in examples:
        out[e.label] = out.get(e.label, 0) + 1
    return out
