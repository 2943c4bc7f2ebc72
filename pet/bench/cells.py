"""Computing one cell: fit the method on the split, test it, one :class:`ResultRow` per stage.

The method is fitted on the split's training examples and the unlabelled pool (with selection
``dev``, the split's dev set scores its checkpoints); the test set is read only once a model is
fitted, and no choice reads it. Roles (``Cell.role``):

- ``single`` — fit, evaluate, rows ``selected``;
- ``point`` — one grid point of a selection: with ``dev``, fit + dev and test rows
  (``dev_score``); with ``cv``/``multisplit``, the mean held-out fold score per stage (no test rows);
- ``select`` — choose per stage the point with the best dev score
  (:func:`pet.evaluation.selection.choose`): with ``dev`` its stored rows, with
  ``cv``/``multisplit`` the chosen point re-fitted on train ∪ dev and tested once.

:func:`run_cell` is a pure function of (cell, experiment, data): it runs in an executor's
worker; the driver alone writes the store.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data import load_task
from ..errors import PetError
from ..estimator.classifier import PetClassifier
from ..evaluation.evaluator import evaluate, without_predictions
from ..evaluation.selection import choose, folds, parse_selection
from ..examples import Example
from ..methods import FitSetup, get_method
from ..metrics import REGRESSION_METRICS, compute_metric
from ..prompts.spec import PVP
from ..training.loop import seed_everything
from .environment import PeakMemory
from .grid import Cell
from .inputs import checksums
from .rows import ResultRow, encode_predictions
from .splits import DataCache, SplitInfo, TestInfo


def task_metric(task) -> Callable[[list, list], float]:
    """The task's main metric as ``metric(gold, pred)`` over label ids (what dev checkpoints are
    scored in); a regression task's checkpoints are scored by the accuracy of its binarised labels."""
    name = "accuracy" if task.metric in REGRESSION_METRICS else task.metric

    def metric(gold: list, pred: list) -> float:
        return compute_metric(name, gold, pred, labels=task.label_ids, pos_label=task.positive_label)

    return metric


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


def _test_rows(fitted, examples: list[Example], task, split: str, progress: bool = False) -> list[dict]:
    """``evaluate`` on the test set, every row with its per-example ``pred`` / ``gold`` indices."""
    rows = evaluate(fitted, examples, task, split=split, progress=progress)
    return rows


def _predictions(r: dict, labels: list[str]) -> dict | None:
    if r.get("pred") is None:
        return None
    return encode_predictions(labels, r["pred"], r["gold"], r.get("pred_score"), r.get("gold_score"))


@dataclass
class _Outcome:
    """What computing a cell produced, before it becomes rows."""

    results: list[dict]
    fitted: Any
    test: TestInfo | None
    seconds: float
    mem: PeakMemory


def resume_folder(results: str | Path, cell: Cell) -> Path:
    """Where a cell's method keeps what it trained so far (``FitSetup.resume_dir``): a cell
    killed before its rows were written resumes from there; the driver removes the folder once
    the rows are in the store."""
    return Path(results) / "partial" / cell.config_hash[:16]


def members_folder(results: str | Path) -> Path:
    """The store's shared folder of trained PET members (``FitSetup.members_dir``): PET,
    pet-setfit and iPET cells of one split file each member there under its fingerprint and load
    the ones another cell trained (:mod:`pet.methods.resume`); the driver removes a split's
    members once no cell of its run can use them (``--keep-members`` keeps them)."""
    return Path(results) / "partial" / "members"


