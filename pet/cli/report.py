"""``pet report RESULTS_DIR``: aggregate a results store into Markdown, CSV and PNG plots."""

from __future__ import annotations

import argparse

from . import help_text

EXAMPLES = (
    "pet report benchmarks/results/quick",
    "pet report benchmarks/results/lmbff --experiment benchmarks/lmbff.yaml --references data/references.csv --quiet",
    "pet report benchmarks/results/quick --output quick-report --no-plots --resamples 500",
)


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="summarise a results folder (Markdown + CSV + PNG plots)",
        **help_text(
            "Aggregate the rows of a `pet bench` results folder: mean ± std (median) over seeds per task x method x K "
            "(x stage) with 95% bootstrap intervals over seeds x test examples, paired comparisons of methods on identical "
            "splits and of each method's final stage against its other stages, best single PVP vs the ensemble, hard vs soft prompts, gains over the trained baselines, cost, and "
            "published numbers side by side. Prints the Markdown and writes it with CSVs and plots; warns on stderr when "
            "the headline rows mix git commits, dirty working trees or test sets. See docs/bench.md.", *EXAMPLES),
    )
    p.add_argument("results", help="results folder written by `pet bench`")
    p.add_argument("--references", default=None, help="CSV of published numbers (e.g. data/references.csv)")
    p.add_argument("--output", default=None,
                   help="output folder (default: RESULTS/report); a report folder pet wrote is replaced atomically, a folder "
                        "holding anything else is refused")
    p.add_argument("--experiment", default=None, metavar="FILE",
                   help="only rows of this experiment file's current grid (config hashes; uses --model / $PET_MODEL like pet bench)")
    p.add_argument("--model", default=None, help="with --experiment: the model the grid was run with (default: the file's, else $PET_MODEL)")
    p.add_argument("--allow-imports", action="store_true",
                   help="with --experiment: run the Python modules/files the file lists under `imports` (only for files you trust)")
    p.add_argument("--resamples", type=int, default=None, metavar="N",
                   help="bootstrap resamples of every interval and paired comparison (default 2000)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="do not print the Markdown")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from ..bench.report import ProvenanceWarning, build_report
    from ..bench.stats import RESAMPLES
    from ..errors import UsageError
    from ..utils.io import check_output_not_input

    # the output folder is replaced as a whole: it must not be (or hold) the results or an input
    check_output_not_input(args.output, [args.results, args.references, args.experiment])
    only = None
    if args.experiment:
        from ..bench.experiment import expand_grid, load_experiment

        only = {c.config_hash for c in expand_grid(load_experiment(args.experiment, allow_imports=args.allow_imports), model=args.model)}
    resamples = RESAMPLES if args.resamples is None else args.resamples
    if resamples < 100:
        raise UsageError(f"--resamples {resamples}: too few for a 95% interval; fix: pass at least 100 (default {RESAMPLES})")
    with warnings.catch_warnings():  # printed below as one line each
        warnings.simplefilter("ignore", ProvenanceWarning)
        rep = build_report(args.results, references=args.references, output=args.output, plots=not args.no_plots,
                           only_hashes=only, resamples=resamples)
    for n in rep.notes:
        print(f"note: {n}", file=sys.stderr)
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not args.quiet:
        print(rep.markdown)
    print(f"wrote {len(rep.files)} files to {rep.output}")
    return 0
