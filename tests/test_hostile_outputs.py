"""Hostile inputs and outputs of `pet report` and the JSON reader: a report folder that holds the
user's files, duplicate JSON keys, malformed references files and store rows, rows of a newer
store schema. Every bad input is one line on stderr (exit 2) or, for damaged store rows, a note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bench_report import (  # the hand-made stores of the report tests
    _pred_store,
    _row,
)

from pet.bench.report import build_report
from pet.bench.store import ResultsStore
from pet.cli import main
from pet.errors import ConfigError, DataError, SpecError, UsageError
from pet.utils.io import atomic_directory
from pet.utils.jsonio import parse_json, read_json

REPO = Path(__file__).resolve().parent.parent


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "internal error" not in err
    return err


def _one_error(capsys) -> str:
    lines = [x for x in _err(capsys).splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, lines
    assert "fix:" in lines[0]
    return lines[0]


@pytest.fixture()
def store(tmp_path) -> Path:
    return _pred_store(tmp_path / "res")


# ----------------------------------------------------------------------------- finding 1: report folder


def test_report_refuses_a_folder_with_report_md_and_the_users_files(store, tmp_path, capsys):
    docs = tmp_path / "docs"
    (docs / "figs").mkdir(parents=True)
    (docs / "report.md").write_text("# my notes\n")
    (docs / "thesis.tex").write_text("thesis\n")
    (docs / "figs" / "a.png").write_bytes(b"img")
    before = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*"))

    assert main(["report", str(store), "--no-plots", "--quiet", "--output", str(docs)]) == 2
    err = _one_error(capsys)
    assert str(docs) in err and "'figs/'" in err
    assert sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*")) == before
    assert (docs / "report.md").read_text() == "# my notes\n" and (docs / "thesis.tex").is_file()
    assert not any(p.name.startswith(".docs.") for p in tmp_path.iterdir())  # nothing half-written beside it


def test_a_report_folder_pet_wrote_is_replaced_with_and_without_plots(store, tmp_path):
    from pet.bench.report import report_entry
    from pet.utils.io import unexpected_entry

    out = tmp_path / "rep"
    build_report(store, output=out, resamples=200)
    assert (out / "plots").is_dir() and unexpected_entry(out, report_entry) is None
    (out / "report.md").write_text("old")
    build_report(store, output=out, plots=False, resamples=200, references=REPO / "data" / "references.csv")
    assert (out / "report.md").read_text() != "old" and not (out / "plots").exists() and (out / "references.csv").is_file()
    build_report(store, output=out, resamples=200)  # the folder of a report with references, replaced again
    # a file the user adds to pet's report folder is never deleted
    (out / "plots" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"plots/notes\.txt"):
        build_report(store, output=out, resamples=200)
    assert (out / "plots" / "notes.txt").read_text() == "mine"


def test_every_file_the_report_writes_is_accepted(store, tmp_path):
    """The names a report folder may hold come from the writer (pet.bench.report.TABLES)."""
    from pet.bench.report import report_entry

    out = tmp_path / "rep"
    rep = build_report(store, output=out, resamples=200, references=REPO / "data" / "references.csv")
    assert {p.name for p in rep.files} >= {"report.md", "rows.csv", "headline.csv", "references.csv"}
    for p in out.rglob("*"):
        rel = p.relative_to(out).as_posix() + ("/" if p.is_dir() else "")
        assert report_entry(rel), rel
    for rel in ("thesis.tex", "figs/", "notes.md", "plots/sub/", "foo.csv", "plots/a.txt"):
        assert not report_entry(rel), rel


@pytest.mark.parametrize("name", sorted(p.parent.name for p in (REPO / "benchmarks" / "results").glob("*/report")))
def test_shipped_report_folders_are_replaceable(name):
    """A dry look at the report folders pet wrote into benchmarks/results: all accepted."""
    from pet.bench.report import report_entry
    from pet.utils.io import unexpected_entry

    assert unexpected_entry(REPO / "benchmarks" / "results" / name / "report", report_entry) is None


def test_atomic_directory_allowed_names_and_symlinks(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "a.txt").write_text("a")
    with atomic_directory(d, overwrite=True, allowed={"a.txt", "b.txt"}) as t:
        (t / "b.txt").write_text("b")
    assert [p.name for p in d.iterdir()] == ["b.txt"]
    (d / "link").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="'link'"), atomic_directory(d, overwrite=True, allowed=lambda rel: True):
        pass
    assert (d / "b.txt").is_file()


# ----------------------------------------------------------------------------- finding 8: duplicate JSON keys


@pytest.mark.parametrize("text, where, key, first", [
    ('{"verbalizers":[{"id":"v","labels":{"0":["bad"],"1":["good"],\n"0":["awful"]}}]}',
     "line 2 column 1: $.verbalizers[0].labels", "'0'", "line 1"),
    ('{"tasks":["sst2"],\n "seeds":[13],\n "methods":["zero-shot"],\n "seeds":[21,42]}', "line 4 column 2: $", "'seeds'", "line 2"),
    ('[{"a": {"b": 1}}, {"a": [1, {"c": "x", "d": null, "c": true}]}]', "line 1 column 51: $[1].a[1]", "'c'", "line 1 column 30"),
])
def test_duplicate_json_keys_are_refused(text, where, key, first):
    with pytest.raises(SpecError) as e:
        parse_json(text, "f.json")
    assert str(e.value) == f"f.json: malformed JSON at {where}: duplicate key {key} (first at {first}); fix: keep one of them"


def test_duplicate_key_in_a_jsonl_line_names_that_line(tmp_path):
    from pet.utils.jsonl import read_jsonl_records

    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a", "label": "0"}\n{"text": "b", "label": "0", "label": "1"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl: malformed JSON at line 2 column 29: \$: duplicate key 'label' \(first at column 15\)"):
        read_jsonl_records(p, ["text", "label"])


def test_duplicate_keys_in_pattern_verbalizer_and_experiment_files(tmp_path, capsys):
    v = tmp_path / "v.json"
    v.write_text('{"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"], "0": ["awful"]}}]}\n')
    assert main(["validate", str(v)]) == 2
    out = capsys.readouterr()
    assert "duplicate key '0'" in out.out + out.err
    exp = tmp_path / "e.json"
    exp.write_text('{"tasks": ["sst2"], "seeds": [13], "methods": ["zero-shot"], "seeds": [21, 42]}\n')
    from pet.bench.experiment import load_experiment

    with pytest.raises(ConfigError, match=r"e\.json: malformed JSON at line 1 column 62: \$: duplicate key 'seeds' \(first at line 1 column 21\)"):
        load_experiment(exp)


def test_every_shipped_json_file_still_reads_the_same():
    files = [p for pat in ("patterns/*.json", "verbalizers/*.json", "data/tasks/*.json", "pet/**/*.json") for p in REPO.glob(pat)]
    assert len(files) > 60
    for p in files:
        assert read_json(p) == json.loads(p.read_text(encoding="utf-8-sig")), p


# ----------------------------------------------------------------------------- finding 11: references and rows


@pytest.mark.parametrize("content, expected", [
    ('task,method,k,score,std,metric,source,base_model,note\nsst2,pet,16,90,1,accuracy,x,y,"unterminated\n',
     r'refs\.csv: line 2: a quoted field is never closed'),
    ("task,method,k,score,std,metric,source,base_model,note\nsst2,pet,sixteen,90,1,accuracy,x,y,z\n",
     r"refs\.csv: line 2, column k: 'sixteen' is not a whole number"),
    ("task,method,k,score,source,base_model\nsst2,pet,16,90,x,y\nsst2,pet,16,high,x,y\n",
     r"refs\.csv: line 3, column score: 'high' is not a finite number"),
    ("task,method,k,score,source,base_model\nsst2,pet,16,90,x,y,EXTRA\n", r"refs\.csv: line 2: 7 fields but the header has 6"),
    ('{"type": "row", "task": "sst2", "k": 16}\n{"type": "row"}\n', r"refs\.csv: missing column\(s\) base_model, k, method"),
    ("task,method,k,score,source,base_model,k\nsst2,pet,16,90,x,y,16\n", r"refs\.csv: line 1: column 'k' appears twice"),
])
def test_malformed_references_file_is_one_line(store, tmp_path, capsys, content, expected):
    import re

    refs = tmp_path / "refs.csv"
    refs.write_text(content)
    assert main(["report", str(store), "--no-plots", "--quiet", "--references", str(refs), "--output", str(tmp_path / "o")]) == 2
    assert re.search(expected, _one_error(capsys))
    assert not (tmp_path / "o").exists()


def test_shipped_references_still_load():
    from pet.bench.tables import load_references

    refs = load_references(REPO / "data" / "references.csv")
    assert len(refs) > 50 and set(refs["k_label"]) >= {"0", "16"} and refs["score"].dtype.kind == "f"


def _store_with(root: Path, bad: dict) -> Path:
    """Three zero-shot cells (seeds 13, 21, 42) of two rows; the second row of seed 21 changed by ``bad``
    (None: remove the key); the checksums are the store's own, as if pet had written them."""
    st = ResultsStore(root)
    for seed in (13, 21, 42):
        rows = [_row("zero-shot", "zero-shot", "pvp", "p1:v", seed, 0.5), _row("zero-shot", "zero-shot", "ensemble", None, seed, 0.6)]
        if seed == 21:
            for k, v in bad.items():
                rows[1].pop(k) if v is None else rows[1].update({k: v})
        assert st.append_cell(f"zs-{seed}", rows)
    return root


