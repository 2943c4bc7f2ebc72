"""Hostile or careless use of single commands (audit 3): `pet train --test` that is (or repeats)
the labelled data, `pet compare-prompts` errors naming the flag typed, `pet validate` on
experiment files and on stderr, `pet show` refusing ignored or bad arguments, `pet
search-verbalizer --id` / `--words-per-label`, and error messages that locate the problem."""

from __future__ import annotations

import json
import os

import pytest

from pet.cli import main
from pet.data.rundata import own_run_data
from pet.errors import DataError, SpecError


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(capsys, argv) -> str:
    code, out, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "fix:" in lines[0], (code, out, err)
    return lines[0]


@pytest.fixture
def spec_files(tmp_path):
    pats = tmp_path / "p.json"
    pats.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."},
                                             {"id": "s", "template": "{text_a} {soft:2} {mask}."}]}))
    verbs = tmp_path / "v.json"
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"1": ["bad"], "5": ["good"]}}]}))
    return pats, verbs


@pytest.fixture
def reviews(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\n" + "".join(f"good film {i},5\nbad film {i},1\n" for i in range(6)))
    return csv


# ----------------------------------------------------------------------------- finding 4: train --test


@pytest.fixture
def stop_training(monkeypatch):
    """`pet train` stops where training would start, printing what it was given."""
    import pet.cli.train as train
    from pet.errors import PetError

    def stop(method, options, run, *a, **kw):
        raise PetError(f"stopped: {len(run.train)} train, {len(run.test)} test; fix: none")

    monkeypatch.setattr(train, "fit_evaluate", stop)


def _train(csv, test, spec_files):
    pats, verbs = spec_files
    return ["train", "--data", csv, "--test", test, "--text-field", "review", "--label-field", "stars", "--patterns", pats,
            "--verbalizers", verbs, "--method", "prompt-ft", "--shots", "2", "--steps", "1", "--model", "m", "--no-progress"]


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink"])
def test_train_refuses_a_test_file_that_is_the_labelled_file(reviews, spec_files, tmp_path, capsys, monkeypatch, stop_training, how):
    test = reviews
    if how == "relative":
        monkeypatch.chdir(tmp_path)
        test = "./reviews.csv"
    elif how == "symlink":
        test = tmp_path / "link.csv"
        test.symlink_to(reviews)
    elif how == "hardlink":
        test = tmp_path / "hard.csv"
        os.link(reviews, test)
    msg = one_error(capsys, _train(reviews, test, spec_files))
    assert f"--test {test}" in msg and "is the labelled data itself" in msg and "fix: drop --test" in msg
    with pytest.raises(DataError, match="is the labelled data itself"):  # the Python API too
        own_run_data(reviews, {"text_a": "review"}, "stars", k=2, patterns=spec_files[0], verbalizers=spec_files[1], test=test)


def test_test_rows_repeating_training_texts_are_dropped_with_a_note(reviews, spec_files, tmp_path, capsys, stop_training):
    pats, verbs = spec_files
    run_ = own_run_data(reviews, {"text_a": "review"}, "stars", k=2, seed=13, patterns=pats, verbalizers=verbs)
    drawn = [e.fields["text_a"] for e in run_.train]
    label = {e.fields["text_a"]: e.label for e in run_.train}
    test = tmp_path / "test.csv"  # two drawn texts (one under another label: still a trained text) and two new ones
    test.write_text("review,stars\n" + f"{drawn[0]},{label[drawn[0]]}\n{drawn[1]},{'1' if label[drawn[1]] == '5' else '5'}\n"
                    "fresh praise,5\nfresh scorn,1\n")
    got = own_run_data(reviews, {"text_a": "review"}, "stars", k=2, seed=13, patterns=pats, verbalizers=verbs, test=test)
    assert [e.fields["text_a"] for e in got.test] == ["fresh praise", "fresh scorn"]
    assert got.notes == [f"{test}: 2 test examples with the same text as a training example drawn from {reviews} were dropped; 2 are tested"]
    code, _, err = run(_train(reviews, test, spec_files), capsys)
    assert code == 2 and f"note: {test}: 2 test examples" in err and "stopped: 4 train, 2 test" in err
    # nothing left to test: refused
    test.write_text("review,stars\n" + "".join(f"{t},{label[t]}\n" for t in drawn))
    assert "every test example is also one of the 4 training examples" in one_error(capsys, _train(reviews, test, spec_files))


def test_a_separate_test_file_without_overlap_has_no_note(reviews, spec_files, tmp_path):
    test = tmp_path / "test.csv"
    test.write_text("review,stars\nfresh praise,5\nfresh scorn,1\n")
    got = own_run_data(reviews, {"text_a": "review"}, "stars", k=2, patterns=spec_files[0], verbalizers=spec_files[1], test=test)
    assert len(got.test) == 2 and got.notes == []


# ----------------------------------------------------------------------------- finding 15: compare-prompts


@pytest.fixture
def no_experiment(monkeypatch):
    import pet.cli.compare_prompts as cp

    def ran(*a, **kw):
        raise AssertionError("the experiment ran")

    monkeypatch.setattr(cp, "run_experiment", ran)


@pytest.mark.parametrize("extra,needle", [
    (["--set", "stepz=3"], "--set stepz=3 (for prompt-ft): unknown option 'stepz'; fix: did you mean 'steps'?"),
    (["--set", "prompt-tuning.stepz=3"], "--set prompt-tuning.stepz=3: unknown option 'stepz'"),
    (["--set", "steps=abc"], "--set steps=abc (for prompt-ft): steps='abc': must be a whole number"),
    (["--set", "steps=abc", "--steps", "1"], "--set steps=abc and --steps 1 both give the training steps; fix: give one of them"),
    (["--set", "steps=3", "--steps", "1"], "--set steps=3 and --steps 1 both give the training steps"),
    (["--seeds", "-1"], "--seeds -1: -1 is out of range; fix: give a whole number from 0"),
    (["--seeds", "13,x"], "--seeds 13,x: 'x' is not a whole number"),
    (["--seeds", "13,13"], "--seeds 13,13: seed 13 is listed twice"),
    (["--pvps", "nope:nope"], "--pvps nope:nope: PVP 'nope:nope': unknown pattern 'nope'"),
    (["--pvps", "nocolon"], "(a PVP id is PATTERN:VERBALIZER, or a pattern id alone)"),
    (["--methods", "zero-shot,zero-shot"], "--methods zero-shot,zero-shot: 'zero-shot' is listed twice; fix: list each method once"),
    (["--methods", ""], "--methods '': no method named; fix:"),
    (["--methods", " , "], "no method named"),
    (["--methods", "zeroshot"], "--methods zeroshot: unknown method 'zeroshot'; fix: did you mean 'zero-shot'?"),
    (["--methods", "zero-shot", "--steps", "5"], "--steps 5: none of zero-shot trains; fix: drop --steps"),
    (["--methods", "zero-shot", "--set", "batch_size=8"], "--set batch_size=8: an option without METHOD. goes to the trained methods"),
])
def test_compare_prompts_errors_name_the_flag(tiny_bert_dir, tmp_path, capsys, no_experiment, extra, needle):
    msg = one_error(capsys, ["compare-prompts", "--task", "sst2", "--model", tiny_bert_dir, "--output", tmp_path / "out", *extra])
    assert needle in msg and "experiment" not in msg and "$." not in msg and '"label"' not in msg
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- finding 16: validate


def test_validate_checks_experiment_files(tmp_path, capsys):
    good = tmp_path / "exp.yaml"
    good.write_text("tasks: [sst2]\nmethods: [zero-shot]\nk: [16]\nseeds: [13]\n")
    code, out, err = run(["validate", good], capsys)
    assert code == 0 and not err and out.strip() == f"{good}: ok (experiment file; `pet bench {good} --dry-run` lists its cells)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [sst2]\nmethods: [zero-shot, nope]\n")
    msg = one_error(capsys, ["validate", bad])
    assert msg.startswith(f"error: {bad}: $.methods[1].name: unknown method 'nope'") and "malformed JSON" not in msg
    as_json = tmp_path / "exp.json"
    as_json.write_text(json.dumps({"tasks": ["sst2"], "methods": ["zero-shot"], "k": ["x"]}))
    assert f"{as_json}: $.k[0]" in one_error(capsys, ["validate", as_json])


