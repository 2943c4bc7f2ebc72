"""``pet train``: run one method on one (task, K, seed) cell, print every stage, optionally save.

    pet train --task sst2 --method prompt-ft --shots 16 --seed 13 --model M --data-dir D --output runs/sst2-pft
    pet train --data reviews.csv --text-field review --label-field stars \\
              --patterns my_patterns.json --verbalizers my_verbalizers.json --method prompt-ft --shots 8 --output my-model
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DataError

#: Methods that distil into a classifier over unlabelled text.
DISTILLING = ("pet", "ipet")

#: CLI flag -> TrainConfig key.
_TRAIN_FLAGS = {
    "steps": "steps",
    "lr": "lr",
    "batch_size": "batch_size",
    "grad_accum": "grad_accum",
    "tune": "tune",
    "mlm_weight": "mlm_weight",
    "max_length": "max_length",
    "warmup_ratio": "warmup_ratio",
    "temperature": "temperature",
    "lora_r": "lora_r",
    "soft_lr": "soft_lr",
}


@dataclass(frozen=True)
class UserTask:
    """A task built from a user's own data file (what ``RunContext.task`` needs)."""

    name: str
    labels: dict[str, str]
    metric: str = "accuracy"
    max_length: int = 256
    positive_label: str | None = None
    fields: dict = field(default_factory=dict)

    @property
    def label_ids(self) -> list[str]:
        return list(self.labels)


