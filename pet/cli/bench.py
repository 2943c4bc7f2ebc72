"""``pet bench FILE``: run an experiment file's grid into a results store (resumable)."""

from __future__ import annotations

import argparse

from . import help_text

EXAMPLES = (
    "pet bench benchmarks/quick.yaml --model models/minilm-mlm --data-dir pet-data",
    "pet bench benchmarks/lmbff.yaml --data-dir pet-data --only task=sst2,rte --only method=cls-ft --dry-run",
    "pet bench benchmarks/lmbff.yaml --data-dir pet-data --executor ray --ray-num-gpus 0.25",
)


def register(sub) -> None:
    from .args import positive_int

    p = sub.add_parser(
        "bench",
        help="run a benchmark experiment file (resumable results store)",
        **help_text(
            "Expand the experiment file's grid (tasks x methods x K x seeds) and compute every cell that is not "
            "yet in the results store under the same config hash. Every method of a (task, K, seed) reads the same "
            "checksummed split from <results>/splits/. Safe to kill and re-run; safe to run twice at once. At the "
            "end, writes <results>/report and prints its provenance warnings (mixed commits, dirty trees, "
            "different test sets) on stderr, one `warning:` line each. See docs/bench.md.", *EXAMPLES),
    )
    p.add_argument("file", help="experiment file (YAML or JSON), e.g. benchmarks/quick.yaml")
    p.add_argument("--results", help="results folder (default: the file's `results`, relative to the file)")
    p.add_argument("--model", default=None, help="override the file's model (default: the file's model, else $PET_MODEL)")
    p.add_argument("--data-dir", default=None, help="benchmark data root (default: the file's data_dir, else $PET_DATA_DIR)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: the file's device, else auto)")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                   help="run a subset: task=…, method=…, k=…, seed=…; the values of one key are alternatives, different keys "
                        "must all match (repeat --only per key); a value not in the experiment is an error")
    p.add_argument("--dry-run", action="store_true", help="list the cells (done / to run) and their config hashes, with each cell's expected wall time from the stored cells of the same work; compute nothing")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing cell (default: log it and go on)")
    p.add_argument("--no-report", action="store_true", help="do not write <results>/report at the end")
    p.add_argument("--references", default=None, help="published-numbers CSV for the final report (default: the shipped data/references.csv)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--inner-progress", action="store_true", help="also show the methods' own progress bars")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch CPU threads for the cells of the local executor (default: the cores no other pet run is using, "
                        "at most $OMP_NUM_THREADS)")
    p.add_argument("--on-changed-input", choices=["recompute", "refuse"], default="recompute",
                   help="a stored cell whose input files (data, PVP, task files) changed since: recompute it (default, says so) "
                        "or refuse (stop with one line naming the file)")
    p.add_argument("--rerun-stale", action="store_true",
                   help="also recompute stored cells made from another git commit or from a working tree with uncommitted changes")
    p.add_argument("--keep-members", action="store_true",
                   help="keep the PET members trained by this run's pet, ipet and pet-setfit cells (<results>/partial/members) "
                        "for a later run on the same store, e.g. pet-setfit from another experiment file; by default they are "
                        "removed once the last cell of this run that trains the same members (same split, PVPs and training "
                        "options) is done")
    p.add_argument("--allow-imports", action="store_true",
                   help="run the Python modules/files the experiment file lists under `imports` (runs their code: only for files you trust)")
    ex = p.add_argument_group("where cells run")
    ex.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="local: one cell at a time in this process (default); ray: every cell as a Ray task (pip install -e \".[ray]\")")
    ex.add_argument("--ray-address", default=None, metavar="ADDR",
                    help="Ray cluster to join (auto, ray://head:10001; default: $RAY_ADDRESS, else start a local Ray instance)")
    ex.add_argument("--ray-num-cpus", type=_non_negative, default=1.0, metavar="N", help="CPUs each cell declares (default 1)")
    ex.add_argument("--ray-num-gpus", type=_non_negative, default=0.0, metavar="X",
                    help="GPUs each cell declares; a fraction (0.25) lets small models share a GPU (default 0)")
    ex.add_argument("--ray-max-retries", type=int, default=2, metavar="N",
                    help="re-runs of a cell whose worker died (killed, out of memory) before it is stored as failed (default 2)")
    p.set_defaults(func=run)


def _non_negative(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{s!r}: must be 0 or more")
    return v


def run(args: argparse.Namespace) -> int:
    from ..bench.experiment import load_experiment

    exp = load_experiment(args.file, allow_imports=args.allow_imports)
    from ..bench.driver import (
        run_experiment,  # the heavy import after the file is checked
    )
    from ..bench.executors import make_executor
    from . import apply_threads_flag

    ray_flags = args.ray_address or args.ray_num_cpus != 1.0 or args.ray_num_gpus or args.ray_max_retries != 2
    if args.executor != "ray" and ray_flags:
        from ..errors import UsageError

        raise UsageError("--ray-* flags need --executor ray; fix: add --executor ray, or drop them")
    if args.threads is not None and args.executor == "ray":
        from ..errors import UsageError

        raise UsageError("--threads is for the local executor (Ray gives each cell --ray-num-cpus threads); fix: drop --threads")
    # the one threads rule of every command: --threads, else the free cores, capped by OMP_NUM_THREADS
    threads = apply_threads_flag(args.threads) if args.executor == "local" and not args.dry_run else None
    if not args.dry_run and not args.no_report:  # a report it could not write fails now, not after hours of cells
        from ..bench.report import check_report_output, load_references, shipped_references

        check_report_output(exp.results_dir(args.results))
        load_references(args.references or shipped_references())
    executor = None if args.dry_run else make_executor(
        args.executor, address=args.ray_address, num_cpus=args.ray_num_cpus, num_gpus=args.ray_num_gpus, max_retries=args.ray_max_retries,
        threads=threads)
    try:
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
            executor=executor,
            on_changed_input=args.on_changed_input,
            rerun_stale=args.rerun_stale,
            keep_members=args.keep_members,
        )
    finally:
        if hasattr(executor, "shutdown"):
            executor.shutdown()
    if not args.dry_run and not args.no_report and (summary.computed or summary.already_done):
        write_report(summary.results, args.references)
    return 0 if summary.ok else 1


def write_report(results, references: str | None) -> None:
    """Write ``<results>/report``; its notes and provenance warnings go to stderr as one line each."""
    import sys
    import warnings

    from ..bench.report import ProvenanceWarning, build_report, shipped_references

    with warnings.catch_warnings():  # printed below as one line each, not as Python warnings
        warnings.simplefilter("ignore", ProvenanceWarning)
        rep = build_report(results, references=references or shipped_references())
    for n in rep.notes:
        print(f"note: {n}", file=sys.stderr)
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"report: {rep.output / 'report.md'}")
