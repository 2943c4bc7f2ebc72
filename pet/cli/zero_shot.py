"""``pet zero-shot``: score PVPs without training on a registered task or an own data file."""

from __future__ import annotations

import argparse
import sys

from . import add_model_args, add_run_args, help_text, require_model, start_run
from .args import positive_int, seed
from .fields import add_field_args, field_map, label_column, refuse_without_data

EXAMPLES = (
    "pet zero-shot --task sst2 --model roberta-large --data-dir data/ --calibrate",
    "pet zero-shot --data reviews.csv --text-field review --label-field stars --patterns p.json --verbalizers v.json --model roberta-large",
    "pet zero-shot --data hf:./my_dataset --split test --text-field sentence --label-field label --patterns p.json --verbalizers v.json --model roberta-large",
)


def register(sub) -> None:
    p = sub.add_parser(
        "zero-shot",
        help="zero-shot accuracy of PVPs and their ensemble",
        **help_text("Score each PVP with the masked LM (no training) and print one row per PVP plus the ensemble.", *EXAMPLES),
    )
    src = p.add_argument_group("data (a registered task, or your own file)")
    src.add_argument("--task", help="registered task name (see `pet show --tasks`)")
    src.add_argument("--data", help="your own CSV/TSV/JSONL(.gz) file, or hf:NAME[:CONFIG] (a Hugging Face dataset: hub name, "
                     "save_to_disk folder or folder of parquet/CSV/JSON files), instead of a task")
    add_field_args(src)
    src.add_argument("--split", default=None, help="split of the task or hf: dataset to score (default: test)")
    src.add_argument("--seed", type=seed, default=None, help="seed folder for train/dev splits")
    src.add_argument("--limit", type=positive_int, default=None, help="score only the first N examples (N >= 1)")
    pv = p.add_argument_group("PVPs")
    pv.add_argument("--patterns", help="pattern JSON file (overrides the task's)")
    pv.add_argument("--verbalizers", help="verbalizer JSON file (overrides the task's)")
    pv.add_argument("--pvps", nargs="+", help="PVP ids PATTERN:VERBALIZER (default: the task's defaults)")
    p.add_argument("--calibrate", action="store_true", help="contextual calibration (Zhao et al. 2021)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--max-length", type=positive_int, default=None, help="token limit (default: the task's)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="scoring precision: fp32 (default), or autocast to bf16 (CPU or GPU) / fp16 (GPU)")
    p.add_argument("--chunk-size", type=positive_int, default=1024, help="--data rows read and scored at a time (default 1024)")
    p.add_argument("--output", help="write the results as JSON here")
    add_model_args(p)
    add_run_args(p)
    p.set_defaults(func=run)


def _own_chunks(args, verbalizer_labels):
    """(task, split name, chunk iterator factory, row count) of ``--data`` (a file or hf:),
    every row checked (labels, text) before any model loads. The task's labels are the
    verbalizer's when the data's are among them (:func:`pet.data.owndata.own_labels`)."""
    from ..data.owndata import own_labels, own_task_spec
    from ..data.stream import Source, iter_chunks, scan_source
    from ..errors import ConfigError

    fields, label = field_map(args), label_column(args)
    source = Source(args.data, args.split, "test")
    found, total = scan_source(source, label, fields, args.chunk_size, empty_text="error")
    if not found:
        raise ConfigError(f"{args.data}: no rows; fix: give data with at least one labelled example")
    labels = own_labels(found, verbalizer_labels)
    if set(labels) - set(found):
        print(f"note: label(s) {sorted(set(labels) - set(found))} of the verbalizer do not occur in {args.data}; "
              f"scoring over the verbalizer's {len(labels)} labels", file=sys.stderr)
    task = own_task_spec(source, fields, label, labels)
    split = source.describe()

    def chunks():
        yield from iter_chunks(source, fields, label, chunk_size=args.chunk_size, labels=labels, empty_text="error")

    return task, split, chunks, total


def _limited(chunks, limit: int | None):
    n = 0
    for chunk in chunks:
        if limit is not None:
            chunk = chunk[: max(0, limit - n)]
        if not chunk:
            return
        n += len(chunk)
        yield chunk


def run(args: argparse.Namespace) -> int:
    from ..data import load_examples, load_task, task_pvps
    from ..data.hub import is_hf
    from ..errors import ConfigError
    from ..utils.io import atomic_write_json, check_output_file
    from ..utils.progress import track

    if bool(args.task) == bool(args.data):
        raise ConfigError("pass exactly one of --task NAME or --data FILE")
    refuse_without_data(args)
    if args.output:  # before any work: never overwrite an input, fail early on an unwritable path
        check_output_file(args.output, [None if is_hf(args.data) else args.data, args.patterns, args.verbalizers, args.model])
    if args.data:
        pvps = task_pvps(None, args.patterns, args.verbalizers, args.pvps)  # the spec files' errors before the data's
        task, split, chunks, total = _own_chunks(args, pvps[0].verbalizer.label_ids)
        for p in pvps:
            p.check_labels(task.label_ids, str(args.data))
    else:
        task = load_task(args.task)
        split = args.split or "test"
        examples = load_examples(task, split, args.data_dir, seed=args.seed)
        total = len(examples)

        def chunks():
            for i in range(0, len(examples), args.chunk_size):
                yield examples[i : i + args.chunk_size]
        pvps = task_pvps(task, args.patterns, args.verbalizers, args.pvps)
    mode = start_run(args)
    from ..estimator.classifier import (
        PetClassifier,  # the heavy imports after every cheap check
    )
    from ..evaluation.streaming import zero_shot_stream_report

    clf = PetClassifier.zero_shot(
        require_model(args), pvps, list(task.label_ids), device=args.device, max_length=args.max_length or task.max_length,
        options={"calibrate": args.calibrate, "eval_batch_size": args.batch_size, "max_length": args.max_length, "precision": args.precision},
    )
    total = min(total, args.limit) if args.limit is not None else total
    stream = track(_limited(chunks(), args.limit), total, "zero-shot", mode)
    report = zero_shot_stream_report(clf.fitted_, stream, task, split=split)
    print(format_report(report, task))
    if args.output:
        atomic_write_json(args.output, report)
        print(f"wrote {args.output}")
    return 0


def format_report(report, task=None) -> str:
    rows = [(f"{r['pattern']}:{r['verbalizer']}", f"{r['score']:.3f}", f"{r['examples_per_second']:.0f}") for r in report["pvps"]]
    n = len(report["pvps"])
    rows.append((f"ensemble ({n} PVP{'s' if n != 1 else ''})", f"{report['ensemble']['score']:.3f}", ""))
    head = ("PVP", report["metric"], "examples/s")
    w = [max(len(x[i]) for x in [head, *rows]) for i in range(3)]
    line = lambda r: f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}"
    title = f"{report['task']} · {report['split']} (n={report['n']}) · model {report['model']}" + (" · calibrated" if report["calibrated"] else "")
    out = [title, line(head), "  ".join("-" * x for x in w), *map(line, rows)]
    if task is not None and getattr(task, "test_subset", False) and report["split"] == "test":
        out.append(f"note: this test split is a subset ({task.test_note})")
    return "\n".join(out)