@pytest.mark.parametrize("bad, problem", [
    ({"metric": None}, "$.metric: missing"),
    ({"task": None}, "$.task: missing"),
    ({"score": "x"}, '$.score: "x" is not a number'),
    ({"metrics": {"accuracy": "x"}}, '$.metrics.accuracy: "x" is not a number'),
    ({"metric": "f2"}, "$.metric: 'f2' is not one of"),
    ({"k": "16"}, '$.k: "16" is not a number'),
    ({"predictions": {"labels": ["0", "1"], "encoding": "bits", "bits": 1, "n": 4, "pred": "!!", "gold": "!!"}},
     "$.predictions: the per-example predictions do not decode"),
])
def test_store_rows_with_unusable_fields_are_left_out_with_a_note(tmp_path, capsys, bad, problem):
    """The bad row is on line 5 (lines 1-3: the seed-13 cell, 4-5: the rows of seed 21)."""
    res = _store_with(tmp_path / "res", bad)
    assert main(["report", str(res), "--no-plots", "--quiet", "--resamples", "200"]) == 0
    err = _err(capsys)
    assert f"results.jsonl: ignoring 1 cell (2 rows) with a row whose fields the report cannot use (first: line 5: {problem}" in err
    assert "fix:" in err
    rows = (res / "report" / "rows.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # the two other cells' rows, the damaged cell left out whole


# ----------------------------------------------------------------------------- finding 22: newer schemas


def test_rows_of_a_newer_schema_are_read_with_one_warning(tmp_path, capsys):
    res = _store_with(tmp_path / "res", {"schema": 99, "brand_new": 1})
    assert main(["report", str(res), "--no-plots", "--quiet", "--resamples", "200"]) == 0
    err = _err(capsys)
    warned = [x for x in err.splitlines() if "schema 99" in x]
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "this pet reads rows up to schema" in warned[0]
    assert "fix: upgrade pet" in warned[0]
    assert len((res / "report" / "rows.csv").read_text().splitlines()) == 1 + 6  # every row still read
    assert "schema 99" in (res / "report" / "report.md").read_text()


def test_no_schema_warning_for_rows_of_this_pet(store, capsys):
    rep = build_report(store, write=False, resamples=200)
    assert not any("schema" in w for w in rep.warnings)


# ----------------------------------------------------------------------------- every JSON reader refuses duplicates


def test_example_files_with_duplicate_keys_or_wrong_records_are_one_line(tmp_path):
    from pet.data.tables import read_examples, write_examples
    from pet.examples import Example

    p = tmp_path / "train.jsonl"
    write_examples(p, [Example(fields={"text": "a"}, label="x")])
    assert read_examples(p)[0].fields == {"text": "a"}
    p.write_text('{"fields": {"text": "a"}, "label": "x"}\n{"fields": {"text": "b"}, "label": "x", "label": "y"}\n')
    with pytest.raises(DataError, match=r"train\.jsonl: malformed JSON at line 2 column \d+: \$: duplicate key 'label'"):
        read_examples(p)
    p.write_text('{"fields": ["a"]}\n')
    with pytest.raises(DataError, match=r"train\.jsonl: line 1: not an example record .*fix: regenerate the file"):
        read_examples(p)
    p.write_text('[1, 2]\n')
    with pytest.raises(DataError, match=r"train\.jsonl.*line 1"):
        read_examples(p)


def test_json_option_flags_refuse_duplicate_keys():
    import argparse
    from dataclasses import dataclass

    from pet.options import Options, option

    @dataclass
    class Opts(Options):
        schedule: dict = option({}, "a mapping")

    parser = argparse.ArgumentParser()
    Opts.add_arguments(parser)
    assert parser.parse_args(["--schedule", '{"a": 1}']).schedule == {"a": 1}
    action = next(a for a in parser._actions if a.dest == "schedule")
    with pytest.raises(argparse.ArgumentTypeError, match=r"--schedule: malformed JSON.*duplicate key 'a'.*fix:"):
        action.type('{"a": 1, "a": 2}')
    with pytest.raises(argparse.ArgumentTypeError, match=r"--schedule: malformed JSON .*fix: e\.g\. --schedule"):
        action.type('{"a": ')


def test_set_values_refuse_duplicate_keys_and_keep_plain_text():
    from pet.cli.compare_prompts import _value

    assert _value("0.1", "lr=0.1") == 0.1 and _value("adamw", "optimizer=adamw") == "adamw"
    assert _value('{"a": 1}', 'x={"a": 1}') == {"a": 1}
    with pytest.raises(ConfigError, match=r"--set x=.*duplicate key 'a'.*fix: keep one of them"):
        _value('{"a": 1, "a": 2}', 'x={"a": 1, "a": 2}')


@pytest.mark.parametrize("meta, said", [
    ("[1]", "must be a JSON object"),
    ('{"labels": [], "max_length": 16}', "labels: must be a non-empty list"),
    ('{"labels": ["a"], "max_length": "16"}', "max_length: must be a whole number"),
    ('{"labels": ["a"], "labels": ["b"], "max_length": 16}', "duplicate key 'labels'"),
    ("{", "malformed JSON"),
])
def test_a_damaged_sequence_classifier_meta_is_one_model_error(tmp_path, meta, said):
    from pet.errors import ModelError
    from pet.models.sequence import META_FILE, SequenceClassifier

    (tmp_path / META_FILE).write_text(meta)
    with pytest.raises(ModelError, match=said) as e:
        SequenceClassifier.load(tmp_path)
    assert str(tmp_path / META_FILE) in str(e.value) and "fix:" in str(e.value)
