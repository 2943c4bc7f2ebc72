"""ADAPET's objectives (Tam, Menon, Bansal, Srivastava & Raffel 2021, EMNLP, "Improving and
simplifying pattern exploiting training"; code: ``rrmenon10/ADAPET``, ``src/adapet.py`` and
``src/data/tokenize.py``), for :func:`pet.training.prompt.train_prompt_model`.

* **Decoupled label objective** (``label_loss: decoupled``, log key ``dlo``): with ``p_y`` the
  probability of label y's word at the mask under the softmax over the *whole vocabulary*
  (``exp`` of :meth:`pet.models.prompt_model.PromptModel.label_scores`), each label is its own
  binary decision: ``-log p_{y*} - Σ_{y≠y*} log(1 - p_y)``. As in the code (``nn.BCELoss`` on
  ``[batch × labels]``, mean reduction) the sum is averaged over the batch *and* the labels, and
  each log is clamped at -100 (what ``BCELoss`` does). Replaces the cross-entropy over labels.
* **Label-conditioned MLM** (``lcm_weight > 0``, log key ``lcm``): for each training example a
  label y' is drawn uniformly (the code: ``np.random.randint(num_lbl)``), one of its words is put
  where the mask tokens were, and ``n = max(⌊u · lcm_mask_ratio · T⌋, 2) - 1`` of the example's
  ``T`` text tokens (``u ~ U(0, 1)`` per example; the code's ``mask_alpha`` 0.105) are replaced
  by the mask token (plain ``[MASK]``, no 80/10/10). The loss is the binary cross-entropy of the
  probability of each original token (full-vocabulary softmax at its position) with target
  ``1[y' = y*]``, averaged over all masked tokens of the batch (the code: ``sum / max(count, 1)``).
  Added as ``lcm_weight · lcm`` (ADAPET: weight 1, equal to the label objective).

Where this departs from the code (docs/training.md, "ADAPET"): the code draws the masked
positions over the whole input ([CLS], template words and the label word included) and sizes
``n`` by that length; here only the example's text tokens are masked (the paper's figure masks
the context only: template and label word are never prediction targets) and ``T`` counts them.
Multi-token label words score the mean sub-token log-prob (this package's scoring rule) instead
of the code's per-token BCE; with several words per label, ``p_y`` is their mean probability and
the LCM draws one of them uniformly. The code backpropagates the decoupled loss inside
``forward``, outside its gradient-accumulation scaling; here both terms share one scaled backward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..options import Options, option
from ..prompts.encoding import Encoded, VerbalizerTokens, collate

#: the choices of ``label_loss``
LABEL_LOSSES = ("ce", "decoupled")
#: ``nn.BCELoss`` clamps each log at -100 so a probability of exactly 0 or 1 gives a finite loss
_LOG_FLOOR = -100.0


@dataclass
class ADAPETOptions(Options):
    """Options of ADAPET's objectives (mixed into a method's options; both off by default)."""

    where: ClassVar[str] = "ADAPET options"

    label_loss: str = option("ce", "loss on the label words: ce (cross-entropy over the labels) or decoupled (ADAPET's decoupled label "
                             "objective: one binary cross-entropy per label on its word's full-vocabulary probability)", choices=LABEL_LOSSES)
    lcm_weight: float = option(0.0, "weight of ADAPET's label-conditioned MLM loss (0: off; ADAPET: 1, equal to the label loss)", min=0)
    lcm_mask_ratio: float = option(0.105, "label-conditioned MLM: masks up to this share of an example's text tokens, the share drawn "
                                   "uniformly per example (ADAPET's mask_alpha: 0.105)", min=0, max=1, min_exclusive=True)


@dataclass(frozen=True)
class ADAPETObjective:
    """What :func:`pet.training.prompt.train_prompt_model` needs for ADAPET's objectives."""

    decoupled: bool = False
    lcm_weight: float = 0.0
    lcm_mask_ratio: float = 0.105

    @classmethod
    def from_options(cls, options: ADAPETOptions) -> ADAPETObjective | None:
        """The objective of a method's options; None when both terms are off (plain training)."""
        obj = cls(options.label_loss == "decoupled", float(options.lcm_weight), float(options.lcm_mask_ratio))
        return obj if obj.decoupled or obj.lcm_weight > 0 else None


def check_objective(objective: ADAPETObjective | None, model, soft_targets) -> None:
    """One-line errors for ADAPET objectives the training run cannot take."""
    if objective is None:
        return
    term = "label_loss decoupled" if objective.decoupled else f"lcm_weight={objective.lcm_weight}"
    if soft_targets is not None:
        raise ConfigError(f"ADAPET's {term} needs class labels but training has soft targets (distillation or regression); "
                          "fix: set label_loss ce and lcm_weight 0")
    if getattr(model, "prompt_encoder", None) is not None:
        raise ConfigError(f"ADAPET's {term} is for hard prompts but the model has a soft prompt; "
                          "fix: set label_loss ce and lcm_weight 0, or train a PVP without soft tokens")


