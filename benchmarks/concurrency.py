"""Two `pet` runs side by side on a small machine: oversubscribed threads vs pet's default.

    OMP_NUM_THREADS= python benchmarks/concurrency.py --model ../shared/models/minilm-mlm --data-dir ../shared/data

Runs the same short `pet train` (prompt-ft, SST-2 16-13, --steps 40, the full 872-example test
set) (a) alone with torch's default threads (all cores), (b) twice at once, each forced to all
cores (`--threads <cores>`: what two torch processes with default threads do), and (c) twice at
once with pet's default `--threads` (the cores not taken by other running `pet` processes).
Prints the wall time of every run; the ratio (b)/(c) is what the default saves.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def _run(n: int, threads: list[str | None], common: list[str]) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    procs, t0 = [], time.perf_counter()
    ends = [0.0] * n
    for i in range(n):
        extra = ["--threads", threads[i]] if threads[i] else []
        procs.append(subprocess.Popen([sys.executable, "-m", "pet", "train", *common, *extra], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        time.sleep(0.5)  # the second one sees the first running
    pending = set(range(n))
    while pending:
        for i in list(pending):
            if procs[i].poll() is not None:
                ends[i] = time.perf_counter() - t0
                pending.discard(i)
                if procs[i].returncode != 0:
                    raise SystemExit(f"run {i} failed: {procs[i].stderr.read().strip().splitlines()[-1]}")
        time.sleep(0.2)
    return ends


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", default="40")
    ap.add_argument("--cases", default="a,b,c", help="which of the three runs to make (b can take many times longer than a)")
    a = ap.parse_args()
    cases = set(a.cases.split(","))
    cores = str(len(os.sched_getaffinity(0)))
    common = ["--task", "sst2", "--method", "prompt-ft", "--model", a.model, "--data-dir", a.data_dir, "--seed", "13",
              "--steps", a.steps, "--no-progress"]
    print(f"cores: {cores}")
    if "a" in cases:
        alone = _run(1, [cores], common)
        print(f"(a) alone, {cores} threads: {alone[0]:.0f} s", flush=True)
    if "c" in cases:
        default = _run(2, [None, None], common)
        print(f"(c) two at once, pet's default --threads: {default[0]:.0f} s, {default[1]:.0f} s (both done after {max(default):.0f} s)", flush=True)
    if "b" in cases:
        over = _run(2, [cores, cores], common)
        print(f"(b) two at once, {cores} threads each: {over[0]:.0f} s, {over[1]:.0f} s (both done after {max(over):.0f} s)", flush=True)


if __name__ == "__main__":
    main()
