"""PET and iPET (Schick & Schütze 2021): an ensemble of prompt models, distilled into one
classifier over unlabelled text; iPET grows each model's training set generation by generation.

PET
  1. For every PVP (× ``repetitions``, a distinct seed per repetition) a fresh
     ``PromptModel.from_pretrained`` is trained with :func:`pet.training.train_prompt_model`
     on the labelled set (plus the auxiliary MLM loss on the unlabelled pool when
     ``mlm_weight > 0``), then scored on the test split (stage ``"pvp"``).
  2. Ensemble (stage ``"ensemble"``): the weighted mean of the models' label log-probs
     (:func:`pet.scoring.ensemble`). ``"weighted"`` (PET's default): each model's weight is its
     PVP's accuracy on the labelled training set *before* training (zero-shot);
     ``"mean"``: equal weights.
  3. Soft labels on the unlabelled pool (:func:`soft_targets`): ``softmax(z̄ / T)`` where
     ``z̄`` is the same weighted mean of the models' label log-probs (equivalently of their
     label logits: the two differ by a per-row constant, which the softmax removes), ``T`` =
     ``temperature`` (2 as in PET). This is exactly PET's ``merge_logits`` + distillation
     target.
  4. Distillation (stage ``"distilled"``): :func:`pet.methods.cls_ft.train_sequence_classifier`
     on the unlabelled pool only (as in the paper), scored on test. Its loss
     (:func:`pet.training.distillation_loss`) softens the targets it is given with T itself
     (``q = softmax(log p / T)``), so it is handed the ensemble distribution at T = 1,
     ``p = softmax(z̄)``: the student's effective target is ``softmax(z̄ / T)``, T applied once.

iPET
  Generation 0 is PET's step 1 (rows ``"pvp"`` / ``"ensemble"``). For generation
  ``g = 1 … generations`` every model ``i`` (one per PVP × repetition) gets a fresh model trained
  on ``T ∪ A_i^g``, where ``A_i^g`` (:func:`ipet_grow`) is:

  * voters: a random ``fraction`` (PET's λ = 0.25; ``max(1, round(λ·n))``) of the previous
    generation's models whose PVP is *not* model ``i``'s PVP;
  * their ensemble (same weighting as above) labels the unlabelled pool (hard label = argmax;
    pool texts equal to a labelled example are never used);
  * size: the training set grows to ``|T| · scale^g`` (PET's d = 5), i.e.
    ``|T|·(scale^g − 1)`` added examples, split over the labels in the proportions of ``T``
    (largest-remainder rounding, so the total is exact);
  * per label, examples are drawn without replacement with probability proportional to the
    ensemble's confidence (its probability of the assigned label) — PET's
    ``_draw_examples_by_label_probability``; ``select="top"`` takes the most confident instead.
    When a label has fewer candidates than it needs, every candidate is repeated
    ``⌊need / n⌋`` times and the rest drawn as above (PET upsamples too). When the voters
    assign a label to no pool example at all (a collapsed ensemble; PET would loop forever),
    that label's share is filled with the pool examples the voters find most likely to be
    that label (highest probability first), recorded as ``added_forced`` in the rows' ``extra``.

  Rows: ``"ipet-gen{g}"`` per model (``pvp`` set) and ``"ipet-gen{g}-ensemble"``. The last
  generation's ensemble gives the soft targets for the final ``"distilled"`` row
  (``distill_each_generation`` also distils every earlier generation: ``"distilled-gen{g}"``;
  ``distilled-gen0`` is exactly PET's distilled model).

The models' weights in every generation are the generation-0 (pre-training) accuracies: a
fresh model is the same pretrained model whatever its generation, so PET's "accuracy on the
training set before training" does not change.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from ..errors import ConfigError
from ..examples import Example
from ..scoring import ensemble as ensemble_log_probs
from ..spec import PVP
from .base import RunContext, StageResult, register
from .cls_ft import peak_memory_mb, reset_peak_memory, train_sequence_classifier

log = logging.getLogger(__name__)

ENSEMBLE_SCHEMES = ("weighted", "mean")
SELECT_MODES = ("sample", "top")

#: Option keys that belong to PET/iPET itself; every other key is a TrainConfig key
#: (``distill_<key>`` overrides a TrainConfig key for the final classifier only).
PET_OPTIONS = {
    "ensemble": "weighted",
    "repetitions": 1,
    "generations": 2,
    "distill": True,
    "distill_each_generation": False,
    "ipet_fraction": 0.25,
    "ipet_scale": 5,
    "ipet_select": "sample",
    "unlabelled_size": None,
}


# ============================================================================ pure helpers


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
    target: int  # examples that should be added: |T| * scale**g - |T|
    per_label: dict[str, int]  # examples added per label
    forced: dict[str, int] = field(default_factory=dict)  # labels no pool example was assigned to: filled by p(label)

    @property
    def label_accuracy(self) -> float | None:
        """Agreement of the assigned labels with the pool's hidden gold labels, if known."""
        gold = [(e.label, e.meta.get("gold_label")) for e in self.examples if e.meta.get("gold_label") is not None]
        return float(np.mean([a == b for a, b in gold])) if gold else None


