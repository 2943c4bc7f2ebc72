import pytest

from pet.encoding import PVPEncoder, collate, word_token_ids
from pet.errors import DataError, SpecError
from pet.examples import Example
from pet.spec import PVP, Pattern, Verbalizer

VERB = Verbalizer("gt", {"0": ["terrible"], "1": ["great"]})


def enc(tok, template, max_length=64, verb=VERB):
    return PVPEncoder(PVP(Pattern("p", template), verb), tok, max_length=max_length)


def test_bpe_words_carry_leading_space(roberta):
    _, tok = roberta
    assert tok.convert_ids_to_tokens(word_token_ids(tok, "great")) == ["Ġgreat"]
    e = enc(tok, "{text_a} It was {mask}.")
    assert tok.convert_ids_to_tokens(e.verbalizer_tokens.token_ids[:, 0].tolist()) == ["Ġterrible", "Ġgreat"]
    ids = e.encode([Example({"text_a": "Nice film"})])[0].input_ids
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "Nice", "Ġfilm", "ĠIt", "Ġwas", "<mask>", ".", "</s>"]


def test_glued_mask_uses_word_without_space(roberta):
    _, tok = roberta
    e = enc(tok, '{text_a} "{mask}"')
    assert tok.convert_ids_to_tokens(e.verbalizer_tokens.token_ids[:1, 0].tolist()) == ["ter"]  # no "Ġ": the word is glued to the quote


@pytest.mark.parametrize("fixture", ["bert", "roberta"])
def test_truncation_keeps_template_mask_and_soft_tokens(fixture, request):
    _, tok = request.getfixturevalue(fixture)
    e = enc(tok, "{text_a} {soft:3} Question: {text_b}? {soft:\"It was\"} {mask}.", max_length=40)
    long_a, short_b = "word " * 200, "is it short"
    x = e.encode([Example({"text_a": long_a, "text_b": short_b})])[0]
    assert len(x.input_ids) == 40
    assert x.input_ids[x.mask_start] == tok.mask_token_id
    assert len(x.soft_positions) == 3 + len(tok(" It was", add_special_tokens=False)["input_ids"])
    assert x.soft_positions == sorted(x.soft_positions) and x.soft_positions[-1] < x.mask_start
    # the short field survives whole: longest field is cut first
    b_ids = tok(" " + short_b, add_special_tokens=False)["input_ids"]
    s = x.input_ids
    assert any(s[i : i + len(b_ids)] == b_ids for i in range(len(s)))
    # template words survive
    q = tok(" Question:", add_special_tokens=False)["input_ids"]
    assert any(s[i : i + len(q)] == q for i in range(len(s)))


def test_template_longer_than_limit_names_pattern(bert):
    _, tok = bert
    with pytest.raises(SpecError, match="pattern 'p': its template alone needs"):
        enc(tok, "{text_a} " + "very " * 50 + "{mask}", max_length=32)


def test_missing_field_and_unknown_label(bert):
    _, tok = bert
    e = enc(tok, "{text_a} {text_b} {mask}")
    with pytest.raises(DataError, match="uses field '{text_b}'"):
        e.encode([Example({"text_a": "x"})])
    with pytest.raises(DataError, match="label '7' is not in verbalizer 'gt'"):
        enc(tok, "{text_a} {mask}").encode([Example({"text_a": "x"}, label="7")])


def test_collate_pads_dynamically(bert):
    _, tok = bert
    e = enc(tok, "{text_a} It was {mask}.")
    items = e.encode([Example({"text_a": "a"}), Example({"text_a": "a b c d e f"})])
    b = collate(items, tok.pad_token_id)
    assert b["input_ids"].shape[1] == max(len(i.input_ids) for i in items)
    assert b["attention_mask"].sum().item() == sum(len(i.input_ids) for i in items)


def test_special_placeholders(bert):
    _, tok = bert
    x = enc(tok, "{text_a}{sep}{text_b} {mask}").encode([Example({"text_a": "a", "text_b": "b"})])[0]
    assert tok.convert_ids_to_tokens(x.input_ids) == ["[CLS]", "a", "[SEP]", "b", "[MASK]", "[SEP]"]
