"""Which parameters of a ``PromptModel`` train: the tuning modes.

=========  ===================================================================================
``full``   every parameter of the masked LM (encoder, embeddings, MLM head)
``bitfit`` bias terms only (Ben Zaken et al. 2022), MLM-head biases included
``lora``   low-rank adapters on the attention query and value projections of the encoder
           (Hu et al. 2021, via ``peft``); the base weights and the MLM head stay frozen
``head``   the MLM head's own parameters (transform dense + LayerNorm + output bias). The head's
           decoder matrix is *tied* to the input word embeddings in BERT/RoBERTa/ALBERT/…;
           ``head`` keeps that shared matrix frozen (training it would change the encoder's
           input embeddings too, i.e. not "head only"). Untied decoders do train.
``frozen`` nothing in the masked LM (zero-shot; or prompt tuning when soft prompts are attached)
=========  ===================================================================================

In every mode all parameters of ``model.prompt_encoder`` (soft prompts), when one is attached,
train as well.
"""

from __future__ import annotations

import copy

from torch import nn

from ..errors import ConfigError

TUNING_MODES = ("full", "bitfit", "lora", "head", "frozen")

#: (query, value) linear-layer names per model family, tried in order.
_LORA_TARGETS = (
    ("query", "value"),  # BERT, RoBERTa, XLM-R, ALBERT, ELECTRA, CamemBERT
    ("q_lin", "v_lin"),  # DistilBERT
    ("query_proj", "value_proj"),  # DeBERTa-v2/v3
    ("q", "v"),  # MPNet
    ("q_proj", "v_proj"),  # BART-style / ModernBERT-like
)


def trainable_parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters with ``requires_grad`` (each shared tensor counted once)."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def lora_target_modules(module: nn.Module) -> list[str]:
    """Names (last path component) of the attention query/value ``nn.Linear`` layers of ``module``."""
    leaf_names = {name.rsplit(".", 1)[-1] for name, m in module.named_modules() if isinstance(m, nn.Linear)}
    for q, v in _LORA_TARGETS:
        if q in leaf_names and v in leaf_names:
            return [q, v]
    raise ConfigError(
        f"tune=lora: cannot find the attention query/value layers of {type(module).__name__} "
        f"(linear layers: {sorted(leaf_names)[:12]}); fix: use tune=full, bitfit or head for this model"
    )


def has_lora(module: nn.Module) -> bool:
    return any("lora_" in n for n, _ in module.named_parameters())


def _head_parameters(model) -> list[nn.Parameter]:
    """The MLM head's parameters minus the decoder matrix tied to the input embeddings."""
    mlm = model.mlm
    if model.head is None:
        raise ConfigError(
            f"tune=head: the MLM head of {type(mlm).__name__} cannot be located; fix: use tune=full, bitfit or lora"
        )
    enc_ids = {id(p) for p in model.encoder.parameters()} if model.encoder is not mlm else set()
    tied = {id(p) for p in mlm.get_input_embeddings().parameters()}
    out, seen = [], set()
    for p in mlm.parameters():
        if id(p) in enc_ids or id(p) in tied or id(p) in seen:
            continue
        seen.add(id(p))
        out.append(p)
    return out


def apply_tuning(model, mode: str = "full", r: int = 8, alpha: int = 16, dropout: float = 0.0) -> int:
    """Set ``requires_grad`` on ``model`` (a ``PromptModel``) for tuning ``mode``; returns the
    number of trained parameters. ``lora`` injects adapters in place (idempotent) into the
    encoder only, so ``model.mlm``, ``model.encoder`` and ``model.head`` keep working."""
    if mode not in TUNING_MODES:
        raise ConfigError(f"tune='{mode}': unknown tuning mode; fix: use one of {', '.join(TUNING_MODES)}")
    mlm = model.mlm
    if mode == "lora" and not has_lora(mlm):
        from peft import LoraConfig, inject_adapter_in_model

        target = model.encoder
        cfg = LoraConfig(r=int(r), lora_alpha=int(alpha), lora_dropout=float(dropout), target_modules=lora_target_modules(target), bias="none")
        inject_adapter_in_model(cfg, target)
    for p in mlm.parameters():
        p.requires_grad_(mode == "full")
    if mode == "bitfit":
        for name, p in mlm.named_parameters():
            if name.endswith("bias") and "lora_" not in name:
                p.requires_grad_(True)
    elif mode == "head":
        for p in _head_parameters(model):
            p.requires_grad_(True)
    elif mode == "lora":
        for name, p in mlm.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)
    elif mode == "full" and has_lora(mlm):
        raise ConfigError("tune=full on a model that already has LoRA adapters; fix: load a fresh model")
    if model.prompt_encoder is not None:
        for p in model.prompt_encoder.parameters():
            p.requires_grad_(True)
    return trainable_parameter_count(model)


def merge_lora(module: nn.Module) -> nn.Module:
    """Fold LoRA adapters into their base weights and remove the adapter layers, in place.

    The result is a plain ``transformers`` model (what gets saved: no ``peft`` needed to load)."""
    from peft.tuners.lora import LoraLayer

    for name, m in list(module.named_modules()):
        if isinstance(m, LoraLayer):
            m.merge()
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, m.get_base_layer())
    return module


def merged_copy(mlm: nn.Module) -> nn.Module:
    """A deep copy of ``mlm`` with LoRA merged in (``mlm`` itself is untouched)."""
    if not has_lora(mlm):
        return mlm
    return merge_lora(copy.deepcopy(mlm))