def ipet_grow(
    labelled: Sequence[Example],
    pool: Sequence[Example],
    log_probs: Sequence[np.ndarray],
    groups: Sequence[Hashable],
    member: int,
    labels: Sequence[str],
    generation: int,
    weights: Sequence[float] | None = None,
    scale: int = 5,
    fraction: float = 0.25,
    select: str = "sample",
    seed: int = 0,
) -> Growth:
    """The examples iPET adds to model ``member``'s training set for ``generation`` (≥ 1).

    ``log_probs[j]``: previous-generation model ``j``'s label log-probs on ``pool`` ``[N, L]``;
    ``groups[j]``: its PVP (models of ``member``'s own PVP never vote); ``weights``: the
    ensemble weights of the models (None = equal). Deterministic given ``seed``. See the
    module docstring for the exact rule.
    """
    labels = list(labels)
    if generation < 1:
        raise ConfigError(f"ipet_grow: generation={generation}; fix: generations start at 1")
    if not 0 < fraction <= 1:
        raise ConfigError(f"ipet_fraction={fraction}: must be in (0, 1]; fix: use e.g. 0.25 (PET)")
    if scale < 1:
        raise ConfigError(f"ipet_scale={scale}: must be at least 1; fix: use e.g. 5 (PET)")
    if select not in SELECT_MODES:
        raise ConfigError(f"ipet_select '{select}': unknown; fix: use one of {', '.join(SELECT_MODES)}")
    if len(log_probs) != len(groups):
        raise ConfigError("ipet_grow: one group (PVP id) per model is needed")
    others = [j for j in range(len(groups)) if groups[j] != groups[member]]
    if not others:
        raise ConfigError(
            "iPET needs models of at least two different PVPs (each model's new examples are labelled by the "
            "other PVPs' models); fix: pass two or more PVPs"
        )
    w_all = _check_weights(weights, len(log_probs))
    rng = np.random.default_rng([int(seed), int(generation), int(member)])
    k = max(1, int(round(len(others) * fraction)))
    voters = sorted(int(j) for j in rng.choice(others, size=k, replace=False))

    n_l = len(labelled)
    target = int(n_l * scale**generation) - n_l
    counts = [sum(1 for e in labelled if e.label == lab) for lab in labels]
    need = allocate(target, counts)

    vw = w_all[voters]
    probs = np.exp(ensemble_log_probs([log_probs[j] for j in voters], vw if vw.sum() > 0 else None))
    pred = probs.argmax(1)
    conf = probs.max(1)
    taken = {example_key(e) for e in labelled}
    usable = np.array([example_key(e) not in taken for e in pool], dtype=bool)

    added: list[Example] = []
    per_label: dict[str, int] = {}
    forced: dict[str, int] = {}
    for li, lab in enumerate(labels):
        m = need[li]
        cand = np.flatnonzero(usable & (pred == li))
        if m == 0:
            per_label[lab] = 0
            continue
        if len(cand) == 0:
            # the voters assign this label to no usable pool example: take the examples they
            # find most likely to be it (ties by pool order), so the label distribution holds
            usable_idx = np.flatnonzero(usable)
            order = usable_idx[np.lexsort((usable_idx, -probs[usable_idx, li]))]
            chosen = list(np.resize(order, m)) if len(order) else []
            forced[lab] = len(chosen)
            per_label[lab] = len(chosen)
            for i in chosen:
                ex = pool[int(i)]
                meta = {**ex.meta, "ipet_generation": generation, "ipet_confidence": float(probs[i, li]), "ipet_voters": voters}
                added.append(Example(fields=dict(ex.fields), label=lab, guid=ex.guid, meta=meta))
            continue
        reps, rest = divmod(m, len(cand))
        chosen = list(np.tile(cand, reps))
        if rest:
            if select == "top":
                order = cand[np.lexsort((cand, -conf[cand]))]  # most confident first, ties by index
                chosen += list(order[:rest])
            else:
                p = conf[cand] / conf[cand].sum()
                chosen += list(rng.choice(cand, size=rest, replace=False, p=p))
        per_label[lab] = len(chosen)
        for i in chosen:
            ex = pool[int(i)]
            meta = {**ex.meta, "ipet_generation": generation, "ipet_confidence": float(conf[i]), "ipet_voters": voters}
            added.append(Example(fields=dict(ex.fields), label=lab, guid=ex.guid, meta=meta))
    return Growth(examples=added, voters=voters, target=target, per_label=per_label, forced=forced)


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


