"""Grid expansion and config hashes: an :class:`~pet.bench.schema.Experiment` becomes
:class:`Cell` objects, one per (task, method, K, seed, options).

Each cell has a ``config_hash``: the SHA-256 of the canonical JSON of everything that was asked
for (model identity, task definition and test protocol, method and its options, K, seed, PVPs,
the ``pet`` version), and nothing that does not affect the result (results folder, data root
location, device, progress bars). It is the key of a cell in the results store. What the cell
then read (the content of its data, PVP and task files) is recorded beside it, in each row's
``inputs`` (:mod:`pet.bench.inputs`), and checked on every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, PetError
from ..methods import available_methods, get_method
from ..training.loop import TrainConfig
from .inputs import file_sha256
from .schema import Experiment, MethodSpec, TaskEntry


@dataclass
class Cell:
    """One unit of work: (task, method, K, seed, options); all its rows are written at once."""

    task: str  # the task's name
    method: str  # label
    method_name: str  # registered name
    k: int | None
    seed: int
    options: dict
    pvps: list[str]
    test_split: str
    test_limit: int | None
    unlabelled: int | None
    config: dict  # everything hashed
    config_hash: str
    skip: str | None = None  # why the cell cannot run here (e.g. the task has no test split)
    task_ref: str = ""  # how the file names the task (shipped name or task JSON path) for loading
    selection: str = "none"  # none | dev | cv:N | multisplit:N
    #: "single" (no choice to make), "point" (one grid point of a selection), "select" (the
    #: choice among the points of its split, then the chosen point's test rows)
    role: str = "single"
    grid_point: dict = field(default_factory=dict)  # the searched options of a "point" cell
    points: list = field(default_factory=list)  # a "select" cell: its points' config hashes, in grid order
    point_rows: list = field(default_factory=list)  # filled by the driver before a "select" cell runs
    k_total: bool = False  # k is PET's |T| (labelled examples in all), not per class
    model: str = ""  # the model this cell loads (the method's own, else the experiment's)
    patterns_file: str = ""  # the PVP files the cell's PVPs were read from (inputs "patterns", "verbalizers")
    verbalizers_file: str = ""

    @property
    def key(self) -> tuple:
        return (self.task, self.method, self.k, self.seed)

    def describe(self) -> str:
        """``task method K=k seed=s``, and for a selection's cells which one: a grid point (its
        searched options) or the split's choice among its points."""
        what = f"{self.task} {self.method} K={self.k if self.k is not None else 'fixed'} seed={self.seed}"
        if self.role == "point":
            return what + (f" point {canonical_json(self.grid_point)}" if self.grid_point else " (training point)")
        if self.role == "select":
            n = len(self.points)
            return what + f" ({self.selection} choice of {n} point{'s' if n != 1 else ''})"
        return what


# ----------------------------------------------------------------------------- hashing


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats via repr (1e-05 == 0.00001)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


def config_hash(config: dict) -> str:
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


#: Files of a local model folder that loading reads besides the weights: configs, tokenizers,
#: sentence-transformers module configs (``1_Pooling/config.json``).
_READ_SUFFIXES = (".json", ".txt", ".model")


def model_identity(model: str) -> dict:
    """What identifies a model for hashing: a hub name as given; a local folder by its name, the
    SHA-256 of ``config.json`` and of every tokenizer / module config file it reads, and the
    sizes of its ``.safetensors`` weights (the only weights :mod:`pet.models.hf` loads: ``.bin``
    files beside them are never read, so they do not count). Not by where the folder lies, so
    moving it or calling it by another relative path keeps the hash. The weights' content is not
    hashed here (that would change every stored cell's hash) but recorded in each row's ``inputs``
    (:func:`pet.bench.inputs.model_weights`), where a change makes the cell stale."""
    p = Path(model).expanduser()
    if not p.is_dir():
        return {"hub": model}
    files = sorted(f for f in p.rglob("*") if f.is_file() and len(f.relative_to(p).parts) <= 2)
    cfg = p / "config.json"
    return {
        "local": p.resolve().name,
        "config_sha256": file_sha256(cfg) if cfg.is_file() else None,
        "weights": {f.relative_to(p).as_posix(): f.stat().st_size for f in files if f.suffix == ".safetensors"},
        "files": {f.relative_to(p).as_posix(): file_sha256(f) for f in files if f.suffix in _READ_SUFFIXES and f != cfg},
    }


