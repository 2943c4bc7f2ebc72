"""The losses of the training loop besides cross-entropy: PET's distillation KL on soft targets,
and BERT-style token masking for the auxiliary MLM loss (the supervised contrastive term is in
:mod:`pet.training.contrastive`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

def distillation_loss(scores: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """PET's distillation loss: ``KL(softmax(log p / T) ‖ softmax(scores / T)) · T²`` (batch mean).

    ``targets`` are the teacher's probabilities ``p`` ``[B, L]``; ``scores`` the student's
    unnormalised label scores (or log-probs: softmax is shift-invariant).
    """
    T = float(temperature)
    q = torch.softmax(torch.log(targets.clamp_min(1e-12)) / T, dim=-1)
    return F.kl_div(torch.log_softmax(scores / T, dim=-1), q, reduction="batchmean") * T * T


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, tokenizer, probability: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: select ``probability`` of the non-special tokens; 80% → mask token,
    10% → random token, 10% unchanged. Returns (inputs, labels with -100 elsewhere)."""
    inputs = input_ids.clone()
    labels = input_ids.clone()
    prob = torch.full(inputs.shape, probability)
    prob[special] = 0.0
    selected = torch.bernoulli(prob, generator=gen).bool()
    if not selected.any():  # at least one target per batch, so the loss is defined
        cand = (~special).nonzero()
        if len(cand):
            r, c = cand[torch.randint(len(cand), (1,), generator=gen)][0]
            selected[r, c] = True
    labels[~selected] = -100
    replace = torch.bernoulli(torch.full(inputs.shape, 0.8), generator=gen).bool() & selected
    inputs[replace] = tokenizer.mask_token_id
    rand = torch.bernoulli(torch.full(inputs.shape, 0.5), generator=gen).bool() & selected & ~replace
    inputs[rand] = torch.randint(len(tokenizer), inputs.shape, generator=gen)[rand]
    return inputs, labels


def special_mask(tokenizer, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    return torch.isin(ids, special_ids) | (attention == 0)
