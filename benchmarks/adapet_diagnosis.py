"""Why does ADAPET trail prompt-ft at PET's budget? Ablate its two terms on one split.

Trains the task's first PVP (LM-BFF's manual template) on one LM-BFF split with the flagship's
fixed budget (250 steps x batch 4, lr 1e-5) under four objectives — prompt-ft's cross-entropy,
ADAPET (decoupled label objective + label-conditioned MLM), the decoupled label objective alone,
cross-entropy + the label-conditioned MLM — and, with ``--long``, ADAPET at 4x the steps. For
each it prints the accuracy on the TRAINING examples (does the objective fit the 16 per class at
all?), on the test set, and the label loss (mean of the 25 steps up to) steps 50 / 100 / 250 (/ 1000). The test numbers
are a diagnosis of one split, not a result (the flagship rows with 5 seeds are).

    OMP_NUM_THREADS=1 python benchmarks/adapet_diagnosis.py --task trec --seed 13 \
        --data-dir ../shared/data --model ../shared/models/minilm-mlm [--long]
"""

from __future__ import annotations

import argparse

from pet.data.rundata import task_run_data
from pet.evaluation.evaluator import evaluate, fit_evaluate

BUDGET = {"steps": 250, "lr": 1e-5, "batch_size": 4, "pvp": ["first"]}
VARIANTS = {
    "prompt-ft (ce)": ("prompt-ft", {}),
    "adapet (dlo + lcm)": ("adapet", {}),
    "dlo only": ("adapet", {"lcm_weight": 0.0}),
    "ce + lcm": ("adapet", {"label_loss": "ce"}),
}


def label_loss_at(log, steps: list[int], window: int = 25) -> list[str]:
    """The label loss (``dlo`` or ``ce``) averaged over the ``window`` steps ending at each step."""
    out = []
    for s in steps:
        es = [e for e in log.entries if s - window < e["step"] <= s]
        key = "dlo" if es and "dlo" in es[0] else "ce"
        vals = [e[key] for e in es if key in e]
        out.append(f"{key} {sum(vals) / len(vals):.3f}" if vals else "–")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="trec")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--long", action="store_true", help="also ADAPET at 1000 steps (ADAPET's step count)")
    args = ap.parse_args()
    run = task_run_data(args.task, args.data_dir, k=16, seed=args.seed)
    variants = dict(VARIANTS)
    if args.long:
        variants["adapet, 1000 steps"] = ("adapet", {"steps": 1000})
    steps = [50, 100, 250] + ([1000] if args.long else [])
    print(f"{args.task} K=16 seed {args.seed}: {len(run.train)} training examples, {len(run.test)} test; first PVP {run.pvps[0].id}; "
          f"budget {BUDGET}\n")
    print("| objective | train acc. | test acc. | " + " | ".join(f"label loss @{s}" for s in steps) + " |")
    print("|---|---|---|" + "---|" * len(steps))
    for name, (method, extra) in variants.items():
        fitted, rows = fit_evaluate(method, {**BUDGET, **extra}, run, args.model)
        train_row = evaluate(fitted, run.train, run.task, split="train")[0]
        log = next(iter(fitted.logs.values()))
        print(f"| {name} | {100 * train_row['score']:.1f} | {100 * rows[0]['score']:.1f} | " + " | ".join(label_loss_at(log, steps)) + " |",
              flush=True)


if __name__ == "__main__":
    main()