def _pet_version() -> str:
    from .. import __version__

    return __version__


# ----------------------------------------------------------------------------- tasks and methods


def uses_budgets(m: MethodSpec) -> bool:
    """Whether the experiment's shared ``budgets`` apply to method ``m``: as the file says, else
    when the method trains (its options extend :class:`pet.training.loop.TrainConfig`)."""
    if m.budgets is not None:
        return bool(m.budgets)
    return issubclass(get_method(m.name).options, TrainConfig)


def sweep_points(sweep: dict) -> list[dict]:
    """Every combination of a ``sweep`` / ``search`` mapping (``[{}]`` for none), keys sorted."""
    if not sweep:
        return [{}]
    keys = sorted(sweep)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(sweep[k] for k in keys))]


def _fmt_opt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def task_ref(t: TaskEntry, exp: Experiment) -> str:
    """A task entry's name as ``load_task`` takes it: a shipped name, or a task JSON path
    (relative paths are relative to the experiment file)."""
    n = t.name
    if (n.endswith(".json") or "/" in n) and not Path(n).is_absolute() and exp.path is not None:
        p = exp.path.parent / n
        if p.is_file():
            return str(p)
    return n


#: Task-file keys that document rather than define a task (not hashed).
_DOC_KEYS = ("description", "test_note", "unlabelled_note", "path", "default_pvps", "patterns_file", "verbalizers_file")


def task_definition(spec) -> dict:
    """The parts of a task definition that affect results (files, fields, labels, metric, …)."""
    d = asdict(spec)
    for k in _DOC_KEYS:
        d.pop(k, None)
    return json.loads(canonical_json(d))


def pvp_files(task_entry: TaskEntry, spec, exp: Experiment | None = None) -> tuple[Path, Path]:
    """(patterns file, verbalizers file) of a task entry: its own (relative to the experiment
    file) or the task's."""
    base = exp.path.parent if exp is not None and exp.path is not None else Path(".")
    pat = base / task_entry.patterns if task_entry.patterns else spec.patterns_path
    verb = base / task_entry.verbalizers if task_entry.verbalizers else spec.verbalizers_path
    return Path(pat), Path(verb)


def task_pvps(task_entry: TaskEntry, where: str, index: int, exp: Experiment | None = None) -> tuple[list[str], list[dict]]:
    """(PVP ids, PVP dicts) of a task entry: its ``pvps`` or the task's defaults, resolved."""
    from ..data import load_task
    from ..prompts.spec import load_patterns, load_verbalizers, make_pvps

    spec = load_task(task_ref(task_entry, exp) if exp is not None else task_entry.name)
    pat, verb = pvp_files(task_entry, spec, exp)
    own_files = bool(task_entry.patterns or task_entry.verbalizers)
    ids = list(task_entry.pvps) if task_entry.pvps else (None if own_files else spec.pvp_ids())
    try:
        pvps = make_pvps(load_patterns(pat), load_verbalizers(verb), ids)
        for p in pvps:
            p.check_labels(spec.label_ids, f"task '{spec.name}'")
    except PetError as e:
        raise ConfigError(f"{where}: $.tasks[{index}].pvps: {e}") from None
    return [p.id for p in pvps], [p.to_dict() for p in pvps]


# ----------------------------------------------------------------------------- grid


@dataclass
class _TaskPlan:
    """What every cell of one task entry shares."""

    spec: Any
    ref: str
    pvp_ids: list[str]
    pvp_dicts: list[dict]
    files: tuple[Path, Path]
    test_split: str
    test_limit: int | None
    unlabelled: int | None
    skip: str | None


def _task_plan(exp: Experiment, t: TaskEntry, index: int, where: str) -> _TaskPlan:
    from ..data import load_task

    spec = load_task(task_ref(t, exp))
    pvp_ids, pvp_dicts = task_pvps(t, where, index, exp)
    skip = None if t.test_split in spec.splits else f"no '{t.test_split}' split here ({spec.test_note or 'missing'})"
    return _TaskPlan(spec, task_ref(t, exp), pvp_ids, pvp_dicts, pvp_files(t, spec, exp), t.test_split,
                     t.test_limit if t.test_limit is not None else exp.test_limit,
                     exp.unlabelled if t.unlabelled == "inherit" else t.unlabelled, skip)


