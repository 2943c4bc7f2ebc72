"""PET's pure pieces, apart from its trainer (:mod:`pet.methods.pet`): the ensemble's soft
targets and pre-training weights, and iPET's growth of each model's training set (PET §3.3:
how many generations, how many examples per label, which models label them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..examples import Example
from ..models.scoring import ensemble as ensemble_log_probs

ENSEMBLE_SCHEMES = ("weighted", "mean")
SELECT_MODES = ("sample", "top")

def soft_targets(
    arrays: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    temperature: float = 2.0,
    mode: str = "logits",
) -> np.ndarray:
    """Distillation targets ``[N, L]`` (rows sum to 1) from several models' label scores.

    ``arrays``: per model, label logits or label log-probs ``[N, L]`` (the result is the same
    for both: they differ by a per-row constant). ``mode="logits"`` (PET): ``softmax(z̄ / T)``
    with ``z̄`` the weighted mean of the arrays. ``mode="probs"``: the weighted mean of each
    model's ``softmax(z / T)``. ``T → ∞`` gives the uniform distribution, ``T → 0`` one-hot.
    """
    if not len(arrays):
        raise ConfigError("soft_targets: no model outputs given; fix: pass at least one [N, L] array")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ConfigError(f"temperature={temperature}: must be a positive number; fix: use e.g. temperature=2")
    stack = np.stack([np.asarray(a, dtype=np.float64) for a in arrays])  # [M, N, L]
    w = _check_weights(weights, len(stack))
    if mode == "logits":
        return _softmax(np.tensordot(w, stack, axes=1) / temperature)
    if mode == "probs":
        return np.tensordot(w, _softmax(stack / temperature), axes=1)
    raise ConfigError(f"soft_targets: mode '{mode}' is unknown; fix: use 'logits' or 'probs'")


def pre_training_weights(
    log_probs: Sequence[np.ndarray],
    gold: Sequence[str | None],
    labels: Sequence[str],
    scheme: str = "weighted",
) -> np.ndarray:
    """Ensemble weights: ``"weighted"`` → each model's accuracy on ``gold`` (PET: on the
    labelled training set, before training), ``"mean"`` → ones.

    If every accuracy is 0 the weights fall back to equal (an all-zero weighting is undefined).
    """
    if scheme not in ENSEMBLE_SCHEMES:
        raise ConfigError(f"ensemble '{scheme}': unknown; fix: use one of {', '.join(ENSEMBLE_SCHEMES)}")
    n = len(log_probs)
    if scheme == "mean" or n == 0:
        return np.ones(n)
    acc = np.array([label_accuracy(lp, gold, labels) for lp in log_probs])
    return acc if np.nansum(acc) > 0 and not np.isnan(acc).any() else np.ones(n)


def label_accuracy(log_probs: np.ndarray, gold: Sequence[str | None], labels: Sequence[str]) -> float:
    """Accuracy of ``argmax`` of ``log_probs`` ``[N, L]`` against ``gold`` (rows without gold are skipped; NaN if none)."""
    idx = {str(lab): i for i, lab in enumerate(labels)}
    g = np.array([idx.get(str(y), -1) if y is not None else -1 for y in gold])
    keep = g >= 0
    if not keep.any():
        return float("nan")
    return float((np.asarray(log_probs).argmax(1)[keep] == g[keep]).mean())


def allocate(total: int, counts: Sequence[int]) -> list[int]:
    """Split ``total`` over labels in proportion to ``counts`` (largest remainder; ties → first label)."""
    s = sum(counts)
    if total <= 0 or s == 0:
        return [0] * len(counts)
    raw = [total * c / s for c in counts]
    out = [int(math.floor(r)) for r in raw]
    order = sorted(range(len(counts)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


@dataclass
class Growth:
    """What :func:`ipet_grow` added to one model's training set."""

    examples: list[Example]  # the new examples, labelled by the voters' ensemble
    voters: list[int]  # indices (into the previous generation's models) of the voters
    target: int  # examples that should be added: |T| * scale**g - |T| (|T| = 0: zero_shot_size * scale**(g-1))
    per_label: dict[str, int]  # examples added per label
    forced: dict[str, int] = field(default_factory=dict)  # labels no pool example was assigned to: filled by p(label)
    most_likely: int | None = None  # zero-shot first generation: drawn per label from this many most likely pool examples

    @property
    def label_accuracy(self) -> float | None:
        """Agreement of the assigned labels with the pool's hidden gold labels, if known."""
        gold = [(e.label, e.meta.get("gold_label")) for e in self.examples if e.meta.get("gold_label") is not None]
        return float(np.mean([a == b for a, b in gold])) if gold else None


