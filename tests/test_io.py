"""pet.utils.io: atomic files, the folder swap that survives kill -9 at any moment, leftover clean-up,
and the output-is-not-an-input check."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pet.utils import io
from pet.errors import ConfigError, UsageError
from pet.utils.io import (
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    check_output_not_input,
    leftovers,
    recover_directory,
)

REPO = Path(__file__).resolve().parent.parent
DEAD_PID = 2**22 + 12345  # above Linux's pid_max default: never a live process


def _make(d: Path, version: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "version.txt").write_text(version)
    (d / "sub").mkdir(exist_ok=True)
    (d / "sub" / "weights").write_bytes(version.encode() * 500)
    (d / "pet_config.json").write_text("{}")


def _complete(d: Path) -> str | None:
    """'old' / 'new' if ``d`` is a complete folder of that version, else None."""
    try:
        v = (d / "version.txt").read_text()
        ok = (d / "sub" / "weights").read_bytes() == v.encode() * 500 and (d / "pet_config.json").is_file()
    except OSError:
        return None
    return v if ok else None


# ----------------------------------------------------------------------------- files


def test_atomic_write_text_and_json(tmp_path):
    atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    atomic_write_json(tmp_path / "c.json", {"x": 1})
    assert (tmp_path / "c.json").read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_atomic_write_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match=r"is a file, not a folder"):
        atomic_write_text(tmp_path / "f" / "out.json", "{}")
    assert (tmp_path / "f").read_text() == "x"


def test_atomic_write_onto_a_folder(tmp_path):
    with pytest.raises(UsageError, match="is a folder; fix: give a file name"):
        atomic_write_text(tmp_path, "x")


def test_atomic_write_read_only_location(tmp_path, monkeypatch):
    def deny(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(io.tempfile, "mkstemp", deny)
    with pytest.raises(UsageError, match=r"cannot write the output \(Permission denied\); fix: choose a writable location"):
        atomic_write_text(tmp_path / "out.txt", "x")


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(a, b):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(UsageError, match="No space left"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


# ----------------------------------------------------------------------------- output is not input


def test_output_is_input_refused(tmp_path, monkeypatch):
    inp = tmp_path / "x.csv"
    inp.write_text("text\nhi\n")
    with pytest.raises(UsageError, match=r"--output .*x.csv is the input .*x.csv"):
        check_output_not_input(inp, [inp])
    monkeypatch.chdir(tmp_path)  # same file by a relative and an absolute name
    with pytest.raises(UsageError, match="is the input"):
        check_output_not_input("./x.csv", [inp])
    with pytest.raises(UsageError, match="is the input"):
        check_output_not_input("sub/../x.csv", [str(inp)])


def test_output_links_to_input_refused(tmp_path):
    inp = tmp_path / "x.csv"
    inp.write_text("text\nhi\n")
    (tmp_path / "soft.csv").symlink_to(inp)
    os.link(inp, tmp_path / "hard.csv")
    with pytest.raises(UsageError, match="symbolic link to the input"):
        check_output_not_input(tmp_path / "soft.csv", [inp])
    with pytest.raises(UsageError, match="hard link to the input"):
        check_output_not_input(tmp_path / "hard.csv", [inp])


def test_output_folder_around_or_inside_input(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("a\n")
    with pytest.raises(UsageError, match="is a folder that contains the input"):
        check_output_not_input(tmp_path, [data / "x.csv"])
    with pytest.raises(UsageError, match="lies inside the input folder"):
        check_output_not_input(data / "preds.jsonl", [data])


def test_distinct_output_allowed(tmp_path):
    inp = tmp_path / "x.csv"
    inp.write_text("a\n")
    check_output_not_input(tmp_path / "y.csv", [inp, None, tmp_path / "missing.csv"])
    check_output_not_input(None, [inp])


# ----------------------------------------------------------------------------- folders


def test_atomic_directory_new_and_refuse_nonempty(tmp_path):
    with atomic_directory(tmp_path / "m") as d:
        _make(d, "new")
    assert _complete(tmp_path / "m") == "new"
    with pytest.raises(ConfigError, match="exists and is not empty.*--overwrite"):
        with atomic_directory(tmp_path / "m"):
            pass
    assert leftovers(tmp_path / "m") == []


def test_atomic_directory_overwrite_swaps(tmp_path):
    _make(tmp_path / "m", "old")
    with atomic_directory(tmp_path / "m", overwrite=True, marker="pet_config.json") as d:
        _make(d, "new")
    assert _complete(tmp_path / "m") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_atomic_directory_fallback_swap(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)  # a file system without RENAME_EXCHANGE
    _make(tmp_path / "m", "old")
    with atomic_directory(tmp_path / "m", overwrite=True) as d:
        _make(d, "new")
    assert _complete(tmp_path / "m") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_failed_build_keeps_old_folder(tmp_path):
    _make(tmp_path / "m", "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_directory(tmp_path / "m", overwrite=True) as d:
            (d / "half").write_text("x")
            raise RuntimeError("disk full")
    assert _complete(tmp_path / "m") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_overwrite_refuses_folder_that_is_not_a_saved_one(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="has no pet_config.json"):
        with atomic_directory(home, overwrite=True, marker="pet_config.json"):
            pass
    assert (home / "thesis.tex").read_text() == "years of work"


def test_output_folder_is_a_file_or_symlink(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        with atomic_directory(tmp_path / "file", overwrite=True):
            pass
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UsageError, match="is a symbolic link"):
        with atomic_directory(tmp_path / "link", overwrite=True):
            pass
    with pytest.raises(UsageError, match="is a file, not a folder"):
        with atomic_directory(tmp_path / "file" / "sub"):
            pass
    assert (tmp_path / "file").read_text() == "x"


def test_recover_cleans_dead_leftovers_keeps_live_ones(tmp_path):
    _make(tmp_path / "m", "new")
    dead_partial = tmp_path / f".m.partial-{DEAD_PID}-abc"
    dead_old = tmp_path / f".m.old-{DEAD_PID}-def"
    live = tmp_path / f".m.partial-{os.getpid()}-ghi"  # another writer, still building
    other = tmp_path / f".n.partial-{DEAD_PID}-abc"  # a different folder's leftover
    for p in (dead_partial, dead_old, live, other):
        p.mkdir()
    removed = recover_directory(tmp_path / "m")
    assert set(removed) == {dead_partial, dead_old}
    assert live.is_dir() and other.is_dir() and _complete(tmp_path / "m") == "new"


def test_recover_restores_old_folder_when_final_missing(tmp_path):
    _make(tmp_path / f".m.old-{DEAD_PID}-x", "old")
    (tmp_path / f".m.partial-{DEAD_PID}-y").mkdir()
    recover_directory(tmp_path / "m")
    assert _complete(tmp_path / "m") == "old"
    assert leftovers(tmp_path / "m") == []


KILLER = r"""
import os, signal, sys
from pathlib import Path
import pet.utils.io as io

