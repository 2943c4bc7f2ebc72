"""ADAPET (Tam et al. 2021): the decoupled label objective and the label-conditioned MLM against
naive recomputations, the LCM inputs (what is masked, the label word at the mask, the targets),
bit-identity when off, the ``adapet`` method end to end, and one-line errors (tiny random models)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED, tiny_mlm

from pet.errors import ConfigError
from pet.estimator.classifier import PetClassifier
from pet.examples import Example
from pet.methods import get_method
from pet.methods.base import FitSetup
from pet.methods.prompt_ft import PromptFTOptions, fit_prompt_ft
from pet.models.prompt_model import PromptModel
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.adapet import (
    ADAPETObjective,
    ADAPETOptions,
    decoupled_label_loss,
    label_conditioned_mlm_loss,
    lcm_batch,
    masked_text_positions,
)
from pet.training.loop import TrainConfig
from pet.training.prompt import train_prompt_model

REPO = Path(__file__).resolve().parent.parent
from test_contrastive import CFG, GOOD_BAD, IT_WAS, JUST, LABELS, TEXTS, TRAIN, Y  # noqa: E402  (the same toy task)

pytestmark = pytest.mark.usefixtures("one_thread")


def fresh(dropout: float = 0.1, family: str = "bert") -> PromptModel:
    """A tiny random masked LM; ``dropout=0`` makes a loss a pure function of the weights."""
    m, tok = tiny_mlm(family)
    if dropout != 0.1:
        cfg = m.config
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = dropout
        torch.manual_seed(0)
        m = type(m)(cfg).eval()
    return PromptModel(m, tok, device="cpu")


def weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def plain(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


# ----------------------------------------------------------------------------- decoupled label objective


def naive_dlo(scores: list[list[float]], labels: list[int]) -> float:
    """-log p_{y*} - Σ_{y≠y*} log(1 - p_y) per example, averaged over examples and labels (ADAPET's
    BCELoss mean over [batch × labels]), one number at a time with math.log."""
    total = 0.0
    for row, y in zip(scores, labels):
        for j, s in enumerate(row):
            p = math.exp(s)
            total += -math.log(p) if j == y else -math.log(1.0 - p)
    return total / (len(scores) * len(scores[0]))


def test_decoupled_label_loss_equals_naive_loop():
    g = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(5, 30, generator=g, dtype=torch.float64) * 3, dim=-1)
    scores = lp[:, [3, 7, 11]]  # three labels' words under a 30-word vocabulary
    labels = torch.tensor([0, 2, 1, 1, 0])
    got = decoupled_label_loss(scores, labels).item()
    want = naive_dlo(scores.tolist(), labels.tolist())
    assert abs(got - want) < 1e-6, (got, want)
    ce = torch.nn.functional.cross_entropy(scores, labels).item()
    assert abs(got - ce) > 1e-3  # a different objective from the cross-entropy over labels


def test_decoupled_label_loss_is_finite_at_probability_one_and_zero():
    scores = torch.tensor([[0.0, -1e-9, -200.0], [-0.5, 0.0, -3.0]], requires_grad=True)
    loss = decoupled_label_loss(scores, torch.tensor([2, 0]))
    loss.backward()
    # each log clamped at -100 as nn.BCELoss: row 0 pays 100 (p=1, wrong) + ~20.7 (p≈1-1e-9, wrong) + 100 (p≈0, gold)
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()
    ref = torch.nn.BCELoss()(torch.exp(scores.detach().double()).reshape(-1), torch.tensor([0, 0, 1, 1, 0, 0.0], dtype=torch.float64))
    assert abs(loss.item() - ref.item()) < 1e-4, (loss.item(), ref.item())


def naive_dlo_of_model(model: PromptModel, pvp: PVP, examples: list[Example], verbalizer: dict[str, list[str]]) -> float:
    """The full masked LM on each example alone: p_y = the mean over y's words of the word's
    probability at the mask under the whole-vocabulary softmax."""
    tok = model.tokenizer
    rows, gold = [], []
    with torch.no_grad():
        for e in examples:
            ids = tok(pvp.pattern.template.replace("{text_a}", e.fields["text_a"]).replace("{mask}", tok.mask_token), return_tensors="pt")["input_ids"]
            at = int((ids[0] == tok.mask_token_id).nonzero()[0, 0])
            prob = torch.softmax(model.mlm(input_ids=ids).logits[0, at].double(), -1)
            rows.append([math.log(sum(float(prob[tok.convert_tokens_to_ids(w)]) for w in words) / len(words)) for words in verbalizer.values()])
            gold.append(list(verbalizer).index(e.label))
    return naive_dlo(rows, gold)


def test_logged_dlo_equals_the_full_vocabulary_probabilities_of_the_label_words():
    """Step 1's logged dlo (dropout off: the untrained weights) equals the one-example-at-a-time
    computation, with a label of two words (p_y = their mean probability)."""
    words = {"0": ["bad", "awful"], "1": ["good"]}
    pvp = PVP(IT_WAS.pattern, Verbalizer("two-words", words))
    model = fresh(dropout=0.0)
    want = naive_dlo_of_model(model, pvp, TRAIN, words)
    cfg = TrainConfig(steps=1, lr=1e-3, batch_size=len(TRAIN), max_length=32)
    log = train_prompt_model(model, pvp, TRAIN, cfg, LABELS, progress=False, adapet=ADAPETObjective(decoupled=True))
    step = log.entries[0]
    assert "ce" not in step and "lcm" not in step
    assert abs(step["dlo"] - want) < 2e-6 and step["loss"] == step["dlo"], (step, want)


# ----------------------------------------------------------------------------- LCM inputs

LONG = [Example({"text_a": t}, y, f"l{i}") for i, (t, y) in enumerate([
    ("a gorgeous , witty , seductive movie with lovely performances", "1"),
    ("the plot is dull and the acting is wooden from start to finish", "0"),
    ("one of the best films of the year", "1"),
    ("bad", "0"),
])]


def _label_of_word(vt, tokens: list[int]) -> int:
    for w in range(len(vt.words)):
        if vt.token_ids[w, : int(vt.lengths[w])].tolist() == tokens:
            return int(vt.word_label[w])
    raise AssertionError(f"{tokens} is no label word")


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("pattern", ["it-was", "just"])
def test_lcm_masks_only_text_and_puts_the_sampled_labels_word_at_the_mask(family, pattern):
    """Expected inputs are built independently (plain tokenizer calls): [special] text template
    WORD template [special]. Over many draws, every masked position is a text token, the unmasked
    input is that sequence with the word of the sampled label, and the target is 1 exactly when
    that word belongs to the gold label. A two-token label word makes the cloze two masks wide,
    so a one-token word shifts the text after it (pattern 'just')."""
    model = fresh(family=family)
    tok = model.tokenizer
    words = {"0": ["bad", "unwatchable"], "1": ["good"], "2": ["fine"]}
    assert len(plain(tok, " unwatchable")) > 1
    pvp = PVP(Pattern(pattern, IT_WAS.pattern.template if pattern == "it-was" else JUST.pattern.template), Verbalizer("v", words))
    labels = ["0", "1", "2"]
    enc = model.encoder_for(pvp, 64, labels)
    vt = enc.verbalizer_tokens
    assert vt.n_masks > 1
    encoded = enc.encode(LONG)
    empty = tok("")["input_ids"]  # the tokenizer's own special tokens around a text: [CLS] [SEP] / <s> </s>
    pre, post = empty[:1], empty[1:]
    gen = torch.Generator().manual_seed(1)
    sampled_counts = np.zeros(3)
    for _ in range(60):
        lcm = lcm_batch(encoded, vt, 0.5, tok.mask_token_id, tok.pad_token_id, gen)
        ids = lcm["batch"]["input_ids"].clone()
        assert (ids[lcm["rows"], lcm["cols"]] == tok.mask_token_id).all()
        ids[lcm["rows"], lcm["cols"]] = lcm["tokens"]  # undo the masking
        for b, e in enumerate(LONG):
            y = int(lcm["sampled"][b])
            sampled_counts[y] += 1
            text = plain(tok, e.fields["text_a"]) if pattern == "it-was" else plain(tok, " " + e.fields["text_a"])
            cands = [plain(tok, " " + w) for w in words[labels[y]]]
            n = int(lcm["batch"]["attention_mask"][b].sum())
            row = ids[b, :n].tolist()
            if pattern == "it-was":
                head = pre + text + plain(tok, " It was")
                word = row[len(head): n - len(plain(tok, ".")) - len(post)]
                assert row == head + word + plain(tok, ".") + post
                text_range = range(len(pre), len(pre) + len(text))
            else:
                head = pre + plain(tok, "Just")
                word = row[len(head): n - len(plain(tok, "!")) - len(text) - len(post)]
                assert row == head + word + plain(tok, "!") + text + post
                start = len(head) + len(word) + len(plain(tok, "!"))
                text_range = range(start, start + len(text))
            assert word in cands, (tok.convert_ids_to_tokens(word), words[labels[y]])
            assert _label_of_word(vt, word) == y
            mine = lcm["cols"][lcm["rows"] == b].tolist()
            assert 1 <= len(mine) <= max(1, int(0.5 * len(text))) and all(c in text_range for c in mine), (mine, text_range)
            gold = labels.index(e.label)
            assert lcm["targets"][lcm["rows"] == b].tolist() == [float(y == gold)] * len(mine)
    assert (sampled_counts > 0.25 * sampled_counts.sum()).all()  # uniform over the 3 labels (80 each expected)


def test_lcm_pair_template_keeps_token_types_and_masks_both_texts_only():
    model = fresh()
    tok = model.tokenizer
    pvp = PVP(Pattern("pair", "{text_a} ? {mask} , {segment} {text_b}"), Verbalizer("yn", {"0": ["no"], "1": ["yes"]}))
    ex = [Example({"text_a": "oil prices rise sharply today", "text_b": "oil prices fall back again"}, "0", "p0")]
    enc = model.encoder_for(pvp, 64, LABELS)
    (e,) = enc.encode(ex)
    a, b = plain(tok, "oil prices rise sharply today"), plain(tok, " oil prices fall back again")
    texts = set(range(1, 1 + len(a)))
    sep = e.input_ids.index(tok.sep_token_id)
    texts |= set(range(sep + 1, sep + 1 + len(b)))
    assert set(e.text_positions) == texts
    hit = set()
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        lcm = lcm_batch([e], enc.verbalizer_tokens, 1.0, tok.mask_token_id, 0, gen)
        hit |= set(lcm["cols"].tolist())
        assert torch.equal(lcm["batch"]["token_type_ids"][0], torch.tensor(e.token_type_ids))
        assert lcm["batch"]["input_ids"][0, e.mask_start] in (tok.convert_tokens_to_ids("no"), tok.convert_tokens_to_ids("yes"))
    assert hit == texts  # every text token gets masked sometime, nothing else ever


@pytest.mark.parametrize("rule", ["longest_first", "pet", "lmbff"])
def test_text_positions_of_truncated_inputs_are_the_kept_text(rule):
    """Truncation cuts text only (lmbff: the tail, [SEP] included): the text positions hold a
    prefix of the text's tokens and every other position is the template's."""
    model = fresh()
    tok = model.tokenizer
    pvp = PVP(Pattern("tail", "It was {mask}. {text_a}", truncation=rule), GOOD_BAD)
    text = "the plot is dull and the acting is wooden from start to finish , a tedious mess"
    (e,) = model.encoder_for(pvp, 12, LABELS).encode([Example({"text_a": text}, "0", "x")])
    kept = [e.input_ids[p] for p in e.text_positions]
    assert 0 < len(kept) < len(plain(tok, " " + text)) and kept == plain(tok, " " + text)[: len(kept)]
    rest = [t for p, t in enumerate(e.input_ids) if p not in set(e.text_positions)]
    cls, sep = tok.cls_token_id, tok.sep_token_id
    template = [cls, *plain(tok, "It was"), tok.mask_token_id, *plain(tok, ".")]
    assert rest == (template if rule == "lmbff" else [*template, sep]) and len(e.input_ids) == 12


def test_masked_count_follows_adapets_formula():
    """n = max(int(u · ratio · T), 2) - 1, u ~ U(0, 1): for T = 40, ratio 0.5, n ranges over 1..18
    with mean (2·1 + Σ_{k=2}^{19} (k-1)) / 20 = 8.65."""
    gen = torch.Generator().manual_seed(0)
    text = list(range(5, 45))
    counts = [len(masked_text_positions(text, 0.5, gen)) for _ in range(4000)]
    assert min(counts) == 1 and max(counts) == 18
    assert abs(np.mean(counts) - 8.65) < 0.3
    assert masked_text_positions([], 0.5, gen) == []
    assert len(masked_text_positions([7], 0.105, gen)) == 1  # at least one token whenever there is text


def naive_lcm(model: PromptModel, lcm: dict) -> float:
    """Each LCM input alone through the full masked LM (logits at every position), BCE of each
    masked token's original-token probability with its target, math.log, mean over masked tokens."""
    total, n = 0.0, 0
    batch = lcm["batch"]
    with torch.no_grad():
        for b in range(batch["input_ids"].shape[0]):
            length = int(batch["attention_mask"][b].sum())
            logits = model.mlm(input_ids=batch["input_ids"][b:b + 1, :length]).logits[0].double()
            for r, c, t, y in zip(lcm["rows"].tolist(), lcm["cols"].tolist(), lcm["tokens"].tolist(), lcm["targets"].tolist()):
                if r == b:
                    p = float(torch.softmax(logits[c], -1)[t])
                    total += -math.log(p) if y == 1 else -math.log(1 - p)
                    n += 1
    return total / n


