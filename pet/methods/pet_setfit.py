"""PET distilled into a SetFit student (``pet-setfit``): PET's prompt models and their ensemble,
then a sentence-transformers classifier trained with the ``setfit`` library on the labelled set
plus the unlabelled pool labelled by the ensemble.

Stages
  1. ``pvp`` / ``ensemble``: exactly PET's (:class:`pet.methods.pet.PetTrainer`: every PVP ×
     ``repetitions`` trained on the labelled set, their mean weighted by pre-training accuracy).
  2. ``distilled`` (final): :func:`pet.methods.setfit.fit_setfit` on ``student_model`` with the
     ``student_*`` options (SetFit's own, :class:`pet.methods.setfit.SetFitOptions`), trained on
     the labelled examples (gold labels) and every pool text (:func:`ensemble_labelled`) whose
     label is the ensemble's argmax, ``softmax(z̄)`` with ``z̄`` the same weighted mean of the
     members' label log-probs as PET's distillation target at T = 1.

Hard labels, why: PET distils with soft targets (``softmax(z̄ / T)``, T = 2, KL loss; Schick &
Schütze 2021, §3.2), but SetFit has no soft-label path. Its contrastive phase needs a class per
text (a pair is positive when the labels agree) and its head is a classifier fitted on class
labels. SetFit's own distillation (``setfit.DistillationTrainer``, setfit 1.2) does not fit
either: its teacher must be a ``SetFitModel``. The student learns the teacher's embedding
cosine similarities (``teacher_model.model_body.encode``) in the body phase, and its head is
fitted on ``teacher_model.predict`` hard labels. A PET ensemble of masked LMs has no sentence
embedding to copy. What carries over is the head phase's rule: the student learns the
teacher's hard labels on every unlabelled text. PET also labels every pool text, so by default
nothing is filtered. ``student_min_confidence`` optionally keeps only the pool texts whose
ensemble probability for the chosen label is at least that value. That trades pool size for
label accuracy. It is off by default because neither PET nor SetFit's distillation filters.

Pool texts equal to a labelled text are left out (their gold label is already in the set), as
iPET does when it labels the pool. ``temperature`` and PET's ``distill_*`` options configure
PET's ``[CLS]`` student, which this method replaces: the hard labels do not depend on T, and
``distill_*`` are refused.

Cost: setfit's default pair sampling (``oversampling``, no ``num_iterations``) draws every pair
of the training texts at least once. Steps grow with the square of the labelled set plus the
pool. ``student_num_iterations`` or ``student_max_steps`` cap them (docs/setfit.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from ..examples import Example
from ..metrics import compute_metric
from ..options import option, same_option
from .base import FitSetup, Fitted, Stage, register_method
from .pet import PetOptions, PetTrainer, member_options
from .pet_growth import example_key, soft_targets
from .setfit import SetFitOptions, _require_setfit, fit_setfit

#: PET's options for its ``[CLS]`` student, which pet-setfit replaces with the SetFit student
_CLS_STUDENT_OPTIONS = ("distill_steps", "distill_lr", "distill_batch_size")
STUDENT_PREFIX = "student_"


def _student(name: str):
    """The SetFit option ``name`` as the student's ``student_<name>`` (same default, constraints)."""
    f = next(f for f in dataclasses.fields(SetFitOptions) if f.name == name)
    return same_option(SetFitOptions, name, help=f"SetFit student: {f.metadata['help']}")


@dataclass
class PetSetFitOptions(PetOptions):
    """PET's options (the PVP models and the ensemble) plus the SetFit student's: ``student_model``
    and every :class:`SetFitOptions` key prefixed ``student_`` (same defaults: setfit's)."""

    where: ClassVar[str] = "pet-setfit options"

    student_model: str | None = option(None, "the SetFit student: a sentence-transformers folder or hub id (required), e.g. sentence-transformers/all-MiniLM-L6-v2")
    student_min_confidence: float = option(0.0, "train the student only on pool texts whose ensemble probability for their label is at least this (0: every pool text, as PET and setfit's DistillationTrainer)",
                                           min=0, max=1)
    student_batch_size: int = _student("batch_size")
    student_epochs: int = _student("epochs")
    student_sampling_strategy: str = _student("sampling_strategy")
    student_num_iterations: int | None = _student("num_iterations")
    student_max_steps: int | None = _student("max_steps")
    student_body_learning_rate: float = _student("body_learning_rate")
    student_warmup_proportion: float = _student("warmup_proportion")
    student_head: str = _student("head")
    student_head_learning_rate: float = _student("head_learning_rate")
    student_head_batch_size: int = _student("head_batch_size")
    student_head_epochs: int = _student("head_epochs")
    student_end_to_end: bool = _student("end_to_end")
    student_end_to_end_learning_rate: float = _student("end_to_end_learning_rate")
    student_l2_weight: float = _student("l2_weight")
    student_max_length: int | None = _student("max_length")
    student_normalize_embeddings: bool = _student("normalize_embeddings")
    student_seed: int | None = _student("seed")
    student_eval_batch_size: int = _student("eval_batch_size")

    def validate(self) -> None:
        super().validate()
        if not self.student_model:
            raise ConfigError(f"{self.where}: student_model is missing; fix: set student_model (--student-model) to a sentence-transformers "
                              "folder or hub id, e.g. sentence-transformers/all-MiniLM-L6-v2")
        given = [k for k in _CLS_STUDENT_OPTIONS if getattr(self, k) is not None]
        if given:
            raise ConfigError(f"{self.where}: {given[0]} configures PET's [CLS] student, which pet-setfit replaces with the SetFit student; "
                              "fix: drop it and set the student_* options instead")
        if not self.distill:
            raise ConfigError(f"{self.where}: distill=false leaves PET's ensemble final, without the SetFit student; "
                              "fix: keep distill true, or use method pet with distill=false")

    def student_options(self) -> SetFitOptions:
        """The SetFit student's options: every ``student_<key>`` as SetFit's ``<key>``."""
        return SetFitOptions.from_dict({f.name: getattr(self, STUDENT_PREFIX + f.name) for f in SetFitOptions.fields()}, where=self.where)