def test_validate_problems_go_to_stderr_ok_lines_to_stdout(spec_files, tmp_path, capsys):
    pats, _ = spec_files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"patterns": [{"id": "p", "template": "no mask {text_a}"}, {"id": "p", "template": "{mask} {text_a}"}]}))
    code, out, err = run(["validate", pats, bad], capsys)
    assert code == 2 and out.strip() == f"{pats}: ok"
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(x.startswith(f"error: {bad}: $.patterns[") and "fix:" in x for x in lines)


# ----------------------------------------------------------------------------- finding 17: show


@pytest.mark.parametrize("extra,needle", [
    (["--pvps", "a:nope"], "PVP 'a:nope': unknown verbalizer 'nope'"),
    (["--pvps", "nope"], "PVP 'nope': unknown pattern 'nope' (a PVP id is PATTERN:VERBALIZER"),
    (["--format", "jsonl"], "--format is read only with --encode; fix: add --encode"),
    (["--split", "train"], "--split is read only with --encode"),
    (["--limit", "2"], "--limit is read only with --encode"),
])
def test_show_refuses_bad_or_ignored_arguments(spec_files, tiny_bert_dir, capsys, extra, needle):
    pats, verbs = spec_files
    assert needle in one_error(capsys, ["show", "--patterns", pats, "--verbalizers", verbs, "--tokenizer", tiny_bert_dir, *extra])