def _method_cells(exp: Experiment, m: MethodSpec, plan: _TaskPlan, k: int | None, seed: int, point: dict,
                  model: str, identity: dict, where: str, index: int = 0) -> list[Cell]:
    """The cells of one method (one sweep point) on one (task, K, seed): one cell, or with a
    selection one cell per searched grid point plus the cell that chooses among them."""
    budgets = uses_budgets(m)
    plan = _method_pvps(plan, m, where, index)
    options = {**(exp.budgets if budgets else {}), **m.options, **point}
    if budgets and "seed" not in options:
        options["seed"] = seed  # training methods: the training seed follows the split seed
    label = m.label + ("[" + ",".join(f"{a}={_fmt_opt(b)}" for a, b in sorted(point.items())) + "]" if point else "")
    config = {
        "model": identity, "task": plan.spec.name, "task_definition": task_definition(plan.spec),
        "test": {"split": plan.test_split, "limit": plan.test_limit}, "unlabelled": plan.unlabelled,
        "method": m.name, "label": label, "k": k, "seed": seed, "options": options, "pvps": plan.pvp_dicts,
        "pet_version": _pet_version(),
    }
    if exp.k_mode in ("total", "total_balanced"):
        if k is None:
            raise ConfigError(f"{where}: $.k: k_mode total needs a number |T| for every k, not null; fix: list sizes such as [10, 50, 100]")
        config["k_mode"] = exp.k_mode  # (absent for per-class K: earlier hashes stay valid)
    common = dict(task=plan.spec.name, method=label, method_name=m.name, k=k, seed=seed, pvps=plan.pvp_ids,
                  test_split=plan.test_split, test_limit=plan.test_limit, unlabelled=plan.unlabelled, skip=plan.skip,
                  task_ref=plan.ref, k_total=exp.k_mode != "per_class", model=model,
                  patterns_file=str(plan.files[0]), verbalizers_file=str(plan.files[1]))
    if m.selection == "none":
        return [Cell(options=options, config=config, config_hash=config_hash(config), **common)]
    group = []
    for gp in sweep_points(m.search):
        gconf = {**config, "options": {**options, **gp}, "selection": m.selection, "role": "point", "grid_point": gp}
        group.append(Cell(options={**options, **gp}, config=gconf, config_hash=config_hash(gconf), selection=m.selection,
                          role="point", grid_point=gp, **common))
    sconf = {**config, "selection": m.selection, "role": "select", "search": m.search, "points": [c.config_hash for c in group]}
    group.append(Cell(options=options, config=sconf, config_hash=config_hash(sconf), selection=m.selection,
                      role="select", points=[c.config_hash for c in group], **common))
    return group


def _method_pvps(plan: _TaskPlan, m: MethodSpec, where: str, index: int = 0) -> _TaskPlan:
    """The task plan restricted to a method's own ``pvps`` (``"first"`` or PVP ids); ``index``:
    the method's place in the file's ``methods`` (for the error's JSON path)."""
    if m.pvps is None:
        return plan
    wanted = plan.pvp_ids[:1] if m.pvps == "first" else list(m.pvps)
    missing = [p for p in wanted if p not in plan.pvp_ids]
    if missing:
        raise ConfigError(f"{where}: $.methods[{index}].pvps: '{missing[0]}' is not one of task '{plan.spec.name}''s PVPs "
                          f"({', '.join(plan.pvp_ids)}) that method '{m.label}' could use; fix: name one of those, or use pvps: first")
    keep = [plan.pvp_ids.index(p) for p in wanted]
    return dataclasses.replace(plan, pvp_ids=[plan.pvp_ids[i] for i in keep], pvp_dicts=[plan.pvp_dicts[i] for i in keep])