# ============================================================================ the recipe


@dataclass
class _Member:
    """One trained prompt model, kept only as its outputs (the model itself is freed)."""

    pvp: PVP
    repetition: int
    seed: int
    generation: int
    train_size: int
    test_lp: np.ndarray | None
    pool_lp: np.ndarray | None
    train_seconds: float
    eval_eps: float
    eval_seconds: float
    trained_parameters: int
    peak_memory_mb: float
    score: float
    extra: dict = field(default_factory=dict)
    model: Any = None  # the trained PromptModel, only when kept


def _mean_entropy(p: np.ndarray) -> float:
    """Mean entropy (nats) of the rows of ``p``."""
    return float(-(p * np.log(np.clip(p, 1e-12, 1.0))).sum(1).mean())


def _accuracy(gold: Sequence[str | None], pred: Sequence[str]) -> float:
    from ..metrics import compute_metric

    return compute_metric("accuracy", gold, pred)


def parse_options(options: dict, where: str = "pet options") -> tuple[dict, Any, Any]:
    """``(pet options with defaults, TrainConfig, distillation TrainConfig)`` from a method's
    options: PET's own keys (``PET_OPTIONS``), any TrainConfig key, ``distill_<key>``."""
    from ..training import TrainConfig
    from ..training import split_options as split_train

    opts = dict(options or {})
    distill_keys = {k[len("distill_"):]: opts.pop(k) for k in list(opts) if k.startswith("distill_") and k not in PET_OPTIONS}
    config, own = split_train(opts, allowed=tuple(PET_OPTIONS), where=where)
    pet_opts = {**PET_OPTIONS, **own}
    if pet_opts["ensemble"] not in ENSEMBLE_SCHEMES:
        raise ConfigError(f"{where}: ensemble='{pet_opts['ensemble']}' is unknown; fix: use one of {', '.join(ENSEMBLE_SCHEMES)}")
    if pet_opts["ipet_select"] not in SELECT_MODES:
        raise ConfigError(f"{where}: ipet_select='{pet_opts['ipet_select']}' is unknown; fix: use one of {', '.join(SELECT_MODES)}")
    for key, lo in (("repetitions", 1), ("generations", 1), ("ipet_scale", 1), ("unlabelled_size", 0)):
        v = pet_opts[key]
        if key == "unlabelled_size" and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < lo:
            raise ConfigError(f"{where}: {key}={v!r} must be an integer ≥ {lo}; fix: e.g. {key}={PET_OPTIONS[key] or 1000}")
        pet_opts[key] = int(v)
    f = pet_opts["ipet_fraction"]
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
        raise ConfigError(f"{where}: ipet_fraction={f!r} must be in (0, 1]; fix: e.g. 0.25 (PET)")
    for key in ("distill", "distill_each_generation"):
        if not isinstance(pet_opts[key], bool):
            raise ConfigError(f"{where}: {key}={pet_opts[key]!r} must be true or false; fix: e.g. {key}=false")
    try:
        distill_config = TrainConfig.from_dict({**config.to_dict(), **distill_keys}, where=f"{where} (distill_*)") if distill_keys else config
    except ConfigError as e:
        raise ConfigError(str(e).replace("unknown key(s) [", "unknown key(s) distill_[", 1)) from None
    return pet_opts, config, distill_config


