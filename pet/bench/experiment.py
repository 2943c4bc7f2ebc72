"""Experiment files: schema, validation, grid expansion and config hashes.

An experiment file (YAML or JSON) names the model, the tasks, the methods (with per-method
option overrides and optional sweeps), the K values, the seeds, the shared training budgets,
the unlabelled-pool size and the results folder. :func:`load_experiment` validates it with
JSON Schema (errors name the file and the JSON path, with a fix) and cross-checks names against
the task and method registries; :func:`expand_grid` turns it into :class:`Cell` objects, one per
(task, method, K, seed, options), each with a ``config_hash``: the SHA-256 of the canonical JSON
of everything that affects the result (model identity, task and test protocol, method and its
options, K, seed, PVPs, the ``pet`` version), and nothing that does not (results folder, data
root location, device, progress bars).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, PetError
from ..utils.jsonio import json_path
from ..evaluation.selection import SELECTION_PATTERN, parse_selection
from ..methods import available_methods, get_method
from ..training.loop import TrainConfig

#: Seeds of the LM-BFF fixed k-shot splits; the default when a file gives none.
DEFAULT_SEEDS = (13, 21, 42, 87, 100)
DEFAULT_K = (16,)
#: Methods that train nothing: the shared ``budgets`` are not passed to them (nor hashed).

_NAME = r"^[A-Za-z0-9_.+-]+$"

_K = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}
_KS = {"anyOf": [_K, {"type": "array", "minItems": 1, "items": _K}]}
_SEEDS = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "integer", "minimum": 0}}
_OPTIONS = {"type": "object", "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}}

#: JSON Schema (draft 2020-12) of an experiment file.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pet bench experiment",
    "type": "object",
    "required": ["tasks", "methods"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": _NAME},
        "description": {"type": "string"},
        "model": {"type": ["string", "null"], "minLength": 1},
        "data_dir": {"type": ["string", "null"]},
        "results": {"type": ["string", "null"], "minLength": 1},
        "device": {"type": ["string", "null"]},
        "tasks": {"type": "array", "minItems": 1, "items": {"anyOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/task"}]}},
        "methods": {"type": "array", "minItems": 1, "items": {"anyOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/method"}]}},
        "k": _KS,
        "seeds": _SEEDS,
        "budgets": _OPTIONS,
        "unlabelled": {"type": ["integer", "null"], "minimum": 0},
        "test_limit": {"type": ["integer", "null"], "minimum": 1},
        "k_mode": {"enum": ["per_class", "total", "total_balanced"]},
        "imports": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "save_models": {"type": "boolean"},
    },
    "$defs": {
        "task": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "pvps": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                "test_split": {"type": "string", "minLength": 1},
                "test_limit": {"type": ["integer", "null"], "minimum": 1},
                "k": _KS,
                "seeds": _SEEDS,
                "unlabelled": {"type": ["integer", "null"], "minimum": 0},
                "patterns": {"type": "string", "minLength": 1},
                "verbalizers": {"type": "string", "minLength": 1},
            },
        },
        "method": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "label": {"type": "string", "pattern": _NAME},
                "options": _OPTIONS,
                "budgets": {"type": "boolean"},
                "sweep": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                    "additionalProperties": {"type": "array", "minItems": 1},
                },
                "search": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                    "additionalProperties": {"type": "array", "minItems": 1},
                },
                "selection": {"type": "string", "pattern": SELECTION_PATTERN},
                "eval_every": {"type": "integer", "minimum": 1},
            },
        },
    },
}

_FIX = "fix: see docs/bench.md (experiment file format)"


# ----------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class TaskEntry:
    name: str
    pvps: tuple[str, ...] | None = None  # None: the task's default PVPs
    test_split: str = "test"
    test_limit: int | None = None
    k: tuple[int | None, ...] | None = None  # None: the experiment's K values
    seeds: tuple[int, ...] | None = None
    unlabelled: int | None | str = "inherit"
    patterns: str | None = None  # a patterns file for this task (relative to the experiment file)
    verbalizers: str | None = None  # e.g. the output of `pet search-verbalizer`


@dataclass(frozen=True)
class MethodSpec:
    name: str  # registered method name
    label: str  # name shown in rows and reports (unique in the file)
    options: dict = field(default_factory=dict, hash=False, compare=False)
    budgets: bool | None = None  # None: the method trains (its options extend TrainConfig)
    sweep: dict = field(default_factory=dict, hash=False, compare=False)
    #: model selection: a grid over options chosen per split (see pet.evaluation.selection)
    search: dict = field(default_factory=dict, hash=False, compare=False)
    selection: str = "none"


@dataclass
class Experiment:
    path: Path | None
    name: str
    tasks: list[TaskEntry]
    methods: list[MethodSpec]
    k: tuple[int | None, ...] = DEFAULT_K
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    budgets: dict = field(default_factory=dict)
    unlabelled: int | None = 10000
    test_limit: int | None = None
    #: "per_class": k examples per label (LM-BFF); "total": k labelled examples in all, drawn per
    #: seed; "total_balanced": PET's |T| (the first |T|/|L| of each label, the same for every seed)
    k_mode: str = "per_class"
    model: str | None = None
    data_dir: str | None = None
    results: str | None = None
    device: str | None = None
    description: str = ""
    imports: tuple[str, ...] = ()
    #: the user's consent to run the file's ``imports`` (``--allow-imports``); never read from the file
    allow_imports: bool = False
    save_models: bool = False
    raw: dict = field(default_factory=dict)

    def results_dir(self, override: str | Path | None = None) -> Path:
        """``--results`` if given; else the file's ``results`` (relative to the file's folder);
        else ``results/<name>`` beside the file."""
        if override:
            return Path(override)
        base = self.path.parent if self.path else Path.cwd()
        if self.results:
            p = Path(_expand_env(self.results, "$.results", self.path))
            return p if p.is_absolute() else base / p
        return base / "results" / self.name

    def resolve_model(self, override: str | None = None) -> str:
        """``--model`` if given, else the file's ``model``, else ``$PET_MODEL``."""
        m = override or (_expand_env(self.model, "$.model", self.path) if self.model else None) or os.environ.get("PET_MODEL")
        if not m:
            raise ConfigError(
                f"{self.path or 'experiment'}: $.model: no model given; fix: set \"model\" in the file, pass --model, or set PET_MODEL"
            )
        return m

    def resolve_data_dir(self, override: str | None = None) -> str | None:
        """``--data-dir`` if given, else the file's ``data_dir``, else ``$PET_DATA_DIR`` (via pet.data)."""
        if override:
            return override
        if self.data_dir:
            return _expand_env(self.data_dir, "$.data_dir", self.path)
        return None


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

    @property
    def key(self) -> tuple:
        return (self.task, self.method, self.k, self.seed)

    def describe(self) -> str:
        return f"{self.task} {self.method} K={self.k if self.k is not None else 'fixed'} seed={self.seed}"


