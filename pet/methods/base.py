"""What every method takes and returns, so `pet train`, `pet compare-prompts` and `pet bench`
drive them all the same way.

A method is a function ``run(ctx: RunContext, options: dict) -> list[StageResult]``
registered under a name with :func:`register`. It returns one row per stage it evaluated on
the test split (each PVP, the ensemble, the distilled model, …), never only the last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..examples import Example
from ..spec import PVP


@dataclass
class RunContext:
    """Everything a method needs for one (task, K, seed) cell: identical for every method."""

    task: Any  # pet.tasks.TaskSpec, or a TaskSpec built for a user's own data file
    model: str  # local folder or hub name
    train: list[Example]
    test: list[Example]
    pvps: list[PVP]
    seed: int = 13
    k: int | None = 16
    dev: list[Example] = field(default_factory=list)
    unlabelled: list[Example] = field(default_factory=list)
    device: str | None = None
    output_dir: Path | None = None  # where a method may save its final model
    progress: bool = True

    @property
    def labels(self) -> list[str]:
        return list(self.task.label_ids)

    def score(self, gold: Sequence[str | None], pred: Sequence[str]) -> float:
        """The task's main metric."""
        from ..metrics import compute_metric

        return compute_metric(self.task.metric, gold, pred, labels=self.labels, pos_label=getattr(self.task, "positive_label", None))


@dataclass
class StageResult:
    """One evaluated stage of a method: a row of the results store."""

    method: str
    stage: str  # "pvp" | "ensemble" | "distilled" | "ipet-gen1" | "final" | …
    score: float
    metric: str
    pvp: str | None = None  # "pattern:verbalizer" where the row is about one PVP
    train_seconds: float = 0.0
    eval_examples_per_second: float = 0.0
    trained_parameters: int = 0
    peak_memory_mb: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


MethodFn = Callable[[RunContext, dict], list[StageResult]]
_METHODS: dict[str, MethodFn] = {}
_BUILTIN_MODULES = ("zero_shot", "prompt_ft", "cls_ft", "pet", "soft")


def register(name: str) -> Callable[[MethodFn], MethodFn]:
    def deco(fn: MethodFn) -> MethodFn:
        _METHODS[name] = fn
        return fn

    return deco


def available_methods() -> list[str]:
    _load_builtins()
    return sorted(_METHODS)


def get_method(name: str) -> MethodFn:
    _load_builtins()
    if name not in _METHODS:
        raise ConfigError(f"unknown method '{name}'; fix: use one of {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def _load_builtins() -> None:
    import importlib

    for mod in _BUILTIN_MODULES:
        try:
            importlib.import_module(f"pet.methods.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"pet.methods.{mod}":
                raise
