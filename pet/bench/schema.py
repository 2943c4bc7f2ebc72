"""Experiment files: the JSON Schema, the typed entries (:class:`Experiment`, :class:`TaskEntry`,
:class:`MethodSpec`), YAML/JSON reading and schema validation with one-line errors.

An experiment file (YAML or JSON) names the model, the tasks, the methods (with per-method
option overrides, optional sweeps and an optional per-method ``model``), the K values, the
seeds, the shared training budgets, the unlabelled-pool size and the results folder. Building an
:class:`Experiment` from a parsed file and cross-checking it against the registries is
:mod:`pet.bench.experiment`; turning it into cells is :mod:`pet.bench.grid`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..evaluation.selection import SELECTION_PATTERN
from ..utils.jsonio import json_path, parse_json, read_text
from ..utils.schema import schema_problems

#: Seeds of the LM-BFF fixed k-shot splits; the default when a file gives none.
DEFAULT_SEEDS = (13, 21, 42, 87, 100)
DEFAULT_K = (16,)

_NAME = r"^[A-Za-z0-9_.+-]+$"
_NAMED = {"type": "string", "pattern": _NAME, "description": "letters, digits and _ . + - only"}

#: K = 0: no labelled examples (only methods that need none get cells: zero-shot, iPET)
_K = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}
_KS = {"anyOf": [_K, {"type": "array", "minItems": 1, "uniqueItems": True, "items": _K}]}
_SEEDS = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "integer", "minimum": 0}}
_KEY = {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "description": "option names are identifiers (letters, digits, _)"}
_OPTIONS = {"type": "object", "propertyNames": _KEY}
#: a PVP id in an experiment file: PATTERN:VERBALIZER (ids hold no ':' nor whitespace)
PVP_ID = r"^[^:\s]+:[^:\s]+$"
_PVPS = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1, "pattern": PVP_ID}}
#: one sweep / search mapping: option -> the values to try (each once)
_GRID = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": _KEY,
    "additionalProperties": {"type": "array", "minItems": 1, "uniqueItems": True},
}

#: JSON Schema (draft 2020-12) of an experiment file.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pet bench experiment",
    "type": "object",
    "required": ["tasks", "methods"],
    "additionalProperties": False,
    "properties": {
        "name": _NAMED,
        "description": {"type": "string"},
        "model": {"type": ["string", "null"], "minLength": 1},
        "data_dir": {"type": ["string", "null"]},
        "results": {"type": ["string", "null"], "minLength": 1},
        "device": {"type": ["string", "null"]},
        "tasks": {"type": "array", "minItems": 1, "examples": [["sst2", "mr"]], "items": {"anyOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/task"}]}},
        "methods": {"type": "array", "minItems": 1, "examples": [["zero-shot", "prompt-ft"]], "items": {"anyOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/method"}]}},
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
                "pvps": _PVPS,
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
                "label": _NAMED,
                "options": _OPTIONS,
                "budgets": {"type": "boolean"},
                "sweep": _GRID,
                "search": _GRID,
                "selection": {"type": "string", "pattern": SELECTION_PATTERN,
                              "description": "none, dev, cv:N or multisplit:N (optionally :refit or :mean-of-folds)"},
                "model": {"type": "string", "minLength": 1},
                "pvps": {"oneOf": [{"const": "first"}, _PVPS]},
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
    #: this method's model (a local folder or hub id), instead of the experiment's; None: the experiment's
    model: str | None = None
    #: this method's PVPs among each task's: None (all of them), "first" (the task's first PVP, e.g.
    #: LM-BFF's manual prompt), or a tuple of PVP ids ("pattern:verbalizer")
    pvps: str | tuple[str, ...] | None = None


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
        else ``results/<name>`` beside the file.

        An experiment file is untrusted: its ``results`` may not be absolute nor climb out of
        the file's folder with ``..`` (``${VAR}``s, the user's environment, may; so may an
        experiment built in Python, without a ``path``)."""
        if override:
            return Path(override)
        base = self.path.parent if self.path else Path.cwd()
        if self.results:
            written = Path(self.results)
            if self.path and (written.is_absolute() or ".." in written.parts):
                raise ConfigError(f"{self.path}: $.results: '{self.results}' is outside the experiment file's folder; "
                                  "fix: give a path relative to the file without '..', or pass --results PATH")
            p = Path(expand_env(self.results, "$.results", self.path))
            return p if p.is_absolute() else base / p
        return base / "results" / self.name

    def resolve_model(self, override: str | None = None) -> str:
        """``--model`` if given, else the file's ``model``, else ``$PET_MODEL``."""
        m = override or (expand_env(self.model, "$.model", self.path) if self.model else None) or os.environ.get("PET_MODEL")
        if not m:
            raise ConfigError(
                f"{self.path or 'experiment'}: $.model: no model given; fix: set \"model\" in the file, pass --model, or set PET_MODEL"
            )
        return m

    def method_model(self, index: int, default: str) -> str:
        """The model of ``methods[index]``: its own ``model`` (``${VAR}`` expanded) if set, else
        ``default`` (the resolved experiment model). A method's own model beats ``--model``:
        it names what that method needs (e.g. SetFit's sentence-transformers body)."""
        own = self.methods[index].model
        return expand_env(own, f"$.methods[{index}].model", self.path) if own else default

    def resolve_data_dir(self, override: str | None = None) -> str | None:
        """``--data-dir`` if given, else the file's ``data_dir``, else ``$PET_DATA_DIR`` (via pet.data)."""
        if override:
            return override
        if self.data_dir:
            return expand_env(self.data_dir, "$.data_dir", self.path)
        return None


