"""`pet bench`: experiment files, the few-shot protocol, the results store, reports and plots.

- :mod:`pet.bench.schema` — experiment-file schema, typed entries, YAML/JSON reading and validation
- :mod:`pet.bench.experiment` — building and cross-checking experiments (the entry point for files)
- :mod:`pet.bench.plugins` — the file's ``imports`` (run only with consent)
- :mod:`pet.bench.grid` — grid expansion, config hashes, model identity
- :mod:`pet.bench.inputs` — SHA-256 of every file a cell reads (staleness)
- :mod:`pet.bench.splits` — the protocol's data: shared few-shot splits, test sets, unlabelled pools
- :mod:`pet.bench.environment` — git commit, machine, versions, peak memory
- :mod:`pet.bench.cells` — computing one cell (roles of a model selection)
- :mod:`pet.bench.driver` — ``run_experiment``: planning, staleness, executors, writing the store
- :mod:`pet.bench.executors` — local and Ray executors
- :mod:`pet.bench.rows` — :class:`ResultRow`, the typed, versioned stored row
- :mod:`pet.bench.store` — the append-only JSONL results store (atomic, locked, resumable)
- :mod:`pet.bench.report` — aggregation, Markdown and CSV reports, published references
- :mod:`pet.bench.plots` — PNG plots (matplotlib, Agg backend)
"""

from __future__ import annotations

from .experiment import load_experiment
from .grid import Cell, expand_grid
from .rows import ResultRow
from .schema import Experiment, MethodSpec, TaskEntry
from .store import ResultsStore

__all__ = [
    "Cell",
    "Experiment",
    "MethodSpec",
    "ResultRow",
    "ResultsStore",
    "TaskEntry",
    "build_report",
    "expand_grid",
    "load_experiment",
    "run_experiment",
]


def __getattr__(name: str):
    # the runner and the report pull in torch / pandas / matplotlib: load them lazily
    if name == "run_experiment":
        from .driver import run_experiment

        return run_experiment
    if name == "build_report":
        from .report import build_report

        return build_report
    raise AttributeError(name)
