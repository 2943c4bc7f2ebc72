import pytest

from pet.errors import DataError, SpecError
from pet.examples import Example
from pet.prompts.encoding import PVPEncoder, collate, word_token_ids
from pet.prompts.spec import PVP, Pattern, Verbalizer

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


# ----------------------------------------------------------------------------- issue 12 / 13
from conftest import _tokenizer

SPECIALS = "[MASK] <mask> [SEP] [CLS] <s> </s> <pad> [PAD] [UNK] <unk> [MASK]"


@pytest.mark.parametrize("name", ["bert-wordpiece", "roberta-bpe", "sentencepiece"])
def test_special_token_strings_in_data_are_plain_text(name):
    tok = _tokenizer(name)
    e = enc(tok, "{text_a} It was {mask}. {segment} {text_b}", max_length=128)
    x = e.encode([Example({"text_a": f"so {SPECIALS} good", "text_b": f"{SPECIALS}"})])[0]
    specials = set(tok.all_special_ids) - {tok.unk_token_id}
    lay = e.layout
    template_specials = len(lay.before[0]) + len(lay.before_b[0]) + len(lay.after_b[0])
    assert sum(i in specials for i in x.input_ids) == template_specials + e.verbalizer_tokens.n_masks
    assert x.input_ids.count(tok.mask_token_id) == e.verbalizer_tokens.n_masks == 1
    assert x.input_ids[x.mask_start] == tok.mask_token_id
    # the characters are there: decoding the text part gives the strings back
    assert "mask" in tok.decode(x.input_ids[: x.mask_start]).lower()


@pytest.mark.parametrize("name", ["bert-wordpiece", "roberta-bpe", "sentencepiece"])
def test_special_token_strings_in_template_words_and_label_words_are_plain(name):
    tok = _tokenizer(name)
    # (SentencePiece has no '<' piece: '<mask>' would be an unknown-token error there)
    verb = Verbalizer("v", {"0": ["[MASK]" if name == "sentencepiece" else "<mask>"], "1": ["[SEP]"]})
    e = enc(tok, "{text_a} [MASK] </s> {mask}.", verb=verb)
    x = e.encode([Example({"text_a": "a"})])[0]
    assert x.input_ids.count(tok.mask_token_id) == e.verbalizer_tokens.n_masks
    specials = set(tok.all_special_ids) - {tok.unk_token_id}
    assert not specials & set(e.verbalizer_tokens.token_ids.flatten().tolist()) - {0}


def test_token_type_ids_follow_the_tokenizers_pair_layout():
    bert = _tokenizer("bert-wordpiece")
    x = enc(bert, " Just {mask} ! {segment} {text_a}").encode([Example({"text_a": "good food"})])[0]
    assert bert.convert_ids_to_tokens(x.input_ids) == ["[CLS]", "just", "[MASK]", "!", "[SEP]", "good", "food", "[SEP]"]
    assert x.token_type_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    pair = bert("just [MASK] !", "good food")  # what tokenizer(a, b) gives
    assert (pair["input_ids"], pair["token_type_ids"]) == (x.input_ids, x.token_type_ids)
    single = enc(bert, "{text_a} It was {mask}.").encode([Example({"text_a": "ok"})])[0]
    assert single.token_type_ids == [0] * len(single.input_ids)

    rob = _tokenizer("roberta-bpe")
    y = enc(rob, " Just {mask} ! {segment} {text_a}").encode([Example({"text_a": "good food"})])[0]
    assert rob.convert_ids_to_tokens(y.input_ids) == ["<s>", "ĠJust", "<mask>", "Ġ!", "</s>", "</s>", "Ġgood", "Ġfood", "</s>"]
    assert y.token_type_ids is None  # RoBERTa takes no token types

    sp = _tokenizer("sentencepiece")  # T5's pair layout: a </s> b </s>
    z = enc(sp, "{text_a} {mask} {segment} {text_b}").encode([Example({"text_a": "a", "text_b": "b"})])[0]
    assert sp.convert_ids_to_tokens(z.input_ids).count("</s>") == 2


def test_collate_pads_token_types_only_when_present():
    bert = _tokenizer("bert-wordpiece")
    items = enc(bert, "{text_a} {segment} {mask}.").encode([Example({"text_a": "a b c"}), Example({"text_a": "a"})])
    b = collate(items, bert.pad_token_id)
    assert b["token_type_ids"].shape == b["input_ids"].shape
    assert b["token_type_ids"][1].tolist()[len(items[1].input_ids):] == [0] * (b["input_ids"].shape[1] - len(items[1].input_ids))
    rob = _tokenizer("roberta-bpe")
    assert "token_type_ids" not in collate(enc(rob, "{text_a} {mask}.").encode([Example({"text_a": "a"})]), rob.pad_token_id)