def run_cell(cell: Cell, exp: Any, model: str | None, data: DataCache, device: str | None, env: dict,
             progress: bool = False) -> list[ResultRow]:
    """Compute one cell; one row per stage (see the module docstring for the roles).

    ``model``: the model to load when the cell names none (``Cell.model`` wins)."""
    task = load_task(cell.task_ref or cell.task)
    inputs = checksums(data.inputs(cell))  # before anything is read
    split = data.split(cell)
    pool, pool_sum = data.pool(cell, split)
    pvps = [PVP.from_dict(d) for d in cell.config["pvps"]]  # exactly the PVPs the config hash covers
    method = get_method(cell.method_name)
    selection = parse_selection(cell.selection)
    setup = FitSetup(model=cell.model or model, labels=list(task.label_ids), pvps=pvps, seed=cell.seed, max_length=task.max_length,
                     device=device, progress=progress, metric=task_metric(task), regression=task.regression,
                     resume_dir=resume_folder(data.results, cell), members_dir=members_folder(data.results))
    if cell.role == "select" and not selection.refits:
        # dev, and FewNLU's cv:N:mean-of-folds (its points already hold their fold models' mean test score)
        return _chosen_rows(cell)
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        if cell.role == "select":
            results, fitted, test = _refit_chosen(cell, method, split, pool, setup, task, data)
        elif cell.role == "point" and selection.uses_folds:
            fitted = None
            results, test = _cross_validate(cell, method, split, pool, setup, task, selection, data)
        else:
            results, fitted, test = _fit_and_test(cell, method, split, pool, setup, task, data, selection, progress)
    out = _Outcome(results, fitted, test, time.perf_counter() - t0, mem)
    if exp.save_models and fitted is not None and cell.role != "point":
        PetClassifier.from_fitted(fitted).save(data.results / "models" / cell.config_hash[:16], overwrite=True, metrics=results)
    return [_row(cell, exp, r, out, split, (pool, pool_sum), inputs, env, str(selection), setup.model, task) for r in results]


def _fit_and_test(cell: Cell, method, split: SplitInfo, pool, setup: FitSetup, task, data: DataCache, selection, progress: bool):
    seed_everything(cell.seed)
    dev = split.dev if selection.mode == "dev" else []
    fitted = method.fit(split.train, pool, cell.options, dataclasses.replace(setup, dev=dev))
    dev_rows = {r["key"]: r for r in evaluate(fitted, dev, task, split="dev")} if dev else {}
    test = data.test(cell)  # read only once the method is fitted
    results = _test_rows(fitted, test.examples, task, test.split, progress)
    for r in results:
        r["dev_score"] = dev_rows[r["key"]]["score"] if r["key"] in dev_rows else None
        r["selected"] = cell.role == "single"
    return results, fitted, test


def _row(cell: Cell, exp: Any, r: dict, out: _Outcome, split: SplitInfo, pool: tuple[list, str], inputs: dict,
         env: dict, selection: str, model: str, task) -> ResultRow:
    """One evaluation row of a computed cell as a stored row."""
    cuda_peak, test = out.mem.cuda_peak_mb, out.test
    return ResultRow(
        task=cell.task, method=cell.method, method_name=cell.method_name, stage=r["stage"], pvp=r["pvp"], key=r["key"],
        final=r["final"], k=cell.k, seed=cell.seed, score=r["score"], metric=r["metric"], metrics=r["metrics"],
        dev_score=r["dev_score"], selected=r["selected"], selection=selection,
        grid_point=r.get("grid_point_chosen", cell.grid_point or None), grid=r.get("grid"),
        train_seconds=r["train_seconds"], eval_examples_per_second=r["eval_examples_per_second"],
        peak_memory_mb=round(cuda_peak if cuda_peak else out.mem.peak_rss_mb, 1),
        peak_memory_source="cuda_max_allocated" if cuda_peak else "process_rss",
        cell_peak_rss_mb=round(out.mem.peak_rss_mb, 1),  # sampled while the cell ran
        trained_parameters=r["trained_parameters"], cell_seconds=round(out.seconds, 3),
        fit_seconds=round(out.fitted.fit_seconds, 3) if out.fitted is not None else None,
        model=model, model_id=cell.config["model"], options=r.get("chosen_options") or cell.options, pvps=cell.pvps,
        resolved_options=_jsonable(get_method(cell.method_name).make_options(r.get("chosen_options") or cell.options).to_dict()),
        split={"source": split.source, "checksum": split.checksum, "folder": split.folder, "n_train": len(split.train), "n_dev": len(split.dev)},
        test=None if test is None else {"split": test.split, "n": len(test.examples), "n_full": test.n_full, "limit": test.limit,
                                        "subset": test.subset, "note": test.note, "checksum": test.checksum},
        unlabelled={"requested": cell.unlabelled, "n": len(pool[0]), "checksum": pool[1]},
        inputs=inputs, predictions=_predictions(r, list(task.label_ids) if out.fitted is None else list(out.fitted.labels)),
        experiment=exp.name, versions=env["versions"], pet_version=env.get("pet_version") or env["versions"].get("pet"),
        git_commit=env["git_commit"], git_dirty=env["git_dirty"], machine=env["machine"],
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), extra=_jsonable(r["extra"]),
    )


