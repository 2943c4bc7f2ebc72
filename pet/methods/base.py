"""The method layer: what a method is, what it is given, and what it returns.

A method is registered once, the way PEFT registers a tuner::

    register_method("prompt-ft", family="hard", options=PromptFTOptions, fit=fit_prompt_ft)

``fit(train, unlabelled, options, setup) -> Fitted``: it gets the labelled training examples,
the unlabelled pool, its typed options and a :class:`FitSetup` (base model, labels, PVPs, seed,
device) — never test data. The :class:`Fitted` object holds **one predictor per stage** (each
PVP's model, the ensemble, the distilled classifier, iPET's generations…) and names the
``final`` stage, the one that stands for the method (what ``PetClassifier.predict`` uses and
what reports headline). Evaluating (:func:`pet.evaluation.evaluate`) and saving
(:class:`pet.estimator.classifier.PetClassifier`) are the caller's business.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..utils.defaults import DEFAULT_MAX_LENGTH
from ..errors import ConfigError
from ..examples import Example
from ..options import Options
from ..prompts.spec import PVP

FAMILIES = ("hard", "soft", "baseline")


class Predictor(Protocol):
    """Anything that turns examples into label log-probabilities ``[N, L]`` (labels in the
    ``Fitted.labels`` order)."""

    def predict_log_proba(self, examples: Sequence[Example], progress: bool = False, cache: dict | None = None) -> np.ndarray: ...


@dataclass
class FitSetup:
    """What every method gets besides the data and its options: identical for every method of
    a benchmark cell."""

    model: str  # masked LM: local folder or hub name
    labels: list[str]
    pvps: list[PVP] = field(default_factory=list)
    seed: int = 13
    max_length: int = DEFAULT_MAX_LENGTH  # the task's; options.max_length overrides it
    device: str | None = None
    progress: bool = False
    #: labelled dev examples for best-checkpoint selection (``eval_every``); never the test set
    dev: list[Example] = field(default_factory=list)
    #: the task's metric as ``metric(gold, pred) -> float`` (default accuracy), for dev scores
    metric: Callable[[list, list], float] | None = None
    #: a regression task's two-label-word setting (STS-B: {low, high, low_label, high_label}), else None
    regression: dict | None = None
    #: a folder where the method may keep what it trained so far, and reuse it when the same fit
    #: runs again after an interruption (PET/iPET: every trained PVP model; :mod:`pet.methods.resume`);
    #: None keeps nothing. ``pet bench`` gives each cell its own and removes it with the cell done
    resume_dir: str | Path | None = None
    #: a folder of trained PET members shared between fits, each filed under the fingerprint of
    #: what it was trained from (:mod:`pet.methods.resume`): PET, pet-setfit and iPET's first
    #: generation train the same members on one split, and a fit reuses those another fit saved
    #: here. None: members are kept in ``resume_dir``. ``pet bench`` shares one per results store
    members_dir: str | Path | None = None


@dataclass
class Stage:
    """One fitted stage: its predictor and what it cost to fit."""

    name: str  # "pvp" | "ensemble" | "distilled" | "ipet-gen1" | "ipet-gen1-ensemble" | "final" | …
    predictor: Predictor
    pvp: str | None = None  # "pattern:verbalizer" when the stage is one PVP's model
    train_seconds: float = 0.0
    trained_parameters: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        rep = self.extra.get("repetition")
        return (f"{self.name}[{self.pvp}]" if self.pvp else self.name) + (f"#{rep}" if rep else "")


@dataclass
class Fitted:
    """A fitted method: its stages (in the order they were fitted) and the final one."""

    method: str
    labels: list[str]
    options: Options
    stages: list[Stage]
    final: str  # key of the stage that stands for the method
    pvps: list[PVP] = field(default_factory=list)
    model: str = ""
    logs: dict[str, Any] = field(default_factory=dict)  # run name -> TrainLog
    fit_seconds: float = 0.0

    def stage(self, key: str | None = None) -> Stage:
        key = key or self.final
        for s in self.stages:
            if s.key == key:
                return s
        raise ConfigError(f"no stage '{key}' in this fitted {self.method}; fix: use one of {', '.join(s.key for s in self.stages)}")

    @property
    def predictor(self) -> Predictor:
        """The final stage's predictor."""
        return self.stage().predictor


FitFn = Callable[[list[Example], list[Example], Options, FitSetup], Fitted]


