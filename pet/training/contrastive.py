"""Supervised contrastive prompt fine-tuning (Jian, Gao & Vosoughi 2022, NAACL, "Contrastive
learning for prompt-based few-shot language learners").

Besides the cross-entropy over the verbalizer label scores, each labelled example is also
rendered through a *second view*: the same text under another template (and, with LM-BFF
demonstrations, another demonstration set). The encoder's hidden states at the mask positions
of both views — the rows the MLM head reads — are L2-normalised and pulled together for
examples of the same label and pushed apart for different labels by the SupCon loss (Khosla et
al. 2020, eq. 2, ``L^sup_out``). The total loss is ``ce + contrastive_weight · supcon``.

What is implemented (and where it departs from the authors' code, ``yiren-jian/LM-SupCon``):

* view 1 is the training input itself (the CE view); view 2 takes a template drawn uniformly,
  per example and step, from the *view templates* (paper, Fig. 1: positives are sentences
  "with sampled templates and/or demonstrations"; the code draws ``random.choice`` from LM-BFF's
  top-20 auto-generated templates, ``src/dataset.py``). Here the view templates are the patterns of the run's other
  PVPs (``contrastive_views`` names them), each with the trained PVP's verbalizer;
* with demonstrations, view 2 also carries a second demonstration set, drawn anew (like view
  1's) each time the example is drawn, as the code loads it (``SecondView.redraw``);
* one optimiser on the summed loss (the code alternates a SupCon step and an MLM step with two
  optimisers) and no projection head (the code adds a ``Linear+tanh`` before normalising);
  temperature 0.07 (the code's ``SupConLoss()`` default, with ``base_temperature`` equal to it).

The SupCon loss is written here in a few lines of torch: no installed library offers it on
plain feature tensors (``setfit.losses.SupConLoss`` embeds sentences with its own model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..examples import Example
from ..options import Options, option
from ..prompts.spec import PVP


@dataclass
class ContrastiveOptions(Options):
    """Options of the supervised contrastive term (mixed into a method's options)."""

    where: ClassVar[str] = "contrastive options"

    contrastive_weight: float = option(0.0, "weight of the supervised contrastive (SupCon) loss on mask-position states of two views (0: off)", min=0)
    contrastive_temperature: float = option(0.07, "SupCon temperature (Jian et al. 2022's code: 0.07)", min=0, min_exclusive=True)
    contrastive_views: list[str] | None = option(
        None, "templates of the second view: ids ('pattern:verbalizer' or pattern) of the run's PVPs (null: every other pattern of the run's PVPs)")


@dataclass
class SecondView:
    """What :func:`pet.training.prompt.train_prompt_model` needs for the contrastive term.

    ``pvps``: the second view's PVPs (one drawn per example and step), each with the trained
    PVP's verbalizer; ``examples``: what they render, one per training example in the same
    order (None: the training examples themselves); ``redraw(i, d)``: instead, the example
    rendered for the d-th draw of training example i (with demonstrations: a second
    demonstration set drawn anew each time, as the paper's code loads it).
    """

    pvps: list[PVP]
    weight: float
    temperature: float = 0.07
    examples: list[Example] | None = None
    redraw: Callable[[int, int], Example] | None = None


def view_pvps(pvp: PVP, run_pvps: Sequence[PVP], wanted: Sequence[str] | None = None) -> list[PVP]:
    """The second-view PVPs for training ``pvp``: the patterns of ``run_pvps`` named by
    ``wanted`` (PVP or pattern ids; None: every pattern other than ``pvp``'s), each paired with
    ``pvp``'s verbalizer, in order, without repeats."""
    by_id = {p.id: p for p in run_pvps}
    by_pattern: dict[str, PVP] = {}
    for p in run_pvps:
        by_pattern.setdefault(p.pattern.id, p)
    if wanted is None:
        chosen = [p for p in by_pattern.values() if p.pattern.id != pvp.pattern.id]
    else:
        chosen = []
        for w in wanted:
            if w not in by_id and w not in by_pattern:
                raise ConfigError(f"option contrastive_views='{w}': not one of this run's PVPs ({', '.join(by_id)}); fix: use one of them")
            chosen.append(by_id.get(w) or by_pattern[w])
    out: dict[str, PVP] = {}
    for p in chosen:
        if p.pattern.is_soft:
            raise ConfigError(f"option contrastive_views: pattern '{p.pattern.id}' has soft tokens; fix: name hard patterns only")
        out.setdefault(p.pattern.id, PVP(p.pattern, pvp.verbalizer))
    if not out:
        raise ConfigError(f"contrastive_weight > 0 needs a second template but the run has no pattern other than '{pvp.pattern.id}'; "
                          "fix: run with more PVPs (e.g. the task's defaults, training one with option pvp), name contrastive_views, or set contrastive_weight 0")
    return list(out.values())


def mask_representation(hidden: torch.Tensor) -> torch.Tensor:
    """``[B, n_masks, H]`` hidden states at the mask positions → ``[B, H]``: the state at the
    first mask (the only one for single-token label words, as in the paper; a view's template
    may tokenise the label words into a different number of masks, the first always exists)."""
    return hidden[:, 0].float()


def supcon_loss(views: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, eq. 2) over ``V`` views of ``N`` examples.

    ``views``: ``[V, N, D]`` representations (L2-normalised here); ``labels``: ``[N]``. Every one
    of the ``V·N`` rows is an anchor; its positives are the other rows of the same label (its
    own other views included), its contrast set every other row:
    ``mean_i  -1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ) )``.
    Equals the authors' ``SupConLoss`` (``contrast_mode="all"``, ``base_temperature = τ``).
    """
    V, N = views.shape[:2]
    z = views.reshape(V * N, -1)
    with torch.autocast(z.device.type, enabled=False):  # at least fp32, also under mixed precision
        z = F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=-1)
        y = labels.to(z.device).repeat(V)
        self_pair = torch.eye(V * N, dtype=torch.bool, device=z.device)
        logits = (z @ z.T / temperature).masked_fill(self_pair, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive = (y[:, None] == y[None, :]) & ~self_pair
        return (-log_prob.masked_fill(~positive, 0.0).sum(1) / positive.sum(1)).mean()
