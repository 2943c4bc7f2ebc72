"""Property tests (hypothesis) for the template parser and the truncation rule."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pet.prompts.truncation import longest_first as _truncate
from pet.prompts.spec import FieldRef, Literal, Mask, parse_template

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