# ----------------------------------------------------------------------------- loading


class _Loader:
    """A YAML SafeLoader that also reads ``1e-5`` as a float (YAML 1.1 needs ``1.0e-5``)."""

    _cls = None

    @classmethod
    def get(cls):
        if cls._cls is None:
            import yaml

            class L(yaml.SafeLoader):
                pass

            L.add_implicit_resolver(
                "tag:yaml.org,2002:float",
                re.compile(
                    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""",
                    re.X,
                ),
                list("-+0123456789."),
            )
            cls._cls = L
        return cls._cls


def read_experiment_file(path: str | Path) -> dict:
    """Parse a YAML (``.yaml``/``.yml``) or JSON experiment file into a dict (not validated)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: experiment file not found; fix: check the path (e.g. benchmarks/quick.yaml)")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 (byte {e.start}); fix: save the file as UTF-8") from None
    if p.suffix.lower() == ".json":
        from ..utils.jsonio import parse_json

        data = parse_json(text, str(p), ConfigError)  # one-line errors, also for hostile nesting / huge numbers
    else:
        import yaml

        try:
            data = yaml.load(text, Loader=_Loader.get())  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            msg = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"{p}: malformed YAML{where}: {msg}; fix: correct the YAML") from None
        except RecursionError:
            raise ConfigError(f"{p}: YAML nested too deeply; fix: flatten the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: $: the file must hold a mapping (tasks, methods, k, seeds, …); fix: {_FIX[5:]}")
    return data


