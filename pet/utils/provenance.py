"""What resumable work saved between runs records about how it was made, and the warnings that
explain why such work is not reused: made by other code (:func:`other_code_message`, naming the
commit) or from other inputs (:func:`other_inputs_message`, naming the fields that differ).
Used by :mod:`pet.methods.resume` (PET's saved members) and :mod:`pet.training.checkpoint`."""

from __future__ import annotations

import functools
import json
from typing import Any

from .versions import code_fingerprint, git_commit


@functools.lru_cache(maxsize=1)
def saved_by() -> dict[str, str | None]:
    """What work kept between runs records about the code that made it: its
    :func:`code_fingerprint` (compared before reuse) and git commit (to name it when it differs)."""
    return {"code": code_fingerprint(), "commit": git_commit()[0]}


def other_code_message(path, saved: dict) -> str:
    """The warning for saved work that matches the run but was made by other code or libraries."""
    commit = saved.get("commit")
    made = f"commit {commit[:12]}" if commit else f"code fingerprint {str(saved.get('code'))[:12]}"
    return (f"{path}: saved by other pet code or library versions ({made}; this run: "
            f"{(saved_by()['commit'] or saved_by()['code'])[:12]}), so it is not reused and is trained again; "
            "to reuse it, run the code that made it (e.g. from a git worktree of that commit, started from its root)")


def changed_fields(saved: Any, now: Any, prefix: str = "") -> list[str]:
    """The fields (dotted paths into nested dicts) whose values differ between two input records."""
    if isinstance(saved, dict) and isinstance(now, dict):
        out: list[str] = []
        for k in sorted(set(saved) | set(now), key=str):
            out += changed_fields(saved.get(k), now.get(k), f"{prefix}{k}.")
        return out
    return [] if saved == now else [prefix.rstrip(".") or "inputs"]


def other_inputs_message(path, saved_inputs: Any, inputs: dict | None) -> str | None:
    """The warning for saved work under this name whose recorded inputs differ from the run's (None
    when the run records no inputs; work saved before inputs were recorded says so)."""
    if inputs is None:
        return None
    if not isinstance(saved_inputs, dict):
        return f"{path}: saved from other inputs (not recorded: saved by an older pet), so it is not reused and is trained again"
    fields = changed_fields(json.loads(json.dumps(saved_inputs, default=str)), json.loads(json.dumps(inputs, default=str)))
    shown = ", ".join(fields[:6]) + (f" and {len(fields) - 6} more" if len(fields) > 6 else "")
    return f"{path}: saved from other inputs ({shown or 'same recorded inputs, other fingerprint'} differ), so it is not reused and is trained again"