def fit_pet(
    model_name: str,
    pvps: Sequence[PVP],
    labelled: Sequence[Example],
    unlabelled: Sequence[Example],
    labels: Sequence[str],
    config: Any,
    repetitions: int = 1,
    ipet: bool = False,
    test: Sequence[Example] | None = None,
    score_fn: Callable[[list, list], float] | None = None,
    device: str | None = None,
    *,
    ensemble: str = "weighted",
    generations: int = 2,
    distill: bool = True,
    distill_config: Any = None,
    distill_each_generation: bool = False,
    ipet_fraction: float = 0.25,
    ipet_scale: int = 5,
    ipet_select: str = "sample",
    metric: str = "accuracy",
    method: str | None = None,
    progress: bool = False,
    keep_models: bool = False,
) -> tuple[Any, list[StageResult]]:
    """Train PET (or iPET with ``ipet=True``) and return ``(classifier, rows)``.

    ``classifier`` is the distilled :class:`pet.methods.cls_ft.SequenceClassifier`; with
    ``distill=False`` it is ``None``, or with ``keep_models=True`` the last generation's
    weighted ensemble as a :class:`pet.classifier.PromptEnsemble` (models kept in memory;
    otherwise each model is freed once its outputs are computed). ``rows`` has one
    :class:`StageResult` per stage; their ``score`` is
    ``score_fn(gold, pred)`` on ``test`` (accuracy by default), NaN when ``test`` is None.
    ``config`` is a :class:`pet.training.TrainConfig` (its ``temperature`` is the distillation
    temperature; ``max_length=None`` means 256); ``distill_config`` (default ``config``) trains
    the final classifier.
    """
    from ..training import TrainConfig

    labels = [str(x) for x in labels]
    pvps = list(pvps)
    labelled = list(labelled)
    pool = list(unlabelled)
    test = list(test) if test is not None else None
    method = method or ("ipet" if ipet else "pet")
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    if isinstance(distill_config, dict):
        distill_config = TrainConfig.from_dict({**config.to_dict(), **distill_config})
    distill_config = distill_config or config
    score_fn = score_fn or _accuracy
    generations = int(generations) if ipet else 0

    if not pvps:
        raise ConfigError(f"{method}: no PVPs; fix: pass at least one pattern:verbalizer pair")
    if not labelled:
        raise ConfigError(f"{method}: no labelled examples; fix: pass a non-empty training set")
    if ensemble not in ENSEMBLE_SCHEMES:
        raise ConfigError(f"ensemble='{ensemble}': unknown; fix: use one of {', '.join(ENSEMBLE_SCHEMES)}")
    if int(repetitions) < 1:
        raise ConfigError(f"repetitions={repetitions}: must be at least 1; fix: use repetitions=1 or more")
    needs = [w for w, on in (("distillation", distill), ("iPET", ipet), ("the auxiliary MLM loss (mlm_weight > 0)", getattr(config, "mlm_weight", 0) > 0)) if on]
    if needs and not pool:
        raise ConfigError(
            f"{method}: {' and '.join(needs)} need(s) unlabelled examples but the unlabelled pool is empty; "
            "fix: give unlabelled text (a task with a train-side pool, or --unlabelled FILE), "
            "or pass distill=false (PET ensemble only) and mlm_weight=0"
        )
    if ipet and len({p.id for p in pvps}) < 2:
        raise ConfigError("iPET needs at least two different PVPs (each model learns from the others' labels); fix: pass two or more PVPs")
    if ipet and generations < 1:
        raise ConfigError(f"generations={generations}: iPET needs at least 1; fix: pass generations=1 or more, or use method 'pet'")
    for p in pvps:
        p.check_labels(labels, "the labelled data")

    max_length = config.max_length or 256
    t_start = time.perf_counter()
    rows: list[StageResult] = []
    gold_test = [e.label for e in test] if test is not None else None

    def row(stage, score, pvp=None, **kw) -> StageResult:
        r = StageResult(method, stage, float(score), metric, pvp=pvp, **kw)
        r.extra["elapsed_seconds"] = round(time.perf_counter() - t_start, 3)
        rows.append(r)
        log.info("%s %s%s: %s %.4f (%.0fs elapsed)", method, stage, f" {pvp}" if pvp else "", metric, r.score, r.extra["elapsed_seconds"])
        return r

    def score_of(lp: np.ndarray | None) -> float:
        if lp is None or not test:
            return float("nan")
        return float(score_fn(gold_test, [labels[i] for i in lp.argmax(1)]))

    # ---- pre-training weights: each PVP's accuracy on the labelled set before training, measured
    # (for every scheme, it is cheap) on repetition 0's fresh model just before it is trained.
    pre_acc: dict[str, float] = {}
    gold_l = [e.label for e in labelled]

    def fresh_model(p: PVP):
        from ..model import PromptModel

        m = PromptModel.from_pretrained(model_name, device=device)
        if p.id not in pre_acc:
            lp = m.predict_log_proba(labelled, p, batch_size=config.eval_batch_size, max_length=max_length, labels=labels)
            pre_acc[p.id] = label_accuracy(lp, gold_l, labels)
        return m

    def weights_of(members: list[_Member]) -> np.ndarray | None:
        if ensemble == "mean":
            return None
        w = np.array([pre_acc[m.pvp.id] for m in members])
        return w if w.sum() > 0 else None

    # ---- one generation of models
    def train_generation(g: int, train_sets: list[list[Example]], growth: list[Growth | None]) -> list[_Member]:
        out = []
        i = 0
        for rep in range(int(repetitions)):
            for p in pvps:
                seed = int(config.seed) + rep + 100 * g
                reset_peak_memory(device)
                keep = keep_models and not distill and g == generations
                m = _train_member(fresh_model(p), p, train_sets[i], config, labels, seed, pool, test, max_length, device, progress, keep)
                m.repetition, m.generation = rep, g
                m.score = score_of(m.test_lp)
                extra = {"repetition": rep, "seed": seed, "generation": g, "train_size": len(train_sets[i])}
                if p.id in pre_acc:
                    extra["pre_train_accuracy"] = pre_acc[p.id]
                gr = growth[i]
                if gr is not None:
                    extra.update(
                        added=len(gr.examples), added_target=gr.target, added_per_label=gr.per_label, voters=[members_prev_ids[j] for j in gr.voters]
                    )
                    if gr.forced:
                        extra["added_forced"] = gr.forced
                    if gr.label_accuracy is not None:
                        extra["added_label_accuracy"] = round(gr.label_accuracy, 4)
                m.extra = extra
                row(
                    "pvp" if g == 0 else f"ipet-gen{g}",
                    m.score,
                    pvp=p.id,
                    train_seconds=m.train_seconds,
                    eval_examples_per_second=m.eval_eps,
                    trained_parameters=m.trained_parameters,
                    peak_memory_mb=m.peak_memory_mb,
                    extra=dict(extra),
                )
                out.append(m)
                i += 1
        return out

    def ensemble_row(g: int, members: list[_Member]) -> None:
        w = weights_of(members)
        score = float("nan")
        if test:
            score = score_of(ensemble_log_probs([m.test_lp for m in members], w))
        eval_secs = sum(m.eval_seconds for m in members)
        wn = np.ones(len(members)) / len(members) if w is None else w / w.sum()
        row(
            "ensemble" if g == 0 else f"ipet-gen{g}-ensemble",
            score,
            train_seconds=sum(m.train_seconds for m in members),
            eval_examples_per_second=(len(test) / eval_secs) if test and eval_secs > 0 else 0.0,
            trained_parameters=sum(m.trained_parameters for m in members),
            peak_memory_mb=max(m.peak_memory_mb for m in members),
            extra={
                "generation": g,
                "scheme": ensemble,
                "members": [f"{m.pvp.id}#{m.repetition}" for m in members],
                "weights": [round(float(x), 6) for x in wn],
                "mean_member_score": float(np.mean([m.score for m in members])),
            },
        )

    classifier = None

    def distill_row(stage: str, g: int, members: list[_Member]) -> Any:
        # The ensemble's distribution at T = 1; the distillation loss softens it with
        # distill_config.temperature (q = softmax(log p / T)), so the student's effective target
        # is softmax(z̄ / T) = soft_targets(..., temperature=T): PET's target, tempered once.
        w = weights_of(members)
        targets = soft_targets([m.pool_lp for m in members], w, 1.0)
        T = float(distill_config.temperature)
        reset_peak_memory(device)
        clf = train_sequence_classifier(model_name, pool, labels, distill_config, soft_targets=targets, device=device, progress=progress)
        secs = float(clf.train_log.train_seconds)
        score, eps = float("nan"), 0.0
        if test:
            t1 = time.perf_counter()
            lp = np.asarray(clf.predict_log_proba(test, batch_size=distill_config.eval_batch_size))
            eps = len(test) / max(time.perf_counter() - t1, 1e-9)
            score = score_of(lp)
        gold_pool = [e.meta.get("gold_label") for e in pool]
        extra = {
            "generation": g,
            "pool_size": len(pool),
            "temperature": T,
            "teacher_members": len(members),
            "target_entropy": round(_mean_entropy(soft_targets([m.pool_lp for m in members], w, T)), 4),
            "steps": clf.train_log.steps,
            "final_loss": clf.train_log.final_loss,
        }
        if all(x is not None for x in gold_pool) and gold_pool:
            extra["teacher_pool_accuracy"] = round(_accuracy(gold_pool, [labels[i] for i in targets.argmax(1)]), 4)
        row(
            stage,
            score,
            train_seconds=secs,
            eval_examples_per_second=eps,
            trained_parameters=int(clf.train_log.trained_parameters),
            peak_memory_mb=peak_memory_mb(device),
            extra=extra,
        )
        return clf

    members_prev_ids: list[str] = []
    n_models = len(pvps) * int(repetitions)
    members = train_generation(0, [labelled] * n_models, [None] * n_models)
    ensemble_row(0, members)

    for g in range(1, generations + 1):
        if distill and distill_each_generation:
            distill_row(f"distilled-gen{g - 1}", g - 1, members)
        members_prev_ids = [f"{m.pvp.id}#{m.repetition}" for m in members]
        prev_w = weights_of(members)
        growth = [
            ipet_grow(
                labelled,
                pool,
                [m.pool_lp for m in members],
                [m.pvp.id for m in members],
                i,
                labels,
                g,
                weights=prev_w,
                scale=ipet_scale,
                fraction=ipet_fraction,
                select=ipet_select,
                seed=int(config.seed),
            )
            for i in range(len(members))
        ]
        members = train_generation(g, [labelled + gr.examples for gr in growth], growth)
        ensemble_row(g, members)

    if distill:
        classifier = distill_row("distilled", generations, members)
    elif keep_models:
        from ..classifier import PromptEnsemble

        w = weights_of(members)
        classifier = PromptEnsemble(
            [(m.model, m.pvp) for m in members], labels, max_length, config.eval_batch_size, None if w is None else [float(x) for x in w]
        )
    return classifier, rows


