"""PET / iPET: the pure helpers (soft targets, weights, iPET growth), the typed options, the
trainer's stages, and tiny end-to-end fits evaluated with ``pet.evaluation.evaluate``."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

import numpy as np
import pytest

import pet.methods.base as method_base
import pet.methods.pet as pet_module
from pet.estimator.classifier import PetClassifier
from pet.data.registry import task_from_dict
from pet.data.rundata import RunData
from pet.errors import ConfigError
from pet.evaluation import evaluate, fit_evaluate
from pet.examples import Example
from pet.methods import FitSetup, get_method
from pet.methods.pet import IpetOptions, PetOptions, PetTrainer, fit_ipet, fit_pet
from pet.methods.pet_growth import (
    allocate,
    example_key,
    growth_target,
    ipet_grow,
    label_accuracy,
    pre_training_weights,
    soft_targets,
)
from pet.models.prompt_model import PromptModel
from pet.models.scoring import ensemble
from pet.models.sequence import SequenceClassifier
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.loop import TrainConfig

LABELS = ["0", "1"]
GOOD = ["good", "great", "fine", "nice", "lovely", "superb", "fun", "charming"]
BAD = ["bad", "awful", "dull", "boring", "terrible", "poor", "weak", "tedious"]

#: a tiny training budget for every prompt model (the run's seed comes from FitSetup)
BASE = dict(steps=3, batch_size=4, lr=1e-3, max_length=32, eval_batch_size=16)

pytestmark = pytest.mark.usefixtures("one_thread")


def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    return x - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)) - x.max(1, keepdims=True)


def _task(n_pool: int = 16, n_test: int = 8):
    """A tiny separable sentiment task: labelled 4+4, a pool and a test set, all distinct texts."""
    rng = np.random.default_rng(0)

    def make(i, tag):
        lab = str(i % 2)
        word = (GOOD if lab == "1" else BAD)[int(rng.integers(len(GOOD)))]
        return Example({"text_a": f"the {tag} film number {i} was {word}."}, lab, f"{tag}-{i}")

    labelled = [make(i, "train") for i in range(8)]
    pool = [
        Example(dict(e.fields), None, e.guid, {"gold_label": e.label}) for e in (make(i, "pool") for i in range(n_pool))
    ]
    test = [make(i, "test") for i in range(n_test)]
    return labelled, pool, test


def _pvps():
    v1 = Verbalizer("good-bad", {"0": ["bad"], "1": ["good"]})
    v2 = Verbalizer("great-terrible", {"0": ["terrible"], "1": ["great"]})
    return [
        PVP(Pattern("it-was", "{text_a} It was {mask}."), v1),
        PVP(Pattern("just", "Just {mask}! {text_a}"), v2),
    ]


def _setup(model: str, pvps=None, seed: int = 7) -> FitSetup:
    return FitSetup(model=model, labels=list(LABELS), pvps=list(pvps if pvps is not None else _pvps()), seed=seed, max_length=32, device="cpu")


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory):
    """A TaskSpec for evaluation (metric, labels): the toy sentiment task's definition."""
    d = tmp_path_factory.mktemp("toy-task")
    (d / "patterns.json").write_text(json.dumps({"patterns": [p.pattern.to_dict() for p in _pvps()]}))
    (d / "verbalizers.json").write_text(json.dumps({"verbalizers": [p.verbalizer.to_dict() for p in _pvps()]}))
    data = {
        "name": "toy", "folder": "toy", "fields": {"text_a": "text"}, "label": "label", "labels": {"0": "neg", "1": "pos"},
        "splits": {"test": {"file": "test.csv"}}, "metric": "accuracy", "default_pvps": [["it-was", "good-bad"]], "max_length": 32,
        "patterns": "patterns.json", "verbalizers": "verbalizers.json",
    }
    return task_from_dict(data, path=d / "toy.json")


def _accuracy(log_probs, examples) -> float:
    return float(np.mean([LABELS[i] == e.label for i, e in zip(np.asarray(log_probs).argmax(1), examples)]))


def _member_log_probs(stage, examples):
    """A one-model stage's label log-probs, computed on its PromptModel directly."""
    ((model, pvp),) = stage.predictor.members
    return model.predict_log_proba(examples, pvp, batch_size=16, max_length=32, labels=LABELS)


# ----------------------------------------------------------------------------- soft targets / ensemble


def test_ensemble_of_identical_models_equals_each_model():
    rng = np.random.default_rng(1)
    lp = _log_softmax(rng.normal(size=(6, 3)))
    for w in (None, [0.2, 0.5, 0.3]):
        np.testing.assert_allclose(ensemble([lp, lp, lp], w), lp, atol=1e-12)
        np.testing.assert_allclose(soft_targets([lp, lp, lp], w, 2.0), soft_targets([lp], None, 2.0), atol=1e-12)
        np.testing.assert_allclose(soft_targets([lp, lp, lp], w, 1.0), np.exp(lp), atol=1e-12)


def test_soft_targets_rows_sum_to_one_and_logits_equal_log_probs():
    rng = np.random.default_rng(2)
    logits = [rng.normal(size=(10, 4)) * 3 for _ in range(3)]
    w = [0.5, 0.25, 1.0]
    for mode in ("logits", "probs"):
        t = soft_targets(logits, w, 2.0, mode=mode)
        assert t.shape == (10, 4)
        np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-12)
        assert (t >= 0).all()
        # label logits and label log-probs differ by a per-row constant: same targets
        np.testing.assert_allclose(t, soft_targets([_log_softmax(z) for z in logits], w, 2.0, mode=mode), atol=1e-12)
    # PET: softmax of the weighted mean of the logits, divided by T
    zbar = sum(wi * z for wi, z in zip(np.array(w) / sum(w), logits))
    np.testing.assert_allclose(soft_targets(logits, w, 2.0), np.exp(_log_softmax(zbar / 2.0)), atol=1e-12)


