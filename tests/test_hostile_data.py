"""Hostile data and spec files the readers once misread silently or crashed on: rows with a
field too many or too few, duplicate columns, TSV output pet could not read back, unpaired
surrogates in JSONL, .json arrays and unknown extensions, BOMs in spec files, one-label
verbalizers. Each ends in a one-line error naming the file, the row/line/field and the fix."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from pet.cli import main
from pet.data import load_table
from pet.data.stream import iter_chunks
from pet.errors import DataError, SpecError, UsageError
from pet.estimator.predict import write_predictions
from pet.examples import Example
from pet.prompts.spec import PVP, Pattern, Verbalizer, load_patterns, load_verbalizers, validate_file


def _read_both(path, text="review", label="stars"):
    """The error of the streaming reader and of the whole-file reader (they must agree)."""
    msgs = []
    for read in (lambda: [e for c in iter_chunks(path, {"text_a": text}, label) for e in c], lambda: load_table(path, text, label)):
        with pytest.raises(DataError) as e:
            read()
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]
    return msgs[0]


# ----------------------------------------------------------------------------- CSV field counts


def test_one_field_more_than_the_header_is_an_error_not_an_index(tmp_path):
    p = tmp_path / "extra.csv"
    p.write_text("review,stars\na terrible film,neg,extra\nannoying,neg,extra\n")
    msg = _read_both(p)
    assert "extra.csv: row 1 (line 2) has 3 fields but the file has 2 columns" in msg
    assert 'fix: quote fields that contain commas' in msg


def test_unquoted_comma_in_a_later_row_names_that_row(tmp_path):
    p = tmp_path / "comma.csv"
    p.write_text("review,stars\na great film,pos\n\nawful, boring film,neg\n")
    msg = _read_both(p)
    assert "row 2 (line 4) has 3 fields" in msg and "quote fields that contain commas" in msg
    assert "C error" not in msg


def test_missing_label_field_is_named_as_missing_not_empty(tmp_path):
    p = tmp_path / "ragged.csv"
    p.write_text("review,stars\na terrible film\nannoying,neg\n")
    msg = _read_both(p)
    assert "row 1 (line 2) has 1 field but the file has 2 columns; fix: fill in the missing fields" in msg
    assert "empty label" not in msg


def test_an_empty_label_or_text_names_the_row_and_its_line_in_both_readers(tmp_path):
    """Data row N is file line N + 1 (the header), more after a quoted line break or a blank line:
    both readers name the row and the line an editor shows."""
    p = tmp_path / "gap.csv"
    p.write_text('review,stars\n"multi\nline",pos\n\nfine,\n')
    assert _read_both(p).startswith(f"{p}: row 2 (line 5): empty label in column 'stars'; fix:")
    p.write_text('review,stars\ngood,pos\n  ,neg\n')
    for read in (lambda: load_table(p, "review", "stars"), lambda: list(iter_chunks(p, {"text_a": "review"}, "stars", empty_text="error"))):
        with pytest.raises(DataError, match=rf"^{re.escape(str(p))}: row 2 \(line 3\): field 'text_a' \(column review\) is empty; fix:"):
            read()


def test_quoted_commas_and_line_breaks_still_read(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_text('review,stars\n"awful, boring",neg\n"multi\nline",pos\n,neg\n')
    exs = load_table(p, "review", "stars", empty_text="keep")
    assert [(e.fields["text_a"], e.label) for e in exs] == [("awful, boring", "neg"), ("multi\nline", "pos"), ("", "neg")]


def test_duplicate_column_name_is_an_error(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("review,review,stars\na,b,pos\n")
    assert "dup.csv: column 'review' appears twice in the header; fix:" in _read_both(p)


# ----------------------------------------------------------------------------- formats


def test_json_array_says_json_is_read_as_json_lines(tmp_path):
    for name, text in [("pretty.json", '[\n  {"review": "a", "stars": "pos"}\n]\n'), ("one.json", '[{"review": "a", "stars": "pos"}]\n')]:
        p = tmp_path / name
        p.write_text(text)
        msg = _read_both(p)
        assert "line 1" in msg and "a .json data file is read as JSON Lines" in msg, msg


def test_unknown_extension_is_refused_not_read_as_csv(tmp_path):
    p = tmp_path / "lines.txt"
    p.write_text("great movie\nawful movie\n")
    with pytest.raises(DataError, match=r"lines\.txt: unknown data format '\.txt'; fix: give a \.csv, \.tsv, \.jsonl"):
        list(iter_chunks(p, {"text_a": "text"}))


def test_unpaired_surrogate_in_jsonl_is_a_one_line_error(tmp_path, capsys):
    p = tmp_path / "s.jsonl"
    p.write_text('{"review": "good \\ud83d\\ude00", "stars": "pos"}\n{"review": "bad \\ud800", "stars": "neg"}\n')
    with pytest.raises(DataError, match=r"s\.jsonl: line 2: \$\.review: an unpaired surrogate escape \(\\ud800\)"):
        list(iter_chunks(p, {"text_a": "review"}, "stars"))
    pats, verbs = tmp_path / "p.json", tmp_path / "v.json"
    pats.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."}]}))
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"neg": ["bad"], "pos": ["good"]}}]}))
    rc = main(["zero-shot", "--data", str(p), "--text-field", "review", "--label-field", "stars", "--patterns", str(pats),
               "--verbalizers", str(verbs), "--model", "no-model-needed", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "line 2" in err and "fix:" in err, err


# ----------------------------------------------------------------------------- predict TSV output


class _Clf:
    labels_ = ["neg", "pos"]

    def predict_log_proba(self, chunk):
        return np.log(np.full((len(chunk), 2), 0.5))


def _rows(*texts):
    return [[Example(fields={"text_a": t}, meta={"columns": {"text": t, "id": i}}) for i, t in enumerate(texts, 1)]]


def test_tsv_output_reads_back_as_written(tmp_path):
    out = tmp_path / "o.tsv"
    texts = ['new "quoted" text', 'say ""hi""', "a, b"]
    assert write_predictions(_Clf(), _rows(*texts), out) == 3
    back = [e for c in iter_chunks(out, {"text_a": "text"}, "label", keep=True) for e in c]
    assert [e.fields["text_a"] for e in back] == texts
    assert [e.meta["columns"]["id"] for e in back] == ["1", "2", "3"]


@pytest.mark.parametrize("bad", ["tab\there", "new\nline", "cr\rhere"])
def test_tsv_output_refuses_a_tab_or_line_break_and_writes_nothing(tmp_path, bad):
    out = tmp_path / "o.tsv"
    out.write_text("old\n")
    with pytest.raises(UsageError, match=r"o\.tsv: row 2, column 'text' holds a tab or a line break.*fix: write \.csv or \.jsonl"):
        write_predictions(_Clf(), _rows("plain", bad), out)
    assert out.read_text() == "old\n" and sorted(x.name for x in tmp_path.iterdir()) == ["o.tsv"]
    # CSV quotes it (a lone "\r", which the csv module leaves bare with "\n" line ends, by a fully quoted row)
    write_predictions(_Clf(), _rows("plain", bad, "after"), tmp_path / "o.csv")
    back = [e for c in iter_chunks(tmp_path / "o.csv", {"text_a": "text"}, "label", keep=True) for e in c]
    assert [e.fields["text_a"] for e in back] == ["plain", bad, "after"]
    assert [e.meta["columns"]["id"] for e in back] == ["1", "2", "3"] and {e.label for e in back} == {"neg"}
    with open(tmp_path / "o.csv", newline="") as f:
        assert [r["text"] for r in csv.DictReader(f)] == ["plain", bad, "after"]


# ----------------------------------------------------------------------------- pattern / verbalizer files


def test_spec_files_with_a_bom_are_read(tmp_path):
    pats, verbs = tmp_path / "p.json", tmp_path / "v.json"
    pats.write_bytes(b"\xef\xbb\xbf" + json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."}]}).encode())
    verbs.write_bytes(b"\xef\xbb\xbf" + json.dumps({"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}).encode())
    assert validate_file(pats) == [] and validate_file(verbs) == []
    assert load_patterns(pats)[0].id == "a" and load_verbalizers(verbs)[0].labels == {"0": ["bad"], "1": ["good"]}


def test_one_label_verbalizer_fails_validation_and_use(tmp_path):
    verbs = tmp_path / "v.json"
    verbs.write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"pos": ["good"]}}]}))
    (problem,) = validate_file(verbs)
    assert "$.verbalizers[0].labels: a classifier needs at least 2 labels" in problem and "fix:" in problem
    pvp = PVP(Pattern("a", "{text_a} It was {mask}."), load_verbalizers(verbs)[0])
    with pytest.raises(SpecError, match=r"v\.json \$\.verbalizers\[0\]: verbalizer 'v': labels \['pos'\]: a classifier needs at least 2"):
        pvp.check_labels(["pos"], "task 'single'")  # one-class data with a one-label verbalizer
    with pytest.raises(SpecError, match=r"\['neg'\] occur in"):
        pvp.check_labels(["neg", "pos"])  # data with more labels: the usual message


def test_labels_missing_from_the_data_do_not_advise_removing_them():
    pvp = PVP(Pattern("a", "{text_a} It was {mask}."), Verbalizer("v", {"neg": ["bad"], "pos": ["good"]}))
    with pytest.raises(SpecError) as e:
        pvp.check_labels(["pos"], "task 'single'")
    assert "remove them" not in str(e.value) and "at least one example of every label" in str(e.value)