def ipet_generations(n_labelled: int, scale: int = 5, target: int = 1000, zero_shot_size: int = 10) -> int:
    """PET's number of grown iPET generations: the smallest ``k`` with ``|T|·d^k ≥ target``,
    i.e. ``⌈log_d(target / |T|)⌉`` (counted exactly in integers; 0 when ``|T| ≥ target``).

    With no labelled data (zero-shot iPET) generation ``g`` trains on ``zero_shot_size·d^(g−1)``
    examples, so ``k`` is the smallest with ``zero_shot_size·d^(k−1) ≥ target`` (4 for PET's
    10, 5 and 1000: 10, 50, 250, 1250 examples; the paper's Figure 4 shows generations 1-4)."""
    if n_labelled < 0:
        raise ConfigError(f"iPET's generation rule: {n_labelled} labelled examples; fix: pass zero or more labelled examples")
    k, size = (0, n_labelled) if n_labelled else (1, zero_shot_size)
    if size >= target:
        return k
    if scale < 2:
        raise ConfigError(f"ipet_scale={scale} never grows the training set to {target}; fix: set generations, or ipet_scale ≥ 2")
    while size < target:
        k, size = k + 1, size * scale
    return k


def growth_target(labelled: Sequence[Example], labels: Sequence[str], generation: int, scale: int = 5,
                  zero_shot_size: int = 10) -> tuple[int, list[int]]:
    """(examples to add for ``generation``, how many per label).

    With labelled data: ``|T|·(d^g − 1)``, split in the label proportions of ``T`` (PET §3.4).
    Without (zero-shot iPET, PET §3.4 last paragraph): ``zero_shot_size·d^(g−1)`` (10, 50, 250, …),
    split evenly over the labels, the remainder to the first labels (PET's ``eq_div``)."""
    n_l = len(labelled)
    if n_l == 0:
        target, counts = zero_shot_size * scale ** (generation - 1), [1] * len(labels)
    else:
        target, counts = int(n_l * scale**generation) - n_l, [sum(1 for e in labelled if e.label == lab) for lab in labels]
    return target, allocate(target, counts)


def _check_grow_args(generation: int, fraction: float, scale: int, select: str, n_models: int, member: int) -> list[int]:
    """The models that may vote for ``member`` (every other one); bad arguments raise ``ConfigError``."""
    if generation < 1:
        raise ConfigError(f"ipet_grow: generation={generation}; fix: generations start at 1")
    if not 0 < fraction <= 1:
        raise ConfigError(f"ipet_fraction={fraction}: must be in (0, 1]; fix: use e.g. 0.25 (PET)")
    if scale < 1:
        raise ConfigError(f"ipet_scale={scale}: must be at least 1; fix: use e.g. 5 (PET)")
    if select not in SELECT_MODES:
        raise ConfigError(f"ipet_select '{select}': unknown; fix: use one of {', '.join(SELECT_MODES)}")
    others = [j for j in range(n_models) if j != member]
    if not others:
        raise ConfigError(
            "iPET needs at least two models (each model's new examples are labelled by the others); "
            "fix: pass two or more PVPs, or repetitions ≥ 2"
        )
    return others


def _draw(cand: np.ndarray, weight: np.ndarray, m: int, select: str, rng: np.random.Generator) -> list:
    """``m`` of the candidate pool indices ``cand``: every one ``⌊m / n⌋`` times, the rest drawn
    without replacement with probability ∝ ``weight[cand]`` (``select="top"``: the highest
    weights, ties by index)."""
    reps, rest = divmod(m, len(cand))
    chosen = list(np.tile(cand, reps))
    if rest:
        if select == "top":
            chosen += list(cand[np.lexsort((cand, -weight[cand]))][:rest])
        else:
            chosen += list(rng.choice(cand, size=rest, replace=False, p=weight[cand] / weight[cand].sum()))
    return chosen