def test_soft_targets_temperature_limits():
    rng = np.random.default_rng(3)
    lp = [_log_softmax(rng.normal(size=(5, 3)) * 4) for _ in range(2)]
    np.testing.assert_allclose(soft_targets(lp, None, 1e6), 1 / 3, atol=1e-5)
    sharp = soft_targets(lp, None, 1e-4)
    np.testing.assert_allclose(sharp.max(1), 1.0, atol=1e-6)
    # higher temperature → flatter (higher entropy) rows
    ent = lambda p: -(p * np.log(p)).sum(1)  # noqa: E731
    assert (ent(soft_targets(lp, None, 4.0)) > ent(soft_targets(lp, None, 1.0))).all()
    with pytest.raises(ConfigError):
        soft_targets(lp, None, 0.0)
    with pytest.raises(ConfigError):
        soft_targets(lp, [1.0], 2.0)  # one weight for two models


def test_pre_training_weights():
    gold = ["0", "1", "1", "0"]
    right = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]))
    half = np.log(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]))
    np.testing.assert_allclose(pre_training_weights([right, half], gold, LABELS), [1.0, 0.5])
    np.testing.assert_allclose(pre_training_weights([right, half], gold, LABELS, "mean"), [1.0, 1.0])
    wrong = np.log(np.array([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6]]))
    np.testing.assert_allclose(pre_training_weights([wrong, wrong], gold, LABELS), [1.0, 1.0])  # all 0 → equal
    with pytest.raises(ConfigError):
        pre_training_weights([right], gold, LABELS, "median")


def test_allocate_is_exact_and_proportional():
    assert allocate(24, [4, 2]) == [16, 8]
    assert allocate(128, [16, 16]) == [64, 64]
    for total, counts in [(10, [1, 1, 1]), (7, [3, 2, 2]), (0, [2, 2]), (100, [5, 0, 3])]:
        out = allocate(total, counts)
        assert sum(out) == max(total, 0)
        for o, c in zip(out, counts):
            assert abs(o - total * c / sum(counts)) < 1
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]  # ties go to the first label


# ----------------------------------------------------------------------------- iPET growth


def _ipet_setup(n_pool=100, seed=0):
    rng = np.random.default_rng(seed)
    labelled = [Example({"text_a": f"labelled {i}"}, "0" if i < 4 else "1", f"l{i}") for i in range(6)]  # 4:2
    pool = [Example({"text_a": f"pool {i}"}, None, f"p{i}", {"gold_label": str(i % 2)}) for i in range(n_pool)]
    pool[0] = Example({"text_a": "Labelled  3"}, None, "dup", {"gold_label": "0"})  # same text as a labelled one
    # 4 models: PVP "A" twice (two repetitions), "B", "C". A's models always say the wrong
    # label; B and C say the gold label with random confidence.
    gold = np.array([i % 2 for i in range(n_pool)])
    conf = rng.uniform(0.55, 0.99, size=n_pool)
    good = np.where(gold[:, None] == np.arange(2)[None, :], conf[:, None], 1 - conf[:, None])
    wrong = good[:, ::-1]
    log_probs = [np.log(wrong), np.log(wrong), np.log(good), np.log(good * 0.98 + 0.01)]
    groups = ["A", "A", "B", "C"]
    return labelled, pool, log_probs, groups


