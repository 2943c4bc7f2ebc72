"""pet.evaluation.search / `pet search-verbalizer`: LM-BFF and PETAL label-word search on tiny models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import SHARED
from pet.cli import main
from pet.errors import ConfigError
from pet.examples import Example
from pet.models.prompt_model import PromptModel
from pet.evaluation.search import beam_assignments, candidate_log_probs, cv_rerank_scores, petal_scores, search_for_task, search_verbalizer
from pet.prompts.spec import PVP, Pattern, Verbalizer, load_verbalizers, validate_file

PATTERN = Pattern("it-was", "{text_a} It was {mask}.")


@pytest.fixture(scope="module")
def model(bert):
    return PromptModel(*bert)


@pytest.fixture
def sst2_dir(tmp_path):
    """A data root holding SST-2's 16-13 split and a (small) test file."""
    src = SHARED / "data" / "SST-2"
    (tmp_path / "SST-2").mkdir()
    shutil.copytree(src / "16-13", tmp_path / "SST-2" / "16-13")
    lines = (src / "test.tsv").read_text().splitlines()[:20]
    (tmp_path / "SST-2" / "test.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_beam_finds_the_separating_assignment():
    # candidate 2 is high on label-0 examples, candidate 3 on label-1 examples; 0/1 are noise
    y = np.array([0, 0, 0, 1, 1, 1])
    lp = np.full((6, 5), -5.0)
    lp[:, 0] = -1.0  # a generic word, high everywhere: fine for no label
    lp[y == 0, 2] = -0.5
    lp[y == 1, 3] = -0.5
    lp[y == 0, 3] = -0.8  # ...and fairly high on label 0, so only word 2 beats it there
    cands = [np.array([0, 2, 1]), np.array([3, 4])]  # word 0 first: the beam must keep word 2 too
    best, acc = beam_assignments(lp, y, cands, beam=5)[0]
    assert best == (2, 3) and acc == 1.0
    assert all(len(set(a)) == len(a) for a, _ in beam_assignments(lp, y, cands, beam=5))


def test_petal_prefers_the_discriminative_word():
    y = np.array([0, 0, 1, 1])
    lp = np.log(np.array([[0.5, 0.3], [0.5, 0.3], [0.01, 0.3], [0.01, 0.3]]))
    s = petal_scores(lp, y, 0, np.array([0, 1]))
    assert s[0] > s[1]


def test_cv_rerank_scores_held_out_accuracy_and_zero_for_unfound_words():
    """Without dev data an assignment scores its held-out accuracy per fold, or 0 on a fold whose
    other folds' top candidates lack one of its words; folds are capped by the smallest label."""
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    lp = np.full((7, 4), -6.0)
    lp[y == 0, 0] = -0.5  # word 0: label 0's; word 1: label 1's; words 2 and 3 never win a label
    lp[y == 1, 1] = -0.5
    lp[:, 2] = -3.0
    train = [Example({"text_a": f"t{i}"}, str(c), f"t{i}") for i, c in enumerate(y)]
    scores, n = cv_rerank_scores(lp, y, train, [(0, 1), (1, 0), (0, 2)], n_labels=2, k=1, folds=10, seed=13)
    assert n == 3  # 10 folds asked, label 1 has 3 examples
    assert scores == {(0, 1): 1.0, (1, 0): 0.0, (0, 2): 0.0}
    scores, _ = cv_rerank_scores(lp, y, train, [(0, 2)], n_labels=2, k=2, folds=2, seed=13)  # word 2 is now found
    assert 0.0 < scores[(0, 2)] <= 1.0


def test_multi_token_candidates_use_several_masks(model, sentiment_examples):
    word = "unwatchable"
    from pet.prompts.encoding import PVPEncoder, iter_batches, word_token_ids

    assert len(word_token_ids(model.tokenizer, word)) > 1
    words, lp = candidate_log_probs(model, PATTERN, sentiment_examples, extra_words=[word], max_length=32)
    assert words[-1] == word and lp.shape == (len(sentiment_examples), len(words))
    pvp = PVP(PATTERN, Verbalizer("v", {"_": [word]}))
    enc = PVPEncoder(pvp, model.tokenizer, 32, labels=["_"])
    plain = [Example(e.fields, None, e.guid) for e in sentiment_examples]
    with torch.no_grad():
        _, batch = next(iter_batches(enc.encode(plain), 64, model.tokenizer.pad_token_id, sort_by_length=False))
        want = model.label_scores(batch, enc.verbalizer_tokens)[:, 0].numpy()
    np.testing.assert_allclose(lp[:, -1], want, atol=1e-5)


@pytest.mark.parametrize("method", ["lmbff", "petal"])
def test_search_writes_a_valid_verbalizer_with_scores(model, sentiment_examples, tmp_path, method):
    train, dev = sentiment_examples[:6], sentiment_examples[6:]
    r = search_verbalizer(model, PATTERN, train, ["0", "1"], dev=dev, method=method, words_per_label=2, candidates=20, max_length=32)
    v = r.verbalizer
    assert set(v.labels) == {"0", "1"} and all(len(ws) == 2 for ws in v.labels.values())
    assert not set(v.labels["0"]) & set(v.labels["1"])
    assert {lab: list(ws) for lab, ws in r.scores.items()} == v.labels  # a score for every word
    assert method in v.source and "scores" in v.source
    path = r.save(tmp_path / "v.json", task="sst2")
    assert validate_file(path) == []
    back = load_verbalizers(path)[0]
    assert back.labels == v.labels and back.source == v.source
    if method == "lmbff":
        assert "dev" in r.procedure["rerank"]
        accs = [x["rerank_accuracy"] for x in r.ranking]
        assert accs == sorted(accs, reverse=True)


def test_no_dev_reranks_by_cross_validation(model, sentiment_examples):
    r = search_verbalizer(model, PATTERN, sentiment_examples, ["0", "1"], method="lmbff", candidates=10, rerank=4, folds=2, max_length=32)
    assert "cross-validation" in r.procedure["rerank"]
    assert 1 <= len(r.ranking) <= 4 and all(0.0 <= x["rerank_accuracy"] <= 1.0 for x in r.ranking)


def test_replacing_the_test_file_changes_nothing(sst2_dir, tiny_bert_dir):
    kw = dict(data_dir=sst2_dir, candidates=10, beam=10, rerank=3, max_length=32)
    first = search_for_task("sst2", "it-was", tiny_bert_dir, **kw)
    (sst2_dir / "SST-2" / "test.tsv").write_text("garbage\twith\tno\theader\nat all\n")
    second = search_for_task("sst2", "it-was", tiny_bert_dir, **kw)
    assert first.to_dict() == second.to_dict()
    (sst2_dir / "SST-2" / "test.tsv").unlink()
    assert search_for_task("sst2", "it-was", tiny_bert_dir, **kw).to_dict() == first.to_dict()


def test_cli_writes_a_file_pet_validate_accepts_and_tasks_load(sst2_dir, tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "searched.json"
    rc = main(["search-verbalizer", "--task", "sst2", "--pattern", "it-was", "--model", tiny_bert_dir, "--data-dir", str(sst2_dir),
               "--output", str(out), "--candidates", "10", "--beam", "10", "--method", "petal", "--words-per-label", "2", "--max-length", "32"])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    assert main(["validate", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["task"] == "sst2" and data["verbalizers"][0]["id"] == "search-petal"
    from pet.data import load_task, task_pvps

    pvps = task_pvps(load_task("sst2"), verbalizers=out, ids=["it-was:search-petal"])
    assert pvps[0].verbalizer.labels == data["verbalizers"][0]["labels"]


def test_errors_name_the_culprit(sst2_dir, tiny_bert_dir, model, sentiment_examples, capsys):
    with pytest.raises(ConfigError, match="pattern 'nope'.*fix:"):
        search_for_task("sst2", "nope", tiny_bert_dir, data_dir=sst2_dir)
    with pytest.raises(ConfigError, match="method 'x'.*fix:"):
        search_verbalizer(model, PATTERN, sentiment_examples, ["0", "1"], method="x")
    rc = main(["search-verbalizer", "--pattern", "it-was", "--model", tiny_bert_dir, "--output", "x.json"])
    assert rc == 2 and "exactly one of --task" in capsys.readouterr().err
