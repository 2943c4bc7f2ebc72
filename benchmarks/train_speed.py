"""Training speed: pet's loop (``train_prompt_model``) vs a bare PyTorch loop, same model,
same batches, same optimizer, side by side in one process.

    python benchmarks/train_speed.py --model ../shared/models/minilm-mlm --data-dir ../shared/data

The bare loop is what one writes by hand with ``AutoModelForMaskedLM``: forward (full
vocabulary logits at every position), cross-entropy over the label words' logits at the mask,
backward, AdamW step (fused, as pet uses), zero_grad. pet's loop adds seeding, accelerate, the LR schedule,
gradient clipping, logging, and scores only the mask rows. Rounds alternate (pet, bare, pet,
bare, …) so load changes on a shared machine hit both; the median steps/s is reported.
Setup (tokenising, building the optimizer) is excluded from both: steps/s counts the steps
themselves.

``--aux-mlm``: PET's pattern-model step instead (its README recipe: 1 labelled + 3 unlabelled
examples per micro-batch, the auxiliary MLM loss at weight 1e-4, 4 accumulation steps; AG News by
default), pet's loop as it is (the MLM head on the masked positions only,
``PromptModel.mlm_loss``) vs the same loop computing that loss as the model's own
``labels=`` loss (vocabulary logits at every position), alternating rounds.

    python benchmarks/train_speed.py --model ../shared/models/minilm-mlm --data-dir ../shared/data --aux-mlm
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def bare_loop(mlm, batches, vt, lr: float, weight_decay: float) -> float:
    """Seconds for len(batches) plain forward+backward+step iterations."""
    mlm.train()
    opt = torch.optim.AdamW([p for p in mlm.parameters()], lr=lr, weight_decay=weight_decay, fused=True)
    label_ids = vt.token_ids[:, 0]  # single-token words, one per label
    t0 = time.perf_counter()
    for b in batches:
        logits = mlm(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        at_mask = logits[torch.arange(len(logits)), b["mask_start"]]  # [B, V]
        loss = F.cross_entropy(at_mask[:, label_ids], b["labels"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    secs = time.perf_counter() - t0
    mlm.eval()
    return secs


def bare_prompt_loop(model, batches, vt, lr: float, weight_decay: float) -> float:
    """The same computation as pet's loop (encoder, MLM head on mask rows only, label scores)
    in a hand-written loop: isolates the loop's own overhead (accelerate, schedule, clipping,
    logging)."""
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters()], lr=lr, weight_decay=weight_decay, fused=True)
    t0 = time.perf_counter()
    for b in batches:
        loss = F.cross_entropy(model.label_scores(b, vt), b["labels"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    secs = time.perf_counter() - t0
    model.eval()
    return secs


def aux_mlm_rounds(args) -> int:
    """pet's pattern-model step with the auxiliary MLM loss: masked-rows head vs full logits."""
    from pet.data import few_shot, load_task, unlabelled_pool
    from pet.data.registry import task_pvps
    from pet.models.prompt_model import PromptModel
    from pet.training.loop import TrainConfig
    from pet.training.prompt import train_prompt_model

    def full_logits_loss(self, input_ids, attention_mask, labels):  # the model's own loss
        return self.mlm(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device), labels=labels.to(self.device)).loss

    task = load_task(args.task)
    train, _ = few_shot(task, args.data_dir, total=50, seed=1, balanced=True)  # PET's |T| = 50
    pool = unlabelled_pool(task, args.data_dir, exclude=train, size=10000, seed=0)
    labels = task.label_ids
    (pvp,) = task_pvps(task, ids=[args.pvp])
    base = PromptModel.from_pretrained(args.model, device="cpu")
    cfg = TrainConfig(steps=args.steps, batch_size=1, grad_accum=4, lr=1e-5, max_length=task.max_length, seed=13, mlm_weight=1e-4, unlabelled_batch_size=3)
    rounds = {"masked rows": [], "full logits": []}
    fast = PromptModel.mlm_loss
    for r in range(args.rounds):
        for name, fn in (("masked rows", fast), ("full logits", full_logits_loss)):
            PromptModel.mlm_loss = fn
            try:
                m = PromptModel(copy.deepcopy(base.mlm), base.tokenizer, device="cpu")
                log = train_prompt_model(m, pvp, train, cfg, labels, unlabelled=pool, progress=False)
            finally:
                PromptModel.mlm_loss = fast
            rounds[name].append(cfg.steps / log.train_seconds)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rounds.items()) + " steps/s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"PET pattern-model steps (1 labelled + 3 unlabelled x 4 accumulation), {args.task}, {args.threads} thread(s)")
    print("| auxiliary MLM loss | steps/s (median) | rounds |")
    print("| --- | --- | --- |")
    for k, v in rounds.items():
        print(f"| {k} | {med[k]:.3f} | {', '.join(f'{x:.3f}' for x in v)} |")
    print(f"| ratio masked rows / full logits | {med['masked rows'] / med['full logits']:.2f}x | |")
    if args.json:
        Path(args.json).write_text(json.dumps({"task": args.task, "steps_per_round": cfg.steps, "threads": args.threads,
                                               "rounds": rounds, "ratio": med["masked rows"] / med["full logits"]}, indent=2) + "\n")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.environ.get("PET_MODEL"), help="masked LM folder (default $PET_MODEL)")
    ap.add_argument("--data-dir", default=os.environ.get("PET_DATA_DIR"))
    ap.add_argument("--task", help="task (default sst2; agnews with --aux-mlm)")
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--aux-mlm", action="store_true", help="time PET's pattern-model step with the auxiliary MLM loss (see above)")
    ap.add_argument("--pvp", default="mask-colon:pet", help="with --aux-mlm: the PVP (default AG News's mask-colon:pet)")
    args = ap.parse_args(argv)
    if not args.model:
        ap.error("--model (or PET_MODEL) is required")
    torch.set_num_threads(args.threads)
    if args.aux_mlm:
        args.task = args.task or "agnews"
        return aux_mlm_rounds(args)
    args.task = args.task or "sst2"

    from pet.prompts.encoding import collate
    from pet.models.prompt_model import PromptModel
    from pet.prompts.spec import PVP, Pattern, Verbalizer
    from pet.data import few_shot, load_task
    from pet.training.loop import IndexStream, TrainConfig
    from pet.training.prompt import train_prompt_model

    task = load_task(args.task)
    train, _ = few_shot(task, args.data_dir, k=16, seed=13)
    labels = task.label_ids
    pvp = PVP(Pattern("it-was", "{text_a} It was {mask}."), Verbalizer("great-terrible", {labels[0]: ["terrible"], labels[1]: ["great"]}))
    base = PromptModel.from_pretrained(args.model, device="cpu")
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=1e-5, max_length=task.max_length, max_grad_norm=1.0, seed=13)
    enc = base.encoder_for(pvp, cfg.max_length, labels)
    encoded = enc.encode(train)
    stream = IndexStream(len(encoded), cfg.batch_size, cfg.seed)  # the batches pet's loop draws
    batches = [collate([encoded[i] for i in next(stream)], base.tokenizer.pad_token_id) for _ in range(cfg.steps)]

    pet_sps, bare_sps, masked_sps = [], [], []
    for r in range(args.rounds):
        m = PromptModel(copy.deepcopy(base.mlm), base.tokenizer, device="cpu")
        log = train_prompt_model(m, pvp, train, cfg, labels, progress=False)
        pet_sps.append(cfg.steps / log.train_seconds)
        mlm = copy.deepcopy(base.mlm)
        bare_sps.append(cfg.steps / bare_loop(mlm, batches, enc.verbalizer_tokens, cfg.lr, cfg.weight_decay))
        pm = PromptModel(copy.deepcopy(base.mlm), base.tokenizer, device="cpu")
        masked_sps.append(cfg.steps / bare_prompt_loop(pm, batches, enc.verbalizer_tokens, cfg.lr, cfg.weight_decay))
        print(f"round {r + 1}: pet {pet_sps[-1]:.2f}, bare {bare_sps[-1]:.2f}, bare mask-rows {masked_sps[-1]:.2f} steps/s", file=sys.stderr)
    p, b, mk = statistics.median(pet_sps), statistics.median(bare_sps), statistics.median(masked_sps)
    res = {
        "model": args.model,
        "task": args.task,
        "batch_size": cfg.batch_size,
        "steps_per_round": cfg.steps,
        "rounds": args.rounds,
        "threads": args.threads,
        "pet_steps_per_s": round(p, 3),
        "bare_steps_per_s": round(b, 3),
        "ratio": round(p / b, 3),
        "bare_mask_rows_steps_per_s": round(mk, 3),
        "ratio_vs_mask_rows": round(p / mk, 3),
        "bare_mask_rows_rounds": [round(x, 3) for x in masked_sps],
        "pet_rounds": [round(x, 3) for x in pet_sps],
        "bare_rounds": [round(x, 3) for x in bare_sps],
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}",
    }
    print("| loop | steps/s (median) | rounds |")
    print("| --- | --- | --- |")
    print(f"| pet `train_prompt_model` | {p:.2f} | {', '.join(f'{x:.2f}' for x in pet_sps)} |")
    print(f"| bare AutoModelForMaskedLM fwd+bwd+AdamW | {b:.2f} | {', '.join(f'{x:.2f}' for x in bare_sps)} |")
    print(f"| bare loop, same mask-row scoring as pet | {mk:.2f} | {', '.join(f'{x:.2f}' for x in masked_sps)} |")
    print(f"| ratio pet / bare | {p / b:.2f}× | target ≥ 0.9× |")
    print(f"| ratio pet / bare mask-rows (loop overhead only) | {p / mk:.2f}× | |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