# ----------------------------------------------------------------------------- the losses


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for log-probabilities ``x ≤ 0``, stable at both ends and with finite
    gradients (each branch only sees the inputs it is accurate for)."""
    near = torch.log(-torch.expm1(x.clamp_max(-1e-44)))  # x close to 0 (float64: 1e-44 is representable)
    far = torch.log1p(-torch.exp(x.clamp_max(-math.log(2))))
    return torch.where(x > -math.log(2), near, far)


def binary_cross_entropy_log(log_p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise ``-(t · log p + (1 - t) · log(1 - p))`` from ``log p`` (in float64), each log
    clamped at -100 as ``nn.BCELoss`` does."""
    lp = log_p.double()
    t = target.to(lp)
    return -(t * lp.clamp_min(_LOG_FLOOR) + (1 - t) * _log1mexp(lp).clamp_min(_LOG_FLOOR))


def decoupled_label_loss(label_scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ADAPET's decoupled label objective: ``label_scores`` ``[B, L]`` are log-probabilities of the
    label words under the full-vocabulary softmax, ``labels`` ``[B]`` the gold indices; the mean
    over the ``B × L`` binary cross-entropies (target 1 for the gold label, 0 for the others)."""
    target = F.one_hot(labels.long(), label_scores.shape[1])
    return binary_cross_entropy_log(label_scores, target).mean().to(label_scores.dtype)


def label_conditioned_mlm_loss(model, lcm: dict) -> torch.Tensor:
    """ADAPET's label-conditioned MLM loss on a batch from :func:`lcm_batch`: the mean over its
    masked tokens of the binary cross-entropy of the original token's probability with target
    ``1[sampled label = gold label]`` (0 when no token was masked)."""
    dev = model.device
    if lcm["rows"].numel() == 0:
        return torch.zeros((), device=dev)
    logits = model.token_logits(lcm["batch"], lcm["rows"], lcm["cols"]).float()
    log_p = torch.log_softmax(logits, dim=-1).gather(1, lcm["tokens"].to(dev)[:, None]).squeeze(1)
    return binary_cross_entropy_log(log_p, lcm["targets"].to(dev)).mean().float()


# ----------------------------------------------------------------------------- the LCM inputs


def with_label_word(e: Encoded, vt: VerbalizerTokens, word: int) -> Encoded:
    """``e`` with verbalizer word ``word``'s tokens in place of its mask tokens (a word shorter
    than the cloze's masks takes fewer positions; text positions after it shift)."""
    m, s = vt.n_masks, e.mask_start
    tokens = vt.token_ids[word, : int(vt.lengths[word])].tolist()
    shift = len(tokens) - m
    types = None
    if e.token_type_ids is not None:
        types = e.token_type_ids[:s] + [e.token_type_ids[s]] * len(tokens) + e.token_type_ids[s + m:]
    text = [p if p < s else p + shift for p in e.text_positions]
    return Encoded(e.input_ids[:s] + tokens + e.input_ids[s + m:], s, [], e.label, types, text)


def masked_text_positions(text: Sequence[int], ratio: float, gen: torch.Generator) -> list[int]:
    """The text positions an LCM input masks: ``max(⌊u · ratio · T⌋, 2) - 1`` of the ``T`` text
    positions (``u ~ U(0, 1)``; at least one when there is text), drawn without replacement."""
    u = float(torch.rand((), generator=gen))
    n = min(max(int(u * ratio * len(text)), 2) - 1, len(text))
    pick = torch.randperm(len(text), generator=gen)[:n].tolist()
    return sorted(text[i] for i in pick)


def lcm_batch(items: Sequence[Encoded], vt: VerbalizerTokens, ratio: float, mask_id: int, pad_id: int, gen: torch.Generator) -> dict:
    """One label-conditioned MLM batch for the labelled ``items``: per example a uniformly drawn
    label (``sampled``), one of its words at the mask, some text tokens masked. Returns the padded
    ``batch``, the masked ``(rows, cols)``, their original ``tokens`` and the BCE ``targets``
    (1 where the example's sampled label is its gold label, else 0)."""
    sampled = torch.randint(len(vt.labels), (len(items),), generator=gen)
    inputs, rows, cols, tokens, targets = [], [], [], [], []
    for b, (e, y) in enumerate(zip(items, sampled.tolist())):
        words = (vt.word_label == y).nonzero().flatten()
        word = int(words[torch.randint(len(words), (1,), generator=gen)])
        x = with_label_word(e, vt, word)
        pos = masked_text_positions(x.text_positions, ratio, gen)
        tokens += [x.input_ids[p] for p in pos]
        for p in pos:
            x.input_ids[p] = mask_id
        rows += [b] * len(pos)
        cols += pos
        targets += [float(y == e.label)] * len(pos)
        inputs.append(x)
    return {
        "batch": collate(inputs, pad_id),
        "rows": torch.tensor(rows, dtype=torch.long),
        "cols": torch.tensor(cols, dtype=torch.long),
        "tokens": torch.tensor(tokens, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.float32),
        "sampled": sampled,
    }
