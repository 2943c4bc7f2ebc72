"""``run_experiment``: runs an experiment's grid under the few-shot protocol into the results store.

This module is the stable import path of the runner; the work is split by concern:
:mod:`pet.bench.driver` (planning, staleness, executors, the only writer of the store),
:mod:`pet.bench.cells` (computing one cell), :mod:`pet.bench.splits` (the protocol's data),
:mod:`pet.bench.inputs` (checksums of what a cell reads) and :mod:`pet.bench.environment`
(code version, machine, memory).
"""

from __future__ import annotations

from .cells import run_cell, task_metric
from .driver import (
    CellOutcome,
    Driver,
    Job,
    RunSummary,
    run_experiment,
    summary_line,
    write_task_notes,
)
from .environment import PeakMemory, git_commit, machine_info, versions
from .splits import (
    DataCache,
    SplitInfo,
    TestInfo,
    examples_checksum,
    prepare_split,
    prepare_test,
    split_folder,
)

#: the data cache's former (private) name, still used by callers written against it
_DataCache = DataCache

__all__ = [
    "CellOutcome", "DataCache", "Driver", "Job", "PeakMemory", "RunSummary", "SplitInfo", "TestInfo", "examples_checksum",
    "git_commit", "machine_info", "prepare_split", "prepare_test", "run_cell", "run_experiment", "split_folder",
    "summary_line", "task_metric", "versions", "write_task_notes",
]
