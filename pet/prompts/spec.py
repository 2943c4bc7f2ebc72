"""Pattern-Verbalizer Pairs: the spec objects and their JSON files.

A *pattern* turns an example into a cloze text with one ``{mask}`` (its template language lives
in :mod:`pet.prompts.template`) and names the truncation rule its source used
(:mod:`pet.prompts.truncation`); a *verbalizer* maps each label to one or more words the masked
LM could put there. Both are plain dataclasses that round-trip to the JSON files under
``patterns/`` and ``verbalizers/`` (schemas in ``pet/prompts/schemas/``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..utils.jsonio import read_json
from ..utils.schema import problem_lines
# The template language's names are re-exported: callers may import them from either module.
from .template import (  # noqa: F401
    FILTERS,
    FieldRef,
    Literal,
    Mask,
    Segment,
    SegmentBreak,
    Soft,
    Special,
    apply_filters,
    parse_template,
    render_template,
)
from .truncation import Truncation

# ----------------------------------------------------------------------------- spec objects


def _at(path: str, detail: str, verbalizer_id: str) -> SpecError:
    """A verbalizer error located at a JSON path below the verbalizer (``.labels.0[1]``): the
    message names it; a file check (:func:`_check`) puts it after the verbalizer's own path."""
    e = SpecError(f"verbalizer '{verbalizer_id}': {path.lstrip('.')}: {detail}")
    e.json_path, e.detail = path, detail
    return e



@dataclass
class Pattern:
    """A cloze template with an id; ``source`` says which paper (or who) wrote it;
    ``truncation`` how over-long inputs are cut (a :class:`Truncation`, or its pattern-file form:
    ``"pet"``, ``{"rule": "lmbff", "first_sent_limit": 110}`` …; default ``longest_first``)."""

    id: str
    template: str
    source: str | None = None
    description: str | None = None
    truncation: Truncation = field(default_factory=Truncation)
    #: Where the pattern was read from (``"patterns/sst2.json $.patterns[0]"``), for error
    #: messages raised later (e.g. by the encoder); not part of the spec.
    origin: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.truncation = Truncation.from_spec(self.truncation, f"pattern '{self.id}': truncation")
        self.segments  # parse eagerly so a bad template fails where it is built

    @cached_property
    def segments(self) -> tuple[Segment, ...]:
        return parse_template(self.template, f"pattern '{self.id}'")

    @property
    def where(self) -> str:
        """``pattern 'id'`` plus the file and JSON path it came from, when known."""
        return f"{self.origin}: pattern '{self.id}'" if self.origin else f"pattern '{self.id}'"

    @property
    def fields(self) -> list[str]:
        return [s.name for s in self.segments if isinstance(s, FieldRef)]

    @property
    def is_soft(self) -> bool:
        return any(isinstance(s, Soft) for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "template": self.template}
        if self.source:
            d["source"] = self.source
        if self.description:
            d["description"] = self.description
        if self.truncation != Truncation():
            d["truncation"] = self.truncation.to_spec()
        return d

    def derive(self, id: str, parts, source: str) -> "Pattern":
        """A new pattern from edited template parts (rendered by the one renderer), keeping
        this pattern's truncation rule: soft-prompt and demonstration variants of a source's
        pattern cut inputs as the source did."""
        origin = f"derived from {self.origin}" if self.origin else None
        return Pattern(id, render_template(parts), source=source, truncation=self.truncation, origin=origin)


