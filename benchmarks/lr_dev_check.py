"""Dev-only check of prompt-ft's default learning rate (issue 19; benchmark, not a test).

For each task, LM-BFF split seed and learning rate: fit prompt-ft (the task's first default PVP,
the default recipe otherwise: batch 4, full tuning, AdamW, no warm-up) on the split's train file
and score it on the split's **dev** file. The test files are never read. One JSON line per
(task, seed, lr) goes to ``--out`` as soon as it is done (a rerun skips those already there);
the end prints the mean dev accuracy per lr, over every task and seed, and per task.

    python benchmarks/lr_dev_check.py --model ../shared/models/minilm-mlm --data-dir ../shared/data \\
        --out lr_dev_check.jsonl

A smoke test: ``--steps 2 --tasks sst2 --seeds 13 --lrs 1e-5``. The default lr (1e-5, PET's and
LM-BFF's) is not changed by this script; a change needs its numbers, recorded with model, budget
and seeds, and dev scores only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

TASKS = ("sst2", "mr", "cr", "trec")
SEEDS = (13, 21, 42)
LRS = (1e-5, 2e-5, 3e-5, 5e-5)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="masked LM folder or hub id")
    p.add_argument("--data-dir", required=True, help="the LM-BFF data root (holds k-shot/<task>/16-<seed>/)")
    p.add_argument("--out", default="lr_dev_check.jsonl", help="JSON lines, one per (task, seed, lr)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--lrs", nargs="+", type=float, default=list(LRS))
    p.add_argument("--steps", type=int, default=250, help="optimizer steps per fit (PET: 250)")
    p.add_argument("--k", type=int, default=16, help="examples per class (LM-BFF: 16)")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def dev_accuracy(task, train, dev, pvps, model: str, seed: int, lr: float, steps: int) -> dict:
    """Fit prompt-ft on ``train`` and score it on ``dev``: the run's record."""
    from pet.evaluation import evaluate
    from pet.methods import FitSetup, get_method

    setup = FitSetup(model, list(task.label_ids), pvps, seed=seed, max_length=task.max_length)
    t0 = time.time()
    fitted = get_method("prompt-ft").fit(train, [], {"steps": steps, "lr": lr}, setup)
    (row,) = [r for r in evaluate(fitted, dev, task, split="dev") if r["final"]]
    return {"task": task.name, "seed": seed, "lr": lr, "steps": steps, "pvp": pvps[0].id, "n_train": len(train),
            "n_dev": len(dev), "dev_metric": row["metric"], "dev_score": row["score"], "dev_accuracy": row["metrics"]["accuracy"],
            "final_loss": row["extra"].get("final_loss"), "seconds": round(time.time() - t0, 1)}


def summarize(records: list[dict]) -> str:
    """Mean dev accuracy per lr over everything, then per task."""
    import pandas as pd

    df = pd.DataFrame(records)
    overall = df.groupby("lr")["dev_accuracy"].agg(["mean", "std", "count"])
    per_task = df.pivot_table(index="lr", columns="task", values="dev_accuracy", aggfunc="mean")
    return "dev accuracy by lr (mean over tasks and seeds)\n" + overall.round(4).to_string() + \
        "\n\nper task (mean over seeds)\n" + per_task.round(4).to_string()


def main(argv=None) -> int:
    a = parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from pet.data import few_shot, load_task, task_pvps

    out = Path(a.out)
    done = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []
    seen = {(r["task"], r["seed"], r["lr"], r["steps"]) for r in done}
    records = list(done)
    for name in a.tasks:
        task = load_task(name)
        pvps = task_pvps(task)[:1]
        for seed in a.seeds:
            train, dev = few_shot(task, a.data_dir, a.k, seed)  # train and dev only: test is never read
            for lr in a.lrs:
                if (task.name, seed, lr, a.steps) in seen:
                    continue
                rec = dev_accuracy(task, train, dev, pvps, a.model, seed, lr, a.steps)
                records.append(rec)
                with out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)
    print(summarize([r for r in records if r["steps"] == a.steps]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