def _train_member(model, pvp, train, config, labels, seed, pool, test, max_length, device, progress, keep=False) -> _Member:
    """Train one fresh prompt model; keep its outputs on test and on the pool, free the model."""
    from ..training import train_prompt_model

    cfg = dataclasses.replace(config, seed=seed)
    aux = pool if cfg.mlm_weight > 0 else ()
    tlog = train_prompt_model(model, pvp, list(train), cfg, list(labels), unlabelled=aux, progress=progress)
    train_secs = float(tlog.train_seconds)
    n_params = int(tlog.trained_parameters)
    kw = dict(batch_size=cfg.eval_batch_size, max_length=max_length, labels=labels, progress=progress)
    test_lp, eval_secs, eps = None, 0.0, 0.0
    if test:
        t1 = time.perf_counter()
        test_lp = model.predict_log_proba(test, pvp, **kw)
        eval_secs = time.perf_counter() - t1
        eps = len(test) / max(eval_secs, 1e-9)
    pool_lp = model.predict_log_proba(pool, pvp, **kw) if pool else None
    peak = peak_memory_mb(device)
    m = _Member(pvp, 0, seed, 0, len(train), test_lp, pool_lp, train_secs, eps, eval_secs, n_params, peak, float("nan"))
    m.model = model if keep else None
    return m


