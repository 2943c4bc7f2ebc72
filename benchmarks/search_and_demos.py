"""Searched vs manual label words, and demonstrations vs none (issue 15; not a test).

    OMP_NUM_THREADS=1 python benchmarks/search_and_demos.py --part search --steps 20 --test-limit 100 \
        --model ../shared/models/minilm-mlm --data-dir ../shared/data --output benchmarks/results/search_words.md
    OMP_NUM_THREADS=1 python benchmarks/search_and_demos.py --part demos --steps 20 --test-limit 100 --demo-sets 2 \
        --model ../shared/models/minilm-mlm --data-dir ../shared/data --output benchmarks/results/demonstrations.md

(the two run side by side, one core each; a table of the seeds done so far is kept in OUTPUT.partial)

Budget (reduced so both parts fit ~40 min on 2 shared CPU cores): LM-BFF's fixed 16-shot splits,
seeds 13/21/42, each task's LM-BFF manual PVP; prompt-ft --steps (default 40) at lr 1e-5 batch 4,
no dev checkpointing; a fixed random subset of --test-limit (default 300) test examples (seeded 0,
the same for every row). search: `pet.evaluation.search.search_verbalizer` (lmbff, 100 candidates, beam 100,
re-ranked on the split's 16-per-class dev set), then the same method with the searched words.
demos: demonstrations (uniform sampling, --demo-sets sets at evaluation, default 4 instead of
LM-BFF's 16; inputs up to 256 tokens) vs none.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np

from pet.data import few_shot, load_examples, load_task, task_pvps
from pet.evaluation import evaluate
from pet.utils.io import atomic_write_text
from pet.methods import FitSetup, get_method
from pet.evaluation.search import search_verbalizer
from pet.prompts.spec import PVP

LMBFF_PVPS = {"sst2": "it-was:great-terrible", "sst5": "it-was:terrible-great", "mr": "it-was:great-terrible", "cr": "it-was:great-terrible",
              "mpqa": "it-was:great-terrible", "subj": "this-is:subjective-objective", "trec": "mask-colon:lmbff"}


def fit_score(method, options, task, pvp, train, dev, test, model, seed):
    setup = FitSetup(model=model, labels=list(task.label_ids), pvps=[pvp], seed=seed, max_length=task.max_length, dev=dev)
    fitted = get_method(method).fit(train, [], options, setup)
    row = evaluate(fitted, test, task, stages=[fitted.final])[0]
    return row["score"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["search", "demos"], required=True)
    ap.add_argument("--model", default=os.environ.get("PET_MODEL"))
    ap.add_argument("--data-dir", default=os.environ.get("PET_DATA_DIR"))
    ap.add_argument("--tasks", nargs="+", default=None)
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 21, 42])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--test-limit", type=int, default=300)
    ap.add_argument("--demo-sets", type=int, default=4)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    tasks = args.tasks or (["sst2", "sst5", "trec", "agnews", "cr"] if args.part == "search" else list(LMBFF_PVPS))
    ft = {"steps": args.steps, "lr": 1e-5, "batch_size": 4}
    variants = (["manual", "searched"] if args.part == "search" else ["none", "demonstrations"])
    methods = ["zero-shot", "prompt-ft"]
    scores: dict[tuple, list[float]] = {}
    extra: dict[tuple, list[str]] = {}
    t0 = time.time()
    for name in tasks:
        task = load_task(name)
        pid = LMBFF_PVPS.get(name) or task.pvp_ids()[0]
        pvp = task_pvps(task, ids=[pid])[0]
        test_all = load_examples(task, "test", args.data_dir)
        test = random.Random(0).sample(test_all, min(args.test_limit, len(test_all)))
        for seed in args.seeds:
            train, dev = few_shot(task, args.data_dir, k=16, seed=seed)
            if args.part == "search":
                r = search_verbalizer(args.model, pvp.pattern, train, task.label_ids, dev=dev, seed=seed, max_length=task.max_length)
                extra.setdefault((name, "words"), []).append(f"{seed}: " + ", ".join(f"{k}={v[0]}" for k, v in r.verbalizer.labels.items()))
                pvps = {"manual": pvp, "searched": PVP(pvp.pattern, r.verbalizer)}
                for v in variants:
                    for m in methods:
                        opts = {} if m == "zero-shot" else dict(ft)
                        scores.setdefault((name, m, v), []).append(fit_score(m, opts, task, pvps[v], train, dev, test, args.model, seed))
            else:
                for v in variants:
                    for m in methods:
                        opts = {} if m == "zero-shot" else dict(ft)
                        if v == "demonstrations":
                            opts.update(demonstrations=True, demo_sets=args.demo_sets)
                        scores.setdefault((name, m, v), []).append(fit_score(m, opts, task, pvp, train, dev, test, args.model, seed))
            print(f"{name} seed {seed}: {time.time() - t0:.0f}s", flush=True)
            write_table(args, tasks, variants, methods, scores, extra, t0, partial=True)
    write_table(args, tasks, variants, methods, scores, extra, t0, partial=False)


def write_table(args, tasks, variants, methods, scores, extra, t0, partial: bool) -> None:
    lines = [f"Model `{os.path.basename(str(args.model).rstrip('/'))}`, seeds {args.seeds}, K=16 (LM-BFF splits), "
             f"test subset of {args.test_limit} (seeded), prompt-ft {args.steps} steps lr 1e-5 batch 4"
             + (f", {args.demo_sets} demonstration sets at evaluation" if args.part == "demos" else "") + ". Mean ± std (ddof 0) of the task metric.", "",
             "| task | PVP | method | " + " | ".join(variants) + " | Δ |", "|---|---|---|" + "---|" * (len(variants) + 1)]
    for name in tasks:
        pid = LMBFF_PVPS.get(name) or load_task(name).pvp_ids()[0]
        for m in methods:
            if (name, m, variants[1]) not in scores:
                continue
            cells = [np.array(scores[(name, m, v)]) for v in variants]
            if len(cells[1]) < len(cells[0]):
                cells[0] = cells[0][: len(cells[1])]
            lines.append(f"| {name} | {pid} | {m} | " + " | ".join(f"{c.mean():.3f} ± {c.std():.3f}" for c in cells)
                         + f" | {cells[1].mean() - cells[0].mean():+.3f} |")
    if extra:
        lines += ["", "Searched words (per seed):", ""] + [f"- {n}: " + "; ".join(ws) for (n, _), ws in extra.items()]
    done = sorted({len(v) for v in scores.values()})
    lines += ["", (f"PARTIAL (seeds done per task: {done}); " if partial else "") + f"Took {time.time() - t0:.0f} s on a shared 2-core CPU."]
    atomic_write_text(args.output + (".partial" if partial else ""), "\n".join(lines) + "\n")
    if not partial:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