def test_lcm_loss_equals_naive_recomputation_on_a_fixed_batch():
    model = fresh(dropout=0.0)
    enc = model.encoder_for(IT_WAS, 32, LABELS)
    lcm = lcm_batch(enc.encode(LONG + TRAIN), enc.verbalizer_tokens, 0.5, model.tokenizer.mask_token_id, 0, torch.Generator().manual_seed(3))
    assert 0 < lcm["targets"].sum() < len(lcm["targets"])  # both kinds of target in the batch
    got = label_conditioned_mlm_loss(model, lcm).item()
    assert abs(got - naive_lcm(model, lcm)) < 1e-5


def test_both_terms_train_and_log():
    model = fresh()
    cfg = TrainConfig(steps=4, lr=1e-2, batch_size=4, max_length=32)
    log = train_prompt_model(model, IT_WAS, TRAIN, cfg, LABELS, progress=False, adapet=ADAPETObjective(True, 0.5, 0.3))
    for e in log.entries:
        assert "ce" not in e and e["dlo"] > 0 and e["lcm"] > 0
        assert abs(e["loss"] - (e["dlo"] + 0.5 * e["lcm"])) < 1e-5
    lcm_only = train_prompt_model(fresh(), IT_WAS, TRAIN, cfg, LABELS, progress=False, adapet=ADAPETObjective(lcm_weight=1.0))
    assert all("ce" in e and "lcm" in e and "dlo" not in e for e in lcm_only.entries)


