"""LM-BFF demonstrations: rendering, sampling, similarity filtering, truncation, the ensemble
over demonstration sets, and the methods' options (zero-shot, prompt-ft) with save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_mlm

from pet.estimator.classifier import PetClassifier
from pet.prompts.demonstrations import DemoConfig, DemoSampler, demonstration_pvp, mlm_embedder, with_demonstrations
from pet.prompts.encoding import PVPEncoder
from pet.errors import ConfigError, DataError
from pet.examples import Example
from pet.methods import FitSetup, get_method
from pet.models.prompt_model import PromptModel
from pet.methods.predictors import DemonstrationEnsemble, PromptEnsemble
from pet.models.scoring import ensemble
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.loop import IndexStream
from pet.training.prompt import train_prompt_model

PVP_ = PVP(Pattern("it-was", "{text_a} It was {mask}."), Verbalizer("gt", {"0": ["terrible"], "1": ["great"]}))


def test_rendering_puts_label_words_after_the_query(roberta, sentiment_examples):
    _, tok = roberta
    d = demonstration_pvp(PVP_, ["0", "1"], sep=True)
    assert d.id == PVP_.id and d.verbalizer is PVP_.verbalizer
    pool = sentiment_examples
    aug = with_demonstrations(pool[:1], [[pool[1], pool[2]]])
    e = PVPEncoder(d, tok, 256).encode(aug)[0]
    text = tok.decode(e.input_ids)
    q, d0, d1 = pool[0].fields["text_a"], pool[1].fields["text_a"], pool[2].fields["text_a"]
    assert text.index(q) < text.index("<mask>") < text.index(d0 + " It was terrible.") < text.index(d1 + " It was great.")
    assert e.input_ids.count(tok.mask_token_id) == 1 and e.input_ids.count(tok.sep_token_id) == 3


def test_truncation_cuts_text_never_masks_or_template(bert):
    _, tok = bert
    long = " ".join(["word"] * 200)
    pool = [Example({"text_a": long + f" {i}"}, str(i % 2), f"p{i}") for i in range(4)]
    d = demonstration_pvp(PVP_, ["0", "1"], sep=True)
    aug = with_demonstrations(pool[:1], DemoSampler(pool, ["0", "1"], DemoConfig(seed=1)).sample(pool[:1], 0))
    e = PVPEncoder(d, tok, 64).encode(aug)[0]
    toks = tok.convert_ids_to_tokens(e.input_ids)
    assert len(e.input_ids) <= 64 and toks.count("[MASK]") == 1 and toks[e.mask_start] == "[MASK]"
    assert "terrible" in toks and "great" in toks and toks.count("was") == 3 and toks.count("word") > 10


def test_sampling_never_uses_the_query_and_does_not_depend_on_the_batch(sentiment_examples):
    s = DemoSampler(sentiment_examples, ["0", "1"], DemoConfig(seed=3))
    for k in range(20):
        for q, demos in zip(sentiment_examples, s.sample(sentiment_examples, k)):
            assert [d.label for d in demos] == ["0", "1"]
            assert all(d.fields != q.fields for d in demos)
    assert s.sample(sentiment_examples[3:4], 5) == s.sample(sentiment_examples, 5)[3:4]
    assert len({tuple(d.guid for d in s.sample(sentiment_examples[:1], k)[0]) for k in range(20)}) > 1  # sets differ


def test_similarity_filter_samples_from_the_most_similar_half():
    # 1-d "embeddings": the text's number; the query is 0, so the nearest examples are the smallest
    pool = [Example({"text_a": str(v)}, "0" if v % 2 == 0 else "1", f"g{v}") for v in range(1, 21)]

    def embed(texts):
        return np.array([[1.0, float(t)] for t in texts])

    s = DemoSampler(pool, ["0", "1"], DemoConfig(similarity="mlm", filter_rate=0.5, seed=0), embed)
    got = {d.fields["text_a"] for k in range(40) for d in s.sample([Example({"text_a": "0"})], k)[0]}
    assert got == {"2", "4", "6", "8", "10"} | {"1", "3", "5", "7", "9"}  # int(20 // 2 * 0.5) = 5 nearest per label
    # a training example as the query (LM-BFF's limit_each_label over the pool without it):
    # int(19 // 2 * 0.5) = 4 nearest per label, never itself
    got = {d.fields["text_a"] for k in range(60) for d in s.sample([pool[3]], k)[0]}  # the query is "4"

    def cos(v):  # cosine of [1, v] with the query's [1, 4]
        return (1 + 4 * v) / np.hypot(1, v) / np.hypot(1, 4)

    want = set()
    for parity in (0, 1):
        others = [v for v in range(1, 21) if v % 2 == parity and v != 4]
        want |= {str(v) for v in sorted(others, key=cos, reverse=True)[:4]}
    assert got == want and len(want) == 8 and "4" not in got
    with pytest.raises(ConfigError, match="fix:"):
        DemoSampler(pool, ["0", "1"], DemoConfig(similarity="mlm"))


def test_mlm_embedder_mean_pools(bert):
    m = PromptModel(*bert)
    e = mlm_embedder(m)(["a good film", "a bad film", "x"])
    assert e.shape == (3, 32) and not np.allclose(e[0], e[1])


def test_zero_shot_with_demonstrations_averages_the_sets(tiny_bert_dir, sentiment_examples):
    labels = ["0", "1"]
    setup = FitSetup(model=tiny_bert_dir, labels=labels, pvps=[PVP_], max_length=32)
    zs = get_method("zero-shot")
    fitted = zs.fit(sentiment_examples, [], {"demonstrations": True, "demo_sets": 3, "demo_max_length": 96}, setup)
    pred = fitted.predictor
    assert isinstance(pred, DemonstrationEnsemble)
    queries = [Example({"text_a": "what a film"}, "1", "q1"), Example({"text_a": "dreadful"}, "0", "q2")]
    model = pred.members[0][0]
    d = demonstration_pvp(PVP_, labels, sep=True)
    sets = [model.predict_log_proba(with_demonstrations(queries, pred.sampler.sample(queries, s)), d, max_length=96, labels=labels) for s in range(3)]
    np.testing.assert_allclose(pred.predict_log_proba(queries), ensemble(sets, None), atol=1e-9)
    plain = zs.fit(sentiment_examples, [], {}, setup).predictor
    assert isinstance(plain, PromptEnsemble)  # off: the unchanged predictor
    assert not np.allclose(plain.predict_log_proba(queries), pred.predict_log_proba(queries))
    with pytest.raises(ConfigError, match="calibrate.*fix:"):
        zs.fit(sentiment_examples, [], {"demonstrations": True, "calibrate": True}, setup)
    with pytest.raises(ConfigError, match="demo_similarity.*fix:"):
        zs.fit(sentiment_examples, [], {"demonstrations": True, "demo_similarity": "sbert"}, setup)
    with pytest.raises(ConfigError, match="demonstrations need labelled"):
        zs.fit([], [], {"demonstrations": True}, setup)


def test_prompt_ft_with_demonstrations_saves_and_loads(tiny_bert_dir, sentiment_examples, tmp_path, one_thread):
    texts = [e.fields["text_a"] for e in sentiment_examples]
    y = [int(e.label) for e in sentiment_examples]
    opts = {"steps": 2, "batch_size": 2, "demonstrations": True, "demo_sets": 2, "demo_similarity": "mlm", "demo_max_length": 96}
    clf = PetClassifier(tiny_bert_dir, "prompt-ft", task="sst2", pvps=["it-was:great-terrible"], options=opts, max_length=32).fit(texts, y)
    assert isinstance(clf.fitted_.predictor, DemonstrationEnsemble)
    assert clf.fitted_.stages[0].extra["demonstrations"]["sets"] == 2
    p = clf.predict_proba(["a fine film", "awful"])
    clf.save(tmp_path / "m")
    back = PetClassifier.load(tmp_path / "m")
    assert isinstance(back.fitted_.predictor, DemonstrationEnsemble)
    np.testing.assert_allclose(back.predict_proba(["a fine film", "awful"]), p, atol=1e-6)


def test_options_are_experiment_keys():
    for name in ("zero-shot", "prompt-ft"):
        o = get_method(name).make_options({"demonstrations": True, "demo_sets": 4, "demo_similarity": "st:all-MiniLM-L6-v2"})
        assert o.demonstrations and o.demo_sets == 4
        with pytest.raises(ConfigError, match="demo_sets"):
            get_method(name).make_options({"demo_sets": 0})


def test_demonstration_pvp_keeps_the_rule_and_lmbff_limits_cut_demos_as_other_sentences(roberta):
    """LM-BFF (first_sent_limit for the query's sentence 0, other_sent_limit for every
    demonstration sentence): our demonstration PVP against LM-BFF's demo template
    ``*cls**sent_0*_It_was*mask*.*sep+**sent_1*_It_was*label_0*.*sep+**sent_2*_It_was*label_1*.*sep+*``."""
    _, tok = roberta
    rule = {"rule": "lmbff", "first_sent_limit": 12, "other_sent_limit": 5}
    base = PVP(Pattern("it-was", "{text_a} It was {mask}.", truncation=rule), PVP_.verbalizer)
    d = demonstration_pvp(base, ["0", "1"], sep=True)
    assert d.pattern.truncation == base.pattern.truncation
    texts = ["a long query " * 8, "the first demonstration is long too", "second demo with many words in it"]
    ex = with_demonstrations([Example({"text_a": texts[0]}, "1", "q")], [[Example({"text_a": texts[1]}, "0"), Example({"text_a": texts[2]}, "1")]])
    got = PVPEncoder(d, tok, 30).encode(ex)[0].input_ids

    def enc(t):
        return tok(t, add_special_tokens=False)["input_ids"]

    want = [tok.cls_token_id, *enc(texts[0])[:12], *enc(" It was"), tok.mask_token_id, *enc("."), tok.sep_token_id]
    for text, word in ((texts[1], " terrible"), (texts[2], " great")):
        want += [*enc(text)[:5], *enc(" It was"), *enc(word), *enc("."), tok.sep_token_id]
    assert got == want[:30] and len(want) > 30  # limits, then LM-BFF's tail cut


# ---------------------------------------------------------------- LM-BFF's training and dev protocol


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.mlm.parameters()])


def test_redraw_trains_each_draw_on_its_own_version(sentiment_examples, one_thread):
    """``redraw(i, d)`` is called for the d-th draw of example i, d counted independently from the
    loop's seeded index stream; returning the example itself reproduces plain training exactly,
    other versions train on other inputs; a version with another label is a one-line error."""
    train = sentiment_examples[:4]
    cfg = {"steps": 3, "batch_size": 2, "grad_accum": 2, "lr": 1e-3, "seed": 5, "max_length": 32}
    plain = PromptModel(*tiny_mlm("bert"))
    train_prompt_model(plain, PVP_, train, cfg, ["0", "1"], progress=False)

    calls = []

    def same(i, d):
        calls.append((i, d))
        return train[i]

    m = PromptModel(*tiny_mlm("bert"))
    train_prompt_model(m, PVP_, train, cfg, ["0", "1"], progress=False, redraw=same)
    torch.testing.assert_close(_params(m), _params(plain), atol=0, rtol=0)
    stream = IndexStream(len(train), 2, 5)
    drawn = [i for _ in range(3 * 2) for i in next(stream)]
    want = [(i, drawn[:k].count(i)) for k, i in enumerate(drawn)]
    assert calls == want and max(d for _, d in calls) >= 2

    other = PromptModel(*tiny_mlm("bert"))
    train_prompt_model(other, PVP_, train, cfg, ["0", "1"], progress=False,
                       redraw=lambda i, d: Example({"text_a": f"{train[i].fields['text_a']} take {d}"}, train[i].label))
    assert not torch.equal(_params(other), _params(plain))
    with pytest.raises(DataError, match=r"redraw\(.*label.*fix:"):
        train_prompt_model(PromptModel(*tiny_mlm("bert")), PVP_, train, cfg, ["0", "1"], progress=False,
                           redraw=lambda i, d: Example(train[i].fields, "1" if train[i].label == "0" else "0"))


def test_dev_sets_score_the_averaged_log_probs(sentiment_examples, one_thread, monkeypatch):
    """With ``dev_sets`` every dev scoring scores each version and records the accuracy of their
    mean log-probs (LM-BFF averages ``num_sample`` sets on dev as on test). The scores are made
    up so that version 0 alone is always wrong, version 1 right and more confident."""
    train, dev = sentiment_examples[:4], sentiment_examples[4:]
    versions = [dev, [Example({"text_a": e.fields["text_a"] + " indeed"}, e.label) for e in dev]]
    gold = np.array([int(e.label) for e in dev])
    scored = []

    def fake(self, examples, *a, **kw):
        second = examples[0].fields["text_a"].endswith(" indeed")
        p = np.where(np.eye(2)[gold] == 1, 0.9 if second else 0.4, 0.1 if second else 0.6)
        scored.append(list(examples))
        return np.log(p)

    monkeypatch.setattr(PromptModel, "predict_log_proba", fake)
    cfg = {"steps": 2, "batch_size": 2, "lr": 1e-3, "seed": 1, "max_length": 32, "eval_every": 1}
    log = train_prompt_model(PromptModel(*tiny_mlm("bert")), PVP_, train, cfg, ["0", "1"], progress=False, dev=dev, dev_sets=versions)
    assert scored == [versions[0], versions[1]] * 2
    assert [e["dev_score"] for e in log.entries] == [1.0, 1.0]
    scored.clear()
    alone = train_prompt_model(PromptModel(*tiny_mlm("bert")), PVP_, train, cfg, ["0", "1"], progress=False, dev=dev)
    assert scored == [dev, dev] and [e["dev_score"] for e in alone.entries] == [0.0, 0.0]
    with pytest.raises(ConfigError, match="dev_sets.*fix:"):
        train_prompt_model(PromptModel(*tiny_mlm("bert")), PVP_, train, cfg, ["0", "1"], progress=False, dev=dev, dev_sets=[dev[:2]])


def test_prompt_ft_redraws_demonstrations_and_scores_dev_with_every_set(tiny_bert_dir, sentiment_examples, monkeypatch, one_thread):
    """prompt-ft with demonstrations trains as LM-BFF's dataset does: a new demonstration set each
    time an example is drawn (never the example itself, one per label), and the dev set that picks
    the checkpoint scored with ``demo_sets`` sets."""
    import pet.methods.prompt_ft as prompt_ft

    seen = {}
    real = prompt_ft.train_prompt_model

    def spy(model, pvp, train, config, labels, **kw):
        seen.update(kw, train=train)
        return real(model, pvp, train, config, labels, **kw)

    monkeypatch.setattr(prompt_ft, "train_prompt_model", spy)
    train, dev = sentiment_examples, [Example({"text_a": "a fine film"}, "1", "d1"), Example({"text_a": "dull"}, "0", "d2")]
    setup = FitSetup(model=tiny_bert_dir, labels=["0", "1"], pvps=[PVP_], max_length=32, dev=dev)
    opts = {"steps": 4, "batch_size": 4, "demonstrations": True, "demo_sets": 3, "demo_max_length": 96, "eval_every": 2}
    get_method("prompt-ft").fit(train, [], opts, setup)
    redraw = seen["redraw"]
    for i, q in enumerate(train):
        takes = [redraw(i, d) for d in range(6)]
        assert takes[0] == seen["train"][i] and all(t.label == q.label for t in takes)
        demos = {tuple(v for k, v in sorted(t.fields.items()) if k.startswith("demo")) for t in takes}
        assert len(demos) > 1  # redrawn, not fixed for the run
        assert all(q.fields["text_a"] not in d for d in demos)
        assert all(t.fields["demo0__text_a"] in {e.fields["text_a"] for e in train if e.label == "0"} for t in takes)
    assert len(seen["dev_sets"]) == 3 and all([e.label for e in v] == ["1", "0"] for v in seen["dev_sets"])
    assert len({v[0].fields["demo1__text_a"] for v in seen["dev_sets"]} | {v[1].fields["demo0__text_a"] for v in seen["dev_sets"]}) > 1


def test_a_saved_st_similarity_encoder_lives_in_the_folder(tiny_bert_dir, sentiment_examples, tmp_path, one_thread):
    """demo_similarity st:PATH: the sentence encoder is saved inside the classifier's folder and
    loaded from there (the original may be gone); a folder that names the encoder only by its
    name, points outside itself, or carries a foreign module class is refused on load."""
    import json
    import shutil

    from test_setfit import make_body

    from pet.errors import IntegrityError, ModelError
    from pet.estimator.manifest import write_manifest

    texts = [e.fields["text_a"] for e in sentiment_examples]
    y = [int(e.label) for e in sentiment_examples]
    body = make_body(tmp_path / "st")
    opts = {"steps": 1, "batch_size": 2, "demonstrations": True, "demo_sets": 2, "demo_similarity": f"st:{body}", "demo_max_length": 96}
    clf = PetClassifier(tiny_bert_dir, "prompt-ft", task="sst2", pvps=["it-was:great-terrible"], options=opts, max_length=32).fit(texts, y)
    p = clf.predict_proba(["a fine film", "awful"])
    clf.save(tmp_path / "m")
    assert (tmp_path / "m" / "similarity" / "modules.json").is_file()
    shutil.rmtree(tmp_path / "st")  # the encoder the classifier was made with is gone
    back = PetClassifier.load(tmp_path / "m")
    np.testing.assert_allclose(back.predict_proba(["a fine film", "awful"]), p, atol=1e-6)

    spec_file = tmp_path / "m" / "pet_config.json"
    good = spec_file.read_text()

    def with_demo(**patch):
        spec = json.loads(good)
        demo = spec["predictor"]["demonstrations"]
        for k, v in patch.items():
            if v is None:
                demo.pop(k)
            else:
                demo[k] = v
        spec_file.write_text(json.dumps(spec))
        write_manifest(tmp_path / "m")

    with_demo(similarity_path=None)  # a folder naming the encoder only: loading it would read outside the folder
    with pytest.raises(ModelError, match=r"saved without its encoder.*fix: re-save"):
        PetClassifier.load(tmp_path / "m")
    with_demo(similarity_path="../st")
    with pytest.raises((ModelError, IntegrityError), match=r"similarity_path"):
        PetClassifier.load(tmp_path / "m")
    with_demo()
    modules = tmp_path / "m" / "similarity" / "modules.json"
    modules.write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "os.system"}]))
    write_manifest(tmp_path / "m")
    with pytest.raises(ModelError, match="'os.system' is not a sentence-transformers module"):
        PetClassifier.load(tmp_path / "m")
