"""Range-checked argparse types for numeric flags.

    p.add_argument("--limit", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--warmup-ratio", type=fraction)          # 0 <= x < 1
    p.add_argument("--dropout", type=probability)            # 0 <= x <= 1
    p.add_argument("--top", type=int_range(1, 100))

argparse names the flag (``argument --limit: …``); the message says what was wrong and what to
give instead. ``pet``'s parser turns it into a one-line error with exit status 2.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _int(text: str, need: str) -> int:
    try:
        v = int(str(text).strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number; fix: give {need}") from None
    return v


def _float(text: str, need: str) -> float:
    try:
        v = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number; fix: give {need}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number; fix: give {need}")
    return v


def int_range(lo: int | None = None, hi: int | None = None, name: str | None = None) -> Callable[[str], int]:
    """An argparse type: an integer with ``lo <= x <= hi`` (either bound may be None)."""
    if lo is not None and hi is not None:
        need = f"a whole number from {lo} to {hi}"
    elif lo is not None:
        need = {1: "a whole number of 1 or more", 0: "a whole number of 0 or more"}.get(lo, f"a whole number of {lo} or more")
    elif hi is not None:
        need = f"a whole number of at most {hi}"
    else:
        need = "a whole number"

    def parse(text: str) -> int:
        v = _int(text, need)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is out of range; fix: give {need}")
        return v

    parse.__name__ = name or f"int[{lo},{hi}]"
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False, name: str | None = None) -> Callable[[str], float]:
    """An argparse type: a finite float in the interval (bounds open or closed, None = none)."""
    parts = []
    if lo is not None:
        parts.append(f"{'above' if lo_open else 'at least'} {lo:g}")
    if hi is not None:
        parts.append(f"{'below' if hi_open else 'at most'} {hi:g}")
    need = "a number" + (" " + " and ".join(parts) if parts else "")

    def parse(text: str) -> float:
        v = _float(text, need)
        bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi))
        if bad:
            raise argparse.ArgumentTypeError(f"{v:g} is out of range; fix: give {need}")
        return v

    parse.__name__ = name or "float"
    return parse


#: 1, 2, 3, … (limits, batch sizes, steps, shots, max lengths, sizes)
positive_int = int_range(1, name="positive int")
#: 0, 1, 2, … (counts where 0 means "none", e.g. an unlabelled pool size)
non_negative_int = int_range(0, name="non-negative int")
#: a seed numpy and torch both accept: 0 … 2**32 - 1
seed = int_range(0, 2**32 - 1, name="seed")
#: > 0 (learning rates, temperatures)
positive_float = float_range(0, lo_open=True, name="positive float")
#: >= 0 (loss weights, weight decay)
non_negative_float = float_range(0, name="non-negative float")
#: 0 <= x <= 1 (dropout, probabilities)
probability = float_range(0, 1, name="probability")
#: 0 <= x < 1 (warm-up ratio, held-out fractions)
fraction = float_range(0, 1, hi_open=True, name="fraction")

__all__ = [
    "int_range",
    "float_range",
    "positive_int",
    "non_negative_int",
    "seed",
    "positive_float",
    "non_negative_float",
    "probability",
    "fraction",
]