def _schema_message(err) -> str:
    """A schema error as 'PATH: problem; fix: …' with a specific fix where one is obvious."""
    path = json_path(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        return f"{path}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(repr(x) for x in extra)}; fix: use one of {', '.join(allowed)}"
    if v == "required":
        return f"{path}: {err.message}; fix: add it ({_FIX[5:]})"
    if v == "type":
        return f"{path}: {err.message}; fix: give a value of type {err.validator_value}"
    if v == "minimum":
        return f"{path}: {err.message}; fix: use a value >= {err.validator_value}"
    if v == "minItems":
        return f"{path}: empty list; fix: list at least {err.validator_value} item(s)"
    if v == "uniqueItems":
        return f"{path}: has duplicates; fix: list each value once"
    if v == "pattern":
        return f"{path}: {err.message}; fix: use letters, digits and _ . + - only"
    return f"{path}: {err.message}; {_FIX}"


def validate_experiment_dict(data: Any, where: str = "experiment") -> list[str]:
    """Every schema problem of an experiment file, one line each (file and JSON path first)."""
    import jsonschema
    from jsonschema.exceptions import best_match

    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(x) for x in e.absolute_path]):
        leaf = best_match([err])
        problems.append(f"{where}: {_schema_message(leaf)}")
    return problems


def _expand_env(value: str, at: str, path: Path | None) -> str:
    """``${VAR}`` / ``$VAR`` expansion; an unset variable is an error naming the JSON path."""

    def sub(m: re.Match) -> str:
        var = m.group(1) or m.group(2)
        if var not in os.environ:
            raise ConfigError(f"{path or 'experiment'}: {at}: environment variable {var} is not set; fix: set it or pass the value on the command line")
        return os.environ[var]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, value)


def _as_tuple_k(v: Any) -> tuple[int | None, ...]:
    return tuple(v) if isinstance(v, list) else (v,)


def experiment_from_dict(data: dict, path: Path | None = None, check_registries: bool = True, allow_imports: bool = False) -> Experiment:
    """Validate a parsed experiment file and build an :class:`Experiment`.

    ``allow_imports``: run the file's ``imports`` (Python code); without it an experiment that
    lists imports is refused (see :func:`import_plugins`)."""
    where = str(path) if path else "experiment"
    problems = validate_experiment_dict(data, where)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)
    tasks = []
    for i, t in enumerate(data["tasks"]):
        if isinstance(t, str):
            tasks.append(TaskEntry(name=t))
        else:
            tasks.append(
                TaskEntry(
                    name=t["name"],
                    pvps=tuple(t["pvps"]) if "pvps" in t else None,
                    test_split=t.get("test_split", "test"),
                    test_limit=t.get("test_limit"),
                    k=_as_tuple_k(t["k"]) if "k" in t else None,
                    seeds=tuple(t["seeds"]) if "seeds" in t else None,
                    unlabelled=t["unlabelled"] if "unlabelled" in t else "inherit",
                    patterns=t.get("patterns"),
                    verbalizers=t.get("verbalizers"),
                )
            )
    names = [t.name for t in tasks]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ConfigError(f"{where}: $.tasks[{i}]: task '{n}' is listed twice; fix: list each task once")
    methods = []
    for i, m in enumerate(data["methods"]):
        if isinstance(m, str):
            m = {"name": m}
        name = m["name"]
        opts = dict(m.get("options", {}))
        if "eval_every" in m:
            opts["eval_every"] = m["eval_every"]
        sel = parse_selection(m.get("selection", "none"), f"{where}: $.methods[{i}].selection")
        if m.get("search") and sel.mode == "none":
            raise ConfigError(f"{where}: $.methods[{i}].search: a grid needs a way to choose; fix: add selection: dev (or cv:N / multisplit:N), or use sweep for separate variants")
        if opts.get("eval_every") is not None and sel.mode != "dev":
            raise ConfigError(f"{where}: $.methods[{i}].eval_every: best-checkpoint selection uses the split's dev set; fix: add selection: dev, or drop eval_every")
        methods.append(
            MethodSpec(
                name=name,
                label=m.get("label", name),
                options=opts,
                budgets=m.get("budgets"),
                sweep={k: list(v) for k, v in m.get("sweep", {}).items()},
                search={k: list(v) for k, v in m.get("search", {}).items()},
                selection=m.get("selection", "none"),
            )
        )
    labels = [m.label for m in methods]
    for i, lab in enumerate(labels):
        if labels.index(lab) != i:
            raise ConfigError(
                f"{where}: $.methods[{i}]: method label '{lab}' is used twice; fix: give one of them a distinct \"label\""
            )
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