def _cross_validate(cell: Cell, method, split: SplitInfo, pool: list[Example], setup: FitSetup, task, selection,
                    data: DataCache) -> tuple[list[dict], Any]:
    """One grid point under cv/multisplit: fit on each fold's training part, score its held-out
    part; per stage the mean held-out score (``dev_score``) and the fold scores. With the refit
    variant no test rows; with FewNLU's ``mean-of-folds`` every fold model is also tested once and
    the row's score is the mean of the fold models' test scores."""
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
    return [_fold_row(key, rs, tested.get(key)) for key, rs in per_key.items()], test


def _fold_row(key: str, rs: list[dict], test_scores: list[float] | None) -> dict:
    scores = [r["score"] for r in rs]
    extra = {**rs[0]["extra"], "fold_scores": scores, "fold_size": [r["n"] for r in rs]}
    if test_scores is not None:
        extra["fold_test_scores"] = test_scores
    return {**without_predictions(rs[0]), "score": float(np.mean(test_scores)) if test_scores else None, "metrics": {},
            "dev_score": float(np.mean(scores)), "selected": False, "train_seconds": float(sum(r["train_seconds"] for r in rs)),
            "eval_examples_per_second": 0.0, "extra": extra}


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


def _grid_scores(key: str, opts: list[dict], points: list[list[dict]]) -> list[dict]:
    return [{"grid_point": o, "dev_score": next((x["dev_score"] for x in p if x["key"] == key), None)} for o, p in zip(opts, points)]


def _chosen_rows(cell: Cell) -> list[ResultRow]:
    """selection dev: per stage, the stored row of the grid point with the best dev score."""
    points, opts = _grid(cell)
    out = []
    for key, i in choose(points).items():
        row = next(r for r in points[i] if r["key"] == key)
        clean = {k: v for k, v in row.items() if k not in ("type", "write_id", "config_hash")}
        out.append(ResultRow.from_dict({**clean, "selected": True, "grid": _grid_scores(key, opts, points),
                                        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
    return out


def _refit_chosen(cell: Cell, method, split: SplitInfo, pool: list[Example], setup: FitSetup, task, data: DataCache):
    """selection cv/multisplit: re-fit each chosen point on train ∪ dev, test it once."""
    points, opts = _grid(cell)
    chosen = choose(points)
    results, fitted, test = [], None, None
    for i in sorted(set(chosen.values())):
        seed_everything(cell.seed)
        fitted = method.fit([*split.train, *split.dev], pool, {**cell.options, **opts[i]}, setup)
        test = data.test(cell)  # only now: the choice is made
        for r in _test_rows(fitted, test.examples, task, test.split):
            if chosen.get(r["key"]) != i:
                continue
            grid = _grid_scores(r["key"], opts, points)
            results.append({**r, "dev_score": grid[i]["dev_score"], "selected": True, "grid": grid,
                            "chosen_options": {**cell.options, **opts[i]}, "grid_point_chosen": opts[i]})
    return results, fitted, test
