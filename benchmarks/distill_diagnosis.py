"""Why a distilled student lands above or below its own PET ensemble: a diagnosis of stored rows.

For each seed, from the per-example test predictions the store keeps (no model is run): the
ensemble's and each student's accuracy, how often the student agrees with its ensemble, each
label's recall and how many test examples each predicts per label; and, from the rows' extras,
how accurate the ensemble's labels were on the unlabelled pool (that pool is the other seeds'
k-shot examples, so their gold labels are known).

With ``--members`` (the folder ``pet bench --keep-members`` fills, ``partial/members``) it also
rebuilds that seed's pool, checks each kept model against the pool's fingerprint, and prints the
pool's confusion matrix under the ensemble's argmax labels and the share of SetFit's "same
label" and "different label" pairs that are truly same/different class.

    python benchmarks/distill_diagnosis.py --store benchmarks/results/flagship/results.jsonl \\
        --task trec --seeds 13 21 42 --members benchmarks/results/flagship/partial/members \\
        --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from pet.bench.rows import ResultRow
from pet.data import load_examples, unlabelled_pool
from pet.data.registry import load_task
from pet.methods.pet_growth import soft_targets
from pet.methods.resume import examples_fingerprint

STUDENTS = ("pet", "pet-setfit", "pet-setfit-paper")


def confusion(gold: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Rows gold, columns predicted, every one of the ``n`` labels present."""
    return confusion_matrix(gold, pred, labels=list(range(n)))


def pair_precision(cm: np.ndarray) -> tuple[float, float]:
    """Of the pairs with equal (different) assigned labels, the share whose gold classes are equal
    (different); ``cm`` rows are gold, columns assigned labels. Unordered pairs of distinct items."""
    def pairs(c: np.ndarray) -> np.ndarray:
        return c * (c - 1) / 2

    same_assigned, same_both = pairs(cm.sum(0)).sum(), pairs(cm).sum()
    same_gold, total = pairs(cm.sum(1)).sum(), pairs(cm.sum())
    return same_both / same_assigned, 1 - (same_gold - same_both) / (total - same_assigned)


def stored_rows(store: str, task: str) -> dict[tuple[str, int, str], ResultRow]:
    rows: dict[tuple[str, int, str], ResultRow] = {}
    with open(store, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("task") == task and d.get("type") != "cell_complete" and d.get("method") in STUDENTS and d.get("stage") in ("ensemble", "distilled"):
                rows.setdefault((d["method"], d["seed"], d["stage"]), ResultRow.from_dict(d))
    return rows


def describe(name: str, r: ResultRow, ref: ResultRow | None) -> str:
    pred, gold = r.pred_array(), r.gold_array()
    cm = confusion(gold, pred, len(r.labels))
    recall = " ".join(f"{x:.2f}" for x in cm.diagonal() / np.maximum(cm.sum(1), 1))
    agree = "" if ref is None else f" | agrees with the ensemble on {(pred == ref.pred_array()).mean():.1%}"
    pool = r.get("extra", {}) or {}
    pool_acc = pool.get("pool_label_accuracy", pool.get("teacher_pool_accuracy"))
    pool_txt = "" if pool_acc is None else f" | ensemble's pool labels {pool_acc:.1%} right"
    return f"  {name:<28} acc {np.mean(pred == gold):.1%} | recall per label {recall} | predicted per label {cm.sum(0).tolist()}{agree}{pool_txt}"


def pool_report(task: str, seed: int, members: Path, data_dir: str) -> list[str]:
    train, dev = load_examples(task, "train", data_dir, seed), load_examples(task, "dev", data_dir, seed)
    pool = unlabelled_pool(task, data_dir, exclude=[*train, *dev], size=10**9, seed=seed)
    fp = examples_fingerprint(pool)
    lps = []
    for d in sorted(p for p in members.iterdir() if (p / "member.json").is_file()):
        inputs = json.loads((d / "member.json").read_text(encoding="utf-8"))["inputs"]
        if inputs.get("pool") == fp:
            lps.append(np.load(d / "arrays.npz")["pool_lp"])
    if not lps:
        return [f"  pool: no kept model in {members} was trained with seed {seed}'s pool"]
    index = {str(label): i for i, label in enumerate(load_task(task).labels)}  # the models' column order
    gold = np.array([index[str(e.meta["gold_label"])] for e in pool])
    assigned = soft_targets(lps, None, 1.0).argmax(1)  # unweighted mean of the members' log-probs
    cm = confusion(gold, assigned, lps[0].shape[1])
    same, diff = pair_precision(cm)
    out = [f"  pool ({len(pool)} texts, {len(lps)} kept models, unweighted ensemble): labels {np.mean(assigned == gold):.1%} right; "
           f"'same label' pairs truly same class {same:.1%}, 'different label' pairs truly different {diff:.1%}",
           "  pool confusion (rows gold, columns ensemble label):"]
    out += ["    " + " ".join(f"{x:4d}" for x in row) for row in cm]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42, 87, 100])
    ap.add_argument("--members", type=Path, help="folder of kept PET models (partial/members) for the pool confusion")
    ap.add_argument("--data-dir", help="data root, needed with --members to rebuild the pool")
    args = ap.parse_args()
    if args.members is not None and not args.data_dir:
        ap.error("--members needs --data-dir (the pool is rebuilt from the data files)")
    rows = stored_rows(args.store, args.task)
    for seed in args.seeds:
        print(f"{args.task} seed {seed}")
        ens = next((rows[(m, seed, "ensemble")] for m in STUDENTS if (m, seed, "ensemble") in rows), None)
        if ens is not None:
            print(describe("ensemble", ens, None))
        for m in STUDENTS:
            if (m, seed, "distilled") in rows:
                print(describe(f"{m} (distilled)", rows[(m, seed, "distilled")], ens))
        if args.members is not None:
            print("\n".join(pool_report(args.task, seed, args.members, args.data_dir)))


if __name__ == "__main__":
    main()
