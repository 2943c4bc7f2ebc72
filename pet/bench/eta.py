"""How long the cells still to run will take, from the wall times of the cells the store holds.

Every stored row records its cell's wall time (``cell_seconds``) and the machine it ran on
(``machine``). A cell still to run is estimated by the median wall time of the stored cells of
the same task, method, K and role (a selection's grid point, its choice, or a plain cell) —
other seeds of the same work. Times are taken from the same kind of machine as this run's (the
same GPU, or a CPU with as many cores) where the store has any; otherwise from another kind,
and the estimate says which. Nothing is extrapolated across tasks or methods: SST-5 and RTE
cells take several times an SST-2 cell, so a cell with no stored cell of its kind has no
estimate, and the total says how many such cells it leaves out.

A cell that resumed from saved work (PET's members reloaded from ``partial/``, its own or
trained by another cell of its member group: their rows carry ``extra.resumed``) recorded only
the resumed run's wall time; the reloaded members' own training seconds are added back, so a
cell is timed as if it ran alone. A cell whose student resumed from a mid-training checkpoint
(``extra.resumed_from_step``) does not say what the interrupted run spent, so it times nothing.

A ``selection: dev`` choice trains nothing (it picks among its points' stored rows), so it is
estimated at seconds. The times are as measured, under whatever else shared the machine then; they are estimates
for planning (``pet bench --dry-run``), not benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Iterable, Sequence

from ..evaluation.selection import parse_selection
from .grid import Cell, canonical_json
from .store import StoreScan


def machine_kind(machine: dict | None) -> str:
    """What makes cell times comparable: the GPU's name, else the CPU's core count."""
    machine = machine or {}
    if machine.get("gpu"):
        return str(machine["gpu"])
    cores = machine.get("sched_cpus") or machine.get("cpu_count")
    return f"{cores}-core CPU" if cores else "unknown machine"


def _work(cell: Cell) -> tuple:
    """Cells that do the same work (other seeds of it): task, method, K, role and grid point."""
    return (cell.task, cell.method, cell.k, cell.role, canonical_json(cell.grid_point))


@dataclass(frozen=True)
class Estimate:
    seconds: float
    n: int  # stored cells it is the median of (0: a choice among stored points, which trains nothing)
    machine: str  # the kind of machine they ran on
    same_machine: bool  # that kind is this run's

    def describe(self) -> str:
        if not self.n:
            return "seconds (a choice among its stored points)"
        where = "this machine's kind" if self.same_machine else self.machine
        return f"~{format_duration(self.seconds)} (median of {self.n} stored cell{'s' if self.n != 1 else ''} on {where})"


class CellTimes:
    """The stored wall times of an experiment's cells, by the work they do and their machine."""

    def __init__(self, cells: Iterable[Cell], scan: StoreScan, machine: dict | None):
        self.machine = machine_kind(machine)
        by_hash: dict[str, tuple[float, str]] = {}
        reused: dict[str, dict[str, float]] = {}  # config hash -> reloaded member row key -> its training seconds
        untimed: set[str] = set()
        for r in scan.rows:
            h, secs = r.get("config_hash"), r.get("cell_seconds")
            if h not in scan.complete:
                continue
            if isinstance(secs, (int, float)) and h not in by_hash:
                by_hash[h] = (float(secs), machine_kind(r.get("machine")))
            extra = r.get("extra") if isinstance(r.get("extra"), dict) else {}
            if extra.get("resumed_from_step"):
                untimed.add(h)
            elif extra.get("resumed") and isinstance(r.get("train_seconds"), (int, float)):
                reused.setdefault(h, {})[str(r.get("key"))] = float(r["train_seconds"])
        self.times: dict[tuple, dict[str, list[float]]] = {}
        for c in cells:
            if c.config_hash in by_hash and c.config_hash not in untimed:
                secs, kind = by_hash[c.config_hash]
                secs += sum(reused.get(c.config_hash, {}).values())
                self.times.setdefault(_work(c), {}).setdefault(kind, []).append(secs)

    def estimate(self, cell: Cell) -> Estimate | None:
        """The median stored time of ``cell``'s work, this machine's kind first; None: none stored.
        A choice that only picks among its stored points (``selection: dev``) trains nothing:
        seconds, whatever its rows say (they carry the chosen point's own time)."""
        if cell.role == "select" and not parse_selection(cell.selection).refits:
            return Estimate(0.0, 0, self.machine, True)
        kinds = self.times.get(_work(cell))
        if not kinds:
            return None
        if self.machine in kinds:
            kind = self.machine
        else:  # the kind with the most stored cells (ties: by name, for a stable answer)
            kind = max(sorted(kinds), key=lambda k: len(kinds[k]))
        return Estimate(median(kinds[kind]), len(kinds[kind]), kind, kind == self.machine)

    def total(self, cells: Sequence[Cell]) -> str:
        """One line: the summed estimates of the cells that train, how many have none, and how
        many are choices among stored points (seconds each)."""
        if not cells:
            return "nothing to run"
        est = [self.estimate(c) for c in cells]
        choices = sum(e is not None and not e.n for e in est)
        known = [e for e in est if e is not None and e.n]
        unknown = len(cells) - choices - len(known)
        trains = len(cells) - choices
        parts = []
        if known:
            words = (f"~{format_duration(sum(e.seconds for e in known))} of cell time for {len(known)} of the {_that_train(trains)}, "
                     "one after another, at the stored cells' median times")
            other = sorted({e.machine for e in known if not e.same_machine})
            if other:
                words += f" ({sum(not e.same_machine for e in known)} timed on {', '.join(other)}, not this machine's kind)"
            parts.append(words)
        if unknown:
            why = "no stored cell of their task, method and K to time them by"
            parts.append(f"{unknown} more with {why}" if known else f"no estimate for the {_that_train(unknown)}: {why}")
        if choices:
            parts.append(f"{choices} choice{'s' if choices != 1 else ''} among stored points, seconds each")
        return "; ".join(parts)


def _that_train(n: int) -> str:
    return f"{n} cell{'s' if n != 1 else ''} that train{'s' if n == 1 else ''}"


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``7.5 min``, ``3.2 h``: one unit, two or three significant figures."""
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
