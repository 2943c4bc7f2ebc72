"""``pet train``: fit one method on one (task, K, seed) split, evaluate every stage, print, save.

    pet train --task sst2 --method prompt-ft --shots 16 --seed 13 --model roberta-large --data-dir data/ --output runs/sst2-pft
    pet train --data reviews.csv --text-field review --label-field stars \\
              --patterns my_patterns.json --verbalizers my_verbalizers.json --method prompt-ft --shots 8
    pet train --task agnews --method ipet --shots 0 --model roberta-large   # zero-shot iPET (PET's |T| = 0)
    pet train --method pet --help        # PET's options, with their help and defaults

The method's flags come from its options dataclass (``pet.methods``): this module only parses,
calls :func:`pet.data.rundata.task_run_data` / ``own_run_data`` and
:func:`pet.evaluation.evaluator.fit_evaluate`, prints, and saves through ``PetClassifier``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accelerate import PartialState

from ..data.hub import is_hf
from ..data.rundata import own_run_data, task_run_data
from ..data.stream import Source
from ..errors import ConfigError, UsageError
from ..estimator.classifier import PetClassifier
from ..estimator.folder import CONFIG_FILE, check_replaceable
from ..evaluation.evaluator import fit_evaluate
from ..methods import available_methods, get_method
from ..methods.prompt_ft import select_pvps
from ..utils.io import check_output_folder, check_output_not_input
from . import (
    PetArgumentParser,
    add_model_args,
    add_run_args,
    help_text,
    require_model,
    start_run,
)
from .args import int_range, seed
from .fields import add_field_args, field_map, label_column, refuse_without_data

#: default unlabelled pool size for methods that need one
DEFAULT_POOL = 10000

DESCRIPTION = (
    "Fit one method on a few-shot split, evaluate every stage on the test split, print a table; "
    "with --output save the final classifier (use it with `pet predict`). "
    "`pet train --method M --help` lists M's options."
)


EXAMPLES = (
    "pet train --task sst2 --method prompt-ft --shots 16 --seed 13 --model roberta-large --data-dir data/ --output runs/sst2-pft",
    "pet train --data reviews.csv --text-field review --label-field stars --patterns p.json --verbalizers v.json --method pet --shots 8 --model roberta-large",
    "pet train --data hf:./my_dataset --test hf:./my_dataset --text-field sentence --method cls-ft --shots 16 --model roberta-large --threads 4",
)


def register(sub) -> None:
    p = sub.add_parser("train", add_help=False, help="train and evaluate a method (prompt-ft, cls-ft, pet, …) on a task or your own data",
                       **help_text(DESCRIPTION, *EXAMPLES))
    # the real parser depends on --method: cmd_train builds it and parses args.argv itself
    p.set_defaults(func=cmd_train, reparse=True)


def train_parser(method: str | None) -> argparse.ArgumentParser:
    """The parser of ``pet train`` with ``method``'s options as flags (none when unknown)."""
    p = PetArgumentParser(prog="pet train", **help_text(DESCRIPTION, *EXAMPLES))
    if not method:
        p.epilog = f"methods: {', '.join(available_methods())}\n\n{p.epilog}"
    src = p.add_argument_group("data (a shipped task, or your own file)")
    src.add_argument("--task", help="shipped task name or task JSON file")
    src.add_argument("--data", help="your own labelled CSV/TSV/JSONL file, or hf:NAME[:CONFIG] (a Hugging Face dataset; instead of --task)")
    src.add_argument("--split", help="split of an hf: --data (default: train, else its only split)")
    add_field_args(src)
    src.add_argument("--test", help="own data: labelled test file or hf: dataset (its test split; default: the examples not drawn for training)")
    src.add_argument("--unlabelled", help="own data: unlabelled text file or hf: dataset (its train split; same text columns)")
    src.add_argument("--unlabelled-size", type=int_range(0, name="--unlabelled-size"),
                     help=f"unlabelled pool size (default {DEFAULT_POOL} when the method uses one, else 0)")
    p.add_argument("--method", required=True, help="a registered method (`list` prints them)")
    unneeded = ", ".join(n for n in available_methods() if not get_method(n).needs_labelled)
    p.add_argument("--shots", "-k", type=int_range(0, name="--shots"), default=16,
                   help=f"labelled examples per class (default 16; 0: none, for methods that start without them: {unneeded})")
    p.add_argument("--seed", type=seed, default=13, help="split and training seed (default 13)")
    add_model_args(p)
    p.add_argument("--pvps", nargs="+", help="PVP ids pattern:verbalizer (default: the task's default PVPs)")
    p.add_argument("--patterns", help="patterns JSON file (default: the task's)")
    p.add_argument("--verbalizers", help="verbalizers JSON file (default: the task's)")
    p.add_argument("--output", help="save the trained classifier and metrics.json here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing saved classifier at --output")
    add_run_args(p)
    if method:
        m = get_method(method)
        # the training seed is the run's --seed (options may pin another in experiment files)
        m.options.add_arguments(p.add_argument_group(f"{method} options ({m.family}; {m.description})"), skip=("seed",))
    return p