def test_labels_whose_words_tokenise_alike_are_an_error(tmp_path):
    from pet.prompts.spec import load_verbalizers, save_verbalizers

    bert = _tokenizer("bert-wordpiece")  # uncased: "Great" and "great" are the same token
    save_verbalizers(tmp_path / "v.json", [Verbalizer("case", {"0": ["Great"], "1": ["great"]})])
    verb = load_verbalizers(tmp_path / "v.json")[0]
    with pytest.raises(SpecError) as e:
        enc(bert, "{text_a} {mask}.", verb=verb)
    msg = str(e.value)
    assert str(tmp_path / "v.json") in msg and "$.verbalizers[0]" in msg and "labels.0" in msg and "labels.1" in msg
    assert "fix:" in msg and "\n" not in msg
    enc(_tokenizer("roberta-bpe"), "{text_a} {mask}.", verb=verb)  # cased BPE tells them apart


def test_encode_records_is_what_show_prints():
    from pet.prompts.encoding import encode_records

    bert = _tokenizer("bert-wordpiece")
    pvp = PVP(Pattern("p", " Just {mask} ! {segment} {text_a}"), Verbalizer("v", {"0": ["bad", "awful"], "1": ["good"]}))
    rec = encode_records(pvp, bert, [Example({"text_a": "fine"}, "1", "g1")])[0]
    assert rec["guid"] == "g1" and rec["fields"] == {"text_a": "fine"}
    assert rec["tokens"] == bert.convert_ids_to_tokens(rec["input_ids"])
    assert rec["mask_positions"] == [2] and len(rec["token_type_ids"]) == len(rec["input_ids"])
    assert rec["label_token_ids"] == {"0": [bert("bad", add_special_tokens=False)["input_ids"], bert("awful", add_special_tokens=False)["input_ids"]],
                                      "1": [bert("good", add_special_tokens=False)["input_ids"]]}


@pytest.mark.parametrize("name", ["bert-wordpiece", "roberta-bpe"])
def test_tokenize_plain_single_sep_is_lmbffs_finetuning_input(name):
    """LM-BFF's no-prompt input: [CLS] a [SEP] b [SEP] with ONE separator (<s> a </s> b </s>),
    cut at max_length from the tail; the default stays the tokenizer's own pair layout."""
    from conftest import _tokenizer

    from pet.errors import SpecError
    from pet.prompts.plain import tokenize_plain

    tok = _tokenizer(name)
    enc = lambda t: tok(t, add_special_tokens=False)["input_ids"]
    exs = [Example({"text_a": "A man sleeps.", "text_b": "Nobody sleeps."}), Example({"text_a": "Just one text."})]
    pair, single = tokenize_plain(tok, exs, 64, pair_format="single_sep")
    cls, sep = tok.cls_token_id, tok.sep_token_id
    assert pair == [cls, *enc("A man sleeps."), sep, *enc("Nobody sleeps."), sep]
    assert single == [cls, *enc("Just one text."), sep]
    assert tokenize_plain(tok, exs, 64) == [tok("A man sleeps.", "Nobody sleeps.")["input_ids"], tok("Just one text.")["input_ids"]]
    if "Roberta" in type(tok).__name__:
        assert tokenize_plain(tok, exs[:1], 64)[0].count(sep) == 3 and pair.count(sep) == 2
    assert tokenize_plain(tok, exs[:1], 6, pair_format="single_sep")[0] == pair[:6]  # LM-BFF's tail cut
    with pytest.raises(SpecError, match="fix: use one of tokenizer, single_sep"):
        tokenize_plain(tok, exs, 64, pair_format="double")


@pytest.mark.parametrize("name", ["bert-wordpiece", "roberta-bpe", "sentencepiece"])
def test_long_text_gives_no_transformers_length_warning(name):
    """pet tokenizes whole fields and truncates the ids itself, so transformers' "Token indices
    sequence length is longer than the specified maximum" warning (logged once per tokenizer,
    which records it in ``deprecation_warnings``) would be wrong: it is never triggered."""
    tok = _tokenizer(name)
    tok.model_max_length = 16
    key = "sequence-length-is-longer-than-the-specified-maximum"
    tok.deprecation_warnings.pop(key, None)
    x = enc(tok, "{text_a} It was {mask}.", max_length=24).encode([Example({"text_a": "word " * 200 + "[MASK] </s>"})])[0]
    assert len(x.input_ids) == 24 and not tok.deprecation_warnings.get(key)
    tok("word " * 200)  # the same tokenizer called plainly does warn: the check above can fail
    assert tok.deprecation_warnings.get(key)
