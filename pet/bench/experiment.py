"""Experiment files as :class:`Experiment` objects: building one from a parsed file, reading
and validating a file, and cross-checking it against the task and method registries.

The parts live in :mod:`pet.bench.schema` (JSON Schema, typed entries, YAML reading),
:mod:`pet.bench.plugins` (the file's ``imports``) and :mod:`pet.bench.grid` (cells and config
hashes); their public names are importable from here too, this module being the one entry
point of experiment files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, PetError
from ..evaluation.selection import parse_selection
from ..methods import available_methods, get_method
from ..training.loop import TrainConfig
from .grid import (
    Cell,
    canonical_json,
    config_hash,
    expand_grid,
    model_identity,
    parse_only,
    sweep_points,
    task_pvps,
    task_ref,
    uses_budgets,
)
from .plugins import import_plugins
from .schema import (
    DEFAULT_K,
    DEFAULT_SEEDS,
    SCHEMA,
    Experiment,
    MethodSpec,
    TaskEntry,
    read_experiment_file,
    validate_experiment_dict,
)

__all__ = [
    "DEFAULT_K", "DEFAULT_SEEDS", "SCHEMA", "Cell", "Experiment", "MethodSpec", "TaskEntry", "canonical_json",
    "check_experiment", "config_hash", "expand_grid", "experiment_from_dict", "import_plugins", "load_experiment",
    "model_identity", "parse_only", "read_experiment_file", "task_pvps", "task_ref", "uses_budgets",
    "validate_experiment_dict",
]

def _as_tuple_k(v: Any) -> tuple[int | None, ...]:
    return tuple(v) if isinstance(v, list) else (v,)


def _task_entry(t: Any) -> TaskEntry:
    if isinstance(t, str):
        return TaskEntry(name=t)
    return TaskEntry(
        name=t["name"],
        pvps=tuple(t["pvps"]) if "pvps" in t else None,
        test_split=t.get("test_split", "test"),
        test_limit=t.get("test_limit"),
        k=_as_tuple_k(t["k"]) if "k" in t else None,
        seeds=tuple(t["seeds"]) if "seeds" in t else None,
        unlabelled=t.get("unlabelled", "inherit"),
        patterns=t.get("patterns"),
        verbalizers=t.get("verbalizers"),
    )


def _method_spec(m: Any, i: int, where: str) -> MethodSpec:
    if isinstance(m, str):
        m = {"name": m}
    opts = dict(m.get("options", {}))
    if "eval_every" in m:
        opts["eval_every"] = m["eval_every"]
    sel = parse_selection(m.get("selection", "none"), f"{where}: $.methods[{i}].selection")
    both = sorted(set(m.get("sweep", {})) & set(m.get("search", {})))
    if both:  # the sweep point would label the variant, the search point would be what runs
        raise ConfigError(f"{where}: $.methods[{i}]: '{both[0]}' is in both sweep and search; fix: keep it in one of them "
                          "(sweep: one reported variant per value; search: the value chosen per split)")
    if m.get("search") and sel.mode == "none":
        raise ConfigError(f"{where}: $.methods[{i}].search: a grid needs a way to choose; fix: add selection: dev (or cv:N / multisplit:N), or use sweep for separate variants")
    if opts.get("eval_every") is not None and sel.mode != "dev":
        raise ConfigError(f"{where}: $.methods[{i}].eval_every: best-checkpoint selection uses the split's dev set; fix: add selection: dev, or drop eval_every")
    return MethodSpec(
        name=m["name"],
        label=m.get("label", m["name"]),
        options=opts,
        budgets=m.get("budgets"),
        sweep={k: list(v) for k, v in m.get("sweep", {}).items()},
        search={k: list(v) for k, v in m.get("search", {}).items()},
        selection=m.get("selection", "none"),
        model=m.get("model"),
        pvps=m.get("pvps") if not isinstance(m.get("pvps"), list) else tuple(m["pvps"]),
    )


def _first_duplicate(names: list[str]) -> int | None:
    return next((i for i, n in enumerate(names) if names.index(n) != i), None)


def experiment_from_dict(data: dict, path: Path | None = None, check_registries: bool = True, allow_imports: bool = False) -> Experiment:
    """Validate a parsed experiment file and build an :class:`Experiment`.

    ``allow_imports``: run the file's ``imports`` (Python code); without it an experiment that
    lists imports is refused (see :func:`import_plugins`)."""
    where = str(path) if path else "experiment"
    problems = validate_experiment_dict(data, where)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)
    tasks = [_task_entry(t) for t in data["tasks"]]
    i = _first_duplicate([t.name for t in tasks])
    if i is not None:
        raise ConfigError(f"{where}: $.tasks[{i}]: task '{tasks[i].name}' is listed twice; fix: list each task once")
    methods = [_method_spec(m, i, where) for i, m in enumerate(data["methods"])]
    i = _first_duplicate([m.label for m in methods])
    if i is not None:
        raise ConfigError(f"{where}: $.methods[{i}]: method label '{methods[i].label}' is used twice; fix: give one of them a distinct \"label\"")
    exp = Experiment(
        path=path,
        name=data.get("name") or (path.stem if path else "experiment"),
        tasks=tasks,
        methods=methods,
        k=_as_tuple_k(data["k"]) if "k" in data else DEFAULT_K,
        seeds=tuple(data.get("seeds", DEFAULT_SEEDS)),
        budgets=dict(data.get("budgets", {})),
        unlabelled=data.get("unlabelled", 10000),
        test_limit=data.get("test_limit"),
        k_mode=data.get("k_mode", "per_class"),
        model=data.get("model"),
        data_dir=data.get("data_dir"),
        results=data.get("results"),
        device=data.get("device"),
        description=data.get("description", ""),
        imports=tuple(data.get("imports", ())),
        allow_imports=bool(allow_imports),
        save_models=bool(data.get("save_models", False)),
        raw=data,
    )
    if check_registries:
        check_experiment(exp)
    return exp


def load_experiment(path: str | Path, check_registries: bool = True, allow_imports: bool = False) -> Experiment:
    """Read, validate and cross-check an experiment file (YAML or JSON).

    An experiment file is data, not code: its ``imports`` run only with ``allow_imports=True``
    (``pet bench --allow-imports``)."""
    p = Path(path)
    return experiment_from_dict(read_experiment_file(p), p, check_registries=check_registries, allow_imports=allow_imports)


#: The splits a cell learns from: the few-shot split is drawn from train / dev (the fixed files,
#: or the train-side pool they form), the unlabelled pool from unlabelled and that pool.
LEARNING_SPLITS = ("train", "dev", "unlabelled")


def test_split_problem(spec: Any, split: str) -> str | None:
    """Why ``split`` of task ``spec`` cannot be a cell's test set, or None: it is (or shares a
    file with) a split the cell learns from, so its score would be one on training data; or its
    files depend on the seed (LM-BFF's k-shot folders), so there is no one test set to read."""
    if split in LEARNING_SPLITS and split in spec.splits:
        return (f"'{split}' is a split the cell learns from (its few-shot examples, selection dev set or unlabelled pool "
                f"come from {', '.join(s for s in LEARNING_SPLITS if s in spec.splits)}), so its score would not be a test score")
    files = spec.splits.get(split, ())
    if any(fs.seeded for fs in files):
        return f"task '{spec.name}''s split '{split}' has one file per seed ({files[0].file}), so there is no single test set to read"
    learned = {fs.relpath(spec.folder, s) for name in LEARNING_SPLITS for fs in spec.splits.get(name, ())
               for s in (spec.seeds if fs.seeded else [None])}
    shared = [fs.relpath(spec.folder) for fs in files if fs.relpath(spec.folder) in learned]
    if shared:
        return f"task '{spec.name}''s split '{split}' reads {shared[0]}, a file the cell learns from, so its score would not be a test score"
    return None


def check_experiment(exp: Experiment) -> None:
    """Cross-checks beyond the schema: tasks, test splits and methods exist."""
    from ..data import list_tasks, load_task

    where = str(exp.path) if exp.path else "experiment"
    import_plugins(exp)
    for i, t in enumerate(exp.tasks):
        try:
            spec = load_task(task_ref(t, exp))
        except PetError:
            raise ConfigError(
                f"{where}: $.tasks[{i}]: unknown task '{t.name}'; fix: use one of {', '.join(list_tasks())} or a task JSON file path"
            ) from None
        if t.test_split != "test" and t.test_split not in spec.splits:
            raise ConfigError(
                f"{where}: $.tasks[{i}].test_split: task '{t.name}' has no split '{t.test_split}'; fix: use one of {', '.join(spec.splits)}"
            )
        problem = test_split_problem(spec, t.test_split)
        if problem:
            usable = [s for s in spec.splits if not test_split_problem(spec, s)]
            raise ConfigError(f"{where}: $.tasks[{i}].test_split: {problem}; fix: "
                              + (f"use {' or '.join(repr(s) for s in usable)}" if usable else "drop test_split (use the task's test split)"))
    known = available_methods()
    for i, m in enumerate(exp.methods):
        if m.name not in known:
            raise ConfigError(
                f"{where}: $.methods[{i}].name: unknown method '{m.name}'; fix: use one of {', '.join(known)} "
                f"(or register your own and list its module under \"imports\")"
            )
        # every grid point's options must build the method's options dataclass: unknown or
        # misspelled keys and bad values fail here, before any cell runs
        for point in [{**a, **b} for a in sweep_points(m.sweep) for b in sweep_points(m.search)]:
            at = f"{where}: $.methods[{i}].options" + (f" (sweep/search point {point})" if point else "")
            opts = {**(exp.budgets if uses_budgets(m) else {}), **m.options, **point}
            if m.budgets and not issubclass(get_method(m.name).options, TrainConfig):
                raise ConfigError(f"{where}: $.methods[{i}].budgets: method '{m.name}' does not train; fix: drop \"budgets\" for it")
            get_method(m.name).make_options(opts, where=at)

