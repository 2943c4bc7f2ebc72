"""``pet predict DIR --input FILE --output preds.jsonl``: label new text with a saved classifier.

Each output line: ``{"index": i, "guid": "…", "label": "…", "probabilities": {label: p, …}}``.
Read, scored and written in chunks (memory stays flat with the input's length); the output is
written to a temporary file and renamed at the end (see :mod:`pet.evaluation.streaming`).
"""

from __future__ import annotations

import sys

from .args import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict labels for a CSV/TSV/JSONL file (or hf:DATASET) with a classifier saved by `pet train --output`",
        description="Load a saved classifier folder and write one JSON line per input row: label and probabilities.",
    )
    p.add_argument("classifier", metavar="DIR", help="folder written by `pet train --output` or PetClassifier.save")
    p.add_argument("--input", required=True, help="CSV/TSV/JSONL(.gz) file with the texts, or hf:NAME[:CONFIG] (a Hugging Face dataset)")
    p.add_argument("--split", default=None, help="split of an hf: dataset (default: test, else its only split)")
    p.add_argument("--output", required=True, help="predictions file (JSONL)")
    p.add_argument("--text-field", default="text", help="column with the text (maps to {text_a}; default 'text')")
    p.add_argument("--text-b-field", help="second text column (maps to {text_b})")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--chunk-size", type=positive_int, default=1024, help="rows read, scored and written at a time (default 1024)")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda if available)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from ..data.hub import HubData, is_hf
    from ..utils.io import check_output_file
    from ..data.stream import check_source, iter_chunks
    from ..estimator.predict import predict_to_jsonl

    fields = {"text_a": args.text_field}
    if args.text_b_field:
        fields["text_b"] = args.text_b_field
    # before any work: never overwrite the input or write into the saved folder
    check_output_file(args.output, [None if is_hf(args.input) else args.input, args.classifier])
    if is_hf(args.input):
        hub = HubData(args.input, args.split, list(fields.values()), None)
        chunks = iter_chunks(hub.records(), fields, chunk_size=args.chunk_size, name=f"{args.input}:{hub.split}")
    else:
        check_source(args.input, fields, args.chunk_size)  # every row checked before the model loads (streamed)
        chunks = iter_chunks(args.input, fields, chunk_size=args.chunk_size)
    from ..estimator.classifier import PetClassifier  # the heavy import after the cheap checks

    clf = PetClassifier.load(args.classifier, device=args.device)
    clf.fitted_.predictor.batch_size = args.batch_size
    n = predict_to_jsonl(clf, chunks, args.output)
    if n == 0:
        print(f"{args.input}: no rows; wrote an empty {args.output}", file=sys.stderr)
    else:
        print(f"{n} predictions -> {args.output}", file=sys.stderr)
    return 0
