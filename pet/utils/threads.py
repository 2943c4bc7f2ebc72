"""How many CPU threads a command's torch work gets.

Two torch processes with default threads on a 2-core machine slow each other ~15× (a 35 s training
cell took 527 s beside another). Every command takes ``--threads``; without it,
:func:`default_threads` gives the cores not already taken by other running ``pet`` processes
(at least one), and :func:`apply_threads` sets torch's intra-op threads to it — never more than
torch already has (``OMP_NUM_THREADS``, or an embedding program's own setting, is respected).
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def other_pet_processes() -> int:
    """How many other ``pet`` commands are running (see :func:`pet_processes`)."""
    return len(pet_processes())


def pet_processes() -> list[int]:
    """Process ids of running processes, other than this one and its parent, whose command line
    is a ``pet`` command (``pet …`` or ``python -m pet …``); stopped and zombie processes use no
    core and are not counted. Linux ``/proc`` only; none elsewhere."""
    me = os.getpid()
    skip = {me, os.getppid()}
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(d.name)
            if pid in skip:
                continue
            argv = (d / "cmdline").read_bytes().split(b"\0")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]  # after "(comm)", which may hold spaces
        except (OSError, ValueError, IndexError):
            continue
        if state in ("T", "t", "Z", "X"):  # stopped, traced, zombie, dead
            continue
        argv = [a.decode("utf-8", "replace") for a in argv if a]
        if _is_pet_command(argv):
            found.append(pid)
    return found


def _is_pet_command(argv: list[str]) -> bool:
    if not argv:
        return False
    if Path(argv[0]).name == "pet":
        return True
    if Path(argv[0]).name.startswith("python") and len(argv) > 1:
        rest = argv[1:]
        if rest[0] == "-m" and len(rest) > 1 and rest[1] == "pet":
            return True
        if Path(rest[0]).name == "pet":  # python .venv/bin/pet …
            return True
    return False


def default_threads() -> int:
    """The cores not taken by other ``pet`` runs (each counted as using one core), at least 1."""
    return max(1, cpu_count() - other_pet_processes())


def apply_threads(n: int | None) -> int:
    """Set torch's intra-op threads to ``n``; when None, to :func:`default_threads` capped at
    torch's current count (so ``OMP_NUM_THREADS=1`` stays 1). Returns the count set."""
    import torch

    n = min(default_threads(), torch.get_num_threads()) if n is None else int(n)
    if n < 1:
        from ..errors import UsageError

        raise UsageError(f"--threads {n}: must be at least 1; fix: give a positive number")
    torch.set_num_threads(n)
    return n