# ============================================================================ methods


def _run(ctx: RunContext, options: dict, ipet: bool) -> list[StageResult]:
    name = "ipet" if ipet else "pet"
    pet_opts, config, distill_config = parse_options(options, where=f"{name} options")
    task_len = int(getattr(ctx.task, "max_length", 256) or 256)
    if "seed" not in (options or {}):
        config = config.replace(seed=int(ctx.seed))
        if "distill_seed" not in (options or {}):
            distill_config = distill_config.replace(seed=int(ctx.seed))
    if config.max_length is None:
        config = config.replace(max_length=task_len)
    if distill_config.max_length is None:
        distill_config = distill_config.replace(max_length=task_len)
    pool = list(ctx.unlabelled)
    if pet_opts["unlabelled_size"] is not None:
        pool = pool[: int(pet_opts["unlabelled_size"])]
    keep = ctx.output_dir is not None
    final, rows = fit_pet(
        ctx.model,
        ctx.pvps,
        ctx.train,
        pool,
        ctx.labels,
        config,
        repetitions=pet_opts["repetitions"],
        ipet=ipet,
        test=ctx.test,
        score_fn=ctx.score,
        device=ctx.device,
        ensemble=pet_opts["ensemble"],
        generations=pet_opts["generations"],
        distill=bool(pet_opts["distill"]),
        distill_config=distill_config,
        distill_each_generation=bool(pet_opts["distill_each_generation"]),
        ipet_fraction=float(pet_opts["ipet_fraction"]),
        ipet_scale=pet_opts["ipet_scale"],
        ipet_select=pet_opts["ipet_select"],
        metric=ctx.task.metric,
        method=name,
        progress=bool(ctx.progress),
        keep_models=keep,
    )
    if keep and final is not None:
        from ..classifier import PetClassifier

        logs = {"distilled": final.train_log} if getattr(final, "train_log", None) is not None else {}
        PetClassifier.from_trained(
            ctx.model, name, ctx.labels, distill_config if pet_opts["distill"] else config, final, pvps=ctx.pvps, logs=logs,
            metrics=[r.to_dict() for r in rows],
        ).save(ctx.output_dir, overwrite=True)
    return rows


@register("pet")
def run_pet(ctx: RunContext, options: dict) -> list[StageResult]:
    """PET: per-PVP prompt models, their weighted ensemble, distillation on unlabelled text."""
    return _run(ctx, options, ipet=False)


@register("ipet")
def run_ipet(ctx: RunContext, options: dict) -> list[StageResult]:
    """iPET: PET whose models are retrained on training sets grown ×``ipet_scale`` per generation."""
    return _run(ctx, options, ipet=True)
