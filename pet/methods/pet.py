"""PET and iPET (Schick & Schütze 2021): an ensemble of prompt models, distilled into one
classifier over unlabelled text; iPET grows each model's training set generation by generation.

PET
  1. For every PVP (× ``repetitions``, a distinct seed per repetition) a fresh
     ``PromptModel.from_pretrained`` is trained with :func:`pet.training.prompt.train_prompt_model`
     on the labelled set (plus the auxiliary MLM loss on the unlabelled pool when
     ``mlm_weight > 0``): stage ``"pvp"``, one per model.
  2. Ensemble (stage ``"ensemble"``): the weighted mean of the models' label log-probs
     (:func:`pet.models.scoring.ensemble`). ``"weighted"`` (PET's default): each model's weight is its
     PVP's accuracy on the labelled training set *before* training (zero-shot);
     ``"mean"``: equal weights.
  3. Soft labels on the unlabelled pool (:func:`soft_targets`): ``softmax(z̄ / T)`` where
     ``z̄`` is the same weighted mean of the models' label log-probs (equivalently of their
     label logits: the two differ by a per-row constant, which the softmax removes), ``T`` =
     ``temperature`` (2 as in PET). This is exactly PET's ``merge_logits`` + distillation
     target.
  4. Distillation (stage ``"distilled"``): :func:`pet.training.sequence.train_sequence_classifier`
     on the unlabelled pool only (as in the paper). Its loss
     (:func:`pet.training.losses.distillation_loss`) softens the targets it is given with T itself
     (``q = softmax(log p / T)``), so it is handed the ensemble distribution at T = 1,
     ``p = softmax(z̄)``: the student's effective target is ``softmax(z̄ / T)``, T applied once.

iPET
  Generation 0 is PET's step 1 (rows ``"pvp"`` / ``"ensemble"``). For generation
  ``g = 1 … generations`` every model ``i`` (one per PVP × repetition) gets a fresh model trained
  on ``T ∪ A_i^g``, where ``A_i^g`` (:func:`ipet_grow`) is:

  * voters: a random ``fraction`` (PET's λ = 0.25; ``max(1, round(λ·(n − 1)))``) of the previous
    generation's models other than model ``i`` itself — models of the same PVP (other
    repetitions) may vote, as in PET: the paper's ``N ⊂ M^{j−1}`` minus ``M_i^{j−1}`` (§3.3) and
    ``generate_ipet_train_sets`` in timoschick/pet ``pet/modeling.py`` l.677-678, which drops only
    the model's own output directory;
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
    that label (highest probability first), recorded as ``added_forced`` in the stages' ``extra``.

  Generations: ``generations`` (k) grown generations after generation 0; null (the default)
  is PET's rule, the fewest that train every model on at least ``ipet_target`` (1000) examples,
  ``k = ⌈log_d(1000 / |T|)⌉`` (paper §4: 3, 2, 2, 0 for |T| = 10, 50, 100, 1000;
  :func:`ipet_generations`). PET's code counts generation 0 too: its ``--ipet_generations`` is
  k + 1 (``train_ipet`` in ``pet/modeling.py`` l.178 loops over ``range(generations)`` from g0).

  Zero-shot iPET (no labelled examples; PET §3.4, last paragraph; timoschick/pet
  ``pet/modeling.py`` ``train_ipet`` l.189-195 and ``generate_ipet_train_set``'s
  ``n_most_likely``): generation 0 is the untrained PVPs (nothing is trained, not even the MLM
  loss, as in PET's code; the repetitions of a PVP share its one untrained model). Generation
  ``g`` then trains on ``ipet_zero_shot_size · d^(g−1)`` examples (10, 50, 250, 1250), split
  evenly over the labels (remainder to the first labels, PET's ``eq_div``). In generation 1 each
  label's examples are drawn (as above, by the voters' probability of that label) from the
  ``ipet_most_likely`` (100) pool examples the voters find most likely to be that label, even
  where another label wins; later generations follow the rule above. With no labelled set to
  weigh the PVPs by, the ensemble weights are equal (PET's README: ``--reduction mean``). The
  default number of generations is the fewest that reach ``ipet_target``: 4 for PET's values.

  Stages: ``"ipet-gen{g}"`` per model (``pvp`` set) and ``"ipet-gen{g}-ensemble"``. The last
  generation's ensemble gives the soft targets for the final ``"distilled"`` stage
  (``distill_each_generation`` also distils every earlier generation: ``"distilled-gen{g}"``;
  ``distilled-gen0`` is exactly PET's distilled model).

The models' weights in every generation are the generation-0 (pre-training) accuracies: a
fresh model is the same pretrained model whatever its generation, so PET's "accuracy on the
training set before training" does not change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..prompts.spec import PVP

import numpy as np

from ..errors import ConfigError
from ..examples import Example
from ..metrics import compute_metric
from ..models.prompt_model import PromptModel
from ..models.tuning import apply_tuning
from ..options import option
from .predictors import PromptEnsemble, SequencePredictor
from ..training.checkpoint import LoopCheckpoint
from ..training.sequence import train_sequence_classifier
from ..training.loop import TrainConfig, TrainLog, train_config
from ..training.prompt import train_prompt_model
from .base import Fitted, FitSetup, Stage, checkpoint_info, register_method, resolve_max_length
from .pet_growth import (
    ENSEMBLE_SCHEMES,
    SELECT_MODES,
    Growth,
    _mean_entropy,
    ipet_generations,
    ipet_grow,
    label_accuracy,
    pre_training_weights,
    soft_targets,
)
from .resume import MemberStore, examples_fingerprint, fingerprint, member_name, model_fingerprint

log = logging.getLogger(__name__)


# ============================================================================ options


@dataclass
class PetOptions(TrainConfig):
    """PET: the PVP models' training options (every ``TrainConfig`` key), the ensemble and the
    distillation. ``distill_*`` override a training option for the distilled classifier only."""

    where: ClassVar[str] = "pet options"

    ensemble: str = option("weighted", "how the PVP models are combined: weighted (by pre-training accuracy on the labelled set, PET) or mean", choices=ENSEMBLE_SCHEMES)
    repetitions: int = option(1, "models per PVP, each with its own seed (PET: 3)", min=1)
    distill: bool = option(True, "distil the ensemble into a [CLS] classifier over the unlabelled pool (false: the ensemble is final)")
    distill_steps: int | None = option(None, "optimizer steps of the distilled classifier (null: steps; PET: 5000)", min=0)
    distill_lr: float | None = option(None, "learning rate of the distilled classifier (null: lr)", min=0, min_exclusive=True)
    distill_batch_size: int | None = option(None, "unlabelled examples per micro-batch when distilling (null: batch_size)", min=1)

    def distill_config(self) -> TrainConfig:
        base = train_config(self)
        over = {"steps": self.distill_steps, "lr": self.distill_lr, "batch_size": self.distill_batch_size}
        # the student learns from the ensemble on unlabelled text: no dev checkpointing for it, no
        # auxiliary MLM loss (a [CLS] classifier has no LM head; PET's --lm_training is for the
        # pattern models only), and all its weights trained (PET's student; `tune` — LoRA, BitFit…
        # — chooses how the pattern models train)
        return base.replace(eval_every=None, mlm_weight=0.0, tune="full", **{k: v for k, v in over.items() if v is not None})


@dataclass
class IpetOptions(PetOptions):
    """iPET: PET's options plus the generations."""

    where: ClassVar[str] = "ipet options"

    generations: int | None = option(None, "iPET generations after the first (null: PET's rule, the fewest that reach ipet_target examples: 3, 2, 2, 0 for |T| = 10, 50, 100, 1000; 4 for |T| = 0)", min=0)
    ipet_target: int = option(1000, "with generations null: grow until every model trains on at least this many examples (PET: 1000)", min=1)
    distill_each_generation: bool = option(False, "also distil every earlier generation (stages distilled-gen<g>)")
    ipet_fraction: float = option(0.25, "share of the other PVPs' models that label each model's new examples (PET's lambda)", min=0, max=1, min_exclusive=True)
    ipet_scale: int = option(5, "each generation multiplies the training set size by this (PET's d)", min=1)
    ipet_select: str = option("sample", "how new examples are picked per label: sample (by confidence, PET) or top", choices=SELECT_MODES)
    ipet_zero_shot_size: int = option(10, "with no labelled examples (zero-shot iPET): the first grown generation's training set size, split evenly over the labels (PET: 10)", min=1)
    ipet_most_likely: int = option(100, "with no labelled examples: the first grown generation draws each label's examples from this many pool examples most likely to be it, even where another label wins (PET: 100)", min=1)