def _method_of(tokens: list[str]) -> str | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--method")
    known, _ = pre.parse_known_args(tokens)
    return known.method


def cmd_train(args) -> int:
    argv = list(args.argv)
    tokens = argv[argv.index("train") + 1:]
    method = _method_of(tokens)
    if method == "list":
        print("\n".join(f"{n:<14} {get_method(n).family:<8} {get_method(n).description}" for n in available_methods()))
        return 0
    if method is not None and "-h" not in tokens and "--help" not in tokens:
        get_method(method)  # unknown (or misspelled) method: one line with a suggestion
    a = train_parser(method if method in available_methods() else None).parse_args(tokens)
    m = get_method(a.method)
    options = m.make_options(m.options.from_args(a), where=f"{a.method} options")
    if bool(a.task) == bool(a.data):
        raise ConfigError("give exactly one of --task (a shipped task) or --data (your own file); fix: e.g. --task sst2")
    refuse_without_data(a, {"test": "--test", "unlabelled": "--unlabelled"})
    out = Path(a.output) if a.output else None
    task_file = a.task if a.task and a.task.endswith(".json") else None
    check_output_not_input(out, [x for x in (a.data, a.test, a.unlabelled) if not is_hf(x)] + [a.patterns, a.verbalizers, task_file, a.model])
    if out is not None:
        check_output_folder(out, a.overwrite, CONFIG_FILE, "saved model folder")
        if a.overwrite and out.is_dir():
            check_replaceable(out)  # before training: a folder holding files a save does not write is never replaced
    if a.split and not is_hf(a.data):
        raise ConfigError("--split picks a split of an hf: --data; fix: drop --split, or give --data hf:NAME")
    pool = a.unlabelled_size if a.unlabelled_size is not None else (DEFAULT_POOL if m.needs_unlabelled(options) else 0)
    if a.task:
        run = task_run_data(a.task, a.data_dir, k=a.shots, seed=a.seed, unlabelled_size=pool,
                            patterns=a.patterns, verbalizers=a.verbalizers, pvps=a.pvps, needs_labelled=m.needs_labelled)
    else:
        run = own_run_data(Source(a.data, a.split, "train"), field_map(a), label_column(a), k=a.shots, seed=a.seed, patterns=a.patterns, verbalizers=a.verbalizers,
                           pvps=a.pvps, test=a.test, unlabelled=a.unlabelled, unlabelled_size=pool or None, needs_labelled=m.needs_labelled)
    for note in run.notes:
        print(f"note: {note}", file=sys.stderr)
    if getattr(options, "eval_every", None) is not None and not run.dev:
        raise UsageError(f"--eval-every {options.eval_every}: keeping the best checkpoint needs a labelled dev set, and this run has none "
                         "(only a --task with dev files gives one); fix: drop --eval-every")
    trained = select_pvps(run.pvps, options.pvp) if getattr(options, "pvp", None) else None  # (also checks the ids)
    only = f" (training {len(trained)}: {', '.join(p.id for p in trained)})" if trained else ""
    model = require_model(a)
    mode = start_run(a)
    print(f"{a.method} on {run.describe()}{only}, model {model}", file=sys.stderr)
    fitted, rows = fit_evaluate(a.method, options, run, model, device=a.device, progress=mode == "bar")
    if not PartialState().is_main_process:  # under `accelerate launch`: one process prints and saves
        return 0
    print(format_table(rows))
    if out is not None:
        info = {"task": run.task.name, "k": a.shots, "seed": a.seed, "n_train": len(run.train), "n_test": len(run.test),
                "n_unlabelled": len(run.unlabelled), **({"columns": field_map(a)} if a.data else {})}
        PetClassifier.from_fitted(fitted, device=a.device).save(out, overwrite=a.overwrite, metrics=[{**info, **r} for r in rows])
        print(f"saved to {out}", file=sys.stderr)
    return 0


def format_table(rows: list[dict]) -> str:
    """The evaluated stages as a table; the final stage (the one saved) is marked after its row."""
    head = ["stage", "pvp", "score", "train s", "eval ex/s", "trained params"]
    body = [
        [r["stage"], r["pvp"] or "", f"{r['score']:.4f}", f"{r['train_seconds']:.1f}", f"{r['eval_examples_per_second']:.1f}",
         f"{r['trained_parameters']:,}"]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    metric = rows[0]["metric"] if rows else "score"
    return "\n".join([f"{rows[0]['method'] if rows else ''} ({metric}, n={rows[0]['n'] if rows else 0})",
                      fmt(head), fmt(["-" * w for w in widths]),
                      *(fmt(b) + ("  ← final" if r["final"] else "") for b, r in zip(body, rows))])
