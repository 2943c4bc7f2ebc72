"""Reports over a results folder: load the stored rows, build the tables, write Markdown, CSVs
and plots.

- loading (:func:`load_rows`): every stored row through :class:`pet.bench.rows.ResultRow`
  (rows of every schema), the newest config of each cell, grid points of a model selection set
  aside;
- tables: :mod:`pet.bench.tables`; intervals and paired comparisons: :mod:`pet.bench.stats`;
  Markdown: :mod:`pet.bench.markdown`; plots: :mod:`pet.bench.plots`;
- provenance (:func:`provenance`): which git commits the rows come from, and a warning (in the
  Markdown and as a :class:`ProvenanceWarning`) when the headline rows mix commits, come from
  a dirty working tree, or were evaluated on different test sets of one task.

Sections: run metadata; test sets (full / subset / missing per task); headline results per task
x method x K with 95% intervals; model selection; every stage; single PVPs vs their ensemble;
hard vs soft prompts; paired comparisons; the stages of one method paired
(:mod:`pet.bench.stage_pairs`); gains over the trained baselines; cost; published numbers side
by side (clearly labelled as another base model).
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..utils.io import atomic_directory, check_output_folder, check_output_not_input
from . import markdown, tables
from .glance import glance_table
from .plots import write_plots
from .grid import canonical_json
from .rows import ResultRow
from .stage_pairs import stage_pairs_table
from .stats import RESAMPLES
from .store import ResultsStore
from .tables import KEY, k_label, load_references, shipped_references  # noqa: F401  (shipped_references: used by pet bench)


class ProvenanceWarning(UserWarning):
    """The headline rows mix git commits, dirty working trees or test sets."""


def _pd():
    import pandas as pd

    return pd


_NUMBER = (int, float)
#: The stored row fields the report computes with -> the JSON types they may have (None is
#: allowed, except for :data:`_REQUIRED`); a row whose field has another type is left out.
_ROW_TYPES: dict[str, Any] = {
    **dict.fromkeys(("task", "method", "metric", "method_name", "stage", "pvp", "model", "config_hash", "git_commit",
                     "timestamp"), str),
    **dict.fromkeys(("k", "seed", "score", "dev_score", "train_seconds", "eval_examples_per_second", "peak_memory_mb",
                     "cell_peak_rss_mb", "cell_seconds", "fit_seconds", "trained_parameters"), _NUMBER),
    **dict.fromkeys(("selected", "final", "git_dirty"), bool),
    **dict.fromkeys(("metrics", "options", "resolved_options", "test", "split", "inputs", "machine", "versions",
                     "predictions", "grid_point"), dict),
}
_REQUIRED = ("task", "method", "metric")


def row_problem(r: dict) -> str | None:
    """What makes a stored row unusable for the report (``$.score: 'x' is not a number``), or
    None: a required field missing, a field of the wrong JSON type, an unknown metric, a K or
    seed that is not a whole number, per-example predictions that do not decode."""
    from ..metrics import METRICS

    for name, types in _ROW_TYPES.items():
        v = r.get(name)
        if v is None:
            if name in _REQUIRED:
                return f"$.{name}: missing"
            continue
        if not isinstance(v, types) or (isinstance(v, bool) and types is not bool):
            want = {str: "a string", bool: "true or false", dict: "an object"}.get(types, "a number")
            return f"$.{name}: {json.dumps(v, default=str)[:40]} is not {want}"
        if name in _REQUIRED and isinstance(v, str) and not v:
            return f"$.{name}: empty"
    if r["metric"] not in METRICS:
        return f"$.metric: {r['metric']!r} is not one of {', '.join(METRICS)}"
    for name in ("k", "seed"):
        v = r.get(name)
        if v is not None and not (math.isfinite(v) and v == int(v)):
            return f"$.{name}: {v} is not a whole number"
    metrics = r.get("metrics") or {}
    for name in dict.fromkeys(("accuracy", r["metric"])):
        v = metrics.get(name)
        if v is not None and (not isinstance(v, _NUMBER) or isinstance(v, bool)):
            return f"$.metrics.{name}: {json.dumps(v, default=str)[:40]} is not a number"
    if r.get("predictions") is not None:
        try:
            row = ResultRow(predictions=r["predictions"])
            pred, gold = row.pred_array(), row.gold_array()
            if pred is None or gold is None or len(pred) != len(gold) or not isinstance(row.labels, list):
                raise ValueError("lengths differ")
        except Exception:  # noqa: BLE001 - any failure to decode is the same problem
            return "$.predictions: the per-example predictions do not decode"
    return None


def _drop_invalid(scan) -> tuple[list[dict], str]:
    """The rows of the cells whose every row the report can use (:func:`row_problem`), and a note
    on the others ('' when none): a cell with one unusable row is left out whole, so that no
    cell is shown by the wrong stage."""
    bad: dict[Any, tuple[int, str]] = {}
    for r, line in zip(scan.rows, scan.row_lines or [None] * len(scan.rows)):
        problem = row_problem(r)
        if problem and r.get("config_hash") not in bad:
            bad[r.get("config_hash")] = (line, problem)
    if not bad:
        return list(scan.rows), ""
    keep = [r for r in scan.rows if r.get("config_hash") not in bad]
    n_rows = len(scan.rows) - len(keep)
    line, problem = next(iter(bad.values()))
    where = f"line {line}: " if line is not None else ""
    return keep, (f"{len(bad)} cell{'s' if len(bad) != 1 else ''} ({n_rows} row{'s' if n_rows != 1 else ''}) with a row whose "
                  f"fields the report cannot use (first: {where}{problem})")


def load_rows(results_dir: str | Path, only_hashes: set[str] | None = None) -> tuple[Any, dict]:
    """(DataFrame of the current rows, info) from a results folder.

    Every row is read through :class:`ResultRow` (older rows get the newer fields' defaults).
    Current rows: for every (task, method, K, seed) only the rows of the newest config hash (the
    one written last); older hashes (a changed config) are counted in ``info["superseded_rows"]``.
    """
    pd = _pd()
    root = Path(results_dir)
    store = ResultsStore(root)
    if not store.path.is_file():
        raise ConfigError(f"{store.path}: no results store here; fix: pass the folder `pet bench` wrote (its --results)")
    scan = store.scan()
    if scan.corrupt_lines and not scan.has_results:
        raise ConfigError(f"{store.path}: not a results store: no line is a pet result ({scan.damage()}); "
                          "fix: pass the folder `pet bench` wrote (its --results)")
    usable, invalid = _drop_invalid(scan)
    info = {"results": str(root), "incomplete_rows": scan.incomplete_writes, "corrupt_lines": scan.corrupt_lines,
            "partial_tail": scan.partial_tail, "duplicate_cells": scan.duplicate_cells, "superseded_rows": 0,
            "invalid_rows": len(scan.rows) - len(usable), "damage": " and ".join(x for x in (scan.damage(), invalid) if x),
            "schema": scan.schema_note()}
    rows = [(r if isinstance(r, ResultRow) else ResultRow.from_dict(r)).to_dict() for r in usable]
    if only_hashes is not None:
        info["other_experiment_rows"] = sum(1 for r in rows if r.get("config_hash") not in only_hashes)
        rows = [r for r in rows if r.get("config_hash") in only_hashes]
    if not rows:
        return pd.DataFrame(), info
    df = pd.DataFrame(rows)
    df["_order"] = range(len(df))
    df["k"] = df["k"].astype(object).where(df["k"].notna(), None)
    # grid points of a model selection: only for the selection table and the dev-vs-test plot;
    # every other table uses the selected rows (rows stored before selection existed count as selected)
    grid = df["selected"].eq(False)
    info["grid_rows"] = df[grid].copy()
    df = df[~grid].copy()
    newest = (  # the store is append-only: the config written last is the newest
        df.groupby(KEY + ["config_hash"], dropna=False)["_order"].max().reset_index()
        .sort_values("_order").groupby(KEY, dropna=False).tail(1)
    )
    keep = set(newest["config_hash"])
    info["superseded_rows"] = int((~df["config_hash"].isin(keep)).sum())
    df = df[df["config_hash"].isin(keep)].copy()
    df["pvp"] = df["pvp"].fillna("")
    df["method_name"] = df["method_name"].fillna(df["method"])
    df["accuracy"] = [m.get("accuracy") if isinstance(m, dict) else None for m in df["metrics"]]
    df["k_label"] = [k_label(k) for k in df["k"]]
    return df.sort_values("_order").reset_index(drop=True), info


def _known(values) -> list:
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def provenance(df, head) -> dict:
    """The git commits of the rows (commit -> rows, most rows first), the rows made from a dirty
    working tree, and warnings about the headline rows: mixed commits, dirty trees, and tasks
    whose rows were evaluated on different test sets (``inputs["test"]`` / ``test["checksum"]``)."""
    commits = dict(Counter(str(c) for c in _known(df["git_commit"])).most_common())
    out: dict[str, Any] = {"commits": commits, "dirty_rows": int(df["git_dirty"].eq(True).sum()), "warnings": []}
    if head is None or not len(head):
        return out
    head_commits = sorted({str(c) for c in _known(head["git_commit"])})
    if len(head_commits) > 1:
        out["warnings"].append(
            f"the headline rows come from {len(head_commits)} git commits ({', '.join(c[:12] for c in head_commits)}): "
            "a difference between methods may be a difference between code versions; fix: re-run the cells at one commit "
            "(or report each commit's rows separately with --experiment), or check that a sample of them reproduces at the "
            "current code (benchmarks/reproduce_cells.py in pet's repository)")
    dirty = int(head["git_dirty"].eq(True).sum())
    if dirty:
        out["warnings"].append(f"{dirty} headline rows were made from a working tree with uncommitted changes (git_dirty): "
                               "their code is not recorded exactly; fix: commit, then re-run those cells")
    out["warnings"].extend(_mixed_options_warnings(head))
    for task, g in head.groupby("task", sort=False):
        ids = [tables.row_test_checksums(r) for r in g.to_dict("records")]
        for kind in ("file", "examples"):
            seen = {i[kind] for i in ids if kind in i}
            if len(seen) > 1:
                out["warnings"].append(f"task {task}: the headline rows were evaluated on {len(seen)} different test sets "
                                       f"(test {kind} checksums differ): their scores are not comparable; fix: re-run the older cells")
                break
    return out


#: resolved options that differ from cell to cell by design (not a changed default)
PER_CELL_OPTIONS = frozenset({"seed"})


def _mixed_options_warnings(head) -> list[str]:
    """A warning per (task, method label) whose headline rows ran with different resolved options
    (the method's defaults filled in): a default changed between cells, which the config hash —
    over the options the experiment file wrote — does not see. The training seed (each cell's
    split seed by design) is not compared, nor the options a selection chose per split (a
    row's ``grid_point``: LM-BFF's lr × batch grid picks its own point on each split's dev set);
    labelled variants of one method (``prompt-ft`` and ``prompt-ft-supcon``) are compared each
    among its own rows. Rows from before ``resolved_options`` was recorded are not compared, nor
    an option some rows lack: one added to the method later, whose default keeps the behaviour
    the older rows ran with (a new option's default never changes what a method computed)."""
    if "resolved_options" not in head:
        return []
    warnings = []
    for (task, method), g in head.groupby(["task", "method"], sort=False):
        points = g["grid_point"] if "grid_point" in g else [None] * len(g)
        runs = [{k: v for k, v in r.items() if k not in PER_CELL_OPTIONS and k not in (p if isinstance(p, dict) else ())}
                for r, p in zip(g["resolved_options"], points) if isinstance(r, dict)]
        shared = set.intersection(*(set(r) for r in runs)) if runs else set()
        runs = [{k: v for k, v in r.items() if k in shared} for r in runs]
        distinct = {canonical_json(r): r for r in runs}
        if len(distinct) < 2:
            continue
        variants = list(distinct.values())
        keys = sorted(k for k in {k for v in variants for k in v} if len({canonical_json(v.get(k)) for v in variants}) > 1)
        shown = ", ".join(f"{k} ({' vs '.join(sorted({canonical_json(v.get(k)) for v in variants}))})" for k in keys[:3])
        more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
        warnings.append(f"task {task}, method {method}: the headline rows ran with {len(distinct)} different option sets once "
                        f"defaults are filled in — {shown}{more}: a method default changed between cells; "
                        "fix: re-run the older cells (pet bench --rerun-stale)")
    return warnings


def _task_notes(root: Path, df) -> dict:
    notes: dict[str, dict] = {}
    p = root / "tasks.json"
    if p.is_file():
        try:
            notes = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            notes = {}
    for task, g in df.groupby("task", sort=False) if df is not None and len(df) else ():
        t = g["test"].iloc[0]
        if isinstance(t, dict):
            n = notes.setdefault(task, {})
            n.update({"test_split": t.get("split"), "has_test": True, "n_test": t.get("n"), "n_full": t.get("n_full"),
                      "test_subset": bool(t.get("subset")), "test_note": t.get("note") or n.get("test_note", "")})
    return notes


@dataclass
class Report:
    markdown: str
    output: Path | None = None
    files: list[Path] = field(default_factory=list)
    tables: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: what the read of the store skipped (interrupted writes, unreadable lines), one line each
    notes: list[str] = field(default_factory=list)

    def section(self, title: str) -> str:
        """The Markdown section whose heading starts with ``## title`` (empty if absent)."""
        start = self.markdown.find(f"## {title}")
        if start < 0:
            return ""
        end = self.markdown.find("\n## ", start + 3)
        return self.markdown[start:] if end < 0 else self.markdown[start : end + 1]


class _Built:
    """What a table is built from: the rows, the store info, the headline rows, the tables built
    before it (``t``) and the bootstrap resamples (``n``)."""

    def __init__(self, df, info: dict, resamples: int):
        self.df, self.info, self.n, self.t = df, info, resamples, {}
        self.head = tables.headline_rows(df)


#: Every table of a report, in order: name -> how it is built (None: ``references``, built from
#: the --references file by :func:`build_report`). Each is written as ``<name>.csv``; these names
#: are also what a report folder may hold (:func:`report_entry`).
TABLES: dict[str, Any] = {
    "headline": lambda b: tables.headline_table(b.head, resamples=b.n),
    "stages": lambda b: tables.aggregate(b.df),
    "pvps": lambda b: tables.pvp_table(b.df),
    "hard_soft": lambda b: tables.hard_soft_table(b.t["headline"]),
    "paired": lambda b: tables.paired_table(b.head, b.t["headline"], resamples=b.n),
    "glance": lambda b: glance_table(b.t["headline"], b.t["paired"]),
    "stage_pairs": lambda b: stage_pairs_table(b.df, resamples=b.n),
    "gains": lambda b: tables.gain_table(b.t["paired"], b.t["headline"]),
    "cost": lambda b: tables.cost_table(b.df, b.head),
    "selection": lambda b: tables.selection_table(b.df, b.info.get("grid_rows")),
    "references": None,
}
REPORT_FILE = "report.md"
ROWS_FILE = "rows.csv"
PLOTS_DIR = "plots"


def build_tables(df, info: dict, resamples: int = RESAMPLES) -> dict:
    """Every table of the report over loaded rows (:func:`load_rows`), in :data:`TABLES` order."""
    b = _Built(df, info, resamples)
    for name, make in TABLES.items():
        if make is not None:
            b.t[name] = make(b)
    return b.t


def report_entry(rel: str) -> bool:
    """Whether ``rel`` (a path inside a report folder; a folder's ends with ``/``) is something
    :func:`build_report` writes there: report.md, rows.csv, a table's CSV (:data:`TABLES`), the
    plots folder and the PNG plots in it. A report folder holding anything else is not replaced."""
    if rel in (REPORT_FILE, ROWS_FILE, f"{PLOTS_DIR}/"):
        return True
    name, dot, ext = rel.rpartition(".")
    if ext == "csv" and dot and name in TABLES:
        return True
    folder, _, png = rel.partition("/")
    return folder == PLOTS_DIR and png.endswith(".png") and "/" not in png and len(png) > 4


def check_report_output(results_dir: str | Path, output: str | Path | None = None) -> Path:
    """The report folder of ``results_dir`` (``output``, default ``<results>/report``) if pet may
    write it: not the store itself, and either new, empty or a report folder pet wrote (report.md
    and only what :func:`report_entry` accepts); else a one-line UsageError. Returns its path."""
    root = Path(results_dir)
    out = Path(output) if output else root / "report"
    check_output_not_input(out, [root / "results.jsonl", root / "errors.jsonl"])  # never replace the store itself
    check_output_folder(out, overwrite=True, marker=REPORT_FILE, what="report folder", allowed=report_entry)
    return out


def build_report(
    results_dir: str | Path,
    references: str | Path | None = None,
    output: str | Path | None = None,
    plots: bool = True,
    write: bool = True,
    only_hashes: set[str] | None = None,
    resamples: int = RESAMPLES,
) -> Report:
    """Aggregate a results folder; with ``write`` put report.md, CSVs and PNG plots in
    ``output`` (default ``<results>/report``), replacing that folder atomically.
    ``only_hashes`` restricts the report to those config hashes (``pet report --experiment``);
    ``resamples``: bootstrap resamples of every interval. Provenance problems are both in the
    Markdown and raised as :class:`ProvenanceWarning` (``Report.warnings``)."""
    root = Path(results_dir)
    df, info = load_rows(root, only_hashes)
    out = check_report_output(root, output) if write else None  # before the work: a folder it may not replace fails at once
    refs = load_references(references) if references else None  # a malformed file fails before the work too
    notes = _task_notes(root, df)
    tabs: dict[str, Any] = build_tables(df, info, resamples) if len(df) else {}
    models = sorted(set(df["model"])) if len(df) else []
    if refs is not None:
        tabs["references"] = tables.references_table(tabs.get("headline"), refs, models)
    prov = provenance(df, tables.headline_rows(df)) if len(df) else {"warnings": []}
    if info.get("schema"):  # rows of a newer pet: read as far as this one understands them
        prov["warnings"].insert(0, f"{root / 'results.jsonl'}: {info['schema']}")
    for w in prov["warnings"]:
        warnings.warn(w, ProvenanceWarning, stacklevel=2)
    md = markdown.render(root, df, info, notes, tabs, models, prov, resamples, plots=plots and write)
    rep = Report(markdown=md, tables=tabs, warnings=list(prov["warnings"]),
                 notes=[f"{root / 'results.jsonl'}: ignoring {info['damage']}"
                        + ("; fix: re-run those cells into a new results folder" if info.get("invalid_rows") else "")]
                 if info["damage"] else [])
    if write:
        rep.output = _write(root, out, md, tabs, df, plots)
        rep.files = sorted(p for p in rep.output.rglob("*") if p.is_file())
    return rep


def _write(root: Path, out: Path, md: str, tabs: dict, df, plots: bool) -> Path:
    check_report_output(root, out)
    with atomic_directory(out, overwrite=True, marker=REPORT_FILE, what="report folder", allowed=report_entry) as tmp:
        (tmp / REPORT_FILE).write_text(md, encoding="utf-8")
        for name, t in tabs.items():
            assert name in TABLES, f"table {name!r} is not in TABLES: a report folder holding it could not be replaced"
            if t is not None and len(t):
                t.to_csv(tmp / f"{name}.csv", index=False)
        if len(df):
            flat = df.drop(columns=[c for c in ("_order", "predictions") if c in df])
            for c in flat.columns:
                if flat[c].map(lambda v: isinstance(v, (dict, list))).any():
                    flat[c] = [json.dumps(v, sort_keys=True, default=str) for v in flat[c]]
            flat.to_csv(tmp / ROWS_FILE, index=False)
        if plots and len(df):
            write_plots(df, tabs["headline"], tmp / PLOTS_DIR, selection=tabs.get("selection"))
    return out
