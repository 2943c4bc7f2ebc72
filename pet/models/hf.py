"""Loading Hugging Face models and tokenizers: one quiet path with one-line errors."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from ..errors import ConfigError, ModelError, first_line
from ..utils.paths import looks_like_path

_WEIGHTS_FIX = "fix: restore the complete weights (download or copy the model again), or re-save the folder it came from"


def load_pretrained(auto_class: Any, name_or_path: str, what: str = "model", **kwargs: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local folder or a hub name, in float32, without the
    library's progress bars and warnings; failures become one ``ModelError`` line. Only
    safetensors weights are loaded (a pickle ``pytorch_model.bin`` could run code)."""
    where = f"cannot load {what} '{name_or_path}'"
    if looks_like_path(name_or_path) and not Path(name_or_path).expanduser().exists():
        raise ModelError(f"{where}: no such folder; fix: check the path (a Hub model is named like 'roberta-large' or 'org/name')")
    try:
        with quiet_hf(), reading_weights(where, _weights_file(name_or_path)):
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = auto_class.from_pretrained(name_or_path, dtype=torch.float32, use_safetensors=True, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        fix = ("convert its weights to model.safetensors (pet never unpickles pytorch_model.bin)" if "safetensors" in str(e).lower()
               else "pass --model with a local model folder (or set PET_MODEL), or a hub name when online")
        raise ModelError(f"{where}: {first_line(e)}; fix: {fix}") from None
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise ModelError(f"{where}: its tokenizer has no vocabulary, only {len(tokenizer)} special tokens (its tokenizer files are missing); "
                         "fix: put the model's tokenizer files (tokenizer.json, or vocab.txt / vocab.json + merges.txt) back, or re-save the folder")
    return model, tokenizer


def _weights_file(name_or_path: str) -> str:
    """What a message calls the weights ``from_pretrained`` reads (a sharded model has several files)."""
    return "model.safetensors" if (Path(name_or_path) / "model.safetensors").is_file() else "its weights"


@contextmanager
def reading_weights(where: str, file: str) -> Iterator[None]:
    """Weights read inside the block that are not valid safetensors (truncated, say), or whose
    tensors do not fit the model (a size mismatch), fail as one ``ModelError`` line naming
    ``file``, prefixed by ``where``."""
    try:
        yield
    except SafetensorError as e:
        raise ModelError(f"{where}: {file} is not a valid safetensors file ({first_line(e)}); {_WEIGHTS_FIX}") from None
    except RuntimeError as e:  # torch's "size mismatch for …"; transformers' "… `ignore_mismatched_sizes` …"
        if "mismatch" not in str(e):
            raise
        detail = next((f" ({line.strip().rstrip('.')})" for line in str(e).splitlines() if "size mismatch for" in line), "")
        raise ModelError(f"{where}: the tensors in {file} do not have the shapes this model needs{detail}; {_WEIGHTS_FIX}") from None


def position_limit(model: nn.Module) -> int | None:
    """The longest input ``model`` can embed: the rows of its absolute position table, less the
    offset of families that count positions after the padding index (RoBERTa's 514 rows give
    512); None for a model without one (relative or rotary positions)."""
    for name, m in model.named_modules():
        if name.rpartition(".")[2] == "position_embeddings" and isinstance(m, nn.Embedding):
            return m.num_embeddings - (m.padding_idx + 1 if m.padding_idx is not None else 0)
    return None


def check_max_length(model: nn.Module, max_length: int, model_name: str) -> None:
    """One-line ``ConfigError`` when ``max_length`` is more than ``model`` can read (:func:`position_limit`)."""
    limit = position_limit(model)
    if limit is not None and max_length > limit:
        raise ConfigError(f"max_length {max_length} is more than model '{model_name}' can read ({limit} positions); "
                          f"fix: --max-length {limit} or less (the max_length option)")


@contextmanager
def quiet_hf() -> Iterator[None]:
    """No progress bars or warnings from the Hugging Face libraries inside the block."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def check_sentence_transformers_folder(d: Path) -> None:
    """A saved sentence-transformers folder's ``modules.json`` names the classes that
    sentence-transformers imports and runs: only its own may load from a saved folder."""
    from ..utils.jsonio import read_json

    modules = read_json(d / "modules.json", ModelError)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelError(f"{d / 'modules.json'}: must be a list of module objects; fix: re-save the classifier")
    bad = [m.get("type") for m in modules if not str(m.get("type", "")).startswith("sentence_transformers.")]
    if bad:
        raise ModelError(f"{d / 'modules.json'}: module type {bad[0]!r} is not a sentence-transformers module; fix: re-save the classifier")
