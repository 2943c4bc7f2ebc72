"""Do stored cells reproduce at the current code? Compares the rows of cells recomputed into a
second results store with the rows the main store holds for the same config hashes (benchmark
driver, not a test).

A results store collects rows from many commits (the flagship's came from 21). The report warns
about it, because a difference between methods could then be a difference between code versions.
This answers the question by measurement: recompute a sample of stored cells at HEAD into a
fresh store (`pet bench … --results AUDIT --only …`: a config hash does not depend on the
results folder, so each recomputed cell has the stored cell's hash), then compare, per row
(stage), the score and the per-example predictions. Cells are only comparable on the same
kind of device: CPU and GPU arithmetic differ in the last bits, and training amplifies that.

    python benchmarks/reproduce_cells.py --plan benchmarks/results/flagship     # one cheap CPU cell per commit
    OMP_NUM_THREADS=1 pet bench benchmarks/flagship.yaml --results /tmp/audit --only task=mpqa \\
        --only method=setfit --only seed=21 --data-dir ../shared/data --model ../shared/models/minilm-mlm --threads 1 --no-report
    python benchmarks/reproduce_cells.py benchmarks/results/flagship /tmp/audit  # the comparison table

Output: one Markdown line per recomputed row — the stored row's commit and machine, the stored
and recomputed scores, and the share of test examples whose predicted label is the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pet.bench.rows import ResultRow
from pet.bench.store import ResultsStore


def _newest(root: Path) -> dict[tuple[str, str], dict]:
    """(config hash, row key) -> the row readers see (the newest complete write of each cell)."""
    out: dict[tuple[str, str], dict] = {}
    for r in ResultsStore(root).rows():
        out[(r["config_hash"], r.get("key") or r.get("stage"))] = r
    return out


def _machine(r: dict) -> str:
    m = r.get("machine") or {}
    return str(m.get("gpu") or f"{m.get('sched_cpus') or m.get('cpu_count')}-core CPU")


def plan(root: Path) -> None:
    """Per commit of the store's CPU rows, its cheapest stored cell, as `pet bench` arguments."""
    best: dict[str, dict] = {}
    for r in ResultsStore(root).rows():
        if not r.get("final") or (r.get("machine") or {}).get("gpu") or not r.get("git_commit"):
            continue
        c = r["git_commit"]
        if r.get("role") == "point" or r.get("grid_point"):  # a grid point cannot be selected alone with --only
            continue
        if c not in best or (r.get("cell_seconds") or 1e12) < (best[c].get("cell_seconds") or 1e12):
            best[c] = r
    for c, r in sorted(best.items(), key=lambda kv: kv[1].get("cell_seconds") or 0):
        print(f"{c[:12]}  {r.get('cell_seconds', 0):7.0f}s  benchmarks/{r['experiment']}.yaml --only task={r['task']} "
              f"--only method={r['method']} --only seed={r['seed']}")


def compare(root: Path, audit: Path) -> int:
    stored, again = _newest(root), _newest(audit)
    print("| cell | stage | stored at | stored on | recomputed on | stored | recomputed | same predictions |")
    print("|---|---|---|---|---|---|---|---|")
    missing = 0
    for key, new in again.items():
        old = stored.get(key)
        if old is None:
            missing += 1
            continue
        a, b = ResultRow.from_dict(old).pred_array(), ResultRow.from_dict(new).pred_array()
        same = "n/a" if a is None or b is None or len(a) != len(b) else f"{100 * float(np.mean(a == b)):.1f}%"
        cell = f"{new['task']} {new['method']} seed {new['seed']}"
        print(f"| {cell} | {key[1]} | {str(old.get('git_commit'))[:12]} | {_machine(old)} | {_machine(new)} | "
              f"{100 * old['score']:.1f} | {100 * new['score']:.1f} | {same} |")
    if missing:
        print(f"\n{missing} recomputed rows have no stored row of the same config hash and stage in {root}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("store", type=Path, help="the results store whose cells are checked")
    p.add_argument("audit", type=Path, nargs="?", help="a store holding the same cells recomputed at the current code")
    p.add_argument("--plan", action="store_true", help="list one cheap CPU cell per commit of the store, as pet bench --only arguments")
    args = p.parse_args(argv)
    if args.plan:
        plan(args.store)
        return 0
    if args.audit is None:
        p.error("give the audit store (or --plan)")
    return compare(args.store, args.audit)


if __name__ == "__main__":
    sys.exit(main())
