"""``pet predict``: a saved classifier's predictions written chunk by chunk, atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..examples import Example
from ..utils.io import atomic_output

def predict_stream(
    predict_log_proba: Callable[[list[Example]], np.ndarray], chunks: Iterable[list[Example]]
) -> Iterator[tuple[list[Example], np.ndarray]]:
    """(chunk, label log-probs ``[len(chunk), L]``) for every chunk, scored one chunk at a time."""
    for chunk in chunks:
        yield chunk, np.asarray(predict_log_proba(chunk))


def predict_to_jsonl(clf: Any, chunks: Iterable[list[Example]], output: str | Path, *, progress: Callable[[int], None] | None = None) -> int:
    """``pet predict``: one line ``{"index", "guid", "label", "probabilities"}`` per input
    example, written chunk by chunk into ``output`` (atomically). Returns the number of lines."""
    labels = list(clf.labels_)
    n = 0
    with atomic_output(output) as f:
        for chunk, lp in predict_stream(clf.predict_log_proba, chunks):
            proba = np.exp(lp)
            lines = []
            for ex, row in zip(chunk, proba):
                rec = {"index": n, "guid": ex.guid, "label": labels[int(row.argmax())],
                       "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, row)}}
                lines.append(json.dumps(rec, ensure_ascii=False))
                n += 1
            f.write("\n".join(lines) + "\n")
            if progress:
                progress(n)
    return n
