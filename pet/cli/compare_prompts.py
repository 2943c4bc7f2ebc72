"""``pet compare-prompts``: hard vs soft prompts vs [CLS] fine-tuning on identical splits.

    pet compare-prompts --task sst2 --shots 16 --seeds 13,21,42 --model roberta-large --data-dir data/ --steps 60 --output out/sst2

A preset of the benchmark runner (:func:`pet.bench.presets.compare_prompts_experiment`): the
same results store (resumable), config hashes and report as ``pet bench``.
"""

from __future__ import annotations

import json
import sys

from ..bench.presets import COMPARE_METHODS, compare_prompts_experiment
from ..bench.report import build_report
from ..bench.runner import run_experiment
from ..errors import ConfigError
from ..utils.io import check_output_not_input
from . import add_model_args, add_run_args, help_text, require_model, start_run
from .args import positive_int

EXAMPLES = (
    "pet compare-prompts --task sst2 --shots 16 --seeds 13,21,42 --model roberta-large --data-dir data/ --steps 60 --output out/sst2",
    "pet compare-prompts --task trec --methods zero-shot,prompt-ft,cls-ft --test-size 500 --model roberta-large --data-dir data/ --threads 2",
    "pet compare-prompts --task sst2 --set prompt-tuning.soft_lr=0.1 --set batch_size=8 --model roberta-large --data-dir data/ --no-progress",
)


def register(sub) -> None:
    p = sub.add_parser(
        "compare-prompts",
        help="compare zero-shot, prompt-ft, prompt tuning, P-tuning, deep prompts and cls-ft on identical splits",
        **help_text("Run each method on the same few-shot split per seed, the same test set and the same number of "
                    "training steps, as a `pet bench` experiment: a resumable results store in --output and its report "
                    "(report/report.md with the hard-vs-soft table, CSVs, plots).", *EXAMPLES),
    )
    p.add_argument("--task", required=True, help="shipped task name or task JSON file")
    p.add_argument("--shots", "-k", type=positive_int, default=16, help="labelled examples per class (default 16)")
    p.add_argument("--seeds", default="13,21,42", help="comma-separated split/training seeds (default 13,21,42)")
    add_model_args(p)
    p.add_argument("--steps", type=positive_int, help="training steps for every trained method (default: each method's own)")
    p.add_argument("--methods", help=f"comma-separated method names (default: {','.join(COMPARE_METHODS)})")
    p.add_argument("--pvps", nargs="+", help="hard PVP ids pattern:verbalizer (default: the task's first default PVP)")
    p.add_argument("--test-size", type=positive_int, help="score a seeded subset of this many test examples (same for all methods)")
    p.add_argument(
        "--set", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
        help="option for one method (prompt-tuning.soft_lr=0.1) or, without METHOD., for every trained method (batch_size=8); repeatable",
    )
    p.add_argument("--output", help="results folder (default: compare_prompts-<task>); an existing one is resumed")
    add_run_args(p)
    p.set_defaults(func=main)


def _value(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_sets(items, methods) -> tuple[dict, dict]:
    """``--set`` items → (per-method options, common options)."""
    per: dict[str, dict] = {}
    common: dict = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE or METHOD.KEY=VALUE; fix: e.g. --set prompt-tuning.soft_lr=0.1")
        method, dot, k = key.rpartition(".")
        if dot and method in methods:
            per.setdefault(method, {})[k] = _value(raw)
        elif dot and method:
            raise ConfigError(f"--set {item!r}: '{method}' is not one of the methods run ({', '.join(methods)}); fix: check the name")
        else:
            common[key] = _value(raw)
    return per, common


def main(args) -> int:
    model = require_model(args)
    try:
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r}: expected comma-separated integers; fix: e.g. --seeds 13,21,42") from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else list(COMPARE_METHODS)
    per, common = parse_sets(args.set, methods)
    task_name = str(args.task).rsplit("/", 1)[-1].removesuffix(".json")
    output = args.output or f"compare_prompts-{task_name}"
    check_output_not_input(output, [args.task if str(args.task).endswith(".json") else None])
    exp = compare_prompts_experiment(args.task, shots=args.shots, seeds=seeds, steps=args.steps, methods=methods, method_options=per,
                                     common_options=common, pvps=args.pvps, test_size=args.test_size, results=output)
    bars = start_run(args) == "bar"
    summary = run_experiment(exp, model=model, data_dir=args.data_dir, results=output, progress=bars,
                             inner_progress=bars, device=args.device, echo=lambda s: print(s, file=sys.stderr, flush=True))
    report = build_report(summary.results)
    print(report.section("Results") + report.section("Hard vs soft prompts"), end="")
    print(f"results: {summary.results}; report: {summary.results / 'report' / 'report.md'}")
    return 0 if summary.ok else 1
