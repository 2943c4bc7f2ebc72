"""``pet predict DIR --input FILE --output preds.jsonl``: label new text with a saved classifier.

Each output line: ``{"index": i, "label": "…", "probabilities": {label: p, …}}`` (plus the
input's ``guid`` when it has one), written atomically.
"""

from __future__ import annotations

import json
import sys

from .args import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict labels for a CSV/TSV/JSONL file with a classifier saved by `pet train --output`",
        description="Load a saved classifier folder and write one JSON line per input row: label and probabilities.",
    )
    p.add_argument("classifier", metavar="DIR", help="folder written by `pet train --output` or PetClassifier.save")
    p.add_argument("--input", required=True, help="CSV/TSV/JSONL(.gz) file with the texts")
    p.add_argument("--output", required=True, help="predictions file (JSONL)")
    p.add_argument("--text-field", default="text", help="column with the text (maps to {text_a}; default 'text')")
    p.add_argument("--text-b-field", help="second text column (maps to {text_b})")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda if available)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from ..io import atomic_write_text, check_output_file
    from ..jsonl import is_jsonl, read_jsonl_records
    from ..data import load_table

    # before any work: never overwrite the input or write into the saved folder
    check_output_file(args.output, [args.input, args.classifier])
    fields = {"text_a": args.text_field}
    if args.text_b_field:
        fields["text_b"] = args.text_b_field
    if is_jsonl(args.input):  # line-numbered errors; objects/lists where text belongs are refused
        read_jsonl_records(args.input, fields.values())
    examples = load_table(args.input, fields, None, empty_text="keep")
    from ..classifier import PetClassifier  # the heavy import after the cheap checks

    clf = PetClassifier.load(args.classifier, device=args.device)
    clf.fitted_.predictor.batch_size = args.batch_size
    if not examples:
        atomic_write_text(args.output, "")
        print(f"{args.input}: no rows; wrote an empty {args.output}", file=sys.stderr)
        return 0
    proba = clf.predict_proba(examples)
    labels = clf.labels_
    lines = []
    for i, (ex, row) in enumerate(zip(examples, proba)):
        rec = {"index": i, "guid": ex.guid, "label": labels[int(row.argmax())], "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, row)}}
        lines.append(json.dumps(rec, ensure_ascii=False))
    atomic_write_text(args.output, "\n".join(lines) + "\n")
    print(f"{len(lines)} predictions -> {args.output}", file=sys.stderr)
    return 0
