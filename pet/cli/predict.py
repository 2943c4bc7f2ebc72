"""``pet predict DIR --input FILE --output preds.csv``: label new text with a saved classifier.

The output's format is the one its extension names (``.csv``, ``.tsv``, ``.jsonl``); each row
carries the input's columns (all, or those named by ``--keep``) and adds ``label`` and the
probabilities (see :mod:`pet.estimator.predict`). Read, scored and written in chunks (memory
stays flat with the input's length), into a temporary file renamed at the end.
"""

from __future__ import annotations

import sys

from . import add_run_args, help_text, start_run
from .args import positive_int
from .fields import add_field_args, field_map

EXAMPLES = (
    "pet predict runs/sst2-pft --input new_reviews.csv --text-field review --output preds.csv",
    "pet predict runs/sst2-pft --input new.jsonl --output preds.jsonl --keep id",
    "pet predict runs/sst2-pft --input hf:./my_dataset --split validation --text-field sentence --output preds.tsv",
)


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict labels for a CSV/TSV/JSONL file (or hf:DATASET) with a classifier saved by `pet train --output`",
        **help_text("Load a saved classifier folder and write one row per input row: the input's columns, the predicted "
                    "label and each label's probability, as CSV, TSV or JSONL (the --output extension says which).", *EXAMPLES),
    )
    p.add_argument("classifier", metavar="DIR", help="folder written by `pet train --output` or PetClassifier.save")
    p.add_argument("--input", required=True, help="CSV/TSV/JSONL(.gz) file with the texts, or hf:NAME[:CONFIG] (a Hugging Face dataset)")
    p.add_argument("--split", default=None, help="split of an hf: dataset (default: test, else its only split)")
    p.add_argument("--output", required=True, help="predictions file: .csv, .tsv or .jsonl")
    p.add_argument("--keep", nargs="*", metavar="COL", default=None,
                   help="input columns to carry into the output (default: all; --keep alone: none)")
    add_field_args(p, label=False, text_default="the columns `pet train --data` read, else text")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--chunk-size", type=positive_int, default=1024, help="rows read, scored and written at a time (default 1024)")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda if available)")
    add_run_args(p)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from ..data.hub import is_hf
    from ..data.stream import Source, iter_chunks
    from ..estimator.folder import saved_columns, saved_labels
    from ..estimator.predict import check_input, output_format, write_predictions
    from ..utils.io import check_output_file
    from ..utils.progress import track

    output_format(args.output)
    # before any work: never overwrite the input or write into the saved folder
    check_output_file(args.output, [None if is_hf(args.input) else args.input, args.classifier])
    trained_on = None if args.text_field or args.text_b_field else saved_columns(args.classifier)
    if trained_on:
        print(f"note: reading the columns it was trained on ({', '.join(f'{{{k}}} <- {v}' for k, v in trained_on.items())}); "
              "give --text-field to read others", file=sys.stderr)
    fields = trained_on or field_map(args)
    source = Source(args.input, args.split, "test")
    keep = True if args.keep is None else list(args.keep)
    # every row checked before the model loads (streamed), the carried columns against the prediction's
    total = check_input(source, fields, keep, lambda: saved_labels(args.classifier), args.chunk_size)
    mode = start_run(args)
    from ..estimator.classifier import (
        PetClassifier,  # the heavy import after the cheap checks
    )

    clf = PetClassifier.load(args.classifier, device=args.device)
    clf.fitted_.predictor.batch_size = args.batch_size
    chunks = iter_chunks(source, fields, chunk_size=args.chunk_size, keep=keep)
    n = write_predictions(clf, track(chunks, total, "predict", mode), args.output)
    if n == 0:
        print(f"{args.input}: no rows; wrote an empty {args.output}", file=sys.stderr)
    else:
        print(f"{n} predictions -> {args.output}", file=sys.stderr)
    return 0
