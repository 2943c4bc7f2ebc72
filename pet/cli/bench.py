"""``pet bench FILE``: run an experiment file's grid into a results store (resumable)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="run a benchmark experiment file (resumable results store)",
        description=(
            "Expand the experiment file's grid (tasks x methods x K x seeds) and compute every cell that is not "
            "yet in the results store under the same config hash. Every method of a (task, K, seed) reads the same "
            "checksummed split from <results>/splits/. Safe to kill and re-run; safe to run twice at once."
        ),
    )
    p.add_argument("file", help="experiment file (YAML or JSON), e.g. benchmarks/quick.yaml")
    p.add_argument("--results", help="results folder (default: the file's `results`, relative to the file)")
    p.add_argument("--model", default=None, help="override the file's model (default: the file's model, else $PET_MODEL)")
    p.add_argument("--data-dir", default=None, help="benchmark data root (default: the file's data_dir, else $PET_DATA_DIR)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: the file's device, else auto)")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                   help="run a subset: task=…, method=…, k=…, seed=… (repeat to combine)")
    p.add_argument("--dry-run", action="store_true", help="list the cells (done / to run) and their config hashes; compute nothing")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing cell (default: log it and go on)")
    p.add_argument("--no-report", action="store_true", help="do not write <results>/report at the end")
    p.add_argument("--references", default=None, help="published-numbers CSV for the final report (default: the shipped data/references.csv)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--inner-progress", action="store_true", help="also show the methods' own progress bars")
    p.add_argument("--allow-imports", action="store_true",
                   help="run the Python modules/files the experiment file lists under `imports` (runs their code: only for files you trust)")
    p.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    from ..bench.experiment import load_experiment

    exp = load_experiment(args.file, allow_imports=args.allow_imports)
    from ..bench.runner import run_experiment  # the heavy import after the file is checked
    summary = run_experiment(
        exp,
        model=args.model,
        data_dir=args.data_dir,
        results=args.results,
        only=args.only,
        dry_run=args.dry_run,
        progress=not args.no_progress,
        inner_progress=args.inner_progress,
        fail_fast=args.fail_fast,
        device=args.device,
    )
    if not args.dry_run and not args.no_report and (summary.computed or summary.already_done):
        from ..bench.report import build_report, shipped_references

        rep = build_report(summary.results, references=args.references or shipped_references())
        print(f"report: {rep.output / 'report.md'}")
    return 0 if summary.ok else 1
