"""The template language: its syntax tree, the parser, the field filters and the one renderer.

A template is cloze text with placeholders (parsed by hand, never ``eval``):

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

:func:`parse_template` turns text into a tuple of parts (the syntax tree); :func:`render_template`
is its exact inverse (``parse_template(render_template(parts)) == parts`` for every tuple the
parser returns), so code that builds a template from another one (soft prompts, demonstrations)
edits the parts and renders them here: no second writer of template text exists.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from ..errors import SpecError

# ----------------------------------------------------------------------------- the syntax tree


@dataclass(frozen=True)
class Literal:
    """Template words, as written (braces unescaped); the parser merges adjacent text."""

    text: str


@dataclass(frozen=True)
class FieldRef:
    """An example field (``{text_a|lower_first}``) with its filters, applied left to right."""

    name: str
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mask:
    """``{mask}``: where the label word goes."""


@dataclass(frozen=True)
class Special:
    """``{sep}`` or ``{cls}``: one special token id in place."""

    kind: str  # "sep" | "cls"


@dataclass(frozen=True)
class SegmentBreak:
    """``{segment}``: end of the first and start of the second sequence of a pair."""


@dataclass(frozen=True)
class Soft:
    """Soft tokens: ``n`` of them (``{soft}``, ``{soft:N}``), or one per sub-token of ``init``
    (``{soft:"It was"}``, parsed with ``n=0``)."""

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


# ----------------------------------------------------------------------------- the renderer


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def render_part(part: Segment) -> str:
    """Template text of one part (see :func:`render_template`)."""
    if isinstance(part, Literal):
        return _escape(part.text)
    if isinstance(part, FieldRef):
        return "{" + "|".join((part.name, *part.filters)) + "}"
    if isinstance(part, Mask):
        return "{mask}"
    if isinstance(part, SegmentBreak):
        return "{segment}"
    if isinstance(part, Special):
        return "{" + part.kind + "}"
    if isinstance(part, Soft):
        if part.init is not None:
            if '"' in part.init:
                raise SpecError(f"soft token init words {part.init!r} contain a double quote, which a template cannot hold; fix: drop the quote")
            return '{soft:"' + part.init + '"}'
        return "{soft}" if part.n == 1 else f"{{soft:{part.n}}}"
    raise SpecError(f"cannot render template part {part!r}; fix: build templates from pet.prompts.template parts")


def render_template(parts: Sequence[Segment]) -> str:
    """Template text of ``parts``: the inverse of :func:`parse_template`.

    Literal braces are escaped, every placeholder is written in its canonical form (no spaces,
    ``{soft}`` for one soft token), so ``parse_template(render_template(p)) == p`` for every
    ``p`` the parser returns, and text that was already canonical comes back unchanged. Parts
    built by hand may hold adjacent :class:`Literal` s; they render to their concatenation.
    """
    return "".join(render_part(p) for p in parts)
