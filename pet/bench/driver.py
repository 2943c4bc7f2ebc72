"""The driver of ``pet bench``: plans which cells to compute, hands them to an executor, and is
the only writer of the results store.

A cell is computed when the store has no complete rows for its config hash; when its stored
rows were made from input files that have changed since (``on_changed_input="recompute"``,
the default; ``"refuse"`` stops with a one-line error naming the file); and, with
``rerun_stale``, when they were made from another git commit or a dirty working tree. A
recomputation replaces the stored rows (the store keeps the chain, readers see the newest).
Each cell is computed while holding its cell lock, then all its rows are appended at once.

Trained PET members are shared by the cells that train the same ones (PET, pet-setfit, iPET
on one split with equal PVPs and member options, ``Method.member_options``:
:mod:`pet.methods.resume`) through the store's ``partial/members`` folder. Such a cell waits
while another of its group is running here (other cells fill the executor meanwhile), so that
it loads the members instead of training them a second time. Once the last cell of a group in
this run is finished, the driver removes the members the group's cells used, unless
``keep_members`` (``--keep-members``) keeps them for a later run (e.g. ``pet-setfit`` from
another experiment file on the same store). When that last cell failed they stay, so that
rerunning it resumes them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError, PetError
from .cells import members_folder, resume_folder, run_cell
from .environment import capture_environment, git_commit, machine_info
from .eta import CellTimes
from .executors import LocalExecutor
from .grid import Cell, canonical_json, expand_grid, task_ref
from .inputs import changed_inputs, test_copies_training_file
from .plugins import import_plugins
from .rows import ResultRow
from .schema import Experiment
from .splits import DataCache
from .store import ResultsStore, StoreScan, headline

ON_CHANGED_INPUT = ("recompute", "refuse")


@dataclass
class CellOutcome:
    cell: Cell
    status: str  # done | computed | failed | skipped | busy
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


@dataclass
class RunSummary:
    results: Path
    cells: int = 0
    already_done: int = 0
    computed: int = 0
    failed: int = 0
    skipped: int = 0
    recomputed: int = 0  # of ``computed``: cells whose stored rows were stale
    seconds: float = 0.0
    outcomes: list[CellOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass
class Job:
    """A cell to compute; ``supersedes``: the stored write it replaces, ``reason`` why."""

    cell: Cell
    supersedes: str | None = None
    reason: str = ""


def _choices_after_points(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` with each split's choice (role ``select``) moved to just after the last of its
    grid points among them (to the front when all its points are stored already), so a split's
    chosen rows are written as soon as its points are, not after the whole run."""
    choices = [j for j in jobs if j.cell.role == "select"]
    out = [j for j in jobs if j.cell.role != "select"]
    at = {j.cell.config_hash: i for i, j in enumerate(out)}
    placed = sorted(((max((at[h] for h in j.cell.points if h in at), default=-1), n, j) for n, j in enumerate(choices)),
                    key=lambda t: (t[0], t[1]))
    for offset, (i, _, j) in enumerate(placed):
        out.insert(i + 1 + offset, j)
    return out


def _computing(choice: Job, in_flight: dict) -> bool:
    """Whether any grid point of ``choice`` is among the cells in flight."""
    wanted = set(choice.cell.points)
    return any(job.cell.config_hash in wanted for job, _, _ in in_flight.values())


def _waiting_choices(n: int) -> str:
    return "" if n == 0 else " (1 split's choice waits for them)" if n == 1 else f" ({n} splits' choices wait for them)"


def _fmt_score(x: float) -> str:
    return f"{100 * x:.1f}"


def summary_line(cell: Cell, rows: Sequence[ResultRow | dict], seconds: float) -> str:
    """One line per finished cell: headline score, dev score, best stage, cost."""
    rows = [r.to_dict() if isinstance(r, ResultRow) else r for r in rows]
    h = headline(rows) or {}
    tested = [r for r in rows if r.get("score") is not None]
    best = max(tested, key=lambda r: r["score"]) if tested else {}
    params = max((r.get("trained_parameters") or 0 for r in rows), default=0)
    eps = [r["eval_examples_per_second"] for r in rows if r.get("eval_examples_per_second")]
    mem = max((r.get("peak_memory_mb") or 0.0 for r in rows), default=0.0)
    score = f"{h.get('metric', '?')} {_fmt_score(h['score'])}" if h.get("score") is not None else "no test rows"
    parts = [
        f"{cell.describe()}: {score} ({h.get('stage')})",
        f"dev {_fmt_score(h['dev_score'])}" if h.get("dev_score") is not None else "",
        f"best {_fmt_score(best['score'])} ({best.get('stage')}{' ' + best['pvp'] if best.get('pvp') else ''})" if len(tested) > 1 else "",
        f"{len(rows)} rows",
        f"train {h.get('train_seconds', 0.0):.1f}s ({h.get('stage')})" if h.get("train_seconds") else "",
        f"eval {sum(eps) / len(eps):.0f} ex/s" if eps else "",
        f"{mem:.0f} MB",
        f"{params / 1e6:.2f}M trained" if params else "",
        f"{seconds:.1f}s",
    ]
    return " | ".join(p for p in parts if p)