def ensemble_labelled(labelled: Sequence[Example], pool: Sequence[Example], proba: np.ndarray, labels: Sequence[str],
                      min_confidence: float = 0.0) -> tuple[list[Example], dict]:
    """The student's training set: ``labelled`` as given, then every pool example labelled with
    its argmax under ``proba`` (``[len(pool), L]``, the ensemble's distribution), except pool
    texts equal to a labelled one and those whose probability of that label is below
    ``min_confidence``. Returns the examples and a summary for the stage's ``extra``."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (len(pool), len(labels)):
        raise ConfigError(f"ensemble_labelled: proba has shape {proba.shape}, expected {(len(pool), len(labels))}; fix: pass one row per pool example")
    taken = {example_key(e) for e in labelled}
    pred, conf = proba.argmax(1), proba.max(1)
    keep = [i for i, e in enumerate(pool) if example_key(e) not in taken and conf[i] >= min_confidence]
    added = [Example(dict(pool[i].fields), labels[int(pred[i])], pool[i].guid, {**pool[i].meta, "ensemble_confidence": float(conf[i])})
             for i in keep]
    counts = Counter(e.label for e in added)
    info = {"pool_size": len(pool), "pool_used": len(added), "pool_duplicates": sum(example_key(e) in taken for e in pool),
            "min_confidence": float(min_confidence), "pool_labels": {lab: counts.get(lab, 0) for lab in labels}}
    gold = [e.meta.get("gold_label") for e in added]
    if gold and all(g is not None for g in gold):
        info["pool_label_accuracy"] = round(compute_metric("accuracy", gold, [e.label for e in added]), 4)
    return list(labelled) + added, info


class PetSetFitTrainer(PetTrainer):
    """:class:`PetTrainer` whose distillation trains a SetFit student instead of PET's ``[CLS]``
    classifier; everything before it (the PVP models, the ensemble) is PET's own code."""

    def __init__(self, options: PetSetFitOptions, setup: FitSetup):
        super().__init__(options, setup)
        self.method = "pet-setfit"
        self.labelled: list[Example] = []

    def fit(self, labelled: list[Example], unlabelled: list[Example]) -> Fitted:
        if self.setup.regression:  # before any prompt model is trained
            raise ConfigError("pet-setfit: regression tasks are not supported (the SetFit student classifies); fix: pick a classification task or method pet")
        _require_setfit()
        self.labelled = list(labelled)
        return super().fit(labelled, unlabelled)

    def _distill(self, name: str, g: int, members: list, pool: list[Example]) -> str:
        proba = soft_targets([m.pool_lp for m in members], self._member_weights(members), 1.0)
        o = self.options
        train, info = ensemble_labelled(self.labelled, pool, proba, self.labels, o.student_min_confidence)
        student_setup = dataclasses.replace(self.setup, model=o.student_model, pvps=[])
        t0 = time.perf_counter()
        student = fit_setfit(train, [], o.student_options(), student_setup).stage()
        extra = {"generation": g, "teacher_members": len(members), "student_model": o.student_model, "train_size": len(train),
                 **info, **student.extra, "elapsed_seconds": round(time.perf_counter() - self.t0, 3)}
        self.stages.append(Stage(name, student.predictor, train_seconds=student.train_seconds or time.perf_counter() - t0,
                                 trained_parameters=student.trained_parameters, extra=extra))
        return name


def fit_pet_setfit(train: list[Example], unlabelled: list[Example], options: PetSetFitOptions, setup: FitSetup) -> Fitted:
    """PET distilled into a SetFit student: PVP models, their ensemble, SetFit on ensemble-labelled text."""
    return PetSetFitTrainer(options, setup).fit(train, unlabelled)


register_method("pet-setfit", "hard", PetSetFitOptions, fit_pet_setfit, needs_unlabelled=lambda o: True, uses_unlabelled=True, distils=True,
                member_options=member_options)
