"""Pattern-Verbalizer Pairs: the template language, the spec objects and their JSON files.

A *pattern* turns an example into a cloze text with one ``{mask}``; a *verbalizer* maps each
label to one or more words the masked LM could put there. Both are plain dataclasses that
round-trip to the JSON files under ``patterns/`` and ``verbalizers/``.

Template language (parsed by hand, never ``eval``):

* ``{text_a}``, ``{text_b}`` or any other example field, optionally with filters:
  ``{text_a|lower_first}``, ``{text_b|drop_last_char}``, ``{text_a|lower_first|rstrip_punctuation}``
  (see ``FILTERS``: each source's rule has its own name, so a shipped PVP says which it uses);
* ``{mask}`` exactly once (it becomes as many mask tokens as the longest label word needs);
* ``{segment}``: the boundary between the two texts of a pair (PET's ``||``). Everything before
  it is the first sequence, everything after it the second: the tokenizer's own pair layout is
  used (``[CLS] a [SEP] b [SEP]`` with token types 0/1 for BERT, ``<s> a </s></s> b </s>`` for
  RoBERTa), exactly what ``tokenizer(a, b)`` gives. At most once per template;
* ``{sep}`` and ``{cls}``: one separator / classifier token id inserted in place (no change of
  token type; LM-BFF's ``*sep*``/``*cls*``);
* soft tokens ``{soft}`` (one), ``{soft:N}`` (N) and ``{soft:"It was"}`` (one per sub-token of
  the words, initialised from their embeddings);
* ``{{`` and ``}}`` for literal braces.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Union

from ..errors import SpecError
from ..utils.jsonio import json_path, read_json

# ----------------------------------------------------------------------------- template parts


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class FieldRef:
    name: str
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mask:
    pass


@dataclass(frozen=True)
class Special:
    kind: str  # "sep" | "cls"


@dataclass(frozen=True)
class SegmentBreak:
    """``{segment}``: end of the first and start of the second sequence of a pair."""


@dataclass(frozen=True)
class Soft:
    n: int
    init: str | None = None  # words whose embeddings initialise the soft tokens


Segment = Union[Literal, FieldRef, Mask, Special, SegmentBreak, Soft]

_PUNCT_END = re.compile(r"[\s.,;:!?…]+$")


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def _upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def _drop_punct(s: str) -> str:
    return _PUNCT_END.sub("", s)


def _drop_last_char(s: str) -> str:
    return s[:-1]


def _rstrip_punctuation(s: str) -> str:
    return s.rstrip(string.punctuation)


#: Field filters usable in templates (``{text_a|lower_first}``), applied left to right.
#:
#: * ``lower_first`` / ``upper_first``: change the case of the first character (LM-BFF's
#:   ``*sentl_i*`` / ``*sentu_i*``, PET's ``lowercase_first``);
#: * ``drop_last_char``: LM-BFF's ``*sent-_i*``: drops exactly the last character, whatever it
#:   is (``text[:-1]``) — a letter, a digit or the space of tokenised text ending in " .";
#: * ``rstrip_punctuation``: PET's ``remove_final_punc``: ``text.rstrip(string.punctuation)``
#:   (all ASCII punctuation, including quotes and brackets; trailing spaces stay);
#: * ``drop_punct``: general purpose (this project): drops trailing whitespace and sentence
#:   punctuation ``. , ; : ! ? …``; not what either paper did;
#: * ``lower``: lower-case everything.
FILTERS = {
    "lower_first": _lower_first,
    "upper_first": _upper_first,
    "drop_last_char": _drop_last_char,
    "rstrip_punctuation": _rstrip_punctuation,
    "drop_punct": _drop_punct,
    "lower": str.lower,
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"mask", "sep", "cls", "soft", "segment"}


def parse_template(template: str, where: str = "template") -> tuple[Segment, ...]:
    """Parse a template into segments; errors name ``where`` and the column of the problem."""
    if not isinstance(template, str):
        raise SpecError(f"{where}: template must be a string, got {type(template).__name__}")
    segs: list[Segment] = []
    buf: list[str] = []
    i, n = 0, len(template)

    def fail(msg: str, col: int, fix: str) -> SpecError:
        return SpecError(f"{where}: {msg} at column {col + 1} of {template!r}; fix: {fix}")

    while i < n:
        c = template[i]
        if c == "{" and template.startswith("{{", i):
            buf.append("{")
            i += 2
        elif c == "}" and template.startswith("}}", i):
            buf.append("}")
            i += 2
        elif c == "}":
            raise fail("unmatched '}'", i, "write '}}' for a literal brace")
        elif c == "{":
            end = _find_close(template, i)
            if end < 0:
                raise fail("unclosed '{'", i, "close the placeholder with '}' or write '{{'")
            if buf:
                segs.append(Literal("".join(buf)))
                buf = []
            segs.append(_parse_placeholder(template[i + 1 : end], lambda m, f: fail(m, i, f)))
            i = end + 1
        else:
            buf.append(c)
            i += 1
    if buf:
        segs.append(Literal("".join(buf)))
    n_mask = sum(isinstance(s, Mask) for s in segs)
    if n_mask != 1:
        raise SpecError(
            f"{where}: template {template!r} has {n_mask} '{{mask}}' placeholders; "
            "fix: use exactly one {mask} (multi-token label words get extra masks automatically)"
        )
    if sum(isinstance(s, SegmentBreak) for s in segs) > 1:
        raise SpecError(
            f"{where}: template {template!r} has more than one '{{segment}}'; "
            "fix: a pair has two sequences, so use {segment} at most once"
        )
    if not any(isinstance(s, FieldRef) for s in segs):
        raise SpecError(
            f"{where}: template {template!r} uses no example field; fix: add {{text_a}} (or another field)"
        )
    return tuple(segs)


def _find_close(t: str, start: int) -> int:
    """Index of the '}' closing the placeholder at ``start`` (quotes may hold braces)."""
    in_quote = False
    for j in range(start + 1, len(t)):
        if t[j] == '"':
            in_quote = not in_quote
        elif t[j] == "}" and not in_quote:
            return j
        elif t[j] == "{" and not in_quote:
            return -1
    return -1


def _parse_placeholder(body: str, fail) -> Segment:
    b = body.strip()
    if b in ("mask", "sep", "cls", "segment"):
        return Mask() if b == "mask" else SegmentBreak() if b == "segment" else Special(b)
    if b == "soft" or b.startswith("soft:"):
        if b == "soft":
            return Soft(1)
        arg = b[5:].strip()
        if arg.isdigit() and int(arg) > 0:
            return Soft(int(arg))
        if len(arg) >= 3 and arg[0] == '"' and arg[-1] == '"' and arg[1:-1].strip():
            return Soft(0, arg[1:-1])
        raise fail(
            f"bad soft token '{{{body}}}'",
            'write {soft}, {soft:N} with N >= 1, or {soft:"init words"}',
        )
    name, *filters = [p.strip() for p in b.split("|")]
    if not _IDENT.match(name or "-"):
        raise fail(
            f"unknown placeholder '{{{body}}}'",
            "use {mask}, {segment}, {sep}, {cls}, {soft...} or an example field such as {text_a}",
        )
    for f in filters:
        if f not in FILTERS:
            raise fail(f"unknown filter '{f}' in '{{{body}}}'", f"use one of {', '.join(FILTERS)}")
    if name in _RESERVED:
        raise fail(f"'{name}' takes no filters", f"write {{{name}}}")
    return FieldRef(name, tuple(filters))


def apply_filters(value: str, filters: tuple[str, ...]) -> str:
    for f in filters:
        value = FILTERS[f](value)
    return value


# ----------------------------------------------------------------------------- spec objects


@dataclass
class Pattern:
    """A cloze template with an id; ``source`` says which paper (or who) wrote it."""

    id: str
    template: str
    source: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        self.segments  # parse eagerly so a bad template fails where it is built

    @cached_property
    def segments(self) -> tuple[Segment, ...]:
        return parse_template(self.template, f"pattern '{self.id}'")

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
        return d


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
            if not words or any(not isinstance(w, str) or not w.strip() for w in words):
                raise SpecError(
                    f"verbalizer '{self.id}': labels.{label} must be a non-empty list of non-empty words"
                )
            if len(set(words)) != len(words):
                raise SpecError(f"verbalizer '{self.id}': labels.{label} repeats a word; fix: list each word once")
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
        """Labels of the data and of the verbalizer must be the same set."""
        have, want = set(self.verbalizer.labels), set(labels)
        if want - have:
            raise SpecError(
                f"verbalizer '{self.verbalizer.id}': label(s) {sorted(want - have)} occur in {where} "
                "but have no words; fix: add them under 'labels'"
            )
        if have - want:
            raise SpecError(
                f"verbalizer '{self.verbalizer.id}': label(s) {sorted(have - want)} are not labels of {where} "
                f"(labels there: {sorted(want)}); fix: remove them or correct the label ids"
            )


# ----------------------------------------------------------------------------- JSON files

_SCHEMA_DIR = Path(__file__).parent / "schemas"


def _schema(name: str) -> dict:
    return json.loads((_SCHEMA_DIR / f"{name}.schema.json").read_text())


def _schema_errors(data: Any, kind: str) -> list:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema(kind))
    return sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))


def _check(path: Path, kind: str) -> tuple[Any, list[str]]:
    """Every problem of a pattern/verbalizer file: schema errors, duplicate ids, bad entries."""
    data = read_json(path)
    errors = _schema_errors(data, kind)
    problems = [
        f"{path}: {json_path(e.absolute_path)}: {e.message}; fix: see pet/prompts/schemas/{kind}.schema.json" for e in errors
    ]
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
            problems.append(f"{path}: $.{kind}[{i}]: {e}")
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
        return _check(p, "verbalizers")[1]
    return [f"{p}: $: expected an object with a 'patterns' or 'verbalizers' list; fix: see the README"]


def _load(path: str | Path, kind: str) -> list:
    p = Path(path)
    _, problems = _check(p, kind)
    if problems:
        raise SpecError(problems[0] + (f" (and {len(problems) - 1} more; run `pet validate {p}`)" if len(problems) > 1 else ""))
    data = read_json(p)
    if kind == "patterns":
        return [Pattern(**item) for item in data[kind]]
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
            raise SpecError(f"PVP '{pid}': unknown pattern '{p_id}'; known: {', '.join(pats)}")
        if v_id and v_id not in verbs:
            raise SpecError(f"PVP '{pid}': unknown verbalizer '{v_id}'; known: {', '.join(verbs)}")
        out.append(PVP(pats[p_id], verbs[v_id] if v_id else verbalizers[0]))
    return out
