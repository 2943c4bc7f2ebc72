"""Merge rows exported from a results store elsewhere (``benchmarks/gpu_slices.sh``) into a local
store (benchmark tool, not a test).

    python benchmarks/merge_store_rows.py NEW_LINES.jsonl benchmarks/results/flagship [--set-commit SHA]

Reads the exported lines as a store reads its own file: only complete cells (rows followed by
their ``cell_complete`` marker with the right count and SHA-256) are taken; cells the target
already holds are skipped. ``--set-commit`` records SHA as the rows' ``git_commit`` (and
``git_dirty`` false) — for rows computed from a copy of a clean checkout of SHA whose ``.git`` was
missing or stale — and re-computes each marker's row hash. Each cell is appended with the store's
own locked, atomic writer path (one ``write()`` per cell).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from pet.bench.store import ResultsStore, _dumps, _lines_sha


def complete_cells(path: Path) -> list[tuple[dict, list[dict]]]:
    """(marker, rows) of every complete cell in an exported lines file, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "results.jsonl").write_bytes(path.read_bytes())
        scan = ResultsStore(tmp).scan()
    keep = set(scan.complete.values())
    pending: dict[str, list[dict]] = {}
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut off mid-write: its cell has no marker and is not taken
        if obj.get("type") == "row":
            pending.setdefault(obj["write_id"], []).append(obj)
        elif obj.get("type") == "cell_complete" and obj["write_id"] in keep:
            out.append((obj, pending.pop(obj["write_id"], [])))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("lines", type=Path, help="exported results.jsonl lines")
    p.add_argument("store", type=Path, help="target results folder (holds results.jsonl)")
    p.add_argument("--set-commit", help="git commit the rows were computed from (clean checkout)")
    a = p.parse_args(argv)
    if not a.lines.is_file():
        p.error(f"{a.lines}: no such file; fix: pass the .new.jsonl that gpu_slices.sh wrote")
    if not (a.store / "results.jsonl").is_file():
        p.error(f"{a.store}: not a results store (no results.jsonl); fix: pass the folder the rows were run into")
    store = ResultsStore(a.store)
    have = set(store.scan().complete)
    added = skipped = 0
    payload = b""
    for marker, rows in complete_cells(a.lines):
        if marker["config_hash"] in have:
            skipped += 1
            continue
        if a.set_commit:
            for r in rows:
                r["git_commit"], r["git_dirty"] = a.set_commit, False
        lines = [_dumps(r) for r in rows]
        marker = {**marker, "rows_sha256": _lines_sha(lines), "n_rows": len(lines)}
        payload += b"".join(lines) + _dumps(marker)
        have.add(marker["config_hash"])
        added += 1
    with store._locked():
        fd = os.open(store.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
    print(f"{a.store}: {added} cells added, {skipped} already there")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
