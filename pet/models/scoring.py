"""Combining label distributions: PVP ensembles and contextual calibration.

Everything here works on label log-probabilities ``[N, L]`` (rows normalised over labels),
as returned by :meth:`pet.models.prompt_model.PromptModel.predict_log_proba`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import log_softmax


def normalize(log_scores: np.ndarray) -> np.ndarray:
    """Renormalise rows over the labels (log-softmax)."""
    return log_softmax(np.asarray(log_scores, dtype=np.float64), axis=-1)


def ensemble(log_probs: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of per-PVP label log-probs, renormalised (PET's ensemble; equal weights
    by default, or e.g. each PVP's accuracy on the training set before training)."""
    stack = np.stack([np.asarray(lp, dtype=np.float64) for lp in log_probs])
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(stack),) or (w < 0).any() or w.sum() <= 0:
        from ..errors import ConfigError

        raise ConfigError(f"ensemble weights must be {len(stack)} non-negative numbers with a positive sum; "
                          "fix: pass one non-negative weight per PVP, with a positive sum")
    return normalize(np.tensordot(w / w.sum(), stack, axes=1))


def calibrate(log_probs: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
    """Contextual calibration (Zhao et al. 2021): divide by the content-free label distribution."""
    return normalize(np.asarray(log_probs) - np.asarray(log_prior)[None, :])