# ----------------------------------------------------------------------------- off = unchanged


def test_off_trains_bit_identically():
    base = fresh()
    plain_log = train_prompt_model(base, IT_WAS, TRAIN, TrainConfig(**CFG), LABELS, progress=False)
    assert ADAPETObjective.from_options(ADAPETOptions()) is None  # the defaults switch nothing on
    off = fresh()
    log = train_prompt_model(off, IT_WAS, TRAIN, TrainConfig(**CFG), LABELS, progress=False, adapet=ADAPETObjective(lcm_mask_ratio=0.5))
    assert all(torch.equal(p, weights(base)[n]) for n, p in weights(off).items())
    assert [e["loss"] for e in log.entries] == [e["loss"] for e in plain_log.entries] and "dlo" not in log.entries[0]
    on = fresh()
    train_prompt_model(on, IT_WAS, TRAIN, TrainConfig(**CFG), LABELS, progress=False, adapet=ADAPETObjective(decoupled=True))
    assert any(not torch.equal(p, weights(base)[n]) for n, p in weights(on).items())


def test_prompt_ft_default_options_are_the_old_prompt_ft(tiny_bert_dir):
    """prompt-ft's defaults (label_loss ce, lcm_weight 0) through the method equal a TrainConfig
    run without the ADAPET argument, model for model; explicit ce and another mask ratio too."""
    setup = FitSetup(model=tiny_bert_dir, labels=LABELS, pvps=[IT_WAS, JUST], seed=3, max_length=32)
    a = fit_prompt_ft(TRAIN, [], PromptFTOptions.from_dict({**CFG, "pvp": ["first"]}), setup)
    b = fit_prompt_ft(TRAIN, [], PromptFTOptions.from_dict({**CFG, "pvp": ["first"], "label_loss": "ce", "lcm_mask_ratio": 0.5}), setup)
    model = PromptModel.from_pretrained(tiny_bert_dir, device="cpu")
    cfg = TrainConfig.from_dict(CFG).resolved(32, 3)
    ref = train_prompt_model(model, IT_WAS, TRAIN, cfg, LABELS, progress=False)
    (log,) = a.logs.values()
    assert [e["loss"] for e in log.entries] == [e["loss"] for e in ref.entries]
    want = model.predict_log_proba(TRAIN, IT_WAS, max_length=32, labels=LABELS)
    assert np.array_equal(a.predictor.predict_log_proba(TRAIN), want)
    assert np.array_equal(a.predictor.predict_log_proba(TRAIN), b.predictor.predict_log_proba(TRAIN))


