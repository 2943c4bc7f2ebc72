"""A non-editable install works from any folder: the shipped task files, patterns, verbalizers
and references are package data (pet.utils.resources), not files next to a source checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def test_non_editable_install_runs_from_another_folder(tmp_path, tiny_bert_dir):
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(REPO)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "pet" / "shipped" / "data" / "tasks" / "sst2.json").is_file()
    assert (target / "pet" / "shipped" / "patterns" / "sst2.json").is_file() and (target / "pet" / "shipped" / "data" / "references.csv").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}

    def pet(*args):
        return subprocess.run([sys.executable, "-m", "pet", *args], capture_output=True, text=True, timeout=600, cwd=elsewhere, env=env)

    where = subprocess.run([sys.executable, "-c", "import pet, pet.utils.resources as r; print(pet.__file__); print(r.shipped_dir('tasks'))"],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    lines = where.stdout.split()
    assert lines[0].startswith(str(target)) and lines[1].startswith(str(target)), where.stdout + where.stderr
    out = elsewhere / "zs.json"
    r = pet("zero-shot", "--task", "sst2", "--model", tiny_bert_dir, "--data-dir", str(DATA), "--limit", "8", "--no-progress", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["n"] == 8
    r = pet("train", "--task", "sst2", "--method", "prompt-ft", "--steps", "2", "--max-length", "32", "--model", tiny_bert_dir,
            "--data-dir", str(DATA), "--pvps", "it-was:great-terrible", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "← final" in r.stdout