def expand_grid(exp: Experiment, model: str | None = None, only: Sequence[str] = ()) -> list[Cell]:
    """All cells of the experiment in run order (task, K, seed, method), filtered by ``only``
    (``"task=sst2,mr"``, ``"method=pet"``, ``"k=16"``, ``"seed=13"``): the values of one key are
    alternatives (also when the key is repeated), different keys must all match. A value that is
    not in the experiment, or filters that no cell matches, are a one-line error.
    At K = 0 (no labelled examples) only methods registered with ``needs_labelled=False`` get cells.

    ``model`` overrides the experiment's model; a method's own ``model`` overrides both for its
    cells (and, being part of the model identity, its config hash)."""
    filters = parse_only(only, exp)
    where = str(exp.path) if exp.path else "experiment"
    default = exp.resolve_model(model)
    models = [exp.method_model(i, default) for i in range(len(exp.methods))]
    identities = {m: model_identity(m) for m in set(models)}
    cells: list[Cell] = []
    n_grid = 0  # cells before the --only filters
    known: dict[str, set[str]] = {key: set() for key in _ONLY_KEYS}  # what --only may name
    for ti, t in enumerate(exp.tasks):
        plan = _task_plan(exp, t, ti, where)
        for k in t.k or exp.k:
            for seed in t.seeds or exp.seeds:
                for mi, (m, mod) in enumerate(zip(exp.methods, models)):
                    if k == 0 and get_method(m.name).needs_labelled:
                        continue  # K = 0: only the methods that need no labelled data (zero-shot, iPET)
                    for point in sweep_points(m.sweep):
                        group = _method_cells(exp, m, plan, k, seed, point, mod, identities[mod], where, mi)
                        n_grid += len(group)
                        for c in group:
                            known["task"].add(c.task)
                            known["method"].update((c.method, m.name))
                            known["k"].update(("fixed", "none") if c.k is None else (str(c.k),))
                            known["seed"].add(str(c.seed))
                        cells.extend(c for c in group if _keep(c, m.name, filters))
    if not n_grid:  # every K is 0 and every method needs labelled examples
        unneeded = ", ".join(n for n in available_methods() if not get_method(n).needs_labelled)
        raise ConfigError(f"{where}: the grid is empty: every K is 0, where only methods that need no labelled examples run "
                          f"({unneeded}), and {', '.join(m.name for m in exp.methods)} need them; fix: add a K above 0 to k, or one of those methods")
    _check_only(filters, known, cells, where)
    return cells


def _check_only(filters: dict[str, set[str]], known: dict[str, set[str]], kept: list[Cell], where: str) -> None:
    """``--only`` names values of the experiment, and its filters together keep some cell: a
    typo (``task=sst-2``) would otherwise run nothing and exit 0."""
    for key in _ONLY_KEYS:
        unknown = sorted(filters.get(key, set()) - known[key])
        if unknown:
            have = sorted(known[key] - {"none"}, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
            raise ConfigError(f"--only {key}={unknown[0]}: no {key} '{unknown[0]}' in the experiment {where} "
                              f"({key}s: {', '.join(have)}); fix: use one of those")
    if filters and not kept:
        said = " ".join(f"--only {key}={','.join(sorted(vals))}" for key, vals in filters.items())
        raise ConfigError(f"{said}: no cell of {where} matches all of these (different keys must all match; values of one key "
                          "are alternatives); fix: drop or widen one of them (--dry-run lists the cells)")


_ONLY_KEYS = ("task", "method", "k", "seed")


def parse_only(only: Sequence[str], exp: Experiment | None = None) -> dict[str, set[str]]:
    """``["task=sst2,mr", "k=16"]`` -> ``{"task": {"sst2", "mr"}, "k": {"16"}}``; a repeated key
    adds its values (``task=sst2`` and ``task=mr`` is ``task=sst2,mr``)."""
    out: dict[str, set[str]] = {}
    for item in only:
        for part in item.split(";"):
            if not part.strip():
                continue
            key, eq, vals = part.partition("=")
            key = key.strip()
            if not eq or key not in _ONLY_KEYS or not vals.strip():
                raise ConfigError(f"--only '{part}': expected KEY=V1,V2 with KEY one of {', '.join(_ONLY_KEYS)}; fix: e.g. --only task=sst2,mr")
            out.setdefault(key, set()).update(v.strip() for v in vals.split(",") if v.strip())
    return out


def _keep(cell: Cell, method_name: str, filters: dict[str, set[str]]) -> bool:
    for key, vals in filters.items():
        if key == "task" and cell.task not in vals:
            return False
        if key == "method" and cell.method not in vals and method_name not in vals:
            return False
        if key == "k" and str(cell.k if cell.k is not None else "fixed") not in vals and not (cell.k is None and "none" in vals):
            return False
        if key == "seed" and str(cell.seed) not in vals:
            return False
    return True