def import_plugins(exp: Experiment) -> None:
    """Import the file's ``imports`` (module names or ``.py`` paths relative to the file) so
    that methods they ``register`` can be named in ``methods``.

    Importing runs code, so it happens only when the user allowed it (``exp.allow_imports``,
    set from ``--allow-imports`` / ``load_experiment(..., allow_imports=True)``); otherwise an
    experiment that lists imports is a one-line ``ConfigError``."""
    if exp.imports and not exp.allow_imports:
        raise ConfigError(
            f"{exp.path or 'experiment'}: $.imports: the file asks to run Python code ({', '.join(exp.imports)}); "
            "fix: read those files, and if you trust them pass --allow-imports (Python: load_experiment(..., allow_imports=True))"
        )
    for i, mod in enumerate(exp.imports):
        try:
            if mod.endswith(".py"):
                p = Path(mod)
                if not p.is_absolute() and exp.path is not None:
                    p = exp.path.parent / p
                name = "pet_bench_plugin_" + hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:12]
                if name in sys.modules:
                    continue
                if not p.is_file():
                    raise FileNotFoundError(str(p))
                spec = importlib.util.spec_from_file_location(name, p)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            else:
                importlib.import_module(mod)
        except (ImportError, FileNotFoundError) as e:
            raise ConfigError(f"{exp.path or 'experiment'}: $.imports[{i}]: cannot import '{mod}' ({e}); fix: check the module name or path") from None


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
    known = available_methods()
    for i, m in enumerate(exp.methods):
        if m.name not in known:
            raise ConfigError(
                f"{where}: $.methods[{i}].name: unknown method '{m.name}'; fix: use one of {', '.join(known)} "
                f"(or register your own and list its module under \"imports\")"
            )
        # every grid point's options must build the method's options dataclass: unknown or
        # misspelled keys and bad values fail here, before any cell runs
        for point in [{**a, **b} for a in _sweep_points(m.sweep) for b in _sweep_points(m.search)]:
            at = f"{where}: $.methods[{i}].options" + (f" (sweep/search point {point})" if point else "")
            opts = {**(exp.budgets if uses_budgets(m) else {}), **m.options, **point}
            if m.budgets and not issubclass(get_method(m.name).options, TrainConfig):
                raise ConfigError(f"{where}: $.methods[{i}].budgets: method '{m.name}' does not train; fix: drop \"budgets\" for it")
            get_method(m.name).make_options(opts, where=at)


def uses_budgets(m: MethodSpec) -> bool:
    """Whether the experiment's shared ``budgets`` apply to method ``m``: as the file says, else
    when the method trains (its options extend :class:`pet.training.loop.TrainConfig`)."""
    if m.budgets is not None:
        return bool(m.budgets)
    return issubclass(get_method(m.name).options, TrainConfig)


# ----------------------------------------------------------------------------- hashing


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats via repr (1e-05 == 0.00001)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


def config_hash(config: dict) -> str:
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def model_identity(model: str) -> dict:
    """What identifies a model for hashing: a hub name as given; a local folder by its name,
    the SHA-256 of its ``config.json`` and the sizes of its weight files (not by where it lies,
    so moving the folder or calling it by another relative path keeps the hash)."""
    p = Path(model).expanduser()
    if p.is_dir():
        cfg = p / "config.json"
        weights = {
            f.name: f.stat().st_size
            for f in sorted(p.iterdir())
            if f.is_file() and f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")
        }
        return {
            "local": p.resolve().name,
            "config_sha256": hashlib.sha256(cfg.read_bytes()).hexdigest() if cfg.is_file() else None,
            "weights": weights,
        }
    return {"hub": model}


def _pet_version() -> str:
    from .. import __version__

    return __version__


# ----------------------------------------------------------------------------- grid


def _sweep_points(sweep: dict) -> list[dict]:
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
    from dataclasses import asdict

    d = asdict(spec)
    for k in _DOC_KEYS:
        d.pop(k, None)
    return json.loads(canonical_json(d))


def task_pvps(task_entry: TaskEntry, where: str, index: int, exp: Experiment | None = None) -> tuple[list[str], list[dict]]:
    """(PVP ids, PVP dicts) of a task entry: its ``pvps`` or the task's defaults, resolved."""
    from ..prompts.spec import load_patterns, load_verbalizers, make_pvps
    from ..data import load_task

    spec = load_task(task_ref(task_entry, exp) if exp is not None else task_entry.name)
    base = exp.path.parent if exp is not None and exp.path is not None else Path(".")
    pat = base / task_entry.patterns if task_entry.patterns else spec.patterns_path
    verb = base / task_entry.verbalizers if task_entry.verbalizers else spec.verbalizers_path
    own_files = bool(task_entry.patterns or task_entry.verbalizers)
    ids = list(task_entry.pvps) if task_entry.pvps else (None if own_files else spec.pvp_ids())
    try:
        pvps = make_pvps(load_patterns(pat), load_verbalizers(verb), ids)
        for p in pvps:
            p.check_labels(spec.label_ids, f"task '{spec.name}'")
    except PetError as e:
        raise ConfigError(f"{where}: $.tasks[{index}].pvps: {e}") from None
    return [p.id for p in pvps], [p.to_dict() for p in pvps]


