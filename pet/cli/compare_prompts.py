"""``pet compare-prompts``: hard vs soft prompts vs [CLS] fine-tuning on identical splits.

    pet compare-prompts --task sst2 --shots 16 --seeds 13,21,42 --model roberta-large --data-dir data/ --steps 60 --output out/sst2

A preset of the benchmark runner (:func:`pet.bench.presets.compare_prompts_experiment`): the
same results store (resumable), config hashes and report as ``pet bench``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..bench.presets import COMPARE_METHODS, compare_prompts_experiment
from ..bench.report import build_report
from ..bench.runner import run_experiment
from ..data import load_task, task_pvps
from ..errors import ConfigError, SpecError
from ..utils.jsonio import parse_json
from ..methods import get_method
from ..training.loop import TrainConfig
from ..utils.io import check_output_not_input
from . import add_model_args, add_run_args, help_text, require_model, start_run
from .args import positive_int
from .args import seed as seed_type

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
    p.add_argument("--steps", type=positive_int, help="training steps for every trained method (default: each method's own; "
                   "--set METHOD.steps=N overrides it for one method)")
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


def _value(raw: str, item: str):
    """A --set value: JSON when it parses (a key given twice in an object is refused), else the text."""
    try:
        json.loads(raw)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return raw
    return parse_json(raw, f"--set {item}", ConfigError, fix="give each key once")


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
            per.setdefault(method, {})[k] = _value(raw, item)
        elif dot and method:
            raise ConfigError(f"--set {item!r}: '{method}' is not one of the methods run ({', '.join(methods)}); fix: check the name")
        else:
            common[key] = _value(raw, item)
    return per, common


def parse_seeds(text: str) -> list[int]:
    """``--seeds 13,21,42`` → [13, 21, 42]; each a seed (0 … 2**32-1), none twice, at least one."""
    items = [x.strip() for x in str(text).split(",") if x.strip()]
    if not items:
        raise ConfigError(f"--seeds {text!r}: no seeds; fix: e.g. --seeds 13,21,42")
    out: list[int] = []
    for x in items:
        try:
            out.append(seed_type(x))
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"--seeds {text}: {e}") from None
    dup = next((x for i, x in enumerate(out) if x in out[:i]), None)
    if dup is not None:
        raise ConfigError(f"--seeds {text}: seed {dup} is listed twice; fix: list each seed once")
    return out


def parse_methods(text: str | None) -> list[str]:
    """``--methods a,b`` → the method names (default: every compared method); none empty,
    unknown or repeated."""
    if text is None:
        return list(COMPARE_METHODS)
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise ConfigError(f"--methods {text!r}: no method named; fix: e.g. --methods zero-shot,prompt-ft, or drop --methods to run "
                          f"all of {','.join(COMPARE_METHODS)}")
    for m in methods:
        try:
            get_method(m)
        except ConfigError as e:
            raise ConfigError(f"--methods {text}: {e}") from None
    dup = next((m for i, m in enumerate(methods) if m in methods[:i]), None)
    if dup is not None:
        raise ConfigError(f"--methods {text}: '{dup}' is listed twice; fix: list each method once")
    return methods


def check_sets(items: list[str], methods: list[str], steps: int | None) -> None:
    """Each ``--set`` item on its own against the options of the method(s) it goes to, so an
    error names the item the user typed; ``--set steps=…`` together with ``--steps`` is refused
    (two values for one option)."""
    trained = [m for m in methods if issubclass(get_method(m).options, TrainConfig)]
    if steps is not None and not trained:
        raise ConfigError(f"--steps {steps}: none of {', '.join(methods)} trains; fix: drop --steps")
    for item in items:
        key, _, raw = item.partition("=")
        method, dot, k = key.rpartition(".")
        if dot and method in methods:
            get_method(method).make_options({k: _value(raw, item)}, where=f"--set {item}")
            continue
        if key == "steps" and steps is not None:
            raise ConfigError(f"--set {item} and --steps {steps} both give the training steps; fix: give one of them")
        if not trained:
            raise ConfigError(f"--set {item}: an option without METHOD. goes to the trained methods, and none of "
                              f"{', '.join(methods)} trains; fix: drop it, or write METHOD.{key}={raw}")
        for m in trained:
            get_method(m).make_options({key: _value(raw, item)}, where=f"--set {item}" + (f" (for {m})" if len(trained) > 1 else ""))


def main(args) -> int:
    model = require_model(args)
    seeds = parse_seeds(args.seeds)
    methods = parse_methods(args.methods)
    per, common = parse_sets(args.set, methods)
    check_sets(args.set, methods, args.steps)
    pvps = args.pvps
    if pvps:
        try:  # checked here, and a bare pattern id expanded to the full PATTERN:VERBALIZER id experiments need
            pvps = [p.id for p in task_pvps(load_task(args.task), None, None, args.pvps)]
        except SpecError as e:
            raise ConfigError(f"--pvps {' '.join(args.pvps)}: {e}") from None
    task_name = str(args.task).rsplit("/", 1)[-1].removesuffix(".json")
    output = args.output or f"compare_prompts-{task_name}"
    check_output_not_input(output, [args.task if str(args.task).endswith(".json") else None])
    exp = compare_prompts_experiment(args.task, shots=args.shots, seeds=seeds, steps=args.steps, methods=methods, method_options=per,
                                     common_options=common, pvps=pvps, test_size=args.test_size, results=output)
    bars = start_run(args) == "bar"
    summary = run_experiment(exp, model=model, data_dir=args.data_dir, results=output, progress=bars,
                             inner_progress=bars, device=args.device, echo=lambda s: print(s, file=sys.stderr, flush=True))
    report = build_report(summary.results)
    print(report.section("Results") + report.section("Hard vs soft prompts"), end="")
    print(f"results: {summary.results}; report: {summary.results / 'report' / 'report.md'}")
    return 0 if summary.ok else 1
