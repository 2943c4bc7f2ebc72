"""Truncation rules: how an over-long input is cut, named per pattern so each source's PVPs get
the source's own inputs.

A pattern file says which rule a pattern uses (``"truncation"``; default ``"longest_first"``):

``"longest_first"`` (this project)
    Cut the longest text field first, from its end, until the input fits ``max_length``
    (ties: later fields first). Template words, masks, soft tokens and special tokens are never
    cut.
``"pet"`` (timoschick/pet, ``PVP.truncate``)
    PET's rule: the text fields are the shortenable parts; the two sequences of a pair
    (before/after ``{segment}``) compete: while too long, one token goes from the sequence whose
    fields hold more tokens (the second one on a tie), taken from the end of its *last* non-empty
    field. Without ``{segment}`` there is one sequence, so the last field is cut first.
``{"rule": "lmbff", "first_sent_limit": N, "other_sent_limit": M}`` (princeton-nlp/LM-BFF,
``tokenize_multipart_input``)
    LM-BFF's rule: each occurrence of field ``text_a`` (LM-BFF's sentence 0) is cut to its first
    ``first_sent_limit`` tokens, every other field (``text_b``, demonstrations' fields) to
    ``other_sent_limit`` (either may be absent: no limit), each as encoded in place (with its
    leading space). Then the whole input — special tokens included — is cut at ``max_length``
    from the tail, which may drop the final ``[SEP]``/``</s>``, exactly as LM-BFF does. If that
    cut would remove a mask or a soft token the example cannot be encoded (LM-BFF asserts);
    the error says so. LM-BFF's settings (``run_experiment.sh``): mr, cr, subj 110/50; sst-5
    110/20; trec, mpqa 110; RTE 240 (with max length 256); none for the others.

The functions below work on token counts only, so they are cheap and tested against
re-implementations of the sources (``tests/test_fidelity.py``, ``tests/test_properties.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError

RULES = ("longest_first", "pet", "lmbff")
FIRST_FIELD = "text_a"  # LM-BFF's sentence 0


@dataclass(frozen=True)
class Truncation:
    """A pattern's truncation rule and, for ``lmbff``, its sentence limits (tokens)."""

    rule: str = "longest_first"
    first_sent_limit: int | None = None
    other_sent_limit: int | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise SpecError(f"truncation rule '{self.rule}' is unknown; fix: use one of {', '.join(RULES)}")
        for name in ("first_sent_limit", "other_sent_limit"):
            v = getattr(self, name)
            if v is None:
                continue
            if self.rule != "lmbff":
                raise SpecError(f"truncation '{self.rule}' takes no {name}; fix: drop it, or use rule 'lmbff'")
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"truncation {name} is {v!r}; fix: use a whole number of tokens >= 1")

    @classmethod
    def from_spec(cls, value: Any, where: str = "truncation") -> Truncation:
        """From a pattern file's ``"truncation"``: absent, a rule name, or an object with ``rule``."""
        if value is None:
            return cls()
        if isinstance(value, Truncation):
            return value
        if isinstance(value, str):
            value = {"rule": value}
        if not isinstance(value, dict) or "rule" not in value:
            raise SpecError(f"{where}: {value!r} is not a truncation rule; fix: write a rule name ({', '.join(RULES)}) "
                            'or {"rule": "lmbff", "first_sent_limit": N, "other_sent_limit": M}')
        unknown = set(value) - {"rule", "first_sent_limit", "other_sent_limit"}
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {sorted(unknown)}; fix: use rule, first_sent_limit, other_sent_limit")
        try:
            return cls(**value)
        except SpecError as e:
            raise SpecError(f"{where}: {e}") from None

    def to_spec(self) -> str | dict[str, Any]:
        """The pattern-file form: the rule name alone when it has no limits."""
        limits = {k: v for k, v in (("first_sent_limit", self.first_sent_limit), ("other_sent_limit", self.other_sent_limit)) if v is not None}
        return {"rule": self.rule, **limits} if limits else self.rule

    def limit_for(self, field_name: str) -> int | None:
        """The ``lmbff`` limit of one field occurrence (None: no limit)."""
        return self.first_sent_limit if field_name == FIRST_FIELD else self.other_sent_limit


def longest_first(lengths: Sequence[int], budget: int) -> list[int]:
    """Cut the longest fields first until they fit ``budget`` tokens (water-filling)."""
    lengths = list(lengths)
    if sum(lengths) <= budget:
        return lengths
    lo, hi = 0, max(lengths)
    while lo < hi:  # largest cap c with sum(min(l, c)) <= budget
        c = (lo + hi + 1) // 2
        if sum(min(n, c) for n in lengths) <= budget:
            lo = c
        else:
            hi = c - 1
    out = [min(n, lo) for n in lengths]
    spare = budget - sum(out)
    for j, n in enumerate(lengths):
        if spare and n > lo:
            out[j] += 1
            spare -= 1
    return out


def pet_truncate(lengths: Sequence[int], sequence: Sequence[int], budget: int) -> list[int]:
    """PET's rule (see the module doc): ``sequence[i]`` is 0 or 1, the sequence field i is in.

    Closed form of PET's one-token-at-a-time loop: the longer sequence loses tokens until both
    are equally long, then they alternate, the second sequence first."""
    out = list(lengths)
    excess = sum(out) - budget
    if excess <= 0:
        return out
    size = [sum(n for n, s in zip(out, sequence) if s == k) for k in (0, 1)]
    cut = [0, 0]
    longer = 0 if size[0] > size[1] else 1
    step = min(excess, abs(size[0] - size[1]))
    cut[longer] += step
    excess -= step
    cut[1] += (excess + 1) // 2
    cut[0] += excess // 2
    for k in (0, 1):  # from the end of the sequence's last non-empty field backwards
        for i in reversed([i for i, s in enumerate(sequence) if s == k]):
            take = min(cut[k], out[i])
            out[i] -= take
            cut[k] -= take
    return out


def lmbff_limits(names: Sequence[str], lengths: Sequence[int], rule: Truncation) -> list[int]:
    """Each field occurrence cut to its LM-BFF sentence limit (the tail cut comes after)."""
    out = []
    for name, n in zip(names, lengths):
        limit = rule.limit_for(name)
        out.append(n if limit is None else min(n, limit))
    return out
