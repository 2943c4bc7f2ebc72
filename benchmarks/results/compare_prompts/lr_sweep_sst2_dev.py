"""Dev-split lr sweep for frozen-LM soft prompts (SST-2, minilm-mlm, 40 steps): fit on the split's
train file, evaluate on its dev file (the test set is not read)."""
import json, time, torch
torch.set_num_threads(1)
from pet.data import few_shot, load_task
from pet.evaluation import evaluate
from pet.methods import FitSetup, get_method
from pet.prompts.spec import load_patterns, load_verbalizers, make_pvps
task = load_task("sst2"); D = "../shared/data"
pvps = make_pvps(load_patterns(task.patterns_path), load_verbalizers(task.verbalizers_path), task.pvp_ids()[:1])
grid = {"prompt-tuning": [3e-3, 1e-2, 3e-2, 1e-1], "deep-prompt": [3e-3, 1e-2, 3e-2]}
out = []
for seed in (13, 21):
    tr, dev = few_shot(task, D, 16, seed)
    setup = FitSetup("../shared/models/minilm-mlm", task.label_ids, pvps, seed=seed, max_length=task.max_length)
    for m, lrs in grid.items():
        for lr in lrs:
            t = time.time()
            fitted = get_method(m).fit(tr, [], {"steps": 40, "soft_lr": lr}, setup)
            (r,) = evaluate(fitted, dev, task, split="dev")
            rec = {"method": m, "seed": seed, "soft_lr": lr, "dev_accuracy": r["score"], "final_loss": r["extra"]["final_loss"], "seconds": round(time.time() - t, 1)}
            out.append(rec); print(json.dumps(rec), flush=True)