@pytest.mark.parametrize("generation", [1, 2])
def test_ipet_grow_sizes_label_distribution_and_voters(generation):
    labelled, pool, log_probs, groups = _ipet_setup()
    for member in range(4):
        g = ipet_grow(labelled, pool, log_probs, member, LABELS, generation, weights=[1, 1, 0.5, 0.75], seed=5)
        target = 6 * 5**generation - 6
        assert g.target == target == len(g.examples)
        # the original 4:2 label distribution, exactly
        assert Counter(e.label for e in g.examples) == {"0": target * 4 // 6, "1": target * 2 // 6}
        # voters: max(1, round(0.25 · (n - 1))), never the member itself (PET)
        assert len(g.voters) == max(1, round(3 * 0.25)) and member not in g.voters
        # every added example carries the label of the voters' ensemble
        w = np.array([1, 1, 0.5, 0.75])[g.voters]
        ens = ensemble([log_probs[v] for v in g.voters], w).argmax(1)
        by_guid = {e.guid: i for i, e in enumerate(pool)}
        assert all(e.label == LABELS[ens[by_guid[e.guid]]] for e in g.examples)
        # labelled examples (by text) are never added
        keys = {example_key(e) for e in labelled}
        assert not any(example_key(e) in keys for e in g.examples)
        assert all(e.meta["ipet_generation"] == generation for e in g.examples)
        if generation == 1:  # the pool is large enough: no example twice
            assert len({e.guid for e in g.examples}) == len(g.examples)


def test_ipet_grow_excludes_only_the_member_itself():
    """PET (paper §3.3, modeling.py): N ⊂ M^{j-1} \\ {M_i}: another repetition of the member's own
    PVP may vote; the member never does."""
    labelled, pool, log_probs, groups = _ipet_setup()
    g = ipet_grow(labelled, pool, log_probs, 0, LABELS, 1, fraction=1.0, seed=1)
    assert g.voters == [1, 2, 3]  # model 1 is PVP A's other repetition
    seen = set()
    for seed in range(40):  # with λ = 0.25 one voter is drawn: over seeds, A's other repetition is among them
        seen.update(ipet_grow(labelled, pool, log_probs, 0, LABELS, 1, seed=seed).voters)
    assert seen == {1, 2, 3}


def test_ipet_grow_is_deterministic_and_seeded():
    labelled, pool, log_probs, groups = _ipet_setup()
    a = ipet_grow(labelled, pool, log_probs, 2, LABELS, 1, seed=3)
    b = ipet_grow(labelled, pool, log_probs, 2, LABELS, 1, seed=3)
    assert [e.guid for e in a.examples] == [e.guid for e in b.examples] and a.voters == b.voters
    c = ipet_grow(labelled, pool, log_probs, 2, LABELS, 1, seed=4)
    assert [e.guid for e in a.examples] != [e.guid for e in c.examples]


def test_ipet_grow_top_mode_takes_most_confident():
    labelled, pool, log_probs, groups = _ipet_setup()
    g = ipet_grow(labelled, pool, log_probs, 0, LABELS, 1, select="top", fraction=1.0, seed=0)
    probs = np.exp(ensemble([log_probs[1], log_probs[2], log_probs[3]]))  # every model but the member
    by_guid = {e.guid: i for i, e in enumerate(pool)}
    for lab in LABELS:
        li = LABELS.index(lab)
        chosen = {by_guid[e.guid] for e in g.examples if e.label == lab}
        cands = [i for i in range(1, len(pool)) if probs[i].argmax() == li]
        best = sorted(cands, key=lambda i: (-probs[i, li], i))[: len(chosen)]
        assert chosen == set(best)


def test_ipet_grow_upsamples_a_small_pool_and_records_shortfall():
    labelled, pool, log_probs, groups = _ipet_setup(n_pool=10)
    g = ipet_grow(labelled, pool, [log_probs[2]] * 4, 0, LABELS, 2, seed=0)  # needs 144 from 9 usable (gold-labelled)
    assert len(g.examples) == 144 and Counter(e.label for e in g.examples) == {"0": 96, "1": 48}
    # every candidate of a label is repeated ⌊need/n⌋ or ⌈need/n⌉ times (4 for "0", 5 for "1")
    for lab, need in (("0", 96), ("1", 48)):
        counts = Counter(e.guid for e in g.examples if e.label == lab)
        n = len(counts)
        assert n == (4 if lab == "0" else 5)
        assert set(counts.values()) <= {need // n, -(-need // n)}
    # a label no pool example is assigned to: filled with the examples most likely to be it
    p1 = np.linspace(0.05, 0.4, 10)
    only0 = [np.log(np.stack([1 - p1, p1], 1))] * 4
    g = ipet_grow(labelled, pool, only0, 0, LABELS, 1, seed=0)
    assert g.per_label == {"0": 16, "1": 8} and g.forced == {"1": 8}
    assert [e.guid for e in g.examples if e.label == "1"] == [f"p{i}" for i in range(9, 1, -1)]


def test_growth_target_keeps_the_label_ratio_or_splits_evenly_at_zero_shot():
    labelled, _, _, _ = _ipet_setup()  # 4 x "0", 2 x "1"
    assert growth_target(labelled, LABELS, 1) == (24, [16, 8])  # |T|·(5 − 1), ratio 2:1
    assert growth_target(labelled, LABELS, 2) == (144, [96, 48])
    # |T| = 0 (PET §3.4, last paragraph): 10·5^(g−1), evenly; the remainder to the first labels (eq_div)
    assert growth_target([], ["a", "b", "c"], 1) == (10, [4, 3, 3])
    assert growth_target([], ["a", "b", "c"], 2) == (50, [17, 17, 16])
    assert growth_target([], LABELS, 3, scale=2, zero_shot_size=6) == (24, [12, 12])


def test_zero_shot_ipet_grow_first_generation_draws_from_the_most_likely():
    """No labelled data: generation 1 draws each label's examples from the ``most_likely`` pool
    examples with the highest p(label), even where another label wins (PET's n_most_likely);
    later generations use the ordinary argmax rule."""
    _, pool, _, _ = _ipet_setup(n_pool=40)
    p1 = np.linspace(0.05, 0.45, 40)  # every voter says "0" everywhere; p("1") grows with the index
    lps = [np.log(np.stack([1 - p1, p1], 1))] * 3
    top3 = {f"p{i}" for i in (37, 38, 39)}
    for select in ("sample", "top"):
        g = ipet_grow([], pool, lps, 0, LABELS, 1, select=select, most_likely=3, seed=1)
        assert g.target == 10 and g.per_label == {"0": 5, "1": 5} and not g.forced and g.most_likely == 3
        ones = [e.guid for e in g.examples if e.label == "1"]
        assert set(ones) == top3 and Counter(ones).most_common(1)[0][1] == 2  # 5 from 3: each once, 2 drawn again
        assert {e.guid for e in g.examples if e.label == "0"} <= {pool[i].guid for i in range(3)}  # p("0") is highest first
        assert all(math.isclose(e.meta["ipet_confidence"], p1[int(e.guid[1:])]) for e in g.examples if e.label == "1")
    g2 = ipet_grow([], pool, lps, 0, LABELS, 2, most_likely=3, seed=1)
    assert g2.target == 50 and g2.per_label == {"0": 25, "1": 25} and g2.most_likely is None
    assert g2.forced == {"1": 25}  # argmax again: no example is assigned "1", so the collapsed-label rule fills it


def test_ipet_grow_needs_two_models():
    labelled, pool, log_probs, _ = _ipet_setup()
    with pytest.raises(ConfigError, match="two"):
        ipet_grow(labelled, pool, log_probs[:1], 0, LABELS, 1)


# ----------------------------------------------------------------------------- typed options


def test_pet_methods_are_registered_with_typed_options():
    pet, ipet = get_method("pet"), get_method("ipet")
    assert pet.options is PetOptions and ipet.options is IpetOptions
    assert pet.family == ipet.family == "hard" and pet.needs_pvps and ipet.needs_pvps
    assert pet.fit_fn is fit_pet and ipet.fit_fn is fit_ipet
    o = pet.make_options({})
    assert (o.ensemble, o.repetitions, o.distill, o.distill_steps, o.distill_lr, o.distill_batch_size) == ("weighted", 1, True, None, None, None)
    assert o.seed is None and o.temperature == 2.0  # seed: the run's; T = 2 as in PET
    i = ipet.make_options({"generations": 1, "lr": 1})  # an int is fine for a float option
    assert (i.generations, i.ipet_fraction, i.ipet_scale, i.ipet_select, i.distill_each_generation) == (1, 0.25, 5, "sample", False)
    assert ipet.make_options({}).generations is None and ipet.make_options({}).ipet_target == 1000  # PET's rule
    assert isinstance(i.lr, float) and i.lr == 1.0
    # every TrainConfig key is a PET option; iPET has PET's options plus its own
    assert set(TrainConfig.keys()) < set(PetOptions.keys()) < set(IpetOptions.keys())
    assert {"generations", "ipet_target", "ipet_fraction", "ipet_scale", "ipet_select", "distill_each_generation",
            "ipet_zero_shot_size", "ipet_most_likely"} == set(IpetOptions.keys()) - set(PetOptions.keys())
    assert (i.ipet_zero_shot_size, i.ipet_most_likely) == (10, 100)  # PET's zero-shot iPET (§3.4, last paragraph)
    assert not ipet.needs_labelled and pet.needs_labelled  # zero-shot iPET starts from the untrained PVPs


@pytest.mark.parametrize(
    "method,options,pattern",
    [
        ("pet", {"distil_steps": 5}, r"pet options: unknown option 'distil_steps'; fix: did you mean 'distill_steps'\?"),
        ("pet", {"repetition": 3}, r"unknown option 'repetition'; fix: did you mean 'repetitions'\?"),
        ("ipet", {"generation": 1}, r"ipet options: unknown option 'generation'; fix: did you mean 'generations'\?"),
        ("pet", {"generations": 1}, r"pet options: unknown option 'generations'"),  # iPET-only
        ("pet", {"ipet_scale": 3}, r"unknown option 'ipet_scale'"),
        ("pet", {"unlabelled_size": 100}, r"unknown option 'unlabelled_size'"),  # removed: pass fewer examples
        ("pet", {"distill_warmup_ratio": 0.1}, r"unknown option 'distill_warmup_ratio'"),  # no free-form distill_<key>
        ("pet", {"not_an_option": 1}, r"unknown option 'not_an_option'; fix: use one of "),
        ("pet", {"ensemble": "median"}, r"ensemble='median': not an allowed value; fix: use one of weighted, mean"),
        ("pet", {"repetitions": 0}, r"repetitions=0: out of range"),
        ("pet", {"distill": "yes"}, r"distill='yes': must be true or false"),
        ("pet", {"distill_steps": -1}, r"distill_steps=-1: out of range"),
        ("pet", {"distill_lr": 0.0}, r"distill_lr=0.0: out of range"),
        ("ipet", {"generations": "x"}, r"generations='x': must be a whole number"),
        ("ipet", {"generations": -1}, r"generations=-1: out of range"),
        ("ipet", {"ipet_fraction": 0.0}, r"ipet_fraction=0.0: out of range"),
        ("ipet", {"ipet_fraction": 1.5}, r"ipet_fraction=1.5: out of range"),
        ("ipet", {"ipet_select": "best"}, r"ipet_select='best': not an allowed value; fix: use one of sample, top"),
    ],
)
def test_pet_options_errors(method, options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        get_method(method).make_options(options)


def test_bad_options_fail_before_any_model_is_loaded():
    labelled, pool, _ = _task()
    setup = _setup("no/such/model/folder")
    # options are checked first: the (missing) model is never touched
    with pytest.raises(ConfigError, match="unknown option 'generations'"):
        get_method("pet").fit(labelled, pool, {"generations": 2}, setup)
    with pytest.raises(ConfigError, match="unknown option 'generations'"):
        PetClassifier("no/such/model/folder", method="pet", pvps=_pvps(), options={"generations": 2}).fit(
            [e.fields["text_a"] for e in labelled], [e.label for e in labelled]
        )


def test_distill_options_override_training_options_for_the_student_only():
    o = PetOptions.from_dict({"steps": 10, "lr": 1e-3, "batch_size": 2, "warmup_ratio": 0.1, "distill_steps": 50, "distill_lr": 1e-4})
    d = o.distill_config()
    assert type(d) is TrainConfig
    assert (d.steps, d.lr, d.batch_size, d.warmup_ratio) == (50, 1e-4, 2, 0.1)
    assert (o.steps, o.lr) == (10, 1e-3)
    d = PetOptions.from_dict({"steps": 10, "distill_batch_size": 8}).distill_config()
    assert (d.steps, d.batch_size) == (10, 8)  # null: the PVP models' value
    d = PetOptions.from_dict({"mlm_weight": 1e-4, "unlabelled_batch_size": 3}).distill_config()
    assert d.mlm_weight == 0.0  # the auxiliary MLM loss is the pattern models' only (PET's recipe)
    assert PetOptions.from_dict({"tune": "lora"}).distill_config().tune == "full"  # so is the tuning mode: the student trains all weights


def test_pet_with_the_auxiliary_mlm_loss_distils(tiny_bert_dir):
    """PET's recipe: the pattern models train with the MLM term, the [CLS] student without it
    (the student's trainer refuses mlm_weight > 0, so this failed after training every model)."""
    labelled, pool, _ = _task()
    opts = {**BASE, "mlm_weight": 1e-4, "unlabelled_batch_size": 3, "distill_steps": 2}
    fitted = get_method("pet").fit(labelled, pool, opts, _setup(tiny_bert_dir))
    assert fitted.final == "distilled"
    assert all("mlm" in e for e in fitted.logs["gen0:it-was:good-bad#0"].entries)
    assert fitted.logs["distilled"].steps == 2 and fitted.logs["distilled"].config["mlm_weight"] == 0.0


def test_cli_flags_come_from_the_options(capsys):
    from pet.cli import main

    for method, present, absent in (
        ("pet", ["--distill-steps", "--distill-lr", "--distill-batch-size", "--ensemble", "--repetitions", "--no-distill", "--temperature"],
         ["--generations", "--ipet-fraction", "--distill-each-generation", "--option"]),
        ("ipet", ["--generations", "--ipet-fraction", "--ipet-scale", "--ipet-select", "--distill-each-generation", "--distill-steps"], ["--option"]),
    ):
        with pytest.raises(SystemExit) as e:
            main(["train", "--method", method, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert f"{method} options" in out
        for flag in present:
            assert flag in out, (method, flag)
        for flag in absent:
            assert flag not in out, (method, flag)
    # iPET-only flags and the removed -o/--option are usage errors for pet
    assert main(["train", "--task", "sst2", "--method", "pet", "--generations", "1"]) == 2
    assert "--generations" in capsys.readouterr().err
    assert main(["train", "--task", "sst2", "--method", "pet", "-o", "distill=false"]) == 2
    assert main(["train", "--task", "sst2", "--method", "pet", "--ensemble", "median"]) == 2
    assert "median" in capsys.readouterr().err


# ----------------------------------------------------------------------------- configuration errors


def test_missing_pool_and_single_pvp_are_clear_config_errors(tiny_bert_dir):
    labelled, pool, _ = _task()
    setup = _setup(tiny_bert_dir)
    with pytest.raises(ConfigError, match="unlabelled pool is empty.*fix:"):
        get_method("pet").fit(labelled, [], BASE, setup)  # distillation needs the pool
    with pytest.raises(ConfigError, match="unlabelled pool is empty"):
        get_method("ipet").fit(labelled, [], {**BASE, "distill": False}, setup)  # iPET labels the pool
    with pytest.raises(ConfigError, match="unlabelled pool is empty"):
        get_method("pet").fit(labelled, [], {**BASE, "distill": False, "mlm_weight": 0.5}, setup)  # MLM loss on the pool
    with pytest.raises(ConfigError, match="two"):
        get_method("ipet").fit(labelled, pool, BASE, _setup(tiny_bert_dir, _pvps()[:1]))
    # two repetitions of one PVP are two models: PET lets each label the other's training set
    with pytest.raises(ConfigError, match="no labelled training examples"):
        get_method("pet").fit([], pool, BASE, setup)
    soft = PVP(Pattern("soft-2", "{text_a} {soft:2} {mask}."), _pvps()[0].verbalizer)
    with pytest.raises(ConfigError, match="soft tokens"):  # a hard-prompt method with only soft PVPs
        get_method("pet").fit(labelled, pool, BASE, _setup(tiny_bert_dir, [soft]))


# ----------------------------------------------------------------------------- end to end (tiny model)


def test_pet_ensemble_only_stages_and_independent_ensemble_score(tiny_bert_dir, toy_task):
    """distill=false: no unlabelled text needed; the ensemble stage is final, and its score is
    exactly that of the members' log-probs combined by ``pet.models.scoring.ensemble`` with PET's
    pre-training weights, computed here from scratch."""
    labelled, _, test = _task()
    labelled = labelled[:7]  # 4 x "0", 3 x "1"
    # on the tiny random model, it-was:good-bad always says "1" and just:awful-great always "0"
    # before training: pre-training accuracies 3/7 and 4/7, so the weighting matters
    pvps = [_pvps()[0], PVP(_pvps()[1].pattern, Verbalizer("awful-great", {"0": ["awful"], "1": ["great"]}))]
    fitted = get_method("pet").fit(labelled, [], {**BASE, "steps": 2, "repetitions": 2, "distill": False}, _setup(tiny_bert_dir, pvps))
    ids = [p.id for p in pvps]
    assert [s.key for s in fitted.stages] == [f"pvp[{ids[0]}]", f"pvp[{ids[1]}]", f"pvp[{ids[0]}]#1", f"pvp[{ids[1]}]#1", "ensemble"]
    assert fitted.final == "ensemble" and fitted.method == "pet" and fitted.labels == LABELS
    members = fitted.stages[:4]
    assert [s.extra["repetition"] for s in members] == [0, 0, 1, 1]
    assert [s.extra["seed"] for s in members] == [7, 7, 8, 8]  # the run's seed + repetition
    assert set(fitted.logs) == {f"gen0:{p}#{r}" for p in ids for r in (0, 1)} and all(log.steps == 2 for log in fitted.logs.values())

    rows = evaluate(fitted, test, toy_task)
    assert [r["key"] for r in rows] == [s.key for s in fitted.stages]
    assert [r["final"] for r in rows] == [False] * 4 + [True]
    for r in rows:
        assert r["method"] == "pet" and r["metric"] == "accuracy" and r["n"] == len(test)
        assert 0.0 <= r["score"] <= 1.0 and r["metrics"]["accuracy"] == r["score"]
        assert r["train_seconds"] > 0 and r["eval_examples_per_second"] > 0 and r["trained_parameters"] > 0
    ens = rows[-1]
    assert ens["pvp"] is None and ens["train_seconds"] == pytest.approx(sum(r["train_seconds"] for r in rows[:4]))
    assert ens["trained_parameters"] == sum(r["trained_parameters"] for r in rows[:4])

    # independent: PET's weights are each PVP's accuracy on the labelled set before training
    fresh = PromptModel.from_pretrained(tiny_bert_dir, device="cpu")
    pre = {p.id: fresh.predict_log_proba(labelled, p, batch_size=16, max_length=32, labels=LABELS) for p in pvps}
    gold = [e.label for e in labelled]
    for s in members:
        assert s.extra["pre_train_accuracy"] == label_accuracy(pre[s.pvp], gold, LABELS)
    w = pre_training_weights([pre[s.pvp] for s in members], gold, LABELS)
    np.testing.assert_allclose(w, [3 / 7, 4 / 7] * 2)  # the weighting is exercised
    np.testing.assert_allclose(fitted.stage("ensemble").extra["weights"], w / w.sum(), atol=1e-6)
    member_lp = [_member_log_probs(s, test) for s in members]
    for s, lp, r in zip(members, member_lp, rows):
        assert r["score"] == _accuracy(lp, test)
    combined = ensemble(member_lp, w)
    np.testing.assert_allclose(fitted.stage("ensemble").predictor.predict_log_proba(test), combined, atol=1e-6)
    assert ens["score"] == _accuracy(combined, test)
    np.testing.assert_allclose(np.exp(combined).sum(1), 1.0, atol=1e-9)


def test_pet_with_distillation_stages_targets_determinism_and_save(tiny_bert_dir, toy_task, tmp_path):
    labelled, pool, test = _task()
    opts = {**BASE, "ensemble": "mean", "distill_steps": 4, "distill_lr": 2e-3}
    fitted = get_method("pet").fit(labelled, pool, opts, _setup(tiny_bert_dir))
    assert [s.key for s in fitted.stages] == ["pvp[it-was:good-bad]", "pvp[just:great-terrible]", "ensemble", "distilled"]
    assert fitted.final == "distilled"
    assert fitted.stage("ensemble").extra["weights"] == [0.5, 0.5]
    # distill_* apply to the student only
    assert fitted.logs["distilled"].steps == 4 and fitted.logs["distilled"].config["lr"] == 2e-3
    assert fitted.logs["gen0:it-was:good-bad#0"].steps == 3 and fitted.logs["gen0:it-was:good-bad#0"].config["lr"] == 1e-3
    d = fitted.stage("distilled")
    assert d.extra["pool_size"] == len(pool) and d.extra["temperature"] == 2.0 and d.extra["teacher_members"] == 2
    assert d.train_seconds > 0 and d.trained_parameters > 0

    # the teacher's targets, recomputed from the members' own log-probs on the pool
    pool_lp = [_member_log_probs(s, pool) for s in fitted.stages[:2]]
    q = soft_targets(pool_lp, None, 2.0)
    assert d.extra["target_entropy"] == round(float(-(q * np.log(q)).sum(1).mean()), 4)
    teacher = soft_targets(pool_lp, None, 1.0).argmax(1)
    assert d.extra["teacher_pool_accuracy"] == round(float(np.mean([LABELS[i] == e.meta["gold_label"] for i, e in zip(teacher, pool)])), 4)

    rows = evaluate(fitted, test, toy_task)
    assert [r["final"] for r in rows] == [False, False, False, True]
    lp = np.asarray(d.predictor.predict_log_proba(test))
    assert lp.shape == (len(test), 2)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, atol=1e-5)
    assert rows[-1]["score"] == _accuracy(lp, test)

    # same seed, same options: the same scores, stage by stage
    again = evaluate(get_method("pet").fit(labelled, pool, opts, _setup(tiny_bert_dir)), test, toy_task)
    assert [r["score"] for r in again] == [r["score"] for r in rows]

    # the final stage is what PetClassifier saves: the distilled [CLS] classifier
    out = PetClassifier.from_fitted(fitted).save(tmp_path / "pet", metrics=rows)
    meta = json.loads((out / "pet_config.json").read_text())
    assert meta["format_version"] == 3 and meta["final_stage"] == "distilled" and meta["predictor"]["kind"] == "sequence-classifier"
    assert meta["options"]["distill_steps"] == 4 and "generations" not in meta["options"]
    assert [r["key"] for r in json.loads((out / "metrics.json").read_text())["stages"]] == [s.key for s in fitted.stages]
    loaded = PetClassifier.load(out, device="cpu")
    np.testing.assert_allclose(loaded.predict_log_proba(test), lp, atol=1e-6)
    assert loaded.score(test, [e.label for e in test]) == rows[-1]["score"]


def test_pet_trainer_ipet_without_distillation(tiny_bert_dir, toy_task):
    """PetTrainer directly: iPET with distill=false ends at the last generation's ensemble,
    whose weights are the generation-0 (pre-training) weights."""
    labelled, pool, test = _task(n_pool=24)
    opts = IpetOptions.from_dict({**BASE, "steps": 2, "generations": 1, "distill": False, "ipet_select": "top"})
    fitted = PetTrainer(opts, _setup(tiny_bert_dir, seed=5), ipet=True).fit(labelled, pool)
    assert fitted.method == "ipet" and fitted.options is opts
    assert [s.key for s in fitted.stages] == [
        "pvp[it-was:good-bad]", "pvp[just:great-terrible]", "ensemble",
        "ipet-gen1[it-was:good-bad]", "ipet-gen1[just:great-terrible]", "ipet-gen1-ensemble",
    ]
    assert fitted.final == "ipet-gen1-ensemble" and fitted.predictor is fitted.stage("ipet-gen1-ensemble").predictor
    gen0, gen1 = fitted.stage("ensemble"), fitted.stage("ipet-gen1-ensemble")
    assert gen1.extra["weights"] == gen0.extra["weights"] and gen1.extra["generation"] == 1
    assert gen1.extra["members"] == ["it-was:good-bad#0", "just:great-terrible#0"]
    for s in fitted.stages[3:5]:
        assert s.extra["seed"] == 5 + 100 and s.extra["train_size"] == len(labelled) * 5
        # with one other PVP, that PVP's model is the only voter
        assert s.extra["voters"] == [m for m in gen0.extra["members"] if not m.startswith(s.pvp)]
    rows = evaluate(fitted, test, toy_task)
    assert [r["final"] for r in rows] == [False] * 5 + [True]


def test_zero_shot_ipet_starts_from_the_untrained_pvps(tiny_bert_dir, toy_task):
    """|T| = 0 (PET §3.4, last paragraph): generation 0 is the untrained PVPs (one model per PVP,
    shared by its repetitions), generation 1 trains on 10 examples split evenly over the labels
    (each label's drawn from its 100 most likely pool examples), generation 2 on 50."""
    _, pool, test = _task(n_pool=24)
    opts = {"generations": None, "ipet_target": 50, "repetitions": 2, "steps": 2, "lr": 1e-3, "batch_size": 4, "max_length": 32,
            "distill_steps": 2}
    fitted = get_method("ipet").fit([], pool, opts, _setup(tiny_bert_dir, seed=3))
    names = [s.name for s in fitted.stages]
    assert names == ["pvp"] * 4 + ["ensemble"] + ["ipet-gen1"] * 4 + ["ipet-gen1-ensemble"] + ["ipet-gen2"] * 4 + ["ipet-gen2-ensemble", "distilled"]
    gen0 = fitted.stages[:4]
    assert all(s.trained_parameters == 0 and s.extra["train_size"] == 0 and s.extra["pre_train_accuracy"] is None for s in gen0)
    assert gen0[0].predictor.members[0][0] is gen0[2].predictor.members[0][0]  # repetitions share the untrained model
    fresh = PromptModel.from_pretrained(tiny_bert_dir, device="cpu")
    np.testing.assert_allclose(_member_log_probs(gen0[0], test), fresh.predict_log_proba(test, _pvps()[0], max_length=32, labels=LABELS),
                               atol=1e-6)  # untrained: exactly the pretrained model's zero-shot scores
    assert fitted.stage("ensemble").extra["weights"] == [0.25] * 4  # no labelled data: equal weights
    for s in fitted.stages:
        if s.name == "ipet-gen1":
            assert s.extra["train_size"] == 10 and s.extra["added_per_label"] == {"0": 5, "1": 5}
            assert s.extra["added_from_most_likely"] == 100 and s.trained_parameters > 0
        if s.name == "ipet-gen2":
            assert s.extra["train_size"] == 50 and s.extra["added_per_label"] == {"0": 25, "1": 25}
    rows = evaluate(fitted, test, toy_task)
    assert rows[-1]["final"] and rows[-1]["stage"] == "distilled"
    with pytest.raises(ConfigError, match="zero-shot iPET.*generations"):
        get_method("ipet").fit([], pool, {**opts, "generations": 0}, _setup(tiny_bert_dir))


def test_ipet_end_to_end_rows_and_training_set_sizes(tiny_bert_dir, toy_task, tmp_path):
    labelled, pool, test = _task(n_pool=24)
    opts = {"generations": 1, "steps": 2, "lr": 1e-3, "batch_size": 4, "max_length": 32, "distill_steps": 2, "distill_each_generation": True}
    fitted = get_method("ipet").fit(labelled, pool, opts, _setup(tiny_bert_dir, seed=3))
    names = [s.name for s in fitted.stages]
    assert names == ["pvp", "pvp", "ensemble", "distilled-gen0", "ipet-gen1", "ipet-gen1", "ipet-gen1-ensemble", "distilled"]
    assert fitted.final == "distilled"
    rows = evaluate(fitted, test, toy_task)
    assert all(r["method"] == "ipet" for r in rows) and [r["final"] for r in rows] == [False] * 7 + [True]
    for s in fitted.stages:
        if s.name == "ipet-gen1":
            # exact sizes and the labelled set's 50/50 label distribution, even when the tiny
            # random ensemble assigns every pool example to one label (then "added_forced")
            assert s.extra["train_size"] == len(labelled) * 5
            assert s.extra["added"] == s.extra["added_target"] == len(labelled) * 4
            assert s.extra["added_per_label"] == {"0": 16, "1": 16}
            assert f"{s.pvp}#0" not in s.extra["voters"]  # never the model itself
            assert s.extra["seed"] == 3 + 100 and s.extra["generation"] == 1
            assert 0 <= s.extra["added_label_accuracy"] <= 1  # the pool's hidden gold labels are known
    assert fitted.stages[0].extra["seed"] == 3  # the run's seed
    assert fitted.stage("distilled-gen0").extra["generation"] == 0 and fitted.stage("distilled").extra["generation"] == 1
    # the distilled classifier saves and reloads with the same score
    out = PetClassifier.from_fitted(fitted).save(tmp_path / "saved", metrics=rows)
    clf = PetClassifier.load(out)
    assert clf.method == "ipet" and clf.saved_config_["final_stage"] == "distilled"
    assert [m["stage"] for m in json.loads((out / "metrics.json").read_text())["stages"]] == names
    assert math.isclose(clf.score(test, [e.label for e in test]), rows[-1]["score"])


def test_fit_never_sees_test_data(tiny_bert_dir, toy_task, monkeypatch):
    """``fit_evaluate``: every example a model is trained on or scores while fitting is a
    training or pool example; the test examples are scored only afterwards, by ``evaluate``."""
    labelled, pool, test = _task()
    phase = ["before"]
    seen: dict[str, set] = {"before": set(), "fit": set(), "eval": set()}

    def record(examples):
        seen[phase[0]].update(e.guid for e in examples)

    def spy(fn, *arg_idx):
        def wrapped(*a, **k):
            for i in arg_idx:
                record(a[i])
            record(k.get("unlabelled") or ())
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(PromptModel, "predict_log_proba", spy(PromptModel.predict_log_proba, 1))
    monkeypatch.setattr(SequenceClassifier, "predict_log_proba", spy(SequenceClassifier.predict_log_proba, 1))
    monkeypatch.setattr(pet_module, "train_prompt_model", spy(pet_module.train_prompt_model, 2))
    monkeypatch.setattr(pet_module, "train_sequence_classifier", spy(pet_module.train_sequence_classifier, 1))
    method = get_method("pet")
    received = {}

    def fit_fn(train, unlabelled, options, setup):
        received.update(train=[e.guid for e in train], unlabelled=[e.guid for e in unlabelled])
        phase[0] = "fit"
        out = method.fit_fn(train, unlabelled, options, setup)
        phase[0] = "eval"
        return out

    monkeypatch.setitem(method_base._METHODS, "pet", dataclasses.replace(method, fit_fn=fit_fn))
    run = RunData(toy_task, labelled, test, _pvps(), [], pool, k=4, seed=7)
    fitted, rows = fit_evaluate("pet", {**BASE, "steps": 1, "distill_steps": 1}, run, tiny_bert_dir, device="cpu")
    test_ids = {e.guid for e in test}
    assert received == {"train": [e.guid for e in labelled], "unlabelled": [e.guid for e in pool]}
    assert seen["fit"] == {e.guid for e in labelled + pool}  # trained on, weighted by, or labelled
    assert not seen["fit"] & test_ids and not seen["before"]
    assert seen["eval"] == test_ids
    assert [r["key"] for r in rows] == [s.key for s in fitted.stages] and rows[-1]["final"] and rows[-1]["n"] == len(test)


def test_pet_classifier_fits_pet_with_original_label_values(tiny_bert_dir):
    labelled, pool, test = _task()
    texts, y = [e.fields["text_a"] for e in labelled], [int(e.label) for e in labelled]
    clf = PetClassifier(tiny_bert_dir, method="pet", pvps=_pvps(), options={**BASE, "steps": 1, "distill_steps": 1}, seed=7, device="cpu")
    with pytest.raises(ConfigError, match="unlabelled pool is empty"):
        clf.fit(texts, y)  # distillation needs unlabelled text
    clf.fit(texts, y, unlabelled=[e.fields["text_a"] for e in pool])
    assert clf.fitted_.final == "distilled" and list(clf.classes_) == [0, 1] and clf.labels_ == LABELS
    X = [e.fields["text_a"] for e in test]
    lp = clf.fitted_.stage("distilled").predictor.predict_log_proba(test)
    np.testing.assert_allclose(clf.predict_log_proba(X), lp, atol=1e-6)
    assert list(clf.predict(X)) == [int(LABELS[i]) for i in lp.argmax(1)]


def test_a_k0_split_only_for_methods_that_need_no_labelled_examples(toy_task):
    """K = 0 (PET's |T| = 0) is an empty labelled set for iPET and zero-shot; any other method gets
    one line naming --shots and the fix."""
    from pet.data.fewshot import few_shot
    from pet.errors import DataError

    for name in ("ipet", "zero-shot"):
        assert few_shot(toy_task, k=0, needs_labelled=get_method(name).needs_labelled) == ([], [])
    for name in ("pet", "prompt-ft", "cls-ft"):
        with pytest.raises(DataError, match=r"^--shots 0 \(k=0\): .*; fix: pass --shots 1 or more") as e:
            few_shot(toy_task, k=0, needs_labelled=get_method(name).needs_labelled)
        assert "\n" not in str(e.value)