# ----------------------------------------------------------------------------- the adapet method


def test_adapet_method_defaults_cite_adapet():
    m = get_method("adapet")
    opts = m.make_options({})
    assert (opts.label_loss, opts.lcm_weight, opts.lcm_mask_ratio) == ("decoupled", 1.0, 0.105)
    assert m.family == "hard" and not m.needs_unlabelled(opts) and "Tam et al. 2021" in m.description
    helps = {f.name: f.metadata["help"] for f in m.options.fields()}
    assert "ADAPET" in helps["label_loss"] and "ADAPET: 1" in helps["lcm_weight"] and "0.105" in helps["lcm_mask_ratio"]
    assert "1000" in (m.options.__doc__ or "")  # the paper's budget is named


def test_adapet_fits_predicts_saves_and_loads(tiny_bert_dir, tmp_path):
    clf = PetClassifier(tiny_bert_dir, "adapet", pvps=[IT_WAS, JUST], options={**CFG, "pvp": ["first"]}).fit(TEXTS, Y)
    p1 = clf.predict_proba(TEXTS)
    assert p1.shape == (8, 2) and np.allclose(p1.sum(1), 1)
    out = clf.save(tmp_path / "clf")
    lines = [json.loads(x) for x in (out / "training_log.jsonl").open()]
    assert len(lines) == 3 and all(x["dlo"] > 0 and x["lcm"] > 0 and "ce" not in x for x in lines), lines
    meta = json.loads((out / "pet_config.json").read_text())
    assert meta["method"] == "adapet" and meta["options"]["label_loss"] == "decoupled"
    loaded = PetClassifier.load(out)
    assert np.array_equal(p1, loaded.predict_proba(TEXTS))
    assert loaded.get_params()["method"] == "adapet" and loaded.get_params()["options"]["lcm_weight"] == 1.0


