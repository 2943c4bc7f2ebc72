"""SST-2, K = 16 per class: cls-ft vs prompt-ft (each default PVP) vs PET (ensemble, distilled)
vs iPET, on the LM-BFF fixed splits 16-13, 16-21, 16-42, scored on the full SST-2 test (872).

Not a test: a benchmark. Example (the recorded run, CPU):

    PET_MODEL=../shared/models/minilm-mlm PET_DATA_DIR=../shared/data \\
      python benchmarks/sst2_methods.py --steps 40 --generations 1

Per seed it runs two method calls on identical data (``pet.methods``):

* ``cls-ft`` — ``[CLS]``+MLP fine-tuning with the same budget (steps, batch, lr);
* ``ipet`` with ``distill_each_generation=True`` — one call that yields, in order,
  generation 0 = PET's per-PVP models (these rows ARE prompt-ft: the same loop, config and
  seed as ``prompt-ft``; reported as prompt-ft), PET's weighted ensemble, PET's distilled
  classifier (``distilled-gen0``), then iPET's generation(s) and iPET's distilled classifier.

Wall time per method is derived from the rows (PET and iPET stages carry ``elapsed_seconds``, the
fitting time up to that stage: pre-training weights, pool scoring, every generation,
distillation; runs recorded before the method-layer redesign also counted test scoring in it).
Each seed's data comes from ``pet.data.rundata.task_run_data`` (pool: train-side texts outside
the split's train and dev files) and each method runs through ``pet.evaluation.evaluator.fit_evaluate``.
Results go to ``--out`` (default ``benchmarks/results/sst2_methods/``): ``rows.jsonl`` (every
stage row, appended as each seed finishes, so a long run can be resumed with ``--resume``),
``summary.csv`` and ``summary.md`` (rewritten after every seed).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.environ.get("PET_MODEL"), help="masked LM folder or hub name (default: $PET_MODEL)")
    p.add_argument("--data-dir", default=os.environ.get("PET_DATA_DIR"), help="data root (default: $PET_DATA_DIR)")
    p.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42])
    p.add_argument("--steps", type=int, default=40, help="optimizer steps per model (prompt models, cls-ft and distillation)")
    p.add_argument("--distill-steps", type=int, default=None, help="steps of the distilled classifier (default: --steps)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: TrainConfig's; pass it to pin a run)")
    p.add_argument("--generations", type=int, default=1, help="iPET generations after PET's generation 0")
    p.add_argument("--ensemble", default="weighted", choices=["weighted", "mean"])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default=str(HERE / "results" / "sst2_methods"))
    p.add_argument("--resume", action="store_true", help="skip seeds already in rows.jsonl")
    p.add_argument("--pet-only", action="store_true", help="run only method 'pet' (no cls-ft, no iPET): e.g. to vary --distill-steps")
    p.add_argument("--cls-only", action="store_true", help="run only the cls-ft baseline")
    p.add_argument("--summarize-only", action="store_true", help="rewrite summary.csv/.md from rows.jsonl and exit")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_seed(args, seed: int) -> list[dict]:
    from pet.data.rundata import task_run_data
    from pet.evaluation import fit_evaluate

    run = task_run_data("sst2", args.data_dir, k=16, seed=seed, unlabelled_size=10000)
    log(f"seed {seed}: {run.describe()}")
    common = {"steps": args.steps, "batch_size": args.batch_size, "seed": seed}
    if args.lr is not None:
        common["lr"] = args.lr
    out = []

    if args.pet_only:
        opts = {**common, "ensemble": args.ensemble}
        if args.distill_steps:
            opts["distill_steps"] = args.distill_steps
        t0 = time.perf_counter()
        _, rows = fit_evaluate("pet", opts, run, args.model)
        wall = time.perf_counter() - t0
        log(f"seed {seed}: pet call {wall:.0f}s")
        return [{**r, "seed": seed, "call_wall_seconds": wall} for r in rows]

    t0 = time.perf_counter()
    _, rows = fit_evaluate("cls-ft", dict(common), run, args.model)
    wall = time.perf_counter() - t0
    for r in rows:
        out.append({**r, "seed": seed, "call_wall_seconds": wall})
    log(f"seed {seed}: cls-ft {rows[-1]['score']:.4f} ({wall:.0f}s)")
    if args.cls_only:
        return out

    opts = {**common, "generations": args.generations, "distill_each_generation": True, "ensemble": args.ensemble}
    if args.distill_steps:
        opts["distill_steps"] = args.distill_steps
    t0 = time.perf_counter()
    _, rows = fit_evaluate("ipet", opts, run, args.model)
    wall = time.perf_counter() - t0
    for r in rows:
        out.append({**r, "seed": seed, "call_wall_seconds": wall})
        log(f"seed {seed}: ipet/{r['stage']} {r['pvp'] or ''} {r['score']:.4f}")
    log(f"seed {seed}: ipet call {wall:.0f}s")
    return out


def _eval_seconds(r: dict) -> float:
    eps = r.get("eval_examples_per_second") or 0.0
    return 872 / eps if eps else 0.0


def summarize(rows: list[dict]) -> list[dict]:
    """One line per reported method: score mean ± std over seeds, wall seconds (mean per seed)."""
    by_seed: dict[int, list[dict]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], []).append(r)
    table: dict[str, dict[int, tuple[float, float]]] = {}

    def put(name, seed, score, secs):
        table.setdefault(name, {})[seed] = (score, secs)

    for seed, rs in by_seed.items():
        cls = [r for r in rs if r["method"] == "cls-ft"]
        ip = [r for r in rs if r["method"] == "ipet"]
        if not ip:  # a --pet-only run: method "pet", its "distilled" is PET's
            ip = [{**r, "stage": "distilled-gen0" if r["stage"] == "distilled" else r["stage"]} for r in rs if r["method"] == "pet"]
        if cls:
            put("cls-ft", seed, cls[-1]["score"], cls[-1]["call_wall_seconds"])
        gen0 = [r for r in ip if r["stage"] == "pvp"]
        for r in gen0:
            put(f"prompt-ft {r['pvp']}", seed, r["score"], r["train_seconds"] + _eval_seconds(r))
        if gen0:
            put("prompt-ft (mean of PVPs)", seed, statistics.mean(r["score"] for r in gen0), statistics.mean(r["train_seconds"] + _eval_seconds(r) for r in gen0))
        st = {r["stage"]: r for r in ip if r["pvp"] is None}
        if "ensemble" in st:
            put("PET ensemble", seed, st["ensemble"]["score"], st["ensemble"]["extra"]["elapsed_seconds"])
        if "distilled-gen0" in st:
            d0 = st["distilled-gen0"]
            put("PET distilled", seed, d0["score"], d0["extra"]["elapsed_seconds"])
        last_ens = [s for s in st if s.startswith("ipet-gen") and s.endswith("-ensemble")]
        d0_cost = (st["distilled-gen0"]["extra"]["elapsed_seconds"] - st["ensemble"]["extra"]["elapsed_seconds"]) if "distilled-gen0" in st and "ensemble" in st else 0.0
        if last_ens:
            s = sorted(last_ens, key=lambda x: int(x[len("ipet-gen"):].split("-")[0]))[-1]
            put(f"iPET ensemble ({s.split('-ensemble')[0]})", seed, st[s]["score"], st[s]["extra"]["elapsed_seconds"] - d0_cost)
        if "distilled" in st:
            put("iPET distilled", seed, st["distilled"]["score"], st["distilled"]["extra"]["elapsed_seconds"] - d0_cost)

    out = []
    for name, per in table.items():
        scores = [per[s][0] for s in sorted(per)]
        secs = [per[s][1] for s in sorted(per)]
        out.append(
            {
                "method": name,
                "n_seeds": len(scores),
                "seeds": " ".join(str(s) for s in sorted(per)),
                "accuracy_mean": statistics.mean(scores),
                "accuracy_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "per_seed": " ".join(f"{x:.4f}" for x in scores),
                "wall_seconds_mean": statistics.mean(secs),
            }
        )
    return out


def _diagnostics(rows: list[dict]) -> list[str]:
    """Teacher quality on the pool, iPET's added-label accuracy, pre-training weights."""
    out = []

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return statistics.mean(xs) if xs else None

    for stage in ("distilled-gen0", "distilled"):
        rs = [r for r in rows if r["method"] == "ipet" and r["stage"] == stage]
        if not rs and stage == "distilled":
            rs = [r for r in rows if r["method"] == "pet" and r["stage"] == stage]
            stage = "distilled-gen0"
        acc = mean([r["extra"].get("teacher_pool_accuracy") for r in rs])
        ent = mean([r["extra"].get("target_entropy") for r in rs])
        if acc is not None:
            name = "PET" if stage == "distilled-gen0" else "iPET"
            out.append(
                f"- {name} distillation: the ensemble's hard-label accuracy on the unlabelled pool (its hidden gold labels) "
                f"{100 * acc:.1f}%; mean entropy of the T-softened targets {ent:.3f} nats (uniform = {math.log(2):.3f})"
            )
    added = mean([r["extra"].get("added_label_accuracy") for r in rows if r["stage"].startswith("ipet-gen")])
    if added is not None:
        out.append(f"- iPET: accuracy of the labels the other PVPs' ensembles gave the added examples {100 * added:.1f}%")
    pre = {}
    for r in rows:
        if r["method"] in ("ipet", "pet") and r["stage"] == "pvp" and "pre_train_accuracy" in r["extra"]:
            pre.setdefault(r["pvp"], []).append(r["extra"]["pre_train_accuracy"])
    if pre:
        out.append("- PET weights (accuracy on the 32 labelled examples before training): " + ", ".join(f"{k} {100 * statistics.mean(v):.0f}%" for k, v in pre.items()))
    return out