@dataclass(frozen=True)
class Method:
    """A registered method: a name, a family, what it needs, its options and its ``fit``."""

    name: str
    family: str  # hard | soft | baseline
    options: type[Options]
    fit_fn: FitFn
    needs_pvps: bool = True
    description: str = ""
    #: given the options, does the method need unlabelled text (distillation, iPET, MLM loss)?
    #: :meth:`fit` checks it, the one place that does.
    needs_unlabelled: Callable[[Options], bool] = lambda o: float(getattr(o, "mlm_weight", 0) or 0) > 0
    #: traits reports group methods by: a reference method (cls-ft, zero-shot) …
    baseline: bool = False
    #: … one built to learn from unlabelled text (PET, iPET) …
    uses_unlabelled: bool = False
    #: … one with a distilled stage (PET, iPET)
    distils: bool = False
    #: does it need labelled training examples? (False: zero-shot, and iPET, which can start
    #: from the untrained PVPs); the bench runs K = 0 only for methods that do not
    needs_labelled: bool = True
    #: for a method that files trained PET members in ``FitSetup.members_dir`` (PET, iPET,
    #: pet-setfit): the part of its options its members depend on. Cells of one split whose
    #: PVPs and member options are equal train the same members: ``pet bench`` runs them one
    #: after another and keeps the members until the last of them is done. None: it files none
    member_options: Callable[[Options], dict] | None = None

    def make_options(self, options: dict | Options | None = None, where: str | None = None) -> Options:
        """Typed options from a mapping: unknown keys and bad values raise ``ConfigError``."""
        if isinstance(options, self.options):
            return options
        return self.options.from_dict(options, where=where or f"{self.name} options")

    def fit(
        self,
        train: Sequence[Example],
        unlabelled: Sequence[Example],
        options: dict | Options | None,
        setup: FitSetup,
    ) -> Fitted:
        """Check the inputs against what the method needs, then fit."""
        opts = self.make_options(options)
        train, unlabelled = list(train), list(unlabelled)
        if not train and self.needs_labelled:
            raise ConfigError(f"{self.name}: no labelled training examples; fix: pass a non-empty training set")
        if self.needs_pvps and not setup.pvps:
            raise ConfigError(f"{self.name}: no PVPs; fix: pass --pvps (or a task with default PVPs) or --patterns/--verbalizers")
        if self.needs_unlabelled(opts) and not unlabelled:
            raise ConfigError(
                f"{self.name}: these options need unlabelled text but the unlabelled pool is empty; "
                "fix: pass unlabelled examples (--unlabelled FILE, or --unlabelled-size > 0 with a task that has a train-side pool)"
            )
        if self.family == "hard":  # hard-prompt methods score the PVPs without soft tokens
            hard = [p for p in setup.pvps if not p.pattern.is_soft]
            if setup.pvps and not hard:
                raise ConfigError(f"{self.name}: every PVP has soft tokens, which only soft-prompt methods train; fix: pass a PVP without {{soft}}")
            setup = dataclasses.replace(setup, pvps=hard)
        for p in setup.pvps:
            p.check_labels(setup.labels, f"the labels {setup.labels}")
        t0 = time.perf_counter()
        fitted = self.fit_fn(train, unlabelled, opts, setup)
        fitted.fit_seconds = time.perf_counter() - t0
        return fitted


_METHODS: dict[str, Method] = {}


def register_method(
    name: str,
    family: str,
    options: type[Options],
    fit: FitFn,
    *,
    needs_pvps: bool = True,
    needs_unlabelled: Callable[[Options], bool] | None = None,
    description: str = "",
    baseline: bool = False,
    uses_unlabelled: bool = False,
    distils: bool = False,
    needs_labelled: bool = True,
    member_options: Callable[[Options], dict] | None = None,
    replace: bool = False,
) -> Method:
    """Register a method under ``name`` (see the module docstring); returns it. ``baseline``,
    ``uses_unlabelled`` and ``distils`` are its traits (see :class:`Method`), read by reports;
    ``needs_labelled=False`` lets it fit without labelled examples (and the bench run it at K = 0);
    ``member_options`` says it files trained members in ``FitSetup.members_dir`` and which of its
    options they depend on.
    ``replace`` lets a plugin that is imported again re-register its method."""
    if family not in FAMILIES:
        raise ConfigError(f"method '{name}': family '{family}' is unknown; fix: use one of {', '.join(FAMILIES)}")
    if name in _METHODS and not replace:
        raise ConfigError(f"method '{name}' is already registered; fix: pick another name")
    kw = {} if needs_unlabelled is None else {"needs_unlabelled": needs_unlabelled}
    m = Method(name, family, options, fit, needs_pvps=needs_pvps, description=description or (fit.__doc__ or "").strip().split("\n")[0],
               baseline=bool(baseline), uses_unlabelled=bool(uses_unlabelled), distils=bool(distils),
               needs_labelled=bool(needs_labelled), member_options=member_options, **kw)
    _METHODS[name] = m
    return m


def available_methods() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> Method:
    if name not in _METHODS:
        close = difflib.get_close_matches(str(name), list(_METHODS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"unknown method '{name}'; fix: {hint}use one of {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def resolve_max_length(options: Options, setup: FitSetup) -> int:
    """``options.max_length`` when set, else the task's (``setup.max_length``)."""
    return int(getattr(options, "max_length", None) or setup.max_length or DEFAULT_MAX_LENGTH)


def checkpoint_info(log: Any) -> dict:
    """A stage's record of best-checkpoint selection (empty when it was off)."""
    if getattr(log, "best_step", None) is None:
        return {}
    return {"best_step": log.best_step, "best_dev_score": log.best_dev_score}


def regression_targets(train: Sequence[Example], setup: FitSetup) -> np.ndarray | None:
    """LM-BFF's regression through two label words: per example the target distribution over the
    labels, ``p(high) = (y - low) / (high - low)`` and ``p(low) = 1 - p(high)`` (``y`` = the
    example's ``meta["score"]``), trained with KL at temperature 1; None for classification."""
    reg = setup.regression
    if not reg:
        return None
    missing = [e.guid for e in train if "score" not in e.meta]
    if missing:
        raise ConfigError(f"regression training: example '{missing[0]}' has no score (meta['score']); fix: load it through the regression task file")
    y = np.clip((np.array([float(e.meta["score"]) for e in train]) - reg["low"]) / (reg["high"] - reg["low"]), 0.0, 1.0)
    t = np.zeros((len(train), len(setup.labels)))
    t[:, setup.labels.index(reg["high_label"])] = y
    t[:, setup.labels.index(reg["low_label"])] = 1.0 - y
    return t
