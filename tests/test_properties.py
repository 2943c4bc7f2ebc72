"""Property tests (hypothesis) for the template parser and the truncation rule."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pet.prompts.spec import FieldRef, Literal, Mask, parse_template
from pet.prompts.truncation import longest_first as _truncate

text = st.text(alphabet=st.sampled_from(list("ab {}|:\"'.!?\\")), max_size=30)


@given(text)
@settings(max_examples=200, deadline=None)
def test_escaped_literal_text_round_trips(s):
    escaped = s.replace("{", "{{").replace("}", "}}")
    segs = parse_template(escaped + "{text_a}{mask}")
    assert segs[-2:] == (FieldRef("text_a"), Mask())
    assert "".join(x.text for x in segs[:-2] if isinstance(x, Literal)) == s


@given(st.lists(st.integers(0, 300), min_size=1, max_size=4), st.integers(0, 400))
@settings(max_examples=300, deadline=None)
def test_truncation_cuts_longest_first(lengths, budget):
    out = _truncate(lengths, budget)
    assert all(0 <= o <= n for o, n in zip(out, lengths))
    if sum(lengths) <= budget:
        assert out == lengths
    else:
        assert sum(out) == budget
        # a field is only cut if no other field is left longer than it by more than one token
        for i, (o, n) in enumerate(zip(out, lengths)):
            if o < n:
                assert all(out[j] <= o + 1 for j in range(len(out)))


# Data text never yields special ids, whatever special-token strings it contains (issue 13).
_pieces = st.sampled_from(["[MASK]", "<mask>", "[SEP]", "[CLS]", "<s>", "</s>", "<pad>", "[PAD]", "<unk>", "[UNK]",
                           " ", "a", "great", ".", "<", ">", "[", "]", "/", "mask", "é"])
_TOKS = {}


def _tok(name):
    from conftest import _tokenizer

    if name not in _TOKS:
        _TOKS[name] = _tokenizer(name)
    return _TOKS[name]


@given(st.lists(_pieces, min_size=1, max_size=12).map("".join), st.sampled_from(["bert-wordpiece", "roberta-bpe", "sentencepiece"]))
@settings(max_examples=150, deadline=None)
def test_plain_text_never_gives_special_ids(s, name):
    from pet.prompts.encoding import plain_ids

    tok = _tok(name)
    ids = plain_ids(tok, [s])[0]
    assert not (set(tok.all_special_ids) - {tok.unk_token_id}) & set(ids)


@given(st.text(alphabet=st.sampled_from(list("ab .,!?\"'()")), max_size=20))
@settings(max_examples=200, deadline=None)
def test_source_filters_are_the_sources_expressions(s):
    import string

    from pet.prompts.spec import apply_filters

    assert apply_filters(s, ("drop_last_char",)) == s[:-1]  # LM-BFF *sent-_i*
    assert apply_filters(s, ("rstrip_punctuation",)) == s.rstrip(string.punctuation)  # PET remove_final_punc
    assert apply_filters(s, ("lower_first",)) == s[:1].lower() + s[1:]


# ----------------------------------------------------------------------------- the renderer (issue 18)

from pathlib import Path

from pet.prompts.template import FILTERS, SegmentBreak, Soft, Special, render_template

_words = st.text(alphabet=st.sampled_from(list("ab {}|:\"'.!?\\ \t")), min_size=1, max_size=8)
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n not in {"mask", "sep", "cls", "soft", "segment"})
_field = st.builds(FieldRef, _names, st.lists(st.sampled_from(sorted(FILTERS)), max_size=3).map(tuple))
_soft = st.one_of(st.builds(Soft, st.integers(1, 9)),
                  st.builds(lambda w: Soft(0, w), st.text(alphabet=st.sampled_from(list("ab {}|:'. ")), min_size=1, max_size=8)
                            .filter(lambda w: w.strip())))
_other = st.one_of(_field, _soft, st.builds(Special, st.sampled_from(["sep", "cls"])), st.builds(Literal, _words))


def _normal(parts: list) -> tuple:
    """What the parser returns: adjacent text merged, no empty text."""
    out: list = []
    for p in parts:
        if isinstance(p, Literal) and out and isinstance(out[-1], Literal):
            p = Literal(out.pop().text + p.text)
        out.append(p)
    return tuple(p for p in out if not (isinstance(p, Literal) and not p.text))


@st.composite
def _templates(draw):
    parts = draw(st.lists(_other, max_size=8))
    parts.insert(draw(st.integers(0, len(parts))), draw(_field))
    parts.insert(draw(st.integers(0, len(parts))), Mask())
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), SegmentBreak())
    return _normal(parts)


@given(_templates())
@settings(max_examples=400, deadline=None)
def test_render_is_the_inverse_of_parse(parts):
    text = render_template(parts)
    assert parse_template(text) == parts
    assert render_template(parse_template(text)) == text  # canonical text is a fixed point


def test_every_shipped_pattern_round_trips():
    from pet.prompts.spec import load_patterns

    files = sorted((Path(__file__).resolve().parent.parent / "patterns").glob("*.json"))
    n = 0
    for f in files:
        for p in load_patterns(f):
            assert parse_template(render_template(p.segments)) == p.segments, (f.name, p.id)
            n += 1
    assert len(files) >= 20 and n >= 80


# ----------------------------------------------------------------------------- PET's truncation rule


def _pet_loop(lengths, sequence, budget):
    """PET's PVP.truncate, token by token (the reference for the closed form)."""
    out = list(lengths)
    for _ in range(max(0, sum(out) - budget)):
        size = [sum(n for n, s in zip(out, sequence) if s == k) for k in (0, 1)]
        k = 0 if size[0] > size[1] else 1
        i = max(i for i, s in enumerate(sequence) if s == k and out[i])
        out[i] -= 1
    return out


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 1)), min_size=1, max_size=5), st.integers(0, 200))
@settings(max_examples=400, deadline=None)
def test_pet_truncation_closed_form_is_pets_loop(fields, budget):
    from pet.prompts.truncation import pet_truncate

    lengths, sequence = [n for n, _ in fields], [s for _, s in fields]
    assert pet_truncate(lengths, sequence, budget) == _pet_loop(lengths, sequence, budget)
