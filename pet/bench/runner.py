"""Runs an experiment's grid under the few-shot protocol and records rows in the results store.

Protocol (identical for every method of a (task, K, seed)):

- the few-shot split comes from :func:`pet.data.few_shot` with ``out_dir`` set to
  ``<results>/splits/<task>/k<K>-seed<seed>``: the fixed LM-BFF/RLPrompt files where they exist,
  else seeded balanced sampling; either way the split is written there once with SHA-256
  checksums, and every method (and every later run) reads the same verified files. Each row
  records the split's checksum.
- the test set is the task's whole test split (``test_split``; optionally ``test_limit``
  examples drawn with a fixed seed, flagged as a subset in every row and report);
- the unlabelled pool is :func:`pet.data.unlabelled_pool` minus the split's train and dev
  examples, ``unlabelled`` examples at most, shuffled with the cell's seed.

Each cell is computed while holding its cell lock, then all its rows are appended at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..estimator.classifier import PetClassifier
from ..data import load_task
from ..errors import PetError
from ..evaluation.evaluator import evaluate
from ..examples import Example
from ..methods import FitSetup, get_method
from ..metrics import REGRESSION_METRICS, compute_metric
from ..evaluation.selection import choose, folds, parse_selection
from ..prompts.spec import PVP
from ..training.loop import seed_everything
from .executors import LocalExecutor
from .experiment import Cell, Experiment, expand_grid, import_plugins
from .store import ResultsStore, headline

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- environment


def git_commit(start: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding the ``pet`` package, or (None, None)."""
    root = (start or Path(__file__).resolve().parents[2])
    if not (root / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=30
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def machine_info(device: str | None) -> dict:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device or "auto",
    }
    try:
        info["sched_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    return info


def versions() -> dict:
    from .. import __version__
    from ..utils.versions import package_versions

    return {"pet": __version__, **package_versions()}


class PeakMemory:
    """Samples this process's resident memory (and CUDA peak) while a cell runs."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss_mb() -> float:
        try:
            with open("/proc/self/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.peak_rss_mb = self.rss_mb()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        except ImportError:  # pragma: no cover
            pass
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())

    @property
    def cuda_peak_mb(self) -> float | None:
        try:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated() / 2**20
        except ImportError:  # pragma: no cover
            pass
        return None


# ----------------------------------------------------------------------------- data


def examples_checksum(examples: Sequence[Example]) -> str:
    """SHA-256 of the examples' texts and labels (order-sensitive)."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.fields, e.label], sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class SplitInfo:
    train: list[Example]
    dev: list[Example]
    checksum: str  # SHA-256 of the split folder's SHA256SUMS file (covers train.jsonl and dev.jsonl)
    source: str  # fixed | sampled
    folder: str  # relative to the results folder


def split_folder(results: Path, task: str, k: int | None, seed: int, total: bool = False, balanced: bool = False) -> Path:
    if total:
        return results / "splits" / task / (f"total{k}-balanced" if balanced else f"total{k}-seed{seed}")
    return results / "splits" / task / (f"k{k}-seed{seed}" if k is not None else f"fixed-seed{seed}")


def prepare_split(task: str, data_dir: str | None, k: int | None, seed: int, results: Path, name: str | None = None,
                  total: bool = False, balanced: bool = False) -> SplitInfo:
    """The cell's few-shot split, created once under the results folder (under a file lock) and
    read back, checksum-verified, by every method."""
    import fcntl

    from ..data.fewshot import CHECKSUM_FILE, MANIFEST_FILE, few_shot

    d = split_folder(results, name or task, k, seed, total, balanced)
    d.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(d) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        train, dev = few_shot(task, data_dir, k=k, seed=seed, out_dir=d, total=k if total else None, balanced=balanced)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    checksum = hashlib.sha256((d / CHECKSUM_FILE).read_bytes()).hexdigest()
    source = json.loads((d / MANIFEST_FILE).read_text(encoding="utf-8")).get("source", "")
    return SplitInfo(train, dev, checksum, source, str(d.relative_to(results)))


@dataclass
class TestInfo:
    examples: list[Example]
    split: str
    n_full: int
    limit: int | None
    subset: bool  # a subset of the official test set (task-level flag, or test_limit applied)
    note: str
    checksum: str


def prepare_test(task: str, data_dir: str | None, split: str, limit: int | None) -> TestInfo:
    from ..data import load_examples, load_task

    spec = load_task(task)
    exs = load_examples(spec, split, data_dir)
    n_full = len(exs)
    if limit is not None and limit < n_full:
        idx = sorted(random.Random(0).sample(range(n_full), limit))
        exs = [exs[i] for i in idx]
    note = spec.test_note
    split_notes = [fs.note for fs in spec.splits.get(split, ()) if fs.note]
    if split != "test" and split_notes:
        note = f"split '{split}': {split_notes[0]}"
    subset = bool(spec.test_subset) or split != "test" or len(exs) < n_full
    return TestInfo(exs, split, n_full, limit, subset, note, examples_checksum(exs))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    return str(x)


# ----------------------------------------------------------------------------- running


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
    seconds: float = 0.0
    outcomes: list[CellOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0


class _DataCache:
    def __init__(self, data_dir: str | None, results: Path):
        self.data_dir = data_dir
        self.results = results
        self._splits: dict = {}
        self._tests: dict = {}
        self._pools: dict = {}

    def split(self, cell: Cell) -> SplitInfo:
        balanced = cell.config.get("k_mode") == "total_balanced"  # PET's first |T|/|L| per label
        key = (cell.task, cell.k, cell.seed, cell.k_total, balanced)
        if key not in self._splits:
            self._splits[key] = prepare_split(cell.task_ref or cell.task, self.data_dir, cell.k, cell.seed, self.results, name=cell.task,
                                              total=cell.k_total, balanced=balanced)
        return self._splits[key]

    def test(self, cell: Cell) -> TestInfo:
        key = (cell.task, cell.test_split, cell.test_limit)
        if key not in self._tests:
            self._tests = {key: prepare_test(cell.task_ref or cell.task, self.data_dir, cell.test_split, cell.test_limit)}  # keep one task in memory
        return self._tests[key]

    def pool(self, cell: Cell, split: SplitInfo) -> tuple[list[Example], str]:
        from ..data import unlabelled_pool

        key = (cell.task, cell.k, cell.seed, cell.unlabelled)
        if key not in self._pools:
            if cell.unlabelled == 0:
                pool: list[Example] = []
            else:
                pool = unlabelled_pool(cell.task_ref or cell.task, self.data_dir, exclude=[*split.train, *split.dev], size=cell.unlabelled, seed=cell.seed)
            self._pools = {key: (pool, examples_checksum(pool))}
        return self._pools[key]


def run_cell(
    cell: Cell,
    exp: Experiment,
    model: str,
    data: _DataCache,
    device: str | None,
    env: dict,
    progress: bool = False,
) -> list[dict]:
    """Compute one cell; one row per stage. The method is fitted on the split's training
    examples and the unlabelled pool (with selection ``dev``, the split's dev set scores its
    checkpoints); the test set is read only once a model is fitted, and no choice reads it.

    Roles (``Cell.role``): ``single`` — fit, evaluate, rows ``selected``; ``point`` — one grid
    point of a selection: with ``dev``, fit + dev and test rows (``dev_score``); with
    ``cv``/``multisplit``, the mean held-out fold score per stage (test rows only for
    ``:mean-of-folds``: the mean of the fold models' test scores); ``select`` —
    choose per stage the point with the best dev score (``pet.evaluation.selection.choose``): with ``dev``
    its rows, with ``cv``/``multisplit`` the chosen point re-fitted on train ∪ dev and tested once
    (``:refit``) or, FewNLU's ``:mean-of-folds``, the chosen point's row (its fold models' mean test score).
    """
    task = load_task(cell.task_ref or cell.task)
    split = data.split(cell)
    pool, pool_sum = data.pool(cell, split)
    pvps = [PVP.from_dict(d) for d in cell.config["pvps"]]  # exactly the PVPs the config hash covers
    method = get_method(cell.method_name)
    selection = parse_selection(cell.selection)
    setup = FitSetup(model=model, labels=list(task.label_ids), pvps=pvps, seed=cell.seed, max_length=task.max_length,
                     device=device, progress=progress, metric=task_metric(task), regression=task.regression)
    t0 = time.perf_counter()
    extra_fields: dict[str, Any] = {"selection": str(selection), "grid_point": cell.grid_point or None}
    with PeakMemory() as mem:
        if cell.role == "select":
            if selection.refits:
                results, fitted, test = _refit_chosen(cell, method, split, pool, setup, task, data)
            else:  # dev, and FewNLU's cv:N:mean-of-folds (its points already hold their fold models' test scores)
                return _chosen_rows(cell, selection)
        elif cell.role == "point" and selection.uses_folds:
            fitted = None
            results, test = _cross_validate(cell, method, split, pool, setup, task, selection, data)
        else:
            seed_everything(cell.seed)
            dev = split.dev if selection.mode == "dev" else []
            fitted = method.fit(split.train, pool, cell.options, dataclasses.replace(setup, dev=dev))
            dev_rows = {r["key"]: r for r in evaluate(fitted, dev, task, split="dev")} if dev else {}
            test = data.test(cell)  # read only once the method is fitted
            results = evaluate(fitted, test.examples, task, split=test.split, progress=progress)
            for r in results:
                r["dev_score"] = dev_rows[r["key"]]["score"] if r["key"] in dev_rows else None
                r["selected"] = cell.role == "single"
    cell_seconds = time.perf_counter() - t0
    if exp.save_models and fitted is not None and cell.role != "point":
        PetClassifier.from_fitted(fitted).save(data.results / "models" / cell.config_hash[:16], overwrite=True, metrics=results)

    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    cuda_peak = mem.cuda_peak_mb
    rows = []
    for r in results:
        rows.append(
            {
                "task": cell.task,
                "method": cell.method,
                "method_name": cell.method_name,
                "stage": r["stage"],
                "pvp": r["pvp"],
                "key": r["key"],
                "final": r["final"],
                "k": cell.k,
                "seed": cell.seed,
                "score": r["score"],
                "metric": r["metric"],
                "metrics": r["metrics"],
                "dev_score": r["dev_score"],
                "selected": r["selected"],
                **extra_fields,
                **({"grid_point": r["grid_point_chosen"]} if "grid_point_chosen" in r else {}),
                **({"grid": r["grid"]} if "grid" in r else {}),
                "train_seconds": r["train_seconds"],
                "eval_examples_per_second": r["eval_examples_per_second"],
                "peak_memory_mb": round(cuda_peak if cuda_peak else mem.peak_rss_mb, 1),
                "peak_memory_source": "cuda_max_allocated" if cuda_peak else "process_rss",
                "cell_peak_rss_mb": round(mem.peak_rss_mb, 1),  # sampled while the cell ran
                "trained_parameters": r["trained_parameters"],
                "cell_seconds": round(cell_seconds, 3),
                "fit_seconds": round(fitted.fit_seconds, 3) if fitted is not None else None,
                "model": model,
                "model_id": cell.config["model"],
                "options": cell.options if not r.get("chosen_options") else r["chosen_options"],
                "pvps": cell.pvps,
                "split": {
                    "source": split.source,
                    "checksum": split.checksum,
                    "folder": split.folder,
                    "n_train": len(split.train),
                    "n_dev": len(split.dev),
                },
                "test": None if test is None else {
                    "split": test.split,
                    "n": len(test.examples),
                    "n_full": test.n_full,
                    "limit": test.limit,
                    "subset": test.subset,
                    "note": test.note,
                    "checksum": test.checksum,
                },
                "unlabelled": {"requested": cell.unlabelled, "n": len(pool), "checksum": pool_sum},
                "experiment": exp.name,
                "versions": env["versions"],
                "git_commit": env["git_commit"],
                "git_dirty": env["git_dirty"],
                "machine": env["machine"],
                "timestamp": stamp,
                "extra": _jsonable(r["extra"]),
            }
        )
    return rows


def task_metric(task) -> Callable[[list, list], float]:
    """The task's main metric as ``metric(gold, pred)`` over label ids (what dev checkpoints are
    scored in); a regression task's checkpoints are scored by the accuracy of its binarised labels."""
    name = "accuracy" if task.metric in REGRESSION_METRICS else task.metric

    def metric(gold: list, pred: list) -> float:
        return compute_metric(name, gold, pred, labels=task.label_ids, pos_label=task.positive_label)

    return metric


def _cross_validate(cell: Cell, method, split: SplitInfo, pool: list[Example], setup: FitSetup, task, selection,
                    data: _DataCache) -> tuple[list[dict], TestInfo | None]:
    """One grid point under cv/multisplit: fit on each fold's training part, score its held-out
    part; per stage the mean held-out score (``dev_score``) and the fold scores. With the refit
    variant no test rows; with FewNLU's ``mean-of-folds`` every fold model is also tested once
    it is fitted and the row's ``score`` is the mean of the fold models' test scores (the choice
    still reads only ``dev_score``)."""
    per_key: dict[str, list[dict]] = {}
    tested: dict[str, list[float]] = {}
    test = None
    for i, (fit_part, held_out) in enumerate(folds([*split.train, *split.dev], selection, cell.seed)):
        seed_everything(cell.seed)
        fitted = method.fit(fit_part, pool, cell.options, setup)
        for r in evaluate(fitted, held_out, task, split=f"fold{i}"):
            per_key.setdefault(r["key"], []).append(r)
        if not selection.refits:
            test = data.test(cell)  # read only once this fold's model is fitted
            for r in evaluate(fitted, test.examples, task, split=test.split):
                tested.setdefault(r["key"], []).append(r["score"])
    out = []
    for key, rs in per_key.items():
        scores = [r["score"] for r in rs]
        extra = {**rs[0]["extra"], "fold_scores": scores, "fold_size": [r["n"] for r in rs]}
        score = None
        if key in tested:
            extra["fold_test_scores"] = tested[key]
            score = float(np.mean(tested[key]))
        out.append({**rs[0], "score": score, "metrics": {}, "dev_score": float(np.mean(scores)), "selected": False,
                    "train_seconds": float(sum(r["train_seconds"] for r in rs)), "eval_examples_per_second": 0.0,
                    "extra": extra})
    return out, test


def _grid(cell: Cell) -> tuple[list[list[dict]], list[dict]]:
    """A select cell's point rows grouped by grid point (in grid order), and the points' options."""
    by_hash: dict[str, list[dict]] = {}
    for r in cell.point_rows:
        by_hash.setdefault(r["config_hash"], []).append(r)
    missing = [h for h in cell.points if h not in by_hash]
    if missing:
        raise PetError(f"{cell.describe()}: {len(missing)} of its {len(cell.points)} grid points have no stored rows "
                       f"(failed or not run: {missing[0][:12]}…); fix: see errors.jsonl, then rerun to complete the grid")
    points = [by_hash[h] for h in cell.points]
    return points, [p[0].get("grid_point") or {} for p in points]


def _chosen_rows(cell: Cell, selection) -> list[dict]:
    """selection dev: per stage, the stored row of the grid point with the best dev score."""
    points, opts = _grid(cell)
    chosen = choose(points)
    out = []
    for key, i in chosen.items():
        row = next(r for r in points[i] if r["key"] == key)
        grid = [{"grid_point": o, "dev_score": next((r["dev_score"] for r in p if r["key"] == key), None)} for o, p in zip(opts, points)]
        clean = {k: v for k, v in row.items() if k not in ("type", "write_id", "config_hash")}
        out.append({**clean, "selected": True, "grid": grid, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return out


def _refit_chosen(cell: Cell, method, split: SplitInfo, pool: list[Example], setup: FitSetup, task, data: _DataCache):
    """selection cv/multisplit: re-fit each chosen point on train ∪ dev, test it once."""
    points, opts = _grid(cell)
    chosen = choose(points)
    results, fitted, test = [], None, None
    for i in sorted(set(chosen.values())):
        seed_everything(cell.seed)
        fitted = method.fit([*split.train, *split.dev], pool, {**cell.options, **opts[i]}, setup)
        test = data.test(cell)  # only now: the choice is made
        for r in evaluate(fitted, test.examples, task, split=test.split):
            if chosen.get(r["key"]) != i:
                continue
            grid = [{"grid_point": o, "dev_score": next((x["dev_score"] for x in p if x["key"] == r["key"]), None)} for o, p in zip(opts, points)]
            results.append({**r, "dev_score": grid[i]["dev_score"], "selected": True, "grid": grid,
                            "chosen_options": {**cell.options, **opts[i]}, "grid_point_chosen": opts[i]})
    return results, fitted, test


def _fmt_score(x: float) -> str:
    return f"{100 * x:.1f}"


def summary_line(cell: Cell, rows: list[dict], seconds: float) -> str:
    h = headline(rows) or {}
    tested = [r for r in rows if r.get("score") is not None]
    best = max(tested, key=lambda r: r["score"]) if tested else {}
    params = max((r["trained_parameters"] for r in rows), default=0)
    eps = [r["eval_examples_per_second"] for r in rows if r["eval_examples_per_second"]]
    mem = max((r["peak_memory_mb"] for r in rows), default=0.0)
    role = {"point": f" point {cell.grid_point}", "select": " chosen"}.get(cell.role, "")
    score = f"{h.get('metric', '?')} {_fmt_score(h['score'])}" if h.get("score") is not None else "no test rows"
    parts = [
        f"{cell.describe()}{role}: {score} ({h.get('stage')})",
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


def write_task_notes(results: Path, exp: Experiment, cells: Sequence[Cell], store: ResultsStore) -> None:
    """``<results>/tasks.json``: for every task of the experiment, which test split is used and
    whether it is full, a subset, or missing here (read by the report)."""
    from ..utils.io import atomic_write_json
    from ..data import load_task

    with store._locked():
        path = results / "tasks.json"
        try:
            notes = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except json.JSONDecodeError:
            notes = {}
        for c in cells:
            spec = load_task(c.task_ref or c.task)
            notes[c.task] = {
                "test_split": c.test_split,
                "has_test": c.skip is None,
                "test_subset": bool(spec.test_subset) or c.test_split != "test" or c.test_limit is not None,
                "test_limit": c.test_limit,
                "test_note": spec.test_note,
                "unlabelled_note": spec.unlabelled_note,
                "metric": spec.metric,
                "labels": len(spec.labels),
            }
        atomic_write_json(path, notes)


def run_experiment(
    exp: Experiment,
    *,
    model: str | None = None,
    data_dir: str | None = None,
    results: str | Path | None = None,
    only: Sequence[str] = (),
    dry_run: bool = False,
    progress: bool = True,
    inner_progress: bool = False,
    fail_fast: bool = False,
    device: str | None = None,
    echo: Callable[[str], None] | None = None,
    executor: Any = None,
) -> RunSummary:
    """Run (or, with ``dry_run``, list) every cell of ``exp`` not yet in the results store.

    ``executor`` computes the cells: any object with ``submit(fn, cell) -> Future`` and a
    ``capacity`` (cells in flight at once); default :class:`LocalExecutor` (one at a time, in
    this process). The driver alone locks cells and writes the store."""
    from tqdm.auto import tqdm

    import_plugins(exp)
    model_name = exp.resolve_model(model)
    data = exp.resolve_data_dir(data_dir)
    device = device or exp.device
    root = exp.results_dir(results)
    cells = expand_grid(exp, model_name, only)
    store = ResultsStore(root)
    scan = store.scan()
    done = set(scan.complete)
    summary = RunSummary(results=root, cells=len(cells))
    say = echo or (lambda s: tqdm.write(s, file=sys.stderr))

    if scan.partial_tail or scan.incomplete_writes or scan.corrupt_lines:
        say(
            f"note: {store.path}: ignoring an interrupted write ({scan.incomplete_writes} rows without their cell marker, "
            f"{scan.corrupt_lines} unreadable lines{', a partial last line' if scan.partial_tail else ''}); those cells are recomputed"
        )
    old_keys: dict[tuple, str] = {}
    for r in scan.rows:
        old_keys[(r.get("task"), r.get("method"), r.get("k"), r.get("seed"))] = r.get("config_hash")
    todo = []
    for c in cells:
        if c.skip:
            summary.skipped += 1
            summary.outcomes.append(CellOutcome(c, "skipped", error=c.skip))
        elif c.config_hash in done:
            summary.already_done += 1
            summary.outcomes.append(CellOutcome(c, "done"))
        else:
            todo.append(c)
            prev = old_keys.get(c.key)
            if prev and prev != c.config_hash:
                say(f"note: {c.describe()}: the store holds rows for this cell under another config hash ({prev[:12]}); "
                    f"the config changed, so it is recomputed (reports use the newest rows)")
    skipped_tasks = sorted({c.task for c in cells if c.skip})
    for t in skipped_tasks:
        reason = next(c.skip for c in cells if c.task == t and c.skip)
        say(f"note: task {t}: {reason}; its cells are skipped")

    if dry_run:
        for o in summary.outcomes:
            if o.status == "done":
                say(f"done     {o.cell.describe()}  {o.cell.config_hash[:12]}")
        for c in todo:
            say(f"to run   {c.describe()}  {c.config_hash[:12]}  options={json.dumps(c.options, sort_keys=True)}")
        say(f"{len(cells)} cells: {summary.already_done} done, {len(todo)} to run, {summary.skipped} skipped (no test split); results: {root}")
        return summary

    root.mkdir(parents=True, exist_ok=True)
    write_task_notes(root, exp, cells, store)
    from ..utils.io import atomic_write_json

    atomic_write_json(root / "experiments" / f"{exp.name}.json", {"file": str(exp.path) if exp.path else None, "model": model_name, **exp.raw})
    commit, dirty = git_commit()
    env = {"versions": versions(), "git_commit": commit, "git_dirty": dirty, "machine": machine_info(device)}
    data_cache = _DataCache(data, root)
    t_start = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"bench {exp.name}", unit="cell", disable=not progress, file=sys.stderr)

    def finish(c: Cell, fut: Future, t0: float) -> None:
        """Record one computed (or failed) cell; the driver is the only writer of the store."""
        secs = time.perf_counter() - t0
        try:
            rows = fut.result()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a failing method must not stop the grid (unless --fail-fast)
            msg = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
            store.log_error(
                {
                    "task": c.task, "method": c.method, "k": c.k, "seed": c.seed, "config_hash": c.config_hash,
                    "error": msg, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            )
            summary.failed += 1
            summary.outcomes.append(CellOutcome(c, "failed", seconds=secs, error=msg))
            say(f"FAILED {c.describe()}: {msg}")
            if fail_fast:
                raise
            return
        wrote = store.append_cell(
            c.config_hash, rows, {"task": c.task, "method": c.method, "k": c.k, "seed": c.seed, "seconds": round(secs, 3)}
        )
        if wrote:
            summary.computed += 1
            summary.outcomes.append(CellOutcome(c, "computed", rows, secs))
            say(summary_line(c, rows, secs))
        else:
            summary.already_done += 1
            summary.outcomes.append(CellOutcome(c, "done"))

    def dispatch(cells: Sequence[Cell], blocking: bool) -> list[Cell]:
        """Lock and submit every cell it can; returns the cells another run holds."""
        busy: list[Cell] = []
        in_flight: dict[Future, tuple[Cell, ExitStack, float]] = {}
        try:
            for c in cells:
                stack = ExitStack()
                if not stack.enter_context(store.cell_lock(c.config_hash, blocking=blocking)):
                    stack.close()
                    busy.append(c)
                    continue
                if c.config_hash in store.completed_hashes():  # another run finished it meanwhile
                    stack.close()
                    summary.already_done += 1
                    summary.outcomes.append(CellOutcome(c, "done"))
                    bar.update(1)
                    continue
                bar.set_postfix_str(c.describe(), refresh=True)
                in_flight[pool.submit(compute, c)] = (c, stack, time.perf_counter())
                while len(in_flight) >= pool.capacity:
                    _drain(in_flight, wait_for_one=True)
            while in_flight:
                _drain(in_flight, wait_for_one=True)
        finally:
            for _, stack, _ in in_flight.values():
                stack.close()
        return busy

    def _drain(in_flight: dict, wait_for_one: bool) -> None:
        done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
        for fut in done:
            c, stack, t0 = in_flight.pop(fut)
            try:
                finish(c, fut, t0)
            finally:
                stack.close()
                bar.update(1)

    def compute(c: Cell) -> list[dict]:
        return run_cell(c, exp, model_name, data_cache, device, env, progress=inner_progress)

    pool = executor if executor is not None else LocalExecutor()
    if hasattr(pool, "prepare"):  # driver side, before any cell: e.g. write every split here (see pet.bench.executors)
        pool.prepare(exp, todo, data_cache)
    try:
        # grid points (and plain cells) first; then each split's choice, from its points' stored rows
        first = [c for c in todo if c.role != "select"]
        busy = dispatch(first, blocking=False)
        dispatch(busy, blocking=True)  # cells another run was computing: wait for it, then re-check
        choices = [c for c in todo if c.role == "select"]
        if choices:
            stored = store.rows()
            for c in choices:
                wanted = set(c.points)
                c.point_rows = [r for r in stored if r.get("config_hash") in wanted]
            busy = dispatch(choices, blocking=False)
            dispatch(busy, blocking=True)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - t_start
    say(
        f"{exp.name}: {summary.computed} cells computed, {summary.already_done} already in the store, "
        f"{summary.failed} failed, {summary.skipped} skipped; {summary.seconds:.0f}s; results: {root}"
    )
    return summary
