"""The one record type that flows from data loading into encoding."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One input to classify.

    ``fields`` maps template field names (``text_a``, ``text_b``, or any other column name)
    to strings; ``label`` is the label id as a string (``"0"``, ``"entailment"``) or ``None``
    for unlabelled text.
    """

    fields: dict[str, str]
    label: str | None = None
    guid: str = ""
    meta: dict = field(default_factory=dict, compare=False)
