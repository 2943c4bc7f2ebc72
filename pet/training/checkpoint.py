"""Resumable training runs: :func:`pet.training.loop.train_loop`'s state on disk.

A run given a :class:`LoopCheckpoint` writes, every ``every`` optimizer steps and after the
last one, one file holding everything the rest of the run depends on: the trained parameters,
the optimizer's and the LR schedule's state, the step reached, the log so far, the best
checkpoint kept for ``eval_every`` and the global random states (torch, numpy, random: dropout
draws from them). A later run with the same checkpoint (same ``fingerprint``, same ``pet``
source and library versions, :func:`pet.utils.versions.code_fingerprint`) loads it and goes on
from the next step; the micro-batch stream is rebuilt from its seeds and the micro-batches
already used are drawn again and dropped, so the resumed run sees exactly the batches the
uninterrupted one would have. A resumed run therefore ends with the same weights as an
uninterrupted run (tested to 1e-6 in ``tests/test_resume.py``).

The file is written under a temporary name and renamed, so a run killed while saving leaves
the previous checkpoint intact; a file that does not load, or was written for other inputs
or other code, is ignored (with a one-line warning when it is damaged) and training starts
from step 0. Loading uses ``torch.load(weights_only=True)``: tensors, numbers, strings, lists
and dicts only, no pickled code.

PET's distillation (5,000 steps, about two CPU-hours for a small encoder) saves its student
this way under the cell's ``FitSetup.resume_dir`` (:mod:`pet.methods.pet`).

Under ``accelerate launch`` (several processes) the main process writes the file and every
process resumes from it; the random states are the main process's, so a resumed multi-process
run continues correctly but is not bit-identical to an uninterrupted one (single-process runs
are).
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..utils.provenance import other_code_message, other_inputs_message, saved_by
from ..utils.versions import code_fingerprint

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass
class LoopCheckpoint:
    """Where a training run keeps its resumable state (see the module docstring)."""

    path: str | Path  # one file, e.g. ``<resume_dir>/student.pt``
    fingerprint: str  # what the run trains on and how: a state written for another fingerprint is not used
    every: int = 250  # optimizer steps between saves (the last step is always saved)
    inputs: dict | None = None  # the record ``fingerprint`` hashes, saved with the state to explain a mismatch
    resumed_from: int = field(default=0, init=False)  # set by the loop: the step a resumed run started after

    def __post_init__(self):
        self.path = Path(self.path)
        if self.every < 1:
            raise ValueError(f"LoopCheckpoint.every must be ≥ 1, got {self.every}")


def _rng_state() -> dict:
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trained(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}


def save_state(ckpt: LoopCheckpoint, module: nn.Module, optimizer: Any, scheduler: Any, step: int, train_log: Any,
               train_seconds: float, best: Any) -> None:
    """Write the run's state after optimizer step ``step`` atomically to ``ckpt.path``."""
    path = Path(ckpt.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT, "fingerprint": ckpt.fingerprint, **saved_by(), "inputs": ckpt.inputs, "step": step,
        "params": _trained(module), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "entries": train_log.entries, "best_step": train_log.best_step, "best_dev_score": train_log.best_dev_score,
        "train_seconds": float(train_seconds), "rng": _rng_state(),
        "best": None if best.best is None else {"params": {k: v.cpu() for k, v in best.best.items()}},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(ckpt: LoopCheckpoint, total_steps: int) -> dict | None:
    """The saved state if it belongs to this run (fingerprint, code, step within ``total_steps``); else None."""
    path = Path(ckpt.path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — a damaged checkpoint means training from the start, not a failure
        log.warning("%s: cannot resume this training run (%s: %s); training from step 0", path, type(e).__name__,
                    str(e).splitlines()[0] if str(e) else "")
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None
    if state.get("fingerprint") != ckpt.fingerprint:
        message = other_inputs_message(path, state.get("inputs"), ckpt.inputs)
        if message:
            log.warning("%s", message)
        return None
    if state.get("code") != code_fingerprint():  # written by other code or libraries: not reused
        log.warning("%s", other_code_message(path, state))
        return None
    if not 0 < int(state.get("step", 0)) <= total_steps:
        return None
    return state


def restore_state(state: dict, module: nn.Module, optimizer: Any, scheduler: Any, train_log: Any, best: Any) -> None:
    """Put a loaded state back: parameters, optimizer, schedule, log, best checkpoint, random states."""
    params = dict(module.named_parameters())
    missing = [n for n in params if params[n].requires_grad and n not in state["params"]]
    if missing or any(n not in params for n in state["params"]):
        raise ValueError(f"the saved parameters do not match the model (e.g. {(missing or list(state['params']))[0]!r})")
    with torch.no_grad():
        for n, v in state["params"].items():
            params[n].copy_(v.to(params[n].device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    train_log.entries = list(state["entries"])
    train_log.best_step, train_log.best_dev_score = state["best_step"], state["best_dev_score"]
    if state["best"] is not None:
        best.best = {k: v.to(params[k].device) for k, v in state["best"]["params"].items()}
    _set_rng_state(state["rng"])
