"""`pet bench`: experiment files, the few-shot protocol, the results store, reports and plots.

- :mod:`pet.bench.experiment` — experiment files (YAML/JSON), validation, grid expansion, config hashes
- :mod:`pet.bench.store` — the append-only JSONL results store (atomic, locked, resumable)
- :mod:`pet.bench.runner` — runs the grid: identical splits for every method, one cell at a time
- :mod:`pet.bench.report` — aggregation, Markdown and CSV reports, published references
- :mod:`pet.bench.plots` — PNG plots (matplotlib, Agg backend)
"""

from __future__ import annotations

from .experiment import Cell, Experiment, MethodSpec, TaskEntry, expand_grid, load_experiment
from .store import ResultsStore

__all__ = [
    "Cell",
    "Experiment",
    "MethodSpec",
    "ResultsStore",
    "TaskEntry",
    "expand_grid",
    "load_experiment",
    "run_experiment",
    "build_report",
]


def __getattr__(name: str):
    # the runner and the report pull in torch / pandas / matplotlib: load them lazily
    if name == "run_experiment":
        from .runner import run_experiment

        return run_experiment
    if name == "build_report":
        from .report import build_report

        return build_report
    raise AttributeError(name)
