"""Same seed -> same scores before and after the method-layer redesign (issue 10).

Runs `pet train` with identical inputs under two checkouts of pet — an older commit (checked out
with `git worktree`) and the current one — and compares every stage both report.

    git worktree add /tmp/pet-old defe944          # the last commit before the redesign
    python benchmarks/method_layer_parity.py --old /tmp/pet-old --model ../shared/models/minilm-mlm --data-dir ../shared/data

Inputs are a user's own data files (SST-2's train.tsv as the pool to draw K=16 per class from,
its test.tsv as the test file, texts stripped) and own pattern/verbalizer files, so that the
comparison isolates the method layer from the shipped-PVP and data-reading changes of other
issues. Both checkouts run in the same virtual environment (the old one through PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent.parent
PATTERNS = {"patterns": [{"id": "it-was", "template": "{text_a} It was {mask}."},
                         {"id": "all-in-all", "template": "{text_a} All in all, it was {mask}."}]}
VERBALIZERS = {"verbalizers": [{"id": "great-terrible", "labels": {"0": ["terrible"], "1": ["great"]}}]}
#: method -> (old CLI options, new CLI options): the same budget, quick.yaml's
RUNS = {
    "zero-shot": ([], []),
    "prompt-ft": (["--steps", "30", "--lr", "1e-4", "-o", "eval_batch_size=64"], ["--steps", "30", "--lr", "1e-4", "--eval-batch-size", "64"]),
    "cls-ft": (["--steps", "30", "--lr", "1e-4", "-o", "eval_batch_size=64"], ["--steps", "30", "--lr", "1e-4", "--eval-batch-size", "64"]),
    "pet": (["--steps", "30", "--lr", "1e-4", "-o", "eval_batch_size=64", "-o", "distill_steps=40", "--unlabelled-size", "300"],
            ["--steps", "30", "--lr", "1e-4", "--eval-batch-size", "64", "--distill-steps", "40", "--unlabelled-size", "300"]),
    "prompt-tuning": (["--steps", "30", "-o", "eval_batch_size=64"], ["--steps", "30", "--eval-batch-size", "64"]),
}


def parse_table(out: str) -> dict[str, float]:
    """`pet train`'s table -> {"stage pvp": score}."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if "score" in line.split() and "stage" in line.split())
    cols = lines[head].split()
    res = {}
    for line in lines[head + 2:]:
        cells = line.split()
        if not cells or cells[0].startswith("-"):
            continue
        vals = dict(zip(cols, cells)) if len(cells) >= len(cols) else None
        if vals is None:  # an empty pvp cell: shift
            cells = cells[: cols.index("pvp")] + [""] + cells[cols.index("pvp"):]
            vals = dict(zip(cols, cells))
        res[f"{vals['stage']} {vals['pvp']}".strip()] = float(vals["score"])
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="a checkout of the older pet (git worktree)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--methods", default=",".join(RUNS))
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="parity-"))
    for split in ("train", "test"):
        df = pd.read_csv(Path(args.data_dir) / "SST-2" / f"{split}.tsv", sep="\t", quoting=3, dtype=str, keep_default_na=False)
        df["sentence"] = df["sentence"].str.strip()
        df.to_json(tmp / f"{split}.jsonl", orient="records", lines=True, force_ascii=False)
    pool = pd.read_json(tmp / "train.jsonl", lines=True, dtype=False).sample(n=300, random_state=0)
    pool.to_json(tmp / "pool.jsonl", orient="records", lines=True, force_ascii=False)
    (tmp / "p.json").write_text(json.dumps(PATTERNS))
    (tmp / "v.json").write_text(json.dumps(VERBALIZERS))
    common = ["--data", str(tmp / "train.jsonl"), "--test", str(tmp / "test.jsonl"), "--text-field", "sentence", "--label-field", "label",
              "--patterns", str(tmp / "p.json"), "--verbalizers", str(tmp / "v.json"), "--shots", "16", "--seed", str(args.seed),
              "--model", args.model, "--no-progress"]
    report = []
    worst = 0.0
    for method in args.methods.split(","):
        old_opts, new_opts = RUNS[method]
        extra = ["--unlabelled", str(tmp / "pool.jsonl")] if method == "pet" else []
        scores = {}
        for name, root, opts in (("old", Path(args.old), old_opts), ("new", HERE, new_opts)):
            env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
            r = subprocess.run([sys.executable, "-m", "pet", "train", "--method", method, *common, *extra, *opts],
                               capture_output=True, text=True, env=env, cwd=tmp)
            if r.returncode != 0:
                print(f"{name} {method} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
                return 1
            scores[name] = parse_table(r.stdout)
        for key in scores["old"]:
            if key in scores["new"]:
                d = abs(scores["old"][key] - scores["new"][key])
                worst = max(worst, d)
                report.append((method, key, scores["old"][key], scores["new"][key], d))
        for key in sorted(set(scores["new"]) - set(scores["old"])):
            report.append((method, key + " (new stage)", float("nan"), scores["new"][key], float("nan")))
    print("| method | stage | old | new | |diff| |")
    print("|---|---|---|---|---|")
    for m, k, o, n, d in report:
        print(f"| {m} | {k} | {o:.4f} | {n:.4f} | {d:.4f} |")
    print(f"\nlargest difference over the stages both versions report: {worst:.6f}")
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main())