@dataclass

# ----------------------------------------------------------------------------- loading


class _Loader:
    """A YAML SafeLoader that also reads ``1e-5`` as a float (YAML 1.1 needs ``1.0e-5``) and
    refuses a key given twice in one mapping (plain YAML keeps the last one silently)."""

    _cls = None

    @classmethod
    def get(cls):
        if cls._cls is None:
            import yaml

            class L(yaml.SafeLoader):
                def construct_mapping(self, node, deep=False):
                    seen: dict = {}
                    for key_node, _ in node.value:
                        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden
                            continue
                        key = self.construct_object(key_node, deep=True)
                        if isinstance(key, (str, int, float, bool)) or key is None:
                            if key in seen:
                                raise yaml.constructor.ConstructorError(
                                    None, None, f"duplicate key '{key}' (first at line {seen[key] + 1}); fix: keep one of them",
                                    key_node.start_mark)
                            seen[key] = key_node.start_mark.line
                    return super().construct_mapping(node, deep=deep)

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
    text = read_text(p, ConfigError, "experiment file not found; fix: check the path (e.g. benchmarks/quick.yaml)")
    if p.suffix.lower() == ".json":
        data = parse_json(text, str(p), ConfigError)  # one-line errors, also for hostile nesting / huge numbers
    else:
        import yaml

        try:
            data = yaml.load(text, Loader=_Loader.get())  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            msg = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"{p}: malformed YAML{where}: {msg}{'' if 'fix:' in msg else '; fix: correct the YAML'}") from None
        except RecursionError:
            raise ConfigError(f"{p}: YAML nested too deeply; fix: flatten the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: $: the file must hold a mapping (tasks, methods, k, seeds, …); fix: {_FIX[5:]}")
    return data


def _wants_integer(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    t = schema.get("type")
    return t == "integer" or (isinstance(t, list) and "integer" in t) or any(_wants_integer(x) for x in schema.get("anyOf", ()))


def _explain(err) -> tuple[str, str] | None:
    """An experiment file's own words for the errors the generic ones (:mod:`pet.utils.schema`)
    would blur: a whole number written as a float, ``pvps`` that is neither "first" nor a list,
    a PVP id without its ':'; None for the rest."""
    v, inst = err.validator, err.instance
    if isinstance(inst, float) and inst.is_integer() and v in ("type", "anyOf") and _wants_integer(err.schema):
        # JSON Schema counts 13.0 as an integer, and YAML reads 1e3 as a float: seeds, K and
        # sizes are whole numbers, written as such (13.0 would name another split folder)
        return f"{inst!r} is not an integer", f"write {int(inst)}"
    if v in ("anyOf", "oneOf") and any(c.validator == "const" for c in err.context) and isinstance(inst, str):
        consts = [c.validator_value for c in err.context if c.validator == "const"]
        return f"{inst!r} is not {' or '.join(repr(c) for c in consts)} nor a list", "write 'first' or a list of PVP ids (PATTERN:VERBALIZER)"
    if v == "pattern" and err.validator_value == PVP_ID:
        return (f"{inst!r} is not a PVP id: expected PATTERN:VERBALIZER (e.g. it-was:great-terrible)",
                "name a pattern and a verbalizer of the task, joined by ':' (`pet show --task NAME` lists them)")
    return None


def _validator_class():
    """Draft 2020-12 where "integer" means an int, not also a float such as 13.0 (JSON Schema's
    rule): a seed of 13.0 would miss LM-BFF's fixed split ``16-13`` and break the run."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(base, type_checker=checker)


def validate_experiment_dict(data: Any, where: str = "experiment") -> list[str]:
    """Every schema problem of an experiment file, one line each (file and JSON path first)."""
    return schema_problems(data, SCHEMA, where, validator=_validator_class(), explain=_explain)


def expand_env(value: str, at: str, path: Path | None) -> str:
    """``${VAR}`` / ``$VAR`` expansion; an unset variable is an error naming the JSON path."""

    def sub(m: re.Match) -> str:
        var = m.group(1) or m.group(2)
        if var not in os.environ:
            raise ConfigError(f"{path or 'experiment'}: {at}: environment variable {var} is not set; fix: set it or pass the value on the command line")
        return os.environ[var]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, value)


def _as_tuple_k(v: Any) -> tuple[int | None, ...]:
    return tuple(v) if isinstance(v, list) else (v,)