def expand_grid(exp: Experiment, model: str | None = None, only: Sequence[str] = ()) -> list[Cell]:
    """All cells of the experiment in run order (task, K, seed, method), filtered by ``only``
    (``"task=sst2,mr"``, ``"method=pet"``, ``"k=16"``, ``"seed=13"``; several filters AND)."""
    from ..data import load_task

    filters = parse_only(only, exp)
    where = str(exp.path) if exp.path else "experiment"
    model = exp.resolve_model(model)
    mid = model_identity(model)
    version = _pet_version()
    cells: list[Cell] = []
    for ti, t in enumerate(exp.tasks):
        spec = load_task(task_ref(t, exp))
        pvp_ids, pvp_dicts = task_pvps(t, where, ti, exp)
        has_test = t.test_split in spec.splits
        skip = None if has_test else f"no '{t.test_split}' split here ({spec.test_note or 'missing'})"
        test_limit = t.test_limit if t.test_limit is not None else exp.test_limit
        unl = exp.unlabelled if t.unlabelled == "inherit" else t.unlabelled
        for k in t.k or exp.k:
            for seed in t.seeds or exp.seeds:
                for m in exp.methods:
                    for point in _sweep_points(m.sweep):
                        budgets = uses_budgets(m)
                        options = {**(exp.budgets if budgets else {}), **m.options, **point}
                        if budgets and "seed" not in options:
                            options["seed"] = seed  # training methods: the training seed follows the split seed
                        label = m.label + ("[" + ",".join(f"{a}={_fmt_opt(b)}" for a, b in sorted(point.items())) + "]" if point else "")
                        config = {
                            "model": mid,
                            "task": spec.name,
                            "task_definition": task_definition(spec),
                            "test": {"split": t.test_split, "limit": test_limit},
                            "unlabelled": unl,
                            "method": m.name,
                            "label": label,
                            "k": k,
                            "seed": seed,
                            "options": options,
                            "pvps": pvp_dicts,
                            "pet_version": version,
                        }
                        if exp.k_mode in ("total", "total_balanced"):
                            if k is None:
                                raise ConfigError(f"{where}: $.k: k_mode total needs a number |T| for every k, not null; fix: list sizes such as [10, 50, 100]")
                            config["k_mode"] = exp.k_mode  # (absent for per-class K: earlier hashes stay valid)
                        common = dict(task=spec.name, method=label, method_name=m.name, k=k, seed=seed, pvps=pvp_ids,
                                      test_split=t.test_split, test_limit=test_limit, unlabelled=unl, skip=skip,
                                      task_ref=task_ref(t, exp), k_total=exp.k_mode != "per_class")
                        if m.selection == "none":
                            group = [Cell(options=options, config=config, config_hash=config_hash(config), **common)]
                        else:  # one cell per grid point, then the cell that chooses among them
                            group = []
                            for gp in _sweep_points(m.search):
                                gconf = {**config, "options": {**options, **gp}, "selection": m.selection, "role": "point", "grid_point": gp}
                                group.append(Cell(options={**options, **gp}, config=gconf, config_hash=config_hash(gconf), selection=m.selection,
                                                  role="point", grid_point=gp, **common))
                            sconf = {**config, "selection": m.selection, "role": "select", "search": m.search,
                                     "points": [c.config_hash for c in group]}
                            group.append(Cell(options=options, config=sconf, config_hash=config_hash(sconf), selection=m.selection,
                                              role="select", points=[c.config_hash for c in group], **common))
                        cells.extend(c for c in group if _keep(c, m.name, filters))
    return cells


_ONLY_KEYS = ("task", "method", "k", "seed")


def parse_only(only: Sequence[str], exp: Experiment | None = None) -> dict[str, set[str]]:
    """``["task=sst2,mr", "k=16"]`` -> ``{"task": {"sst2", "mr"}, "k": {"16"}}``."""
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
