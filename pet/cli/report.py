"""``pet report RESULTS_DIR``: aggregate a results store into Markdown, CSV and PNG plots."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="summarise a results folder (Markdown + CSV + PNG plots)",
        description=(
            "Aggregate the rows of a `pet bench` results folder: mean ± std (median) over seeds per task x method x K "
            "(x stage), best single PVP vs the ensemble, hard vs soft prompts, PET gain over cls-ft, cost, and "
            "published numbers side by side. Prints the Markdown and writes it with CSVs and plots."
        ),
    )
    p.add_argument("results", help="results folder written by `pet bench`")
    p.add_argument("--references", default=None, help="CSV of published numbers (e.g. data/references.csv)")
    p.add_argument("--output", default=None, help="output folder (default: RESULTS/report; replaced atomically)")
    p.add_argument("--experiment", default=None, metavar="FILE",
                   help="only rows of this experiment file's current grid (config hashes; uses --model / $PET_MODEL like pet bench)")
    p.add_argument("--model", default=None, help="with --experiment: the model the grid was run with (default: the file's, else $PET_MODEL)")
    p.add_argument("--allow-imports", action="store_true",
                   help="with --experiment: run the Python modules/files the file lists under `imports` (only for files you trust)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="do not print the Markdown")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.report import build_report
    from ..utils.io import check_output_not_input

    # the output folder is replaced as a whole: it must not be (or hold) the results or an input
    check_output_not_input(args.output, [args.results, args.references, args.experiment])
    only = None
    if args.experiment:
        from ..bench.experiment import expand_grid, load_experiment

        only = {c.config_hash for c in expand_grid(load_experiment(args.experiment, allow_imports=args.allow_imports), model=args.model)}
    rep = build_report(args.results, references=args.references, output=args.output, plots=not args.no_plots, only_hashes=only)
    if not args.quiet:
        print(rep.markdown)
    print(f"wrote {len(rep.files)} files to {rep.output}")
    return 0
