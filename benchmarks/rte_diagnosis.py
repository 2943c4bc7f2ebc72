"""Why is every method at chance on RTE in the flagship? Measure it, two ways.

LM-BFF reports 69.1 for prompt fine-tuning on RTE with 16 examples per class (RoBERTa-large);
here every method, trained or not, lands within noise of 50. Two measurements:

1. **What the stored predictions say** (free: read from the flagship store, no model run): the
   test set's class balance, and for each method and seed its accuracy and the share of test
   examples it calls ``not_entailment``. A method that collapsed to one class would sit at the
   majority share (0% or 100%); one that predicts both classes at chance has no signal.
2. **Whether labels are what is missing** (``--train``; trains models): prompt-ft (LM-BFF's manual
   PVP, the flagship's PET budget: 250 steps x batch 4, lr 1e-5) on each K=16 split, and the same
   budget on every distinct labelled RTE example under the data root's k-shot folders (the five
   seeds' train+dev files: ~9x the labels; none is a test example). For each: accuracy on its own
   training examples (does it fit them?) and on the full test set. If nine times the labels
   leave the test accuracy at chance while the training set is fitted, the 6-layer model cannot
   learn the entailment relation from a few hundred examples at this budget — a property of the
   base model, not of the protocol. The test numbers here are a diagnosis; they choose nothing.

    python benchmarks/rte_diagnosis.py --store benchmarks/results/flagship/results.jsonl
    OMP_NUM_THREADS=1 python benchmarks/rte_diagnosis.py --store benchmarks/results/flagship/results.jsonl \\
        --train --data-dir ../shared/data --model ../shared/models/minilm-mlm --seeds 13 21 42 [--long]

``--long`` trains on the pooled set only, at LM-BFF's budget (1,000 steps x batch 8): 250 steps
x 4 do not fit ~300 examples, so a chance test score there could be the budget's; if the
pooled set is fitted at 26 passes and the test score stays at chance, the budget is not the cause.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict

import numpy as np

from pet.bench.rows import ResultRow

BUDGET = {"steps": 250, "lr": 1e-5, "batch_size": 4, "pvp": ["first"]}
#: --long: LM-BFF's budget (run_experiment.sh: 1000 steps x batch 8, lr 1e-5), 26 passes over the pooled set
LONG = {"steps": 1000, "lr": 1e-5, "batch_size": 8, "pvp": ["first"]}


def stored_predictions(store: str, task: str) -> None:
    """Per method: mean accuracy and mean share predicted as the second label, over its seeds."""
    by: dict[str, dict[int, ResultRow]] = defaultdict(dict)
    gold = labels = None
    with open(store, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("task") != task or not d.get("final") or d.get("type") == "cell_complete":
                continue
            row = ResultRow.from_dict(d)
            pred = row.pred_array()
            if pred is None:
                continue
            name = d["method"]  # the label an experiment gives it (setfit-paper, prompt-ft-lmbff, …)
            by[name].setdefault(d["seed"], row)
            gold, labels = row.gold_array(), row.labels
    if gold is None:
        raise SystemExit(f"{store}: no final rows of task {task}")
    second = labels[1]
    print(f"{task} test set: {len(gold)} examples, {100 * (gold == 1).mean():.1f}% {second} "
          f"(majority class: {100 * max((gold == 1).mean(), (gold == 0).mean()):.1f}%)\n")
    print(f"| method | seeds | accuracy (mean) | predicted {second} (per seed) |")
    print("|---|---|---|---|")
    for name in sorted(by):
        rows = [by[name][s] for s in sorted(by[name])]
        acc = np.mean([(r.pred_array() == r.gold_array()).mean() for r in rows])
        shares = " / ".join(f"{100 * (r.pred_array() == 1).mean():.0f}%" for r in rows)
        print(f"| {name} | {len(rows)} | {100 * acc:.1f} | {shares} |")


def pooled_labelled(task: str, data_dir: str, seeds: list[int]):
    """Every distinct labelled example of the task's k-shot folders (train and dev of each seed)."""
    from pet.data.rundata import task_run_data

    seen, pool = set(), []
    for s in seeds:
        run = task_run_data(task, data_dir, k=16, seed=s)
        for ex in [*run.train, *run.dev]:
            key = tuple(sorted(ex.fields.items()))
            if key not in seen:
                seen.add(key)
                pool.append(ex)
    return pool


def train_check(task: str, data_dir: str, model: str, seeds: list[int], long: bool = False) -> None:
    from pet.data.rundata import task_run_data
    from pet.evaluation.evaluator import evaluate, fit_evaluate

    pool = pooled_labelled(task, data_dir, [13, 21, 42, 87, 100])
    budget = LONG if long else BUDGET
    print(f"\nprompt-ft at {budget}; pooled set: {len(pool)} distinct labelled examples of the five k-shot folders\n")
    print("| training set | seed | examples | train acc. | test acc. | predicted second label |")
    print("|---|---|---|---|---|---|")
    for seed in seeds:
        run = task_run_data(task, data_dir, k=16, seed=seed)
        test_keys = {tuple(sorted(ex.fields.items())) for ex in run.test}
        overlap = sum(tuple(sorted(ex.fields.items())) in test_keys for ex in pool)
        if overlap:
            raise SystemExit(f"{overlap} pooled examples are test examples; the check would be void")
        sets = [("pooled", dataclasses.replace(run, train=pool, dev=[]))]
        for name, data in ([] if long else [("K=16 split", run)]) + sets:
            fitted, rows = fit_evaluate("prompt-ft", {**budget, "seed": seed}, data, model)
            test_row = next(r for r in rows if r["final"])
            train_row = next(r for r in evaluate(fitted, data.train, data.task, split="train") if r["final"])
            share = 100 * (test_row["pred"] == 1).mean()  # fitted.labels[1]
            print(f"| {name} | {seed} | {len(data.train)} | {100 * train_row['score']:.1f} | {100 * test_row['score']:.1f} | "
                  f"{share:.0f}% ({fitted.labels[1]}) |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a flagship results.jsonl")
    ap.add_argument("--task", default="rte")
    ap.add_argument("--train", action="store_true", help="also train prompt-ft on each split and on the pooled labels")
    ap.add_argument("--data-dir")
    ap.add_argument("--model")
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42])
    ap.add_argument("--long", action="store_true", help="train on the pooled set only, at LM-BFF's budget (1000 steps x 8): can it be fitted, and does that carry to test?")
    args = ap.parse_args()
    stored_predictions(args.store, args.task)
    if args.train:
        if not (args.data_dir and args.model):
            ap.error("--train needs --data-dir and --model")
        train_check(args.task, args.data_dir, args.model, args.seeds, args.long)


if __name__ == "__main__":
    main()