# ============================================================================ the trainer


@dataclass
class _Member:
    """One trained prompt model of a generation and its outputs on the unlabelled pool."""

    model: PromptModel
    pvp: PVP
    repetition: int
    seed: int
    pool_lp: np.ndarray | None
    log: object
    resumed: bool = False  # loaded from FitSetup.members_dir / resume_dir instead of trained
    fingerprint: str | None = None  # of what it was trained from (None: untrained)

    @property
    def tag(self) -> str:
        return f"{self.pvp.id}#{self.repetition}"


class PetTrainer:
    """Fits PET (``ipet=False``) or iPET: the stages described in the module docstring.

    ``fit`` returns a :class:`Fitted` whose stages are every PVP model (``pvp``, and
    ``ipet-gen<g>`` per generation), every ensemble (``ensemble``, ``ipet-gen<g>-ensemble``) and
    the distilled classifier(s); the final stage is ``distilled`` (or the last ensemble with
    ``distill=false``). Models stay in memory as the stages' predictors.
    """

    def __init__(self, options: PetOptions, setup: FitSetup, ipet: bool = False):
        self.method = "ipet" if ipet else "pet"
        self.ipet = ipet
        self.options = options
        self.setup = setup
        self.labels = list(setup.labels)
        self.config = options.resolved(resolve_max_length(options, setup), setup.seed)
        self.distill_config = options.distill_config().resolved(self.config.max_length, self.config.seed)
        self.stages: list[Stage] = []
        self.logs: dict = {}
        self.t0 = time.perf_counter()
        self.pre_lp: dict[str, np.ndarray] = {}  # PVP id -> its untrained model's log-probs on the labelled set
        self.gold: list[str | None] = []
        self.saved = MemberStore(setup.resume_dir) if setup.resume_dir is not None else None
        self.shared = MemberStore(setup.members_dir) if setup.members_dir is not None else None

    # ---------------------------------------------------------------- pieces

    def _fresh_model(self, pvp: PVP, labelled: list[Example]) -> PromptModel:
        m = PromptModel.from_pretrained(self.setup.model, device=self.setup.device)
        if pvp.id not in self.pre_lp:  # PET weights by accuracy on the labelled set before training
            self.pre_lp[pvp.id] = (m.predict_log_proba(labelled, pvp, batch_size=self.config.eval_batch_size, max_length=self.config.max_length,
                                                       labels=self.labels) if labelled else np.zeros((0, len(self.labels))))
            self.gold = [e.label for e in labelled]
        return m

    def _member_weights(self, members: list[_Member]) -> list[float] | None:
        if self.options.ensemble == "mean":
            return None
        w = pre_training_weights([self.pre_lp[m.pvp.id] for m in members], self.gold, self.labels, self.options.ensemble)
        return [float(x) for x in w]

    def _predictor(self, members: list[_Member], weighted: bool = True) -> PromptEnsemble:
        return PromptEnsemble([(m.model, m.pvp) for m in members], self.labels, self.config.max_length, self.config.eval_batch_size,
                              self._member_weights(members) if weighted else None)

    def _train_member(self, g: int, rep: int, pvp: PVP, train: list[Example], labelled: list[Example], pool: list[Example],
                      untrained: dict[str, _Member]) -> _Member:
        """One model of generation ``g``: a fresh model trained on ``train``; with ``train`` empty
        (zero-shot iPET's generation 0) the untrained model, shared by the PVP's repetitions."""
        seed = int(self.config.seed) + rep + 100 * g
        # the member's training options alone (not the ensemble's or the student's): what it is
        # trained with is exactly what its fingerprint hashes, so fits that differ only after the
        # ensemble (another student, pet-setfit) train, and share, the same member
        cfg = train_config(dataclasses.replace(self.config, seed=seed))
        if not train and pvp.id in untrained:
            u = untrained[pvp.id]
            return _Member(u.model, pvp, rep, seed, u.pool_lp, TrainLog(examples=0, config=cfg.to_dict()))
        model = self._fresh_model(pvp, labelled)
        if not train:  # PET trains nothing without training examples (not even the MLM loss)
            log_ = TrainLog(examples=0, config=cfg.to_dict())
            m = _Member(model, pvp, rep, seed, self._pool_log_proba(model, pvp, pool, cfg), log_)
            untrained[pvp.id] = m
            return m
        inputs = self._inputs(pvp, cfg, train, pool)
        fp = fingerprint(inputs)
        store, key = self._member_home(f"gen{g}-{self.setup.pvps.index(pvp)}-{rep}", fp)
        if store is not None and store.has(key, fp, inputs):
            apply_tuning(model, cfg.tune, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)  # the trained layout (LoRA)
            back = store.load(key, fp, model.mlm, inputs)
            if back is not None:
                model.precision = cfg.precision  # as train_prompt_model leaves a trained model
                model.eval()
                return _Member(model, pvp, rep, seed, back.pool_lp, TrainLog(**back.log), resumed=True, fingerprint=fp)
            model = PromptModel.from_pretrained(self.setup.model, device=self.setup.device)  # a half-loaded model is not reused
        log_ = train_prompt_model(model, pvp, train, cfg, self.labels, unlabelled=pool if cfg.mlm_weight > 0 else (),
                                  progress=self.setup.progress, dev=self.setup.dev, dev_metric=self.setup.metric)
        m = _Member(model, pvp, rep, seed, self._pool_log_proba(model, pvp, pool, cfg), log_, fingerprint=fp)
        if store is not None:
            store.save(key, fp, model.mlm, log_.to_dict(), m.pool_lp, inputs)
        return m

    def _member_home(self, slot: str, fp: str) -> tuple[MemberStore | None, str]:
        """Where a member is saved: in the shared ``members_dir`` under its fingerprint (any fit
        that trains the same member finds it), else in this fit's ``resume_dir`` under its slot
        ``gen<g>-<PVP index>-<repetition>`` (where a member saved from other inputs is explained)."""
        if self.shared is not None:
            return self.shared, member_name(fp)
        return self.saved, slot

    def _pool_log_proba(self, model: PromptModel, pvp: PVP, pool: list[Example], cfg: TrainConfig) -> np.ndarray | None:
        if not pool:
            return None
        return model.predict_log_proba(pool, pvp, batch_size=cfg.eval_batch_size, max_length=cfg.max_length, labels=self.labels,
                                       progress=self.setup.progress)

    def _inputs(self, pvp: PVP, cfg: TrainConfig, train: list[Example], pool: list[Example]) -> dict:
        """What a saved member must have been trained from to be reused (its fingerprint hashes
        this): base model, PVP, training options (with the member's seed), training set and pool."""
        return {"model": model_fingerprint(self.setup.model), "pvp": pvp.to_dict(), "config": cfg.to_dict(), "labels": self.labels,
                "train": examples_fingerprint(train), "pool": examples_fingerprint(pool), "dev": examples_fingerprint(self.setup.dev)}

    def _student_checkpoint(self, name: str, pool: list[Example], targets: np.ndarray) -> LoopCheckpoint | None:
        """Where the distilled student's run keeps its state (resumable like the members), keyed
        by base model, distillation options, labels, pool and the ensemble's soft targets."""
        if self.setup.resume_dir is None:
            return None
        what = {"model": model_fingerprint(self.setup.model), "config": self.distill_config.to_dict(), "labels": self.labels, "pool": examples_fingerprint(pool),
                "targets": hashlib.sha256(np.ascontiguousarray(targets, dtype=np.float64).tobytes()).hexdigest()}
        return LoopCheckpoint(Path(self.setup.resume_dir) / f"{name}.student.pt", fingerprint(what), inputs=what)

    def _member_extra(self, g: int, m: _Member, train_size: int, gr: Growth | None) -> dict:
        """A member stage's ``extra``: its seed, training set and, from generation 1, what iPET added."""
        acc = label_accuracy(self.pre_lp[m.pvp.id], self.gold, self.labels)
        extra = {"repetition": m.repetition, "seed": m.seed, "generation": g, "train_size": train_size,
                 "pre_train_accuracy": None if math.isnan(acc) else acc, "final_loss": m.log.final_loss, **checkpoint_info(m.log)}
        if m.fingerprint is not None:
            extra["member"] = member_name(m.fingerprint)
        if m.resumed:
            extra["resumed"] = True
        if gr is not None:
            prev = [p.tag for p in getattr(self, "_prev", [])]
            extra.update(added=len(gr.examples), added_target=gr.target, added_per_label=gr.per_label, voters=[prev[j] for j in gr.voters])
            if gr.forced:
                extra["added_forced"] = gr.forced
            if gr.most_likely is not None:
                extra["added_from_most_likely"] = gr.most_likely
            if gr.label_accuracy is not None:
                extra["added_label_accuracy"] = round(gr.label_accuracy, 4)
        extra["elapsed_seconds"] = round(time.perf_counter() - self.t0, 3)
        return extra

    def _train_generation(self, g: int, train_sets: list[list[Example]], labelled: list[Example], pool: list[Example], growth: list) -> list[_Member]:
        out: list[_Member] = []
        untrained: dict[str, _Member] = {}
        for rep in range(self.options.repetitions):
            for pvp in self.setup.pvps:
                i = len(out)
                m = self._train_member(g, rep, pvp, train_sets[i], labelled, pool, untrained)
                self.logs[f"gen{g}:{m.tag}"] = m.log
                self.stages.append(Stage("pvp" if g == 0 else f"ipet-gen{g}", self._predictor([m]), pvp=pvp.id,
                                         train_seconds=m.log.train_seconds, trained_parameters=m.log.trained_parameters,
                                         extra=self._member_extra(g, m, len(train_sets[i]), growth[i])))
                out.append(m)
        return out

    def _ensemble_stage(self, g: int, members: list[_Member]) -> str:
        pred = self._predictor(members)
        w = np.asarray(pred.weights if pred.weights is not None else np.ones(len(members)))
        gen = [s for s in self.stages if s.extra.get("generation") == g and s.pvp]
        name = "ensemble" if g == 0 else f"ipet-gen{g}-ensemble"
        self.stages.append(Stage(name, pred, train_seconds=sum(s.train_seconds for s in gen), trained_parameters=sum(s.trained_parameters for s in gen),
                                 extra={"generation": g, "scheme": self.options.ensemble, "members": [m.tag for m in members],
                                        "weights": [round(float(x), 6) for x in w / w.sum()],
                                        "elapsed_seconds": round(time.perf_counter() - self.t0, 3)}))
        return name

    def _distill(self, name: str, g: int, members: list[_Member], pool: list[Example]) -> str:
        # The ensemble's distribution at T = 1; the distillation loss softens it with T
        # (q = softmax(log p / T)), so the student's effective target is softmax(z̄ / T): PET's.
        w = self._member_weights(members)
        targets = soft_targets([m.pool_lp for m in members], w, 1.0)
        T = float(self.distill_config.temperature)
        resume = self._student_checkpoint(name, pool, targets)
        clf = train_sequence_classifier(self.setup.model, pool, self.labels, self.distill_config, soft_targets=targets,
                                        device=self.setup.device, progress=self.setup.progress, resume=resume)
        self.logs[name] = clf.train_log
        extra = {"generation": g, "pool_size": len(pool), "temperature": T, "teacher_members": len(members),
                 "target_entropy": round(_mean_entropy(soft_targets([m.pool_lp for m in members], w, T)), 4),
                 "steps": clf.train_log.steps, "final_loss": clf.train_log.final_loss,
                 "elapsed_seconds": round(time.perf_counter() - self.t0, 3)}
        if resume is not None and resume.resumed_from:
            extra["resumed_from_step"] = resume.resumed_from
        gold_pool = [e.meta.get("gold_label") for e in pool]
        if gold_pool and all(x is not None for x in gold_pool):
            extra["teacher_pool_accuracy"] = round(compute_metric("accuracy", gold_pool, [self.labels[i] for i in targets.argmax(1)]), 4)
        self.stages.append(Stage(name, SequencePredictor(clf, self.distill_config.eval_batch_size), train_seconds=clf.train_log.train_seconds,
                                 trained_parameters=clf.train_log.trained_parameters, extra=extra))
        return name

    # ---------------------------------------------------------------- the recipe

    def fit(self, labelled: list[Example], unlabelled: list[Example]) -> Fitted:
        self.t0 = time.perf_counter()
        o = self.options
        pool = list(unlabelled)
        n = len(self.setup.pvps) * o.repetitions
        if self.ipet and n < 2:
            raise ConfigError("iPET needs at least two models (each model learns from the others' labels); fix: pass two or more PVPs, or repetitions ≥ 2")
        generations = 0
        if self.ipet:
            generations = o.generations if o.generations is not None else ipet_generations(len(labelled), o.ipet_scale, o.ipet_target,
                                                                                           o.ipet_zero_shot_size)
            if not labelled and generations < 1:
                raise ConfigError("zero-shot iPET (no labelled examples) needs at least one grown generation; fix: set generations ≥ 1 (or null)")
        members = self._train_generation(0, [labelled] * n, labelled, pool, [None] * n)
        final = self._ensemble_stage(0, members)
        for g in range(1, generations + 1):
            if o.distill and o.distill_each_generation:
                self._distill(f"distilled-gen{g - 1}", g - 1, members, pool)
            self._prev = members
            w = self._member_weights(members)
            growth = [ipet_grow(labelled, pool, [m.pool_lp for m in members], i, self.labels, g, weights=w, scale=o.ipet_scale,
                                fraction=o.ipet_fraction, select=o.ipet_select, seed=int(self.config.seed),
                                zero_shot_size=o.ipet_zero_shot_size, most_likely=o.ipet_most_likely)
                      for i in range(len(members))]
            members = self._train_generation(g, [labelled + gr.examples for gr in growth], labelled, pool, growth)
            final = self._ensemble_stage(g, members)
        if o.distill:
            final = self._distill("distilled", generations, members, pool)
        return Fitted(self.method, self.labels, o, self.stages, final, pvps=list(self.setup.pvps), model=self.setup.model, logs=self.logs)