def _most_likely(usable: np.ndarray, p: np.ndarray, n: int | None = None) -> np.ndarray:
    """The usable pool indices by ``p`` (highest first, ties by index), the first ``n`` of them."""
    idx = np.flatnonzero(usable)
    return idx[np.lexsort((idx, -p[idx]))][:n]


def ipet_grow(
    labelled: Sequence[Example],
    pool: Sequence[Example],
    log_probs: Sequence[np.ndarray],
    member: int,
    labels: Sequence[str],
    generation: int,
    weights: Sequence[float] | None = None,
    scale: int = 5,
    fraction: float = 0.25,
    select: str = "sample",
    seed: int = 0,
    zero_shot_size: int = 10,
    most_likely: int = 100,
) -> Growth:
    """The examples iPET adds to model ``member``'s training set for ``generation`` (≥ 1).

    ``log_probs[j]``: previous-generation model ``j``'s label log-probs on ``pool`` ``[N, L]``
    (every model but ``member`` may vote); ``weights``: the ensemble weights of the models
    (None = equal). Deterministic given ``seed``. See the module docstring for the exact rule;
    with no ``labelled`` examples the first generation draws each label's examples from the
    ``most_likely`` pool examples the voters find most likely to be it (zero-shot iPET).
    """
    labels = list(labels)
    others = _check_grow_args(generation, fraction, scale, select, len(log_probs), member)
    w_all = _check_weights(weights, len(log_probs))
    rng = np.random.default_rng([int(seed), int(generation), int(member)])
    voters = sorted(int(j) for j in rng.choice(others, size=max(1, int(round(len(others) * fraction))), replace=False))
    target, need = growth_target(labelled, labels, generation, scale, zero_shot_size)
    vw = w_all[voters]
    probs = np.exp(ensemble_log_probs([log_probs[j] for j in voters], vw if vw.sum() > 0 else None))
    pred = probs.argmax(1)
    taken = {example_key(e) for e in labelled}
    usable = np.array([example_key(e) not in taken for e in pool], dtype=bool)
    top_n = most_likely if not labelled and generation == 1 else None

    added: list[Example] = []
    per_label: dict[str, int] = {}
    forced: dict[str, int] = {}
    for li, lab in enumerate(labels):
        m = need[li]
        if m == 0:
            per_label[lab] = 0
            continue
        if top_n is not None:  # zero-shot iPET, first generation: PET's n_most_likely
            cand = np.sort(_most_likely(usable, probs[:, li], top_n))
        else:
            cand = np.flatnonzero(usable & (pred == li))
        if len(cand):
            chosen = _draw(cand, probs[:, li], m, select, rng)
        else:
            # the voters assign this label to no usable pool example: take the examples they
            # find most likely to be it (ties by pool order), so the label distribution holds
            order = _most_likely(usable, probs[:, li])
            chosen = list(np.resize(order, m)) if len(order) else []
            forced[lab] = len(chosen)
        per_label[lab] = len(chosen)
        added += [_relabelled(pool[int(i)], lab, generation, float(probs[i, li]), voters) for i in chosen]
    return Growth(examples=added, voters=voters, target=target, per_label=per_label, forced=forced, most_likely=top_n)


def _relabelled(ex: Example, label: str, generation: int, confidence: float, voters: list[int]) -> Example:
    """A pool example with the label iPET's voters gave it (and how, in ``meta``)."""
    meta = {**ex.meta, "ipet_generation": generation, "ipet_confidence": confidence, "ipet_voters": voters}
    return Example(fields=dict(ex.fields), label=label, guid=ex.guid, meta=meta)


def example_key(e: Example) -> tuple:
    """Identity of an example by its text (whitespace- and case-normalised), field by field."""
    return tuple(sorted((k, " ".join(str(v).split()).lower()) for k, v in e.fields.items()))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ConfigError(f"ensemble weights must be {n} non-negative numbers with a positive sum; fix: check the weights")
    return w / w.sum()


def _mean_entropy(p: np.ndarray) -> float:
    """Mean entropy (nats) of the rows of ``p``."""
    return float(-(p * np.log(np.clip(p, 1e-12, 1.0))).sum(1).mean())
