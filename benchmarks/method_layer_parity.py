"""Same seed -> same scores before and after the method-layer redesign (issue 10).

Runs `pet train` with identical inputs under two checkouts of pet — an older commit (checked out
with `git worktree`) and the current one — and compares every stage both report.

    git worktree add /tmp/pet-old defe944          # the last commit before the redesign
    python benchmarks/method_layer_parity.py --old /tmp/pet-old --model ../shared/models/minilm-mlm --data-dir ../shared/data

Issue 18 (the subpackage move) re-runs it against c1e211b, the last commit before the move, with
``--same-options`` (both sides take today's flags).

Inputs are a user's own data files (the union of SST-2's five LM-BFF train files as the set to
draw K=16 per class from, the union of their dev files as unlabelled text, test.tsv as the test
file; texts stripped) and own pattern/verbalizer files, so that the
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
    """`pet train`'s table -> {"stage pvp": score}; columns are found from the dashes line."""
    import re

    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("stage") or line.startswith("method "))
    spans = [m.span() for m in re.finditer(r"-+", lines[head + 1])]
    names = [lines[head][a:b].strip() for a, b in spans]
    res = {}
    for line in lines[head + 2:]:
        if not line.strip():
            break
        cell = {n: line[a:b].strip() if n != names[-1] else line[a:].strip() for n, (a, b) in zip(names, spans)}
        res[f"{cell['stage']} {cell['pvp']}".strip()] = float(cell["score"])
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="a checkout of the older pet (git worktree)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--methods", default=",".join(RUNS))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--same-options", action="store_true",
                    help="give both checkouts the current command-line options (for an older checkout "
                         "that already has them, e.g. before the subpackage move of issue 18)")
    args = ap.parse_args()
    if Path(args.model).exists():  # the runs start in a temporary folder
        args.model = str(Path(args.model).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="parity-"))
    def read(rel: str) -> pd.DataFrame:
        df = pd.read_csv(Path(args.data_dir) / "SST-2" / rel, sep="\t", quoting=3, dtype=str, keep_default_na=False)
        df["sentence"] = df["sentence"].str.strip()
        return df

    seeds = (13, 21, 42, 87, 100)
    train = pd.concat([read(f"16-{s}/train.tsv") for s in seeds]).drop_duplicates("sentence")
    pool = pd.concat([read(f"16-{s}/dev.tsv") for s in seeds]).drop_duplicates("sentence")
    pool = pool[~pool["sentence"].isin(train["sentence"])][["sentence"]]
    for name, df in (("train", train), ("test", read("test.tsv")), ("pool", pool)):
        df.to_json(tmp / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)
    (tmp / "p.json").write_text(json.dumps(PATTERNS))
    (tmp / "v.json").write_text(json.dumps(VERBALIZERS))
    common = ["--data", str(tmp / "train.jsonl"), "--test", str(tmp / "test.jsonl"), "--text-field", "sentence", "--label-field", "label",
              "--patterns", str(tmp / "p.json"), "--verbalizers", str(tmp / "v.json"), "--shots", "16", "--seed", str(args.seed),
              "--model", args.model, "--no-progress"]
    report = []
    worst = 0.0
    for method in args.methods.split(","):
        old_opts, new_opts = RUNS[method]
        if args.same_options:
            old_opts = new_opts
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