@dataclass
class Verbalizer:
    """Label id → words. A label's score combines its words by mean probability."""

    id: str
    labels: dict[str, list[str]]
    source: str | None = None
    #: Where the verbalizer was read from (``"verbalizers/sst2.json $.verbalizers[1]"``), for
    #: error messages raised later (e.g. by the encoder); not part of the spec.
    origin: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.labels:
            raise SpecError(f"verbalizer '{self.id}': no labels; fix: map each label id to a list of words")
        self.labels = {str(k): ([v] if isinstance(v, str) else list(v)) for k, v in self.labels.items()}
        for label, words in self.labels.items():
            if not words:
                raise _at(f".labels.{label}", "has no words; fix: give the label at least one word", self.id)
            for j, w in enumerate(words):
                if not isinstance(w, str) or not w.strip():
                    what = "is blank (only spaces)" if isinstance(w, str) else f"is a {type(w).__name__}, not a word"
                    raise _at(f".labels.{label}[{j}]", f"{w!r} {what}; fix: write the label word there, or remove the entry", self.id)
                if w in words[:j]:
                    raise _at(f".labels.{label}[{j}]", f"{w!r} is listed twice; fix: list each word once", self.id)
        owner: dict[str, str] = {}
        for label, words in self.labels.items():
            for w in words:
                key = w.strip()
                if key in owner and owner[key] != label:
                    raise SpecError(
                        f"{self.where}: labels.{owner[key]} and labels.{label} both use the word '{key}', so the "
                        "model cannot tell them apart; fix: give every label its own words"
                    )
                owner[key] = label

    @property
    def where(self) -> str:
        """``verbalizer 'id'`` plus the file and JSON path it came from, when known."""
        return f"{self.origin}: verbalizer '{self.id}'" if self.origin else f"verbalizer '{self.id}'"

    @property
    def label_ids(self) -> list[str]:
        return list(self.labels)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "labels": self.labels}
        if self.source:
            d["source"] = self.source
        return d


#: why a one-label verbalizer (or data with one label) is refused: it would always predict that label
TOO_FEW_LABELS = "a classifier needs at least 2 labels (with one it always predicts it); fix: add words for the task's other labels"


@dataclass
class PVP:
    """A (pattern, verbalizer) pair: the unit that is scored, trained and ensembled."""

    pattern: Pattern
    verbalizer: Verbalizer

    @property
    def id(self) -> str:
        return f"{self.pattern.id}:{self.verbalizer.id}"

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern.to_dict(), "verbalizer": self.verbalizer.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PVP":
        return cls(Pattern(**d["pattern"]), Verbalizer(**d["verbalizer"]))

    def check_labels(self, labels: list[str], where: str = "data") -> None:
        """Labels of the data and of the verbalizer must be the same set, of 2 labels or more."""
        have, want = set(self.verbalizer.labels), set(labels)
        if want - have:
            raise SpecError(
                f"verbalizer '{self.verbalizer.id}': label(s) {sorted(want - have)} occur in {where} "
                "but have no words; fix: add them under 'labels'"
            )
        if have - want:
            raise SpecError(
                f"verbalizer '{self.verbalizer.id}': label(s) {sorted(have - want)} are not labels of {where} "
                f"(labels there: {sorted(want)}); fix: correct the label ids; if they are right, give data with at least "
                "one example of every label"
            )
        if len(have) < 2:
            raise SpecError(f"{self.verbalizer.where}: labels {sorted(have)}: {TOO_FEW_LABELS}")


# ----------------------------------------------------------------------------- JSON files

_SCHEMA_DIR = Path(__file__).parent / "schemas"


def _schema(name: str) -> dict:
    return json.loads((_SCHEMA_DIR / f"{name}.schema.json").read_text())


def _check(path: Path, kind: str) -> tuple[Any, list[str]]:
    """Every problem of a pattern/verbalizer file: schema errors, duplicate ids, bad entries."""
    import jsonschema

    data = read_json(path)
    schema = _schema(kind)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))  # once: lines and broken entries
    problems = problem_lines(errors, str(path))
    items = data.get(kind) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return data, problems
    broken = {e.absolute_path[1] for e in errors if len(e.absolute_path) > 1 and e.absolute_path[0] == kind}
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("id"), str):
            if item["id"] in seen:
                problems.append(f"{path}: $.{kind}[{i}].id: duplicate id '{item['id']}'; fix: give each entry a unique id")
            seen.add(item["id"])
        if i in broken:
            continue
        try:
            (Pattern if kind == "patterns" else Verbalizer)(**item)
        except SpecError as e:
            at = getattr(e, "json_path", None)
            problems.append(f"{path}: $.{kind}[{i}]{at}: {e.detail}" if at else f"{path}: $.{kind}[{i}]: {e}")
    return data, problems