def write_summary(out_dir: Path, rows: list[dict], args) -> None:
    from pet.utils.io import atomic_write_text

    summary = summarize(rows)
    fields = ["method", "n_seeds", "seeds", "accuracy_mean", "accuracy_std", "per_seed", "wall_seconds_mean"]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for s in summary:
        w.writerow({**s, "accuracy_mean": f"{s['accuracy_mean']:.4f}", "accuracy_std": f"{s['accuracy_std']:.4f}", "wall_seconds_mean": f"{s['wall_seconds_mean']:.0f}"})
    atomic_write_text(out_dir / "summary.csv", buf.getvalue())

    pool = next((r["extra"].get("pool_size") for r in rows if r["stage"].startswith("distilled")), "?")
    cfg = next((r["extra"].get("config") for r in rows if r["method"] == "cls-ft"), None) or {"lr": args.lr, "steps": args.steps, "batch_size": args.batch_size}
    lines = [
        "# SST-2, K=16: cls-ft vs prompt-ft vs PET vs iPET",
        "",
        f"Base model: `{Path(str(args.model)).name}` (offline 6-layer MiniLM MLM, 22.7M parameters — NOT RoBERTa-large). "
        f"LM-BFF splits 16-{{{', '.join(str(s) for s in sorted({r['seed'] for r in rows}))}}}; test = full SST-2 test (GLUE dev, 872); accuracy, mean ± std over seeds.",
        f"Budget (CPU, 2 shared cores): {cfg.get('steps', args.steps)} optimizer steps × batch {cfg.get('batch_size', args.batch_size)}, lr {cfg.get('lr', args.lr)}, "
        f"full fine-tuning, for every model (cls-ft, each PVP model); distillation {args.distill_steps or args.steps} steps; unlabelled pool {pool} examples; "
        f"iPET: {args.generations} generation(s) after PET's (training sets ×5), λ = 0.25, ensemble `{args.ensemble}`.",
        "prompt-ft rows are PET's generation-0 models (same training loop, config and seed as the prompt-ft method). "
        "Wall seconds: mean per seed, training + scoring, everything each method needs (PET/iPET include all their models).",
        "",
        "| method | accuracy (mean ± std) | per seed | wall s / seed |",
        "| --- | --- | --- | --- |",
    ]
    for s in summary:
        lines.append(f"| {s['method']} | {100 * s['accuracy_mean']:.1f} ± {100 * s['accuracy_std']:.1f} | {s['per_seed']} | {s['wall_seconds_mean']:.0f} |")
    cmd = (
        f"python benchmarks/sst2_methods.py --model {args.model} --data-dir {args.data_dir} --seeds {' '.join(map(str, args.seeds))} "
        f"--steps {args.steps}{f' --distill-steps {args.distill_steps}' if args.distill_steps else ''} --batch-size {args.batch_size} "
        f"{f'--lr {args.lr:g} ' if args.lr is not None else ''}{'--pet-only ' if args.pet_only else ''}{'--cls-only ' if args.cls_only else ''}"
        f"--generations {args.generations} --ensemble {args.ensemble} --threads {args.threads}"
    )
    lines += ["", f"Command: `{cmd}`", ""]
    extra = _diagnostics(rows)
    if extra:
        lines += ["Diagnostics (mean over seeds):", "", *extra, ""]
    atomic_write_text(out_dir / "summary.md", "\n".join(lines))


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "rows.jsonl"
    done: list[dict] = []
    if raw.is_file() and (args.resume or args.summarize_only):
        done = [json.loads(line) for line in raw.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.summarize_only:
        write_summary(out_dir, done, args)
        return 0
    if not args.model:
        print("error: no model; fix: pass --model or set PET_MODEL", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import logging

    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S", stream=sys.stdout)
    logging.getLogger("pet.methods.pet").setLevel(logging.INFO)
    if raw.is_file() and not args.resume:
        raw.unlink()
    seen = {r["seed"] for r in done}
    t_all = time.perf_counter()
    for seed in args.seeds:
        if seed in seen:
            log(f"seed {seed}: already in {raw}, skipped")
            continue
        rows = run_seed(args, seed)
        with open(raw, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, default=str) + "\n")
        done.extend(rows)
        write_summary(out_dir, done, args)
        log(f"seed {seed} done; total {time.perf_counter() - t_all:.0f}s; summary in {out_dir / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