def test_show_task_pvps_are_checked_and_pick_what_is_shown(capsys):
    assert "unknown verbalizer 'nope'" in one_error(capsys, ["show", "--task", "sst2", "--pvps", "it-was:nope"])
    code, out, _ = run(["show", "--task", "sst2", "--pvps", "all-in-all"], capsys)
    assert code == 0 and [x.split(":")[0] for x in out.splitlines() if x.startswith("pattern ")] == ["pattern all-in-all"]


def test_show_refuses_task_with_data(reviews, tiny_bert_dir, capsys):
    for extra in ([], ["--encode"]):
        msg = one_error(capsys, ["show", "--task", "sst2", "--data", reviews, "--text-field", "review", "--tokenizer", tiny_bert_dir, *extra])
        assert f"--task sst2 and --data {reviews}: give one of them" in msg


def test_show_tokenizer_path_that_does_not_exist(spec_files, tmp_path, capsys):
    pats, verbs = spec_files
    msg = one_error(capsys, ["show", "--patterns", pats, "--verbalizers", verbs, "--tokenizer", tmp_path / "nonexist"])
    assert f"cannot load tokenizer '{tmp_path / 'nonexist'}': no such file or folder" in msg and "Repo id" not in msg


def test_show_model_that_is_a_saved_classifier(spec_files, tiny_bert_dir, tmp_path, capsys):
    import shutil

    saved = tmp_path / "saved"
    shutil.copytree(tiny_bert_dir, saved / "models" / "0")
    (saved / "pet_config.json").write_text("{}")
    pats, verbs = spec_files
    msg = one_error(capsys, ["show", "--patterns", pats, "--verbalizers", verbs, "--model", saved])
    assert f"'{saved}' is a saved pet classifier" in msg and f"fix: pass --tokenizer {saved / 'models' / '0'}" in msg
    assert f"pet predict {saved}" in msg


def test_show_encode_marks_soft_positions(reviews, spec_files, tiny_bert_dir, capsys):
    pats, verbs = spec_files
    base = ["show", "--encode", "--data", reviews, "--text-field", "review", "--label-field", "stars", "--patterns", pats,
            "--verbalizers", verbs, "--tokenizer", tiny_bert_dir, "--limit", "1"]
    code, out, _ = run([*base, "--pvps", "s:v"], capsys)
    cells = out.splitlines()[3].split()
    assert code == 0 and [c.split(":")[0] for c in cells[-5:]] == ["{soft}", "{soft}", "*[MASK]", ".", "[SEP]"]
    assert sum(c.startswith("{soft}:") for c in cells) == 2 and not any(c.startswith("[UNK]") for c in cells)
    assert "{soft} = a soft-prompt position" in out
    code, out, _ = run([*base, "--pvps", "a:v"], capsys)
    assert code == 0 and "{soft}" not in out
    code, out, _ = run(["show", "--patterns", pats, "--verbalizers", verbs, "--tokenizer", tiny_bert_dir], capsys)
    assert code == 0 and "cloze s: [CLS] <text_a> {soft} {soft} [MASK] . [SEP]   ({soft} = a soft-prompt position)" in out