def register(sub) -> None:
    from . import add_model_args

    p = sub.add_parser(
        "train",
        help="train and evaluate a method (prompt-ft, cls-ft, pet, …) on a task or your own data",
        description="Train one method on a few-shot split, evaluate every stage on the test split, print a table; "
        "with --output save the trained classifier (use it with `pet predict`).",
    )
    src = p.add_argument_group("data (a shipped task, or your own file)")
    src.add_argument("--task", help="shipped task name or task JSON file")
    src.add_argument("--data", help="your own labelled CSV/TSV/JSONL file (instead of --task)")
    src.add_argument("--text-field", default="text", help="column with the text (own data; maps to {text_a})")
    src.add_argument("--text-b-field", help="second text column (own data; maps to {text_b})")
    src.add_argument("--label-field", default="label", help="label column (own data)")
    src.add_argument("--test", help="own data: labelled test file (default: the examples not drawn for training)")
    src.add_argument("--unlabelled", help="own data: unlabelled text file (same text columns)")
    p.add_argument("--method", required=True, help="prompt-ft, cls-ft, pet, ipet, zero-shot, … (see `pet train --method list`)")
    p.add_argument("--shots", "-k", type=int, default=16, help="labelled examples per class (default 16)")
    p.add_argument("--seed", type=int, default=13, help="split and training seed (default 13)")
    add_model_args(p)
    p.add_argument("--pvps", nargs="+", help="PVP ids pattern:verbalizer (default: the task's default PVPs)")
    p.add_argument("--patterns", help="patterns JSON file (default: the task's)")
    p.add_argument("--verbalizers", help="verbalizers JSON file (default: the task's)")
    t = p.add_argument_group("training (defaults: pet.training.TrainConfig)")
    t.add_argument("--steps", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--grad-accum", type=int)
    t.add_argument("--tune", choices=["full", "bitfit", "lora", "head", "frozen"])
    t.add_argument("--mlm-weight", type=float, help="weight of the auxiliary MLM loss on unlabelled text (0 = off)")
    t.add_argument("--max-length", type=int)
    t.add_argument("--warmup-ratio", type=float)
    t.add_argument("--temperature", type=float, help="distillation temperature")
    t.add_argument("--lora-r", type=int)
    t.add_argument("--soft-lr", type=float)
    t.add_argument("--unlabelled-size", type=int, help="unlabelled pool size (default 10000 when the method uses one, else 0)")
    t.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="extra method option (JSON value), repeatable")
    p.add_argument("--output", help="save the trained classifier and metrics.json here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def _parse_options(items: list[str]) -> dict:
    out = {}
    for it in items:
        key, eq, raw = it.partition("=")
        if not eq or not key:
            raise ConfigError(f"--option '{it}': expected KEY=VALUE; fix: e.g. --option calibrate=true")
        try:
            out[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = raw
    return out


def sample_k_per_class(examples, labels, k: int, seed: int, where: str):
    """K examples per label (seeded) and the rest."""
    by = {lab: [] for lab in labels}
    for e in examples:
        if e.label not in by:
            raise DataError(f"{where}: label '{e.label}' ({e.guid}) is not a verbalizer label {labels}; fix: add it to the verbalizer")
        by[e.label].append(e)
    rng = random.Random(seed)
    train = []
    for lab in labels:
        if len(by[lab]) < k:
            raise DataError(f"{where}: label '{lab}' has only {len(by[lab])} examples, {k} needed; fix: use a smaller --shots")
        train.extend(rng.sample(by[lab], k))
    rng.shuffle(train)
    chosen = {id(e) for e in train}
    return train, [e for e in examples if id(e) not in chosen]


def build_context(args):
    """A ``RunContext`` from the command line (shared with `pet compare-prompts`)."""
    from ..methods.base import RunContext, get_method
    from ..spec import load_patterns, load_verbalizers, make_pvps
    from . import require_model

    get_method(args.method)  # unknown method: fail before loading anything
    model = require_model(args)
    if bool(args.task) == bool(args.data):
        raise ConfigError("give exactly one of --task (a shipped task) or --data (your own file); fix: e.g. --task sst2")
    opts = {key: getattr(args, flag) for flag, key in _TRAIN_FLAGS.items() if getattr(args, flag, None) is not None}
    opts.update(_parse_options(args.option))
    opts.setdefault("seed", args.seed)
    mlm_weight = float(opts.get("mlm_weight", 0) or 0)
    size = args.unlabelled_size
    if size is None:
        size = 10000 if (args.method in DISTILLING or mlm_weight > 0) else 0
    if size < 0:
        raise ConfigError(f"--unlabelled-size {size}: must be ≥ 0; fix: pass a count")

    if args.task:
        from ..data import few_shot, load_examples, load_task, unlabelled_pool

        task = load_task(args.task)
        pat = args.patterns or task.patterns_path
        verb = args.verbalizers or task.verbalizers_path
        ids = args.pvps or (None if args.patterns else task.pvp_ids())
        train, dev = few_shot(task, args.data_dir, k=args.shots, seed=args.seed)
        test = load_examples(task, "test", args.data_dir)
        unl = unlabelled_pool(task, args.data_dir, exclude=train + dev, size=size, seed=args.seed) if size > 0 else []
        max_length = task.max_length
    else:
        from ..data import load_table

        if not (args.patterns and args.verbalizers) and args.method != "cls-ft":
            raise ConfigError("own data (--data) needs --patterns and --verbalizers files; fix: pass both (see docs/training.md)")
        fields = {"text_a": args.text_field}
        if args.text_b_field:
            fields["text_b"] = args.text_b_field
        pat, verb, ids = args.patterns, args.verbalizers, args.pvps
        examples = load_table(args.data, fields, args.label_field)
        if args.patterns and args.verbalizers:
            labels = make_pvps(load_patterns(pat), load_verbalizers(verb), ids)[0].verbalizer.label_ids
        else:
            labels = sorted({e.label for e in examples})
        train, rest = sample_k_per_class(examples, labels, args.shots, args.seed, args.data)
        test = load_table(args.test, fields, args.label_field) if args.test else rest
        if not test:
            raise DataError(f"{args.data}: no examples left for testing after drawing {args.shots} per class; fix: pass --test FILE or a smaller --shots")
        dev = []
        unl = load_table(args.unlabelled, fields, None)[:size or None] if args.unlabelled else []
        max_length = int(opts.get("max_length") or 256)
        task = UserTask(Path(args.data).stem, {lab: lab for lab in labels}, max_length=max_length, fields=fields)
    pvps = make_pvps(load_patterns(pat), load_verbalizers(verb), ids) if (pat and verb and args.method != "cls-ft") or args.patterns else []
    if args.method in DISTILLING and not unl:
        raise ConfigError(
            f"method '{args.method}' distils the ensemble into a classifier over unlabelled text, but the unlabelled pool is empty; "
            "fix: pass --unlabelled FILE (own data) or --unlabelled-size > 0 with a task that has a train-side pool"
        )
    if mlm_weight > 0 and not unl:
        raise ConfigError(f"--mlm-weight {mlm_weight} needs unlabelled text but the pool is empty; fix: pass --unlabelled FILE or --unlabelled-size > 0")
    ctx = RunContext(
        task=task,
        model=model,
        train=train,
        test=test,
        pvps=pvps,
        seed=args.seed,
        k=args.shots,
        dev=dev,
        unlabelled=unl,
        device=args.device,
        output_dir=None,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    return ctx, opts, max_length


def format_table(rows) -> str:
    head = ["method", "stage", "pvp", "score", "train s", "eval ex/s", "trained params", "peak MB"]
    body = [
        [r.method, r.stage, r.pvp or "", f"{r.score:.4f}", f"{r.train_seconds:.1f}", f"{r.eval_examples_per_second:.1f}", f"{r.trained_parameters:,}", f"{r.peak_memory_mb:.0f}"]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def cmd_train(args) -> int:
    from ..io import atomic_write_json
    from ..methods.base import available_methods, get_method

    if args.method == "list":
        print("\n".join(available_methods()))
        return 0
    out = Path(args.output) if args.output else None
    if out is not None and out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out}: output directory exists and is not empty; fix: choose another --output or pass --overwrite")
    ctx, opts, max_length = build_context(args)
    method = get_method(args.method)
    ctx.output_dir = out
    print(
        f"{args.method} on {ctx.task.name}: {len(ctx.train)} train, {len(ctx.test)} test, {len(ctx.unlabelled)} unlabelled, "
        f"{len(ctx.pvps)} PVP(s), model {ctx.model}",
        file=sys.stderr,
    )
    rows = method(ctx, opts)
    print(format_table(rows))
    if out is not None:
        from ..classifier import CONFIG_FILE

        if not (out / CONFIG_FILE).is_file():
            _save_untrained(ctx, args.method, opts, max_length, out)
        stages = [r.to_dict() for r in rows]
        atomic_write_json(
            out / "metrics.json",
            {
                "task": ctx.task.name,
                "method": args.method,
                "model": ctx.model,
                "k": ctx.k,
                "seed": ctx.seed,
                "n_train": len(ctx.train),
                "n_test": len(ctx.test),
                "n_unlabelled": len(ctx.unlabelled),
                "options": opts,
                "stages": stages,
            },
        )
        print(f"saved to {out}", file=sys.stderr)
    return 0


def _save_untrained(ctx, method: str, opts: dict, max_length: int, out: Path) -> None:
    """After a method that wrote no ``pet_config.json`` itself: zero-shot is rebuilt (nothing
    trained); otherwise (``-o save=false``, or a method that does not save) only metrics are
    kept, said on stderr. Every built-in trained method (prompt-ft, cls-ft, pet, ipet and the
    soft-prompt methods) saves its classifier when ``ctx.output_dir`` is set."""
    from ..classifier import PetClassifier, PromptEnsemble
    from ..training import split_options

    if method == "zero-shot" and ctx.pvps:
        from ..model import PromptModel

        cfg, _ = split_options({k: v for k, v in opts.items()}, allowed=("calibrate",), where="zero-shot options")
        m = PromptModel.from_pretrained(ctx.model, device=ctx.device)
        pred = PromptEnsemble([(m, p) for p in ctx.pvps], ctx.labels, max_length=cfg.max_length or max_length)
        PetClassifier.from_trained(ctx.model, "zero-shot", ctx.labels, cfg, pred, pvps=ctx.pvps).save(out, overwrite=True)
    else:
        why = "option save=false" if str(opts.get("save", "")).lower() in ("false", "0", "no") else "it does not save one"
        print(f"note: no model saved for method '{method}' ({why}); {out} holds its metrics only, so `pet predict` cannot use it", file=sys.stderr)
        out.mkdir(parents=True, exist_ok=True)
