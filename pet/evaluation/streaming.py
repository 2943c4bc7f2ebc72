"""Streamed evaluation: ``pet zero-shot --data`` scores a file chunk by chunk through the one
evaluator (:func:`pet.evaluation.evaluator.evaluate_chunks`), which keeps per example only the
predicted and gold label indices (not texts, not scores). Reading in chunks is
:func:`pet.data.stream.iter_chunks`; writing predictions is :mod:`pet.estimator.predict`.

Peak memory depends on ``chunk_size`` and the model, not on the input's length (see
benchmarks/predict_memory.py and the Scale-out section of benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..examples import Example
from .evaluator import evaluate_chunks, zero_shot_summary


def zero_shot_stream_report(
    fitted: Any,
    chunks: Iterable[list[Example]],
    task: Any,
    *,
    split: str,
    progress: bool = False,
) -> dict:
    """What :func:`pet.evaluation.evaluator.zero_shot_report` returns, computed chunk by chunk from
    a fitted zero-shot method (``PetClassifier.zero_shot(...).fitted_``); ``progress`` shows one
    bar over the examples read."""
    from tqdm.auto import tqdm

    with tqdm(desc="zero-shot", unit="ex", disable=not progress, leave=False) as bar:
        rows = evaluate_chunks(fitted, _counted(chunks, bar), task, split=split)
    return zero_shot_summary(rows, fitted, task, split)


def _counted(chunks: Iterable[list[Example]], bar: Any) -> Iterator[list[Example]]:
    """``chunks``, advancing ``bar`` by each chunk's size once it is scored."""
    for chunk in chunks:
        yield chunk
        bar.update(len(chunk))