def write_task_notes(store: ResultsStore, cells: Sequence[Cell]) -> None:
    """``<results>/tasks.json``: for every task of the experiment, which test split is used and
    whether it is full, a subset, or missing here (read by the report)."""
    from ..data import load_task

    def update(notes: dict) -> None:
        for c in cells:
            spec = load_task(c.task_ref or c.task)
            notes[c.task] = {
                "test_split": c.test_split, "has_test": c.skip is None,
                "test_subset": bool(spec.test_subset) or c.test_split != "test" or c.test_limit is not None,
                "test_limit": c.test_limit, "test_note": spec.test_note, "unlabelled_note": spec.unlabelled_note,
                "metric": spec.metric, "labels": len(spec.labels),
            }

    store.update_json("tasks.json", update)


class Driver:
    """One ``pet bench`` run of an experiment (see the module docstring)."""

    def __init__(self, exp: Experiment, *, model: str | None = None, data_dir: str | None = None, results: str | Path | None = None,
                 only: Sequence[str] = (), progress: bool = True, inner_progress: bool = False, fail_fast: bool = False,
                 device: str | None = None, echo: Callable[[str], None] | None = None, executor: Any = None,
                 on_changed_input: str = "recompute", rerun_stale: bool = False, keep_members: bool = False):
        from tqdm.auto import tqdm

        if on_changed_input not in ON_CHANGED_INPUT:
            raise ConfigError(f"--on-changed-input {on_changed_input}: unknown; fix: one of {', '.join(ON_CHANGED_INPUT)}")
        import_plugins(exp)
        self.exp, self.fail_fast, self.progress, self.inner_progress = exp, fail_fast, progress, inner_progress
        self.on_changed_input, self.rerun_stale, self.keep_members = on_changed_input, rerun_stale, keep_members
        self.model = exp.resolve_model(model)
        self.device = device or exp.device
        self.root = exp.results_dir(results)
        self.cells = expand_grid(exp, self.model, only)
        self.store = ResultsStore(self.root)
        self.store.check_is_store()  # before anything is written there
        self.data = DataCache(exp.resolve_data_dir(data_dir), self.root)
        self._check_test_sets()
        self.executor = executor
        self.say = echo or (lambda s: tqdm.write(s, file=sys.stderr))
        self.summary = RunSummary(results=self.root, cells=len(self.cells))
        self.env: dict = {}
        self._group: dict[str, tuple] = {}  # config hash -> its member group (cells that train the same members)
        self._sharing: dict[tuple, set[str]] = {}  # member group -> its cells of this run not finished yet
        self._members_used: dict[tuple, set[str]] = {}  # member group -> the members its finished cells used

    def _check_test_sets(self) -> None:
        """Before any cell runs (and in a dry run): no task's test set is a copy of a file its
        cells learn from (:func:`~pet.bench.experiment.test_split_problem` refused the same file
        under the same name when the experiment was loaded; this compares contents)."""
        from ..data import load_task
        from ..data.registry import resolve_data_dir

        tasks = {c.task_ref for c in self.cells if not c.skip}
        where = str(self.exp.path) if self.exp.path else "experiment"
        for i, t in enumerate(self.exp.tasks):
            ref = task_ref(t, self.exp)
            if ref not in tasks:
                continue
            spec = load_task(ref)
            same = test_copies_training_file(spec, resolve_data_dir(self.data.data_dir), t.test_split)
            if same:
                raise ConfigError(f"{where}: $.tasks[{i}].test_split: task '{spec.name}''s test file {same[0]} has the same content as "
                                  f"{same[1]}, which its cells learn from, so the score would not be a test score; "
                                  "fix: test on held-out examples (another test_split, or correct the task's files)")

    # ------------------------------------------------------------------ planning

    def plan(self) -> list[Job]:
        """The cells to compute; records the skipped and done ones in the summary."""
        scan = self.store.scan()
        if scan.damage():
            self.say(f"note: {self.store.path}: ignoring {scan.damage()}; those cells are recomputed")
        # the stored hashes of each (task, method, k, seed) that are not cells of this run: an
        # option changed since they were computed (a selection's grid points and its choice are
        # several cells of one split, all of this run)
        mine = {c.config_hash for c in self.cells}
        old_keys: dict[tuple, str] = {}
        for r in scan.rows:
            if r.get("config_hash") not in mine:
                old_keys[(r.get("task"), r.get("method"), r.get("k"), r.get("seed"))] = r.get("config_hash")
        commit = git_commit()[0] if self.rerun_stale else None
        jobs = []
        for c in self.cells:
            if c.skip:
                self.summary.skipped += 1
                self.summary.outcomes.append(CellOutcome(c, "skipped", error=c.skip))
            elif c.config_hash in scan.complete:
                job = self._stale(c, scan, commit)
                if job is None:
                    self.summary.already_done += 1
                    self.summary.outcomes.append(CellOutcome(c, "done"))
                else:
                    jobs.append(job)
            else:
                jobs.append(Job(c))
                prev = old_keys.get(c.key)
                if prev:
                    self.say(f"note: {c.describe()}: the store holds rows for this cell under another config hash ({prev[:12]}); "
                             f"the config changed, so it is recomputed (reports use the newest rows)")
        for t in sorted({c.task for c in self.cells if c.skip}):
            self.say(f"note: task {t}: {next(c.skip for c in self.cells if c.task == t and c.skip)}; its cells are skipped")
        return jobs

    def _stale(self, c: Cell, scan: StoreScan, commit: str | None) -> Job | None:
        """A job recomputing a complete cell whose rows are stale, or None to keep them."""
        rows = scan.cell_rows(c.config_hash)
        stored = rows[0].get("inputs") if rows else None
        if stored:  # rows written before inputs were recorded cannot be checked: kept
            try:
                changed = changed_inputs(stored, self.data.inputs(c))
            except PetError as e:
                changed = []
                self.say(f"note: {c.describe()}: cannot check its input files ({str(e).splitlines()[0]}); stored rows kept")
            if changed and self.on_changed_input == "refuse":
                path, what = changed[0]
                raise ConfigError(f"{path}: {what} since the stored rows of {c.describe()} were computed; "
                                  "fix: restore the file, or rerun with --on-changed-input recompute")
            if changed:
                return Job(c, scan.complete[c.config_hash], "stale: " + "; ".join(f"{what} ({path})" for path, what in changed))
        if self.rerun_stale and rows:
            made = rows[0].get("git_commit")
            if made != commit or rows[0].get("git_dirty"):
                tag = f"{(made or 'unknown')[:12]}{' with uncommitted changes' if rows[0].get('git_dirty') else ''}"
                return Job(c, scan.complete[c.config_hash], f"stale: made from commit {tag}")
        return None

    def dry_run(self, jobs: list[Job]) -> RunSummary:
        """List every cell (done, to run, stale) and what the cells to run will take, timed by the
        stored cells of the same work (:mod:`pet.bench.eta`); computes nothing."""
        times = CellTimes(expand_grid(self.exp, self.model), self.store.scan(), machine_info(self.device))
        for o in self.summary.outcomes:
            if o.status == "done":
                self.say(f"done     {o.cell.describe()}  {o.cell.config_hash[:12]}")
        for j in jobs:
            what = "stale   " if j.supersedes else "to run  "
            est = times.estimate(j.cell)
            self.say(f"{what} {j.cell.describe()}  {j.cell.config_hash[:12]}  "
                     + (j.reason if j.reason else f"options={json.dumps(j.cell.options, sort_keys=True)}")
                     + (f"  {est.describe()}" if est else ""))
        self.say(f"{len(self.cells)} cells: {self.summary.already_done} done, {len(jobs)} to run, "
                 f"{self.summary.skipped} skipped (no test split); results: {self.root}")
        if jobs:
            self.say(f"time to run: {times.total([j.cell for j in jobs])}")
        return self.summary

    # ------------------------------------------------------------------ running

    def run(self, jobs: list[Job]) -> RunSummary:
        from tqdm.auto import tqdm

        from ..utils.io import atomic_write_json

        self.root.mkdir(parents=True, exist_ok=True)
        write_task_notes(self.store, self.cells)
        atomic_write_json(self.root / "experiments" / f"{self.exp.name}.json",
                          {"file": str(self.exp.path) if self.exp.path else None, "model": self.model, **self.exp.raw})
        self.executor = self.executor if self.executor is not None else LocalExecutor()
        self.env = capture_environment(self.device)
        for j in jobs:
            if j.reason:
                self.say(f"{j.cell.describe()}: {j.reason}; recomputing it")
            group = self._member_group(j.cell)
            if group is not None:
                self._group[j.cell.config_hash] = group
                self._sharing.setdefault(group, set()).add(j.cell.config_hash)
        t_start = time.perf_counter()
        self.bar = tqdm(total=len(jobs), desc=f"bench {self.exp.name}", unit="cell", disable=not self.progress, file=sys.stderr)
        if hasattr(self.executor, "prepare"):  # driver side, before any cell: e.g. write every split here
            self.executor.prepare(self.exp, [j.cell for j in jobs], self.data)
        try:  # each split's choice right after its grid points, from their stored rows
            self._dispatch_all(_choices_after_points(jobs))
        finally:
            self.bar.close()
        s = self.summary
        s.seconds = time.perf_counter() - t_start
        self.say(f"{self.exp.name}: {s.computed} cells computed{f' ({s.recomputed} stale)' if s.recomputed else ''}, "
                 f"{s.already_done} already in the store, {s.failed} failed, {s.skipped} skipped; {s.seconds:.0f}s; results: {self.root}")
        return s

    def _dispatch_all(self, jobs: list[Job]) -> None:
        busy = self._dispatch(jobs, blocking=False)
        held = sum(j.cell.role != "select" for j in busy)
        if held:  # cells another run is computing: wait for it, then re-check (a choice waits for its points)
            self.say(f"{held} cell{'s' if held != 1 else ''} of this run {'are' if held != 1 else 'is'} being computed by another "
                     f"run of {self.root}{_waiting_choices(len(busy) - held)}; "
                     "waiting for it to finish them (Ctrl-C stops this run only; the other one writes them)")
        self._dispatch(busy, blocking=True)

    def _dispatch(self, jobs: Sequence[Job], blocking: bool) -> list[Job]:
        """Lock and submit every cell it can, in order; a split's choice goes as soon as its grid
        points computed here are finished (meanwhile other cells keep the executor full).
        Returns the jobs whose cell another run holds and (first pass) the choices whose points
        are not all stored by then; on the last pass a choice runs regardless and names them."""
        busy: list[Job] = []
        in_flight: dict[Future, tuple[Job, ExitStack, float]] = {}
        queue, waiting = deque(jobs), []  # waiting: choices whose points are in flight here
        held: list[Job] = []  # cells whose member group has a cell in flight here
        try:
            while True:
                ready = [w for w in waiting if not _computing(w, in_flight)]
                ready += [h for h in held if not self._group_in_flight(h, in_flight)]
                for w in reversed(ready):
                    (waiting if w in waiting else held).remove(w)
                    queue.appendleft(w)
                if queue and len(in_flight) < self.executor.capacity:
                    j = queue.popleft()
                    if j.cell.role != "select" and self._group_in_flight(j, in_flight):
                        held.append(j)
                        continue
                    if j.cell.role == "select":
                        if _computing(j, in_flight):
                            waiting.append(j)
                            continue
                        if not self._read_points(j) and not blocking:
                            busy.append(j)
                            continue
                    self._submit(j, in_flight, busy, blocking)
                elif in_flight:
                    self._drain(in_flight)
                else:
                    break
        finally:
            for _, stack, _ in in_flight.values():
                stack.close()
        return busy

    def _submit(self, j: Job, in_flight: dict, busy: list[Job], blocking: bool) -> None:
        stack = ExitStack()
        if not stack.enter_context(self.store.cell_lock(j.cell.config_hash, blocking=blocking)):
            stack.close()
            busy.append(j)
            return
        if self.store.current_write(j.cell.config_hash) != j.supersedes:  # another run wrote it meanwhile
            stack.close()
            self._record(CellOutcome(j.cell, "done"))
            return
        self.bar.set_postfix_str(j.cell.describe(), refresh=True)
        t0 = time.perf_counter()  # before submit: the local executor computes the cell inside it
        fut = self.executor.submit(run_cell, j.cell, self.exp, self.model, self.data, self.device, self.env, self.inner_progress)
        in_flight[fut] = (j, stack, t0)

    def _read_points(self, j: Job) -> bool:
        """Give a split's choice its grid points' stored rows; whether every point has some."""
        wanted = set(j.cell.points)
        j.cell.point_rows = [r for r in self.store.rows() if r.get("config_hash") in wanted]
        return {r["config_hash"] for r in j.cell.point_rows} >= wanted

    def _drain(self, in_flight: dict) -> None:
        done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
        for fut in done:
            j, stack, t0 = in_flight.pop(fut)
            try:
                self._finish(j, fut, time.perf_counter() - t0)
            finally:
                stack.close()

    def _member_group(self, c: Cell) -> tuple | None:
        """What the cells that train the same PET members have in common — split, pool, base
        model, PVPs, selection and the method's member options — or None for a method that files
        no members (the members' fingerprints, not this key, decide what is reused)."""
        from ..methods import get_method

        m = get_method(c.method_name)
        if m.member_options is None:
            return None
        try:
            opts = m.member_options(m.make_options(c.options))
        except PetError:  # the cell fails with its message when it runs
            return None
        return (c.task, c.k, c.seed, c.unlabelled, c.model or self.model, tuple(c.pvps), c.selection, canonical_json(opts))

    def _group_in_flight(self, j: Job, in_flight: dict) -> bool:
        group = self._group.get(j.cell.config_hash)
        return group is not None and any(self._group.get(job.cell.config_hash) == group for job, _, _ in in_flight.values())

    def _release_members(self, outcome: CellOutcome) -> None:
        """After a cell of a member group: note the members its rows name; once the group has no
        cell left in this run, remove them (unless ``keep_members``)."""
        c = outcome.cell
        group = self._group.get(c.config_hash)
        pending = self._sharing.get(group) if group is not None else None
        if pending is None or c.config_hash not in pending:
            return
        pending.discard(c.config_hash)
        used = self._members_used.setdefault(group, set())
        used.update(r["extra"]["member"] for r in outcome.rows if isinstance((r.get("extra") or {}).get("member"), str))
        if pending or self.keep_members or outcome.status == "failed":
            return
        for name in used:
            shutil.rmtree(members_folder(self.store.root) / name, ignore_errors=True)
        used.clear()

    def _record(self, outcome: CellOutcome) -> None:
        self._release_members(outcome)
        s = self.summary
        if outcome.status == "done":
            s.already_done += 1
        elif outcome.status == "computed":
            s.computed += 1
        elif outcome.status == "failed":
            s.failed += 1
        s.outcomes.append(outcome)
        self.bar.update(1)

    def _finish(self, j: Job, fut: Future, secs: float) -> None:
        """Record one computed (or failed) cell; the driver is the only writer of the store."""
        c = j.cell
        try:
            rows = fut.result()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a failing method must not stop the grid (unless --fail-fast)
            msg = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
            self.store.log_error({"task": c.task, "method": c.method, "k": c.k, "seed": c.seed, "config_hash": c.config_hash,
                                  "error": msg, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            self._record(CellOutcome(c, "failed", seconds=secs, error=msg))
            self.say(f"FAILED {c.describe()}: {msg}")
            if self.fail_fast:
                raise
            return
        info = {"task": c.task, "method": c.method, "k": c.k, "seed": c.seed, "seconds": round(secs, 3)}
        written = self.store.append_cell(c.config_hash, rows, info, supersedes=j.supersedes)
        shutil.rmtree(resume_folder(self.store.root, c), ignore_errors=True)  # the cell's rows are in: nothing left to resume
        if written:
            self.summary.recomputed += bool(j.supersedes)
            self._record(CellOutcome(c, "computed", [r.to_dict() if isinstance(r, ResultRow) else r for r in rows], secs))
            self.say(summary_line(c, rows, secs))
        else:
            self._record(CellOutcome(c, "done"))


def run_experiment(exp: Experiment, *, dry_run: bool = False, **kw: Any) -> RunSummary:
    """Run (or, with ``dry_run``, list) every cell of ``exp`` that the results store lacks or
    holds stale rows of. Keyword arguments: those of :class:`Driver` — ``model``, ``data_dir``,
    ``results``, ``only``, ``progress``, ``inner_progress``, ``fail_fast``, ``device``, ``echo``,
    ``executor`` (any object with ``submit(fn, *args) -> Future`` and a ``capacity``; default
    :class:`~pet.bench.executors.LocalExecutor`), ``on_changed_input`` (``recompute`` |
    ``refuse``), ``rerun_stale`` and ``keep_members``."""
    driver = Driver(exp, **kw)
    jobs = driver.plan()
    return driver.dry_run(jobs) if dry_run else driver.run(jobs)