def validate_file(path: str | Path) -> list[str]:
    """Every problem in a pattern or verbalizer file (kind told by its top-level key)."""
    p = Path(path)
    try:
        data = read_json(p)
    except SpecError as e:
        return [str(e)]
    if isinstance(data, dict) and "patterns" in data:
        return _check(p, "patterns")[1]
    if isinstance(data, dict) and "verbalizers" in data:
        data, problems = _check(p, "verbalizers")
        # loading allows it (the data's labels are checked against it), but on its own it is useless
        problems += [
            f"{p}: $.verbalizers[{i}].labels: {TOO_FEW_LABELS}" for i, v in enumerate(data["verbalizers"])
            if isinstance(v, dict) and isinstance(v.get("labels"), dict) and len(v["labels"]) == 1
        ]
        return problems
    if isinstance(data, list):  # the entries without their wrapper: say which key to wrap them in
        kind = "verbalizers" if all(isinstance(x, dict) and "labels" in x for x in data) and data else "patterns"
        return [f"{p}: $: a list, not an object with a '{kind}' list; fix: wrap it: {{\"{kind}\": [...]}}"]
    return [f"{p}: $: expected an object with a 'patterns' or 'verbalizers' list; fix: write "
            "{\"patterns\": [{\"id\": \"it-was\", \"template\": \"{text_a} It was {mask}.\"}]} or "
            "{\"verbalizers\": [{\"id\": \"good-bad\", \"labels\": {\"0\": [\"bad\"], \"1\": [\"good\"]}}]}"]


def _load(path: str | Path, kind: str) -> list:
    p = Path(path)
    _, problems = _check(p, kind)
    if problems:
        raise SpecError(problems[0] + (f" (and {len(problems) - 1} more; run `pet validate {p}`)" if len(problems) > 1 else ""))
    data = read_json(p)
    if kind == "patterns":
        return [Pattern(**item, origin=f"{p} $.patterns[{i}]") for i, item in enumerate(data[kind])]
    return [Verbalizer(**item, origin=f"{p} $.verbalizers[{i}]") for i, item in enumerate(data[kind])]


def load_patterns(path: str | Path) -> list[Pattern]:
    return _load(path, "patterns")


def load_verbalizers(path: str | Path) -> list[Verbalizer]:
    return _load(path, "verbalizers")


def save_patterns(path: str | Path, patterns: list[Pattern], task: str | None = None) -> None:
    _save(path, {"task": task, "patterns": [p.to_dict() for p in patterns]})


def save_verbalizers(path: str | Path, verbalizers: list[Verbalizer], task: str | None = None) -> None:
    _save(path, {"task": task, "verbalizers": [v.to_dict() for v in verbalizers]})


def _save(path: str | Path, data: dict) -> None:
    from ..utils.io import atomic_write_text

    if data.get("task") is None:
        data.pop("task")
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def make_pvps(
    patterns: list[Pattern], verbalizers: list[Verbalizer], ids: list[str] | None = None
) -> list[PVP]:
    """Pair patterns and verbalizers.

    ``ids`` holds ``"pattern:verbalizer"`` strings (or a bare pattern id, paired with the first
    verbalizer); without ids every pattern is paired with the first verbalizer.
    """
    pats = {p.id: p for p in patterns}
    verbs = {v.id: v for v in verbalizers}
    if not verbalizers:
        raise SpecError("no verbalizers given; fix: pass a verbalizer file with at least one entry")
    if not ids:
        return [PVP(p, verbalizers[0]) for p in patterns]
    out = []
    for pid in ids:
        p_id, _, v_id = pid.partition(":")
        if p_id not in pats:
            form = "" if ":" in pid else " (a PVP id is PATTERN:VERBALIZER, or a pattern id alone)"
            raise SpecError(f"PVP '{pid}': unknown pattern '{p_id}'{form}; known: {', '.join(pats)}; "
                            "fix: use one of those ids, or pass --patterns FILE that defines it")
        if v_id and v_id not in verbs:
            raise SpecError(f"PVP '{pid}': unknown verbalizer '{v_id}'; known: {', '.join(verbs)}; "
                            "fix: use one of those ids, or pass --verbalizers FILE that defines it")
        out.append(PVP(pats[p_id], verbs[v_id] if v_id else verbalizers[0]))
    return out