def fit_pet(train: list[Example], unlabelled: list[Example], options: PetOptions, setup: FitSetup) -> Fitted:
    """PET: per-PVP prompt models, their weighted ensemble, distillation on unlabelled text."""
    return PetTrainer(options, setup).fit(train, unlabelled)


def fit_ipet(train: list[Example], unlabelled: list[Example], options: IpetOptions, setup: FitSetup) -> Fitted:
    """iPET: PET whose models are retrained on training sets grown ×ipet_scale per generation."""
    return PetTrainer(options, setup, ipet=True).fit(train, unlabelled)


def member_options(o: PetOptions) -> dict:
    """What PET's members depend on among its options: the training options alone (the ensemble
    scheme, repetitions and the student's options change which members are used, not them)."""
    return train_config(o).to_dict()


def _needs_pool(o: PetOptions) -> bool:
    return bool(o.distill) or o.mlm_weight > 0 or isinstance(o, IpetOptions)


register_method("pet", "hard", PetOptions, fit_pet, needs_unlabelled=_needs_pool, uses_unlabelled=True, distils=True, member_options=member_options)
register_method("ipet", "hard", IpetOptions, fit_ipet, needs_unlabelled=_needs_pool, uses_unlabelled=True, distils=True,
                needs_labelled=False, member_options=member_options)
