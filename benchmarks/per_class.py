"""Per-class recall of stored flagship rows: which classes a method gets wrong, per seed.

Reads the per-example predictions every final row carries (no model run) and prints, for each
label of the task and each seed, the share of its test examples each method gets right.

    python benchmarks/per_class.py --store benchmarks/results/flagship/results.jsonl --task trec \\
        --methods prompt-ft-lmbff prompt-ft-lmbff-demo setfit-paper --seeds 13 21 42
"""

from __future__ import annotations

import argparse
import json

from pet.bench.rows import ResultRow


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--methods", nargs="+", required=True, help="method labels as the store names them")
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42, 87, 100])
    args = ap.parse_args()
    rows: dict[tuple[str, int], ResultRow] = {}
    with open(args.store, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("task") == args.task and d.get("final") and d.get("type") != "cell_complete" and d["method"] in args.methods:
                rows.setdefault((d["method"], d["seed"]), ResultRow.from_dict(d))
    print(f"| seed | label | n | " + " | ".join(args.methods) + " |")
    print("|---|---|---|" + "---|" * len(args.methods))
    for seed in args.seeds:
        have = [rows.get((m, seed)) for m in args.methods]
        if any(r is None for r in have):
            print(f"| {seed} | (missing rows) | | " + " | ".join("–" if r is None else "" for r in have) + " |")
            continue
        gold, labels = have[0].gold_array(), have[0].labels
        for i, lab in enumerate(labels):
            mask = gold == i
            cells = [f"{100 * (r.pred_array()[mask] == i).mean():.1f}" for r in have]
            print(f"| {seed} | {lab} | {int(mask.sum())} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
