"""Typed option dataclasses: one source of truth for defaults, help, constraints, CLI flags and
experiment-file keys.

A method's options (and the training configuration) are a dataclass whose fields are declared
with :func:`option`::

    @dataclass
    class MyOptions(Options):
        steps: int = option(250, "optimizer steps", min=0)
        tune: str = option("full", "which weights train", choices=("full", "head"))

:meth:`Options.from_dict` builds one from a mapping (an experiment file's ``options:``, the
``options=`` of ``PetClassifier``): unknown or misspelled keys are errors (with a suggestion),
``1`` is accepted for a float, and every constraint is checked in one place
(:meth:`Options.validate`). :meth:`Options.add_arguments` derives ``argparse`` flags
(``--steps``, ``--no-distill`` …) with their help, and :meth:`Options.from_args` reads back only
the flags the user gave.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Callable, ClassVar, Sequence

from .errors import ConfigError


def option(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
    cli: bool = True,
    check: Callable[[Any], tuple[str, str] | None] | None = None,
) -> Any:
    """A dataclass field with its help text and declared constraints (checked by ``validate``).

    ``min``/``max`` bound numbers (inclusive unless ``*_exclusive``); ``choices`` lists allowed
    values; ``check(value)`` returns ``(why, fix)`` for a value no other constraint can describe
    (None when fine); ``cli=False`` keeps the option out of the derived command-line flags.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "min": min, "max": max,
            "min_exclusive": min_exclusive, "max_exclusive": max_exclusive, "cli": cli, "check": check}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def same_option(source: type["Options"], name: str, **changes: Any) -> Any:
    """A field declared like ``source``'s option ``name`` (default, help, constraints, check), with
    ``changes`` (e.g. ``default=``, ``help=``): for options that are passed on to a config
    dataclass, so both validate, document and parse the value the same way."""
    f = next((f for f in dataclasses.fields(source) if f.name == name), None)
    if f is None:
        raise ConfigError(f"same_option: {source.__name__} has no option '{name}'; fix: use one of {', '.join(source.keys())}")
    meta = dict(f.metadata)
    default = f.default if f.default is not MISSING else f.default_factory()
    return option(changes.pop("default", default), changes.pop("help", meta.pop("help")), **{**meta, **changes})


def _base_type(tp: Any) -> tuple[type, bool]:
    """``int | None`` -> (int, True); ``list[str] | None`` -> (list, True); ``float`` -> (float, False)."""
    optional = False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        tp = args[0]
        origin = typing.get_origin(tp)
    return (origin or tp), optional


