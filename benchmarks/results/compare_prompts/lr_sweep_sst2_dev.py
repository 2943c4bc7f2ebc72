"""Dev-split lr sweep for frozen-LM soft prompts (SST-2, minilm-mlm, 40 steps)."""
import json, sys, time, torch
torch.set_num_threads(1)
from pet.data import load_task, few_shot
from pet.spec import load_patterns, load_verbalizers, make_pvps
from pet.methods.base import RunContext, get_method
task = load_task("sst2"); D = "../shared/data"
pvps = make_pvps(load_patterns(task.patterns_path), load_verbalizers(task.verbalizers_path), task.pvp_ids()[:1])
grid = {"prompt-tuning": [3e-3, 1e-2, 3e-2, 1e-1], "deep-prompt": [3e-3, 1e-2, 3e-2]}
out = []
for seed in (13, 21):
    tr, dev = few_shot(task, D, 16, seed)
    ctx = RunContext(task, "../shared/models/minilm-mlm", tr, dev, pvps, seed=seed, k=16, dev=dev, progress=False)
    for m, lrs in grid.items():
        for lr in lrs:
            t = time.time()
            (r,) = get_method(m)(ctx, {"steps": 40, "soft_lr": lr})
            rec = {"method": m, "seed": seed, "soft_lr": lr, "dev_accuracy": r.score, "final_loss": r.extra["final_loss"], "seconds": round(time.time() - t, 1)}
            out.append(rec); print(json.dumps(rec), flush=True)