mode, final = sys.argv[1], Path(sys.argv[2])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if mode.startswith("fallback"):
    io._exchange = lambda a, b: False
real_rename, real_rmtree = os.rename, io.shutil.rmtree

def rename(a, b):
    real_rename(a, b)
    if mode == "fallback-between" and Path(a) == final:
        die()  # the old folder is renamed away, the new one not yet in place

def rmtree(p, *a, **k):
    if mode in ("exchange-after", "fallback-after"):
        die()  # the swap is done; the old copy is not yet removed
    return real_rmtree(p, *a, **k)

os.rename, io.shutil.rmtree = rename, rmtree
with io.atomic_directory(final, overwrite=True, marker="pet_config.json") as d:
    d.joinpath("sub").mkdir()
    d.joinpath("version.txt").write_text("new")
    d.joinpath("sub", "weights").write_bytes(b"new" * 500)
    if mode == "during":
        die()
    d.joinpath("pet_config.json").write_text("{}")
"""


@pytest.mark.parametrize(
    "mode,after_kill",
    [("during", "old"), ("fallback-between", None), ("fallback-after", "new"), ("exchange-after", "new")],
)
def test_kill_9_at_any_moment_leaves_a_complete_folder(tmp_path, mode, after_kill):
    final = tmp_path / "m"
    _make(final, "old")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILLER, mode, str(final)], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    # right after the kill: the folder (or, mid-fallback, its complete old copy) is on disk
    assert _complete(final) == after_kill
    if after_kill is None:
        olds = [p for p in leftovers(final) if ".old-" in p.name]
        assert len(olds) == 1 and _complete(olds[0]) == "old"
    assert leftovers(final), "the kill should have left something to clean up"
    # the next run puts things right: a complete folder at the path, no leftovers
    recover_directory(final)
    assert _complete(final) == (after_kill or "old")
    assert leftovers(final) == []
    # and a following save works normally
    with atomic_directory(final, overwrite=True, marker="pet_config.json") as d:
        _make(d, "new")
    assert _complete(final) == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["m"]
