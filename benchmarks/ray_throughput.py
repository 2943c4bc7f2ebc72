"""Cells/hour of quick.yaml-sized cells on Ray with 1 vs 2 workers (benchmark, not a test).

A cell here is one of quick.yaml's prompt-ft cells (SST-2, K=16, 30 steps at lr 1e-4, batch 4,
the task's 2 PVPs, eval batch 64) with the test set cut to --test-limit examples so that the
whole comparison fits in minutes; every cell declares 1 CPU and the local Ray instance gets 1 or
2 CPUs (= workers). Each configuration writes a fresh results store.

    PET_MODEL=/path/to/minilm-mlm PET_DATA_DIR=/path/to/data OMP_NUM_THREADS=1 \\
        python benchmarks/ray_throughput.py --seeds 13 21 42 87 --test-limit 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import ray


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("PET_MODEL"))
    ap.add_argument("--data-dir", default=os.environ.get("PET_DATA_DIR"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42, 87])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--test-limit", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    from pet.bench.executors import RayExecutor
    from pet.bench.experiment import experiment_from_dict
    from pet.bench.runner import run_experiment

    exp = experiment_from_dict({
        "name": "ray-throughput", "results": "unused",
        "tasks": [{"name": "sst2", "pvps": ["it-was:great-terrible", "all-in-all:great-terrible"], "test_limit": args.test_limit}],
        "k": [16], "seeds": args.seeds, "unlabelled": 0,
        "budgets": {"steps": args.steps, "lr": 1e-4, "batch_size": 4, "eval_batch_size": 64},
        "methods": ["prompt-ft"],
    })
    print(f"{len(args.seeds)} cells (sst2 prompt-ft, K=16, {args.steps} steps, test_limit {args.test_limit}), 1 CPU per cell")
    print(f"{'workers':>7}  {'wall s':>7}  {'cells/hour':>10}  {'mean cell s':>11}")
    for w in args.workers:
        with tempfile.TemporaryDirectory() as res, RayExecutor(num_cpus=1, local_cpus=w) as ex:
            t0 = time.perf_counter()
            s = run_experiment(exp, model=args.model, data_dir=args.data_dir, results=res, executor=ex, progress=False, echo=lambda _: None)
            wall = time.perf_counter() - t0
            assert s.ok and s.computed == len(args.seeds), s
            mean = sum(o.seconds for o in s.outcomes if o.status == "computed") / s.computed
            print(f"{w:>7}  {wall:>7.1f}  {3600 * s.computed / wall:>10.1f}  {mean:>11.1f}")
        assert not ray.is_initialized()


if __name__ == "__main__":
    main()