# ----------------------------------------------------------------------------- finding 18: search-verbalizer


@pytest.mark.parametrize("extra,needle", [
    (["--id", "bad id:colon"], "--id 'bad id:colon': a verbalizer id must be non-empty, without ':'"),
    (["--id", ""], "--id '': a verbalizer id must be non-empty"),
    (["--words-per-label", "6", "--candidates", "5"], "--words-per-label 6 is more than --candidates 5"),
])
def test_search_verbalizer_refuses_bad_id_and_word_counts(reviews, spec_files, tmp_path, capsys, extra, needle):
    pats, _ = spec_files
    out = tmp_path / "out.json"
    msg = one_error(capsys, ["search-verbalizer", "--data", reviews, "--text-field", "review", "--label-field", "stars", "--patterns", pats,
                             "--pattern", "a", "--model", tmp_path / "not-loaded", "--output", out, *extra])
    assert needle in msg and not out.exists()


def test_search_api_checks_id_and_notes_labels_with_fewer_words(bert, sentiment_examples):
    from pet.errors import ConfigError
    from pet.evaluation.search import search_verbalizer
    from pet.models.prompt_model import PromptModel
    from pet.prompts.spec import Pattern

    model, pattern = PromptModel(*bert), Pattern("it-was", "{text_a} It was {mask}.")
    with pytest.raises(ConfigError, match="verbalizer_id 'a:b'"):
        search_verbalizer(model, pattern, sentiment_examples, ["0", "1"], verbalizer_id="a:b")
    with pytest.raises(ConfigError, match="words_per_label 4 is more than candidates 3"):
        search_verbalizer(model, pattern, sentiment_examples, ["0", "1"], words_per_label=4, candidates=3)
    r = search_verbalizer(model, pattern, sentiment_examples, ["0", "1"], method="petal", words_per_label=3, candidates=3, max_length=32)
    short = {lab: len(ws) for lab, ws in r.verbalizer.labels.items() if len(ws) < 3}
    assert short, "the tiny model's two labels share candidates"  # what this test relies on
    assert r.notes == ["3 words per label were asked for, but " + ", ".join(f"label '{k}' got {n}" for k, n in short.items())
                       + ": its other candidates among the top 3 are taken by other labels; raise the candidates for more"]


# ----------------------------------------------------------------------------- finding 19: messages that locate the problem


def test_template_too_long_names_the_patterns_file(spec_files, bert):
    from pet.prompts.encoding import PVPEncoder
    from pet.prompts.spec import PVP, load_patterns, load_verbalizers

    pats, verbs = spec_files
    pvp = PVP(load_patterns(pats)[0], load_verbalizers(verbs)[0])
    with pytest.raises(SpecError, match=rf"^{pats} \$\.patterns\[0\]: pattern 'a': its template alone needs \d+ tokens but max_length is 4; fix:"):
        PVPEncoder(pvp, bert[1], max_length=4)


@pytest.mark.parametrize("labels,path,needle", [
    ({"0": ["bad"], "1": [" "]}, "$.verbalizers[0].labels.1[0]", "' ' is blank (only spaces); fix: write the label word there"),
    ({"0": ["bad", "awful", "bad"], "1": ["good"]}, "$.verbalizers[0].labels.0[2]", "'bad' is listed twice; fix: list each word once"),
])
def test_verbalizer_word_problems_have_the_json_path_down_to_the_word(tmp_path, capsys, labels, path, needle):
    from pet.prompts.spec import Verbalizer

    f = tmp_path / "v.json"
    f.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": labels}]}))
    assert one_error(capsys, ["validate", f]).startswith(f"error: {f}: {path}: {needle}")
    with pytest.raises(SpecError, match="verbalizer 'v': labels"):
        Verbalizer("v", labels)