def test_pet_train_method_adapet(tiny_bert_dir, tmp_path, capsys):
    from pet.cli import main

    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"the film {i} was {'good' if i % 2 else 'bad'},{i % 2}\n" for i in range(16)))
    (tmp_path / "p.json").write_text('{"patterns": [{"id": "p", "template": "{text_a} It was {mask}."}]}')
    (tmp_path / "v.json").write_text('{"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}')
    with pytest.raises(SystemExit):
        main(["train", "--method", "adapet", "--help"])
    help_text = capsys.readouterr().out
    assert "--label-loss" in help_text and "--lcm-weight" in help_text and "--lcm-mask-ratio" in help_text
    out = tmp_path / "model"
    rc = main(["train", "--data", str(data), "--patterns", str(tmp_path / "p.json"), "--verbalizers", str(tmp_path / "v.json"),
               "--model", tiny_bert_dir, "--method", "adapet", "--shots", "3", "--steps", "2", "--max-length", "32",
               "--lcm-weight", "0.5", "--no-progress", "--output", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    meta = json.loads((out / "pet_config.json").read_text())
    assert meta["method"] == "adapet" and meta["options"]["lcm_weight"] == 0.5


def test_flagship_adapet_pairs_with_the_contrastive_add_on(monkeypatch):
    from pet.bench.experiment import load_experiment
    from pet.bench.grid import expand_grid

    monkeypatch.chdir(REPO)
    ref = load_experiment(REPO / "benchmarks" / "flagship_contrastive.yaml")
    exp = load_experiment(REPO / "benchmarks" / "flagship_adapet.yaml")
    for attr in ("k", "seeds", "unlabelled", "test_limit", "budgets"):
        assert getattr(exp, attr) == getattr(ref, attr), attr
    cells = expand_grid(exp, str(SHARED / "models" / "minilm-mlm"))
    assert len(cells) == 80 and {c.method_name for c in cells} == {"adapet"}
    assert {c.method for c in cells} == {"prompt-ft-adapet", "prompt-ft-adapet-code"}
    assert {c.task for c in cells} == {c.task for c in expand_grid(ref, "m")}
    paper, code = exp.methods  # the paper's equal weights, and the authors' code's 16:1 weighting
    assert paper.options == {"pvp": ["first"], "label_loss": "decoupled", "lcm_weight": 1.0, "lcm_mask_ratio": 0.105}
    assert code.options == {**paper.options, "lcm_weight": 1 / 16}
    for entry in (paper, code):
        get_method("adapet").make_options(entry.options)  # valid options


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "options, message",
    [
        ({"label_loss": "bce"}, r"adapet options: label_loss='bce': not an allowed value; fix: use one of ce, decoupled"),
        ({"lcm_weight": -1}, r"adapet options: lcm_weight=-1.0: out of range; fix: use a value ≥ 0"),
        ({"lcm_mask_ratio": 0}, r"adapet options: lcm_mask_ratio=0(.0)?: out of range; fix: use a value > 0"),
        ({"lcm_mask_ratio": 1.5}, r"adapet options: lcm_mask_ratio=1.5: out of range; fix:"),
        ({"demonstrations": True}, r"adapet options: lcm_weight=1.0 with demonstrations is not supported.*; fix: set lcm_weight 0"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(ConfigError, match=message) as err:
        get_method("adapet").make_options(options)
    assert "\n" not in str(err.value)


def test_objectives_the_run_cannot_take_are_one_line_errors():
    cfg = TrainConfig(steps=1, max_length=32)
    with pytest.raises(ConfigError, match=r"label_loss decoupled needs class labels but training has soft targets.*; fix: set label_loss ce") as e1:
        train_prompt_model(fresh(), IT_WAS, TRAIN, cfg, LABELS, soft_targets=np.full((8, 2), 0.5), progress=False, adapet=ADAPETObjective(True))
    from pet.models.soft import attach_soft_prompt

    soft = PVP(Pattern("soft", "{text_a} {soft:2} {mask}."), GOOD_BAD)
    model = fresh()
    attach_soft_prompt(model, model.encoder_for(soft, 32, LABELS))
    with pytest.raises(ConfigError, match=r"lcm_weight=1.0 is for hard prompts but the model has a soft prompt; fix:") as e2:
        train_prompt_model(model, soft, TRAIN, cfg, LABELS, progress=False, adapet=ADAPETObjective(lcm_weight=1.0))
    assert "\n" not in str(e1.value) + str(e2.value)
    # demonstrations with the decoupled objective alone are fine
    get_method("adapet").make_options({"demonstrations": True, "lcm_weight": 0})
