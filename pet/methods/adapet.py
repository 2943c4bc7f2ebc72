"""ADAPET (Tam, Menon, Bansal, Srivastava & Raffel 2021, EMNLP, "Improving and simplifying
pattern exploiting training"; code ``rrmenon10/ADAPET``): prompt fine-tuning whose loss is the
decoupled label objective plus the label-conditioned MLM, with equal weights and no unlabelled
data (:mod:`pet.training.adapet`).

The method is ``prompt-ft`` with those two options on by default, so everything else — PVPs
(one model per PVP and their ensemble; ``pvp: [first]`` trains one), the training budget, tuning
modes, saving — is prompt-ft's. The paper trains ALBERT-xxlarge-v2 for 1,000 batches of 16
(batch 1 × 16 accumulated) at lr 1e-5 with 6% warm-up and weight decay 0.01 (``config/*.json``);
here the training budget defaults are the package's (PET's recipe, docs/training.md), and an
experiment file keeps its own budget, so ADAPET's rows pair with prompt-ft's step for step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..examples import Example
from ..options import same_option
from ..training.adapet import ADAPETOptions
from .base import FitSetup, Fitted, register_method
from .prompt_ft import PromptFTOptions, fit_prompt_ft


@dataclass
class AdapetMethodOptions(PromptFTOptions):
    """prompt-ft's options with ADAPET's objective on: ``label_loss`` decoupled, ``lcm_weight`` 1
    (the paper adds the two losses unweighted), ``lcm_mask_ratio`` 0.105 (the code's
    ``mask_alpha`` in every task config). ADAPET's own budget: ``steps`` 1000, ``batch_size``
    16, ``lr`` 1e-5, ``warmup_ratio`` 0.06 — pass them to reproduce it."""

    where: ClassVar[str] = "adapet options"

    label_loss: str = same_option(ADAPETOptions, "label_loss", default="decoupled", help=(
        "loss on the label words: decoupled (ADAPET's decoupled label objective, the default: one binary cross-entropy per label "
        "on its word's full-vocabulary probability) or ce (cross-entropy over the labels)"))
    lcm_weight: float = same_option(ADAPETOptions, "lcm_weight", default=1.0, help=(
        "weight of the label-conditioned MLM loss (ADAPET: 1, the paper sums the two losses; 0: off)"))


def fit_adapet(train: list[Example], unlabelled: list[Example], options: AdapetMethodOptions, setup: FitSetup) -> Fitted:
    """ADAPET: prompt fine-tuning with the decoupled label objective and the label-conditioned MLM"""
    fitted = fit_prompt_ft(train, unlabelled, options, setup)
    fitted.method = "adapet"  # saved folders load back through this method and its options
    return fitted


register_method(
    "adapet", "hard", AdapetMethodOptions, fit_adapet,
    description="ADAPET (Tam et al. 2021): prompt fine-tuning with the decoupled label objective and the label-conditioned MLM",
)
