"""Zero-shot accuracy of every shipped pattern × verbalizer on several tasks (not a test).

    python benchmarks/zero_shot_accuracy.py --model ../shared/models/minilm-mlm \
        --data-dir ../shared/data --tasks sst2 mr cr sst5 trec agnews stsb \
        --output benchmarks/results/zero_shot_accuracy.md

Writes a Markdown table: task, pattern, verbalizer, score (the task's metric, full test split;
for the regression task STS-B the Pearson correlation of p(high) * 5 with the gold score),
whether the PVP is a task default, and each task's ensemble of its default PVPs.
"""

from __future__ import annotations

import argparse
import os
import time

from pet.utils.io import atomic_write_text
from pet.metrics import evaluate_log_probs
from pet.models.prompt_model import PromptModel
from pet.models.scoring import ensemble
from pet.prompts.spec import PVP, load_patterns, load_verbalizers
from pet.data import load_examples, load_task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("PET_MODEL"))
    ap.add_argument("--data-dir", default=os.environ.get("PET_DATA_DIR"))
    ap.add_argument("--tasks", nargs="+", default=["sst2", "mr", "cr", "sst5", "trec", "agnews", "stsb"])
    ap.add_argument("--output", default="benchmarks/results/zero_shot_accuracy.md")
    args = ap.parse_args()
    model = PromptModel.from_pretrained(args.model)
    lines = [
        f"Base model: `{args.model}` (NOT RoBERTa-large). Full test split of each task; no calibration. "
        "Score = the task's metric (accuracy; Pearson r for stsb).",
        "",
        "| task | n | pattern | verbalizer | default | score |",
        "|---|---|---|---|---|---|",
    ]
    t0 = time.time()
    for name in args.tasks:
        task = load_task(name)
        test = load_examples(task, "test", args.data_dir)
        defaults = set(task.pvp_ids())
        pvps = [PVP(p, v) for p in load_patterns(task.patterns_path) if not p.is_soft for v in load_verbalizers(task.verbalizers_path)]
        lps = {}
        for pvp in pvps:  # one PVP at a time so each row's log-probs can be reused for the ensemble
            lps[pvp.id] = model.predict_log_proba(test, pvp, max_length=task.max_length, labels=task.label_ids)
            score = evaluate_log_probs(task, test, lps[pvp.id])[task.metric]
            lines.append(f"| {name} | {len(test)} | `{pvp.pattern.template.replace('|', chr(92) + '|')}` | {pvp.verbalizer.id} | {'yes' if pvp.id in defaults else ''} | {score:.3f} |")
        members = [pid for pid in lps if pid in defaults]
        ens = ensemble([lps[pid] for pid in members])
        score = evaluate_log_probs(task, test, ens)[task.metric]
        lines.append(f"| {name} | {len(test)} | **ensemble of {len(members)} default PVPs** | | | **{score:.3f}** |")
        print(f"{name}: done ({time.time() - t0:.0f}s)", flush=True)
        atomic_write_text(args.output + ".partial", "\n".join(lines) + "\n")  # progress of a long run
    lines += ["", f"Took {time.time() - t0:.0f} s on a shared 2-core CPU."]
    atomic_write_text(args.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
