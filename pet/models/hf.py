"""Loading Hugging Face models and tokenizers: one quiet path with one-line errors."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from ..errors import ModelError


def load_pretrained(auto_class: Any, name_or_path: str, what: str = "model", **kwargs: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local folder or a hub name, in float32, without the
    library's progress bars and warnings; failures become one ``ModelError`` line. Only
    safetensors weights are loaded (a pickle ``pytorch_model.bin`` could run code)."""
    try:
        with quiet_hf():
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = auto_class.from_pretrained(name_or_path, dtype=torch.float32, use_safetensors=True, **kwargs)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fix = ("convert its weights to model.safetensors (pet never unpickles pytorch_model.bin)" if "safetensors" in str(e).lower()
               else "pass --model with a local model folder (or set PET_MODEL), or a hub name when online")
        raise ModelError(f"cannot load {what} '{name_or_path}': {first}; fix: {fix}") from None
    return model, tokenizer


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