@dataclass
class Options:
    """Base of every options dataclass (see the module docstring)."""

    #: What the options configure, for error messages ("prompt-ft options", "training config").
    where: ClassVar[str] = "options"

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ schema

    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.init]

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in cls.fields()]

    @classmethod
    def _types(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One entry per option: name, type, default, help, constraints (for docs and ``--help``)."""
        hints = cls._types()
        out = []
        for f in cls.fields():
            default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else None)
            out.append({"name": f.name, "type": str(hints[f.name]).replace("typing.", ""), "default": default,
                        **{k: v for k, v in f.metadata.items() if k != "check"}})
        return out

    # ------------------------------------------------------------------ building

    @classmethod
    def from_dict(cls, d: dict[str, Any] | "Options" | None = None, where: str | None = None, **overrides: Any):
        """Build from a mapping; unknown keys and bad values raise one-line ``ConfigError``s."""
        where = where or cls.where
        if d is None:
            d = {}
        elif isinstance(d, Options):
            d = d.to_dict() if isinstance(d, cls) else {k: v for k, v in d.to_dict().items() if k in cls.keys()}
        elif not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a mapping of options, got {type(d).__name__}; fix: pass e.g. {{\"steps\": 100}}")
        d = {**d, **overrides}
        known = cls.keys()
        unknown = [k for k in d if k not in known]
        if unknown:
            k = unknown[0]
            close = difflib.get_close_matches(str(k), known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"{where}: unknown option '{k}'; fix: {hint}use one of {', '.join(known)}")
        hints = cls._types()
        kw = {}
        for k, v in d.items():
            base, _ = _base_type(hints[k])
            if base is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)  # "lr": 1 is fine
            if base is tuple and isinstance(v, list):
                v = tuple(v)
            kw[k] = v
        try:
            return cls(**kw)
        except ConfigError as e:
            raise ConfigError(str(e).replace(cls.where, where, 1)) from None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.fields()}

    def replace(self, **changes: Any):
        return type(self).from_dict({**self.to_dict(), **changes})

    # ------------------------------------------------------------------ checking

    def validate(self) -> None:
        """Check every field's type and declared constraints; the first problem raises."""
        hints = self._types()
        for f in self.fields():
            v = getattr(self, f.name)
            base, optional = _base_type(hints[f.name])
            m = f.metadata

            def bad(why: str, fix: str) -> ConfigError:
                return ConfigError(f"{self.where}: {f.name}={v!r}: {why}; fix: {fix}")

            if v is None:
                if not optional:
                    raise bad("must not be null", f"give a value (default {f.default!r})")
                continue
            if base is bool:
                if not isinstance(v, bool):
                    raise bad("must be true or false", f"e.g. {f.name}=true")
            elif base is int:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise bad("must be a whole number", "give an integer")
            elif base is float:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise bad("must be a finite number", "give a number such as 0.1")
            elif base is str:
                if not isinstance(v, str):
                    raise bad("must be a string", "give a text value")
            elif base in (list, tuple):
                if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                    raise bad("must be a list of strings", f'e.g. {f.name}=["a", "b"]')
            elif base is dict:
                if not isinstance(v, dict):
                    raise bad("must be a mapping", f'e.g. {f.name}={{"steps": 100}}')
            if m.get("choices") is not None and v not in m["choices"]:
                raise bad("not an allowed value", f"use one of {', '.join(map(str, m['choices']))}")
            lo, hi = m.get("min"), m.get("max")
            if lo is not None and (v < lo or (m.get("min_exclusive") and v == lo)):
                raise bad("out of range", f"use a value {'>' if m.get('min_exclusive') else '≥'} {lo}")
            if hi is not None and (v > hi or (m.get("max_exclusive") and v == hi)):
                raise bad("out of range", f"use a value {'<' if m.get('max_exclusive') else '≤'} {hi}")
            problem = m["check"](v) if m.get("check") else None
            if problem:
                raise bad(*problem)

    # ------------------------------------------------------------------ command line

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup, skip: Sequence[str] = ()) -> None:
        """Add one flag per option (``--steps``; booleans as ``--distill/--no-distill``). Defaults
        stay ``None`` so that :meth:`from_args` sees only what the user gave."""
        hints = cls._types()
        for f in cls.fields():
            if not f.metadata.get("cli", True) or f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            base, optional = _base_type(hints[f.name])
            default = f.default if f.default is not MISSING else f.default_factory()
            help_text = f"{f.metadata.get('help', '')} (default: {json.dumps(default)})".replace("%", "%%")
            kw: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
            if base is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
                continue
            if base in (list, tuple):
                parser.add_argument(flag, nargs="+", metavar="VALUE", **kw)
                continue
            if base is dict:
                parser.add_argument(flag, type=_json_object(flag), metavar="JSON", **kw)
                continue
            kw["type"] = _typed(flag, base, f.metadata, optional)
            if f.metadata.get("choices") is not None:
                kw["choices"] = list(f.metadata["choices"])
            kw["metavar"] = {int: "N", float: "X", str: "TEXT"}.get(base, "VALUE")
            if kw.get("choices"):
                kw.pop("metavar")
            parser.add_argument(flag, **kw)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The options the user gave on the command line (flags left out are not in the dict)."""
        return {k: getattr(args, k) for k in cls.keys() if getattr(args, k, None) is not None}


def _typed(flag: str, base: type, meta: dict, optional: bool):
    """An argparse type that converts and range-checks, so bad values are usage errors."""

    def convert(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        try:
            v = base(text)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(base, "a value")
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: not {kind}") from None
        if base in (int, float):
            if base is float and not math.isfinite(v):
                raise argparse.ArgumentTypeError(f"{flag} {text!r}: not a finite number")
            lo, hi = meta.get("min"), meta.get("max")
            if lo is not None and (v < lo or (meta.get("min_exclusive") and v == lo)):
                raise argparse.ArgumentTypeError(f"{flag} {text}: must be {'>' if meta.get('min_exclusive') else '≥'} {lo}")
            if hi is not None and (v > hi or (meta.get("max_exclusive") and v == hi)):
                raise argparse.ArgumentTypeError(f"{flag} {text}: must be {'<' if meta.get('max_exclusive') else '≤'} {hi}")
        problem = meta["check"](v) if meta.get("check") else None
        if problem:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: {problem[0]}; fix: {problem[1]}")
        return v

    convert.__name__ = base.__name__
    return convert


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``json.loads`` hook: a key given twice in one object is refused (KeyError), not overwritten."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise KeyError(k)
        out[k] = v
    return out


def _json_object(flag: str):
    def convert(text: str) -> dict:
        example = f"e.g. {flag} '{{\"steps\": 100}}'"
        try:
            v = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f"{flag}: malformed JSON at column {e.colno}: {e.msg}; fix: {example}") from None
        except KeyError as e:  # the core cannot use pet.utils.jsonio (a higher layer): the same rule, kept short
            raise argparse.ArgumentTypeError(f"{flag}: malformed JSON: duplicate key {e.args[0]!r}; fix: keep one of them") from None
        if not isinstance(v, dict):
            raise argparse.ArgumentTypeError(f"{flag}: must be a JSON object; fix: e.g. {flag} '{{\"steps\": 100}}'")
        return v

    return convert
