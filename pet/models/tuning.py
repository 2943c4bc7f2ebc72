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

A LoRA-tuned model is saved unmerged: its frozen base (:func:`lora_base`) once, and the adapter
in PEFT's own layout (:func:`save_lora_adapter`); loading injects the adapter back into a
:func:`shared_copy` of the base (:func:`attach_lora_adapter`), so N LoRA-tuned PVPs on one base
cost one base on disk and in memory plus N small adapters.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

from torch import nn

from ..errors import ConfigError, ModelError
from .hf import reading_weights

TUNING_MODES = ("full", "bitfit", "lora", "head", "frozen")
#: the adapter name ``apply_tuning`` injects under (peft's default)
ADAPTER_NAME = "default"

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
        inject_adapter_in_model(cfg, target, adapter_name=ADAPTER_NAME)
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


def shared_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module``'s structure whose parameters and buffers *are* ``module``'s: new
    module objects (so adapters can be injected into one copy only), no new weight memory."""
    memo = {id(t): t for t in [*module.parameters(), *module.buffers()]}
    return copy.deepcopy(module, memo)


def lora_base(module: nn.Module) -> nn.Module:
    """``module`` without its LoRA layers, *not* merged: the frozen base weights LoRA trained
    on (shared with ``module``, see :func:`shared_copy`). ``module`` itself is untouched."""
    from peft.tuners.lora import LoraLayer

    base = shared_copy(module)
    for name, m in list(base.named_modules()):
        if isinstance(m, LoraLayer):
            parent_name, _, child = name.rpartition(".")
            setattr(base.get_submodule(parent_name) if parent_name else base, child, m.get_base_layer())
    for m in base.modules():
        m.__dict__.pop("peft_config", None)  # peft's record of the injected adapter
    return base


def save_lora_adapter(module: nn.Module, path: str | Path, base_model: str) -> Path:
    """Write the LoRA adapter injected into ``module`` (by :func:`apply_tuning`) to folder
    ``path`` with peft's own ``PeftModel.save_pretrained``: ``adapter_config.json`` and
    ``adapter_model.safetensors``, keys relative to ``module``. ``base_model`` goes into the
    config's ``base_model_name_or_path`` (pet writes the base's path inside the saved folder)."""
    from peft import PeftModel

    if getattr(module, "peft_config", None) is None or ADAPTER_NAME not in module.peft_config:
        raise ConfigError(f"save_lora_adapter: {type(module).__name__} has no LoRA adapter; fix: tune it with tune=lora first")
    cfg = copy.deepcopy(module.peft_config[ADAPTER_NAME])
    cfg.base_model_name_or_path = base_model
    host = lora_base(module)  # a throw-away copy: PeftModel injects fresh adapters into it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = PeftModel(host, cfg, adapter_name=ADAPTER_NAME)
    lora = {k: v for k, v in module.state_dict().items() if "lora_" in k}
    missing, unexpected = host.load_state_dict(lora, strict=False)
    missing = [k for k in missing if "lora_" in k]
    if missing or unexpected:
        raise ModelError(f"save_lora_adapter: the adapter does not fit its copy (missing {missing[:3]}, unexpected {unexpected[:3]}); fix: report this model family")
    out = Path(path)
    peft_model.save_pretrained(str(out), save_embedding_layers=False)
    (out / "README.md").unlink(missing_ok=True)  # peft's placeholder card; the folder has its own
    return out


def attach_lora_adapter(module: nn.Module, path: str | Path) -> nn.Module:
    """Inject the adapter saved by :func:`save_lora_adapter` at folder ``path`` into ``module``
    in place (``PeftModel.from_pretrained`` on that local folder; nothing else is read)."""
    from peft import PeftModel

    with warnings.catch_warnings(), reading_weights(str(path), "adapter_model.safetensors"):
        warnings.simplefilter("ignore", FutureWarning)
        PeftModel.from_pretrained(module, str(path), adapter_name=ADAPTER_NAME, is_trainable=False)
    if not has_lora(module):
        raise ModelError(f"{path}: the adapter injected no LoRA layer into {type(module).__name__}; fix: re-save the classifier")
    return module
