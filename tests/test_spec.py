import json

import pytest

from pet.errors import SpecError
from pet.prompts.spec import (
    PVP,
    FieldRef,
    Literal,
    Mask,
    Pattern,
    Soft,
    Special,
    Verbalizer,
    apply_filters,
    load_patterns,
    load_verbalizers,
    make_pvps,
    parse_template,
    save_patterns,
    save_verbalizers,
    validate_file,
)


def test_parse_all_placeholder_kinds():
    segs = parse_template('{cls}{text_a|lower_first} {{x}} {soft:"It was"} {soft:3}{soft} {mask}.{sep}{premise}')
    assert segs == (
        Special("cls"),
        FieldRef("text_a", ("lower_first",)),
        Literal(" {x} "),
        Soft(0, "It was"),
        Literal(" "),
        Soft(3),
        Soft(1),
        Literal(" "),
        Mask(),
        Literal("."),
        Special("sep"),
        FieldRef("premise"),
    )


@pytest.mark.parametrize(
    "template, needle",
    [
        ("{text_a} It was.", "0 '{mask}'"),
        ("{text_a} {mask} {mask}", "2 '{mask}'"),
        ("{text_a|upper} {mask}", "unknown filter 'upper'"),
        ("{text_a {mask}", "unclosed '{'"),
        ("{text_a} } {mask}", "unmatched '}'"),
        ("{soft:0} {text_a} {mask}", "bad soft token"),
        ("{soft:x} {text_a} {mask}", "bad soft token"),
        ("It was {mask}.", "uses no example field"),
        ("{text-a} {mask}", "unknown placeholder"),
    ],
)
def test_template_errors_name_problem(template, needle):
    with pytest.raises(SpecError) as e:
        parse_template(template, "pattern 'p1'")
    assert needle in str(e.value)
    assert "pattern 'p1'" in str(e.value) and "fix:" in str(e.value)


def test_error_reports_column():
    with pytest.raises(SpecError, match="column 10"):
        parse_template("{text_a} {mask|lower}")


def test_filters():
    assert apply_filters("The movie was great!!", ("lower_first", "drop_punct")) == "the movie was great"
    assert apply_filters("ok .", ("drop_punct",)) == "ok"


def test_pattern_and_verbalizer_round_trip(tmp_path):
    pats = [Pattern("a", "{text_a} It was {mask}.", source="LM-BFF"), Pattern("b", "Just {mask}! {text_a}")]
    verbs = [Verbalizer("v", {"0": ["bad", "awful"], "1": ["good"]})]
    save_patterns(tmp_path / "p.json", pats, task="t")
    save_verbalizers(tmp_path / "v.json", verbs, task="t")
    assert load_patterns(tmp_path / "p.json") == pats
    assert load_verbalizers(tmp_path / "v.json") == verbs
    pvp = make_pvps(pats, verbs, ["b:v"])[0]
    assert PVP.from_dict(json.loads(json.dumps(pvp.to_dict()))) == pvp
    assert pvp.id == "b:v"


def test_validate_reports_every_problem_with_json_path(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"patterns": [
        {"id": "a", "template": "{text_a} {mask}"},
        {"id": "a", "template": "{text_a}"},
        {"id": "c"},
    ]}))
    problems = validate_file(f)
    assert f"{f}: $.patterns[2]: missing 'template'; fix: add \"template\": \"{{text_a}} It was {{mask}}.\"" in problems
    f.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} {mask}"}, {"id": "a", "template": "{text_a}"}]}))
    problems = validate_file(f)
    assert any("$.patterns[1].id: duplicate id 'a'" in p for p in problems)
    assert any("$.patterns[1]" in p and "0 '{mask}'" in p for p in problems)
    assert all(str(f) in p for p in problems)


def test_malformed_and_non_utf8_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"patterns": [')
    with pytest.raises(SpecError, match=r"bad.json: malformed JSON at line 1"):
        load_patterns(bad)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"patterns": [{"id": "é", "template": "{text_a} {mask}"}]}'.encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8"):
        load_patterns(latin)
    with pytest.raises(SpecError, match="file not found"):
        load_verbalizers(tmp_path / "missing.json")


def test_verbalizer_checks_labels():
    v = Verbalizer("v", {"0": ["bad"], "1": ["good"]})
    pvp = PVP(Pattern("p", "{text_a} {mask}"), v)
    with pytest.raises(SpecError, match=r"label\(s\) \['2'\] occur in data but have no words"):
        pvp.check_labels(["0", "1", "2"])
    with pytest.raises(SpecError, match=r"label\(s\) \['1'\] are not labels of data"):
        pvp.check_labels(["0"])
    with pytest.raises(SpecError, match=r"verbalizer 'v': labels\.0: has no words; fix:"):
        Verbalizer("v", {"0": []})


def test_make_pvps_unknown_ids():
    pats = [Pattern("a", "{text_a} {mask}")]
    verbs = [Verbalizer("v", {"0": ["x"]})]
    with pytest.raises(SpecError, match="unknown pattern 'zz'"):
        make_pvps(pats, verbs, ["zz:v"])
    with pytest.raises(SpecError, match="unknown verbalizer 'w'"):
        make_pvps(pats, verbs, ["a:w"])


# ----------------------------------------------------------------------------- issue 12 / 13


def test_source_specific_filters_follow_their_source():
    # LM-BFF '*sent-_i*' is text[:-1], whatever the last character is
    assert apply_filters("He left", ("drop_last_char",)) == "He lef"
    assert apply_filters("A man sleeps .", ("drop_last_char",)) == "A man sleeps "  # tokenised SNLI text
    # PET remove_final_punc is rstrip(string.punctuation): quotes and brackets go, spaces stay
    assert apply_filters('He said "no."', ("rstrip_punctuation",)) == "He said \"no"
    assert apply_filters("fine (really)", ("rstrip_punctuation",)) == "fine (really"
    assert apply_filters("ok .", ("rstrip_punctuation",)) == "ok "
    # the general-purpose filter is neither
    assert apply_filters("He left", ("drop_punct",)) == "He left"
    assert apply_filters("ok .", ("drop_punct",)) == "ok"


def test_segment_is_a_template_element():
    segs = parse_template(" Just {mask} ! {segment} {text_a}")
    from pet.prompts.spec import SegmentBreak

    assert segs[3] == SegmentBreak() and sum(isinstance(s, SegmentBreak) for s in segs) == 1
    with pytest.raises(SpecError, match=r"more than one '\{segment\}'.*fix:"):
        parse_template("{text_a} {segment} {mask} {segment} {text_b}", "pattern 'p'")
    with pytest.raises(SpecError, match="takes no filters"):
        parse_template("{text_a} {segment|lower} {mask}")


def test_two_labels_with_the_same_word_is_an_error_everywhere(tmp_path):
    with pytest.raises(SpecError, match=r"labels\.0 and labels\.1 both use the word 'good'.*fix:"):
        Verbalizer("v", {"0": ["bad", "good"], "1": ["good"]})
    p = tmp_path / "v.json"
    p.write_text(json.dumps({"verbalizers": [{"id": "ok", "labels": {"0": ["a"], "1": ["b"]}},
                                             {"id": "dup", "labels": {"0": ["same"], "1": [" same "]}}]}))
    problems = validate_file(p)  # pet validate
    assert len(problems) == 1 and str(p) in problems[0] and "$.verbalizers[1]" in problems[0]
    assert "\n" not in problems[0] and "fix:" in problems[0]
    with pytest.raises(SpecError) as e:  # loading
        load_verbalizers(p)
    assert str(p) in str(e.value) and "$.verbalizers[1]" in str(e.value) and "\n" not in str(e.value)


def test_loaded_verbalizers_know_where_they_came_from(tmp_path):
    save_verbalizers(tmp_path / "v.json", [Verbalizer("a", {"0": ["x"], "1": ["y"]}), Verbalizer("b", {"0": ["p"], "1": ["q"]})])
    vs = load_verbalizers(tmp_path / "v.json")
    assert vs[1].origin == f"{tmp_path / 'v.json'} $.verbalizers[1]"
    assert vs[1] == Verbalizer("b", {"0": ["p"], "1": ["q"]})  # origin does not take part in equality
    assert "origin" not in vs[1].to_dict()


def test_every_shipped_pvp_uses_its_sources_filter():
    from pet.utils.resources import shipped_dir

    for f in sorted(shipped_dir("patterns").glob("*.json")):
        for p in load_patterns(f):
            src = p.source or ""
            if src.startswith("LM-BFF"):
                assert "drop_punct" not in p.template and "rstrip_punctuation" not in p.template, (f.name, p.id)
            if src.startswith("PET"):
                assert "drop_punct" not in p.template and "drop_last_char" not in p.template, (f.name, p.id)
                assert "{sep}" not in p.template, (f.name, p.id)  # PET's '||' is {segment}


def test_truncation_rule_round_trips_and_bad_rules_name_the_fix(tmp_path):
    from pet.prompts.truncation import Truncation

    p = Pattern("a", "{text_a} It was {mask}.", truncation={"rule": "lmbff", "first_sent_limit": 110, "other_sent_limit": 50})
    assert p.truncation == Truncation("lmbff", 110, 50)
    assert p.to_dict()["truncation"] == {"rule": "lmbff", "first_sent_limit": 110, "other_sent_limit": 50}
    assert Pattern("b", "{text_a} {mask}", truncation="pet").to_dict()["truncation"] == "pet"
    assert "truncation" not in Pattern("c", "{text_a} {mask}").to_dict()  # the default is not written
    assert PVP.from_dict(PVP(p, Verbalizer("v", {"0": ["x"]})).to_dict()).pattern == p
    save_patterns(tmp_path / "p.json", [p])
    assert load_patterns(tmp_path / "p.json") == [p]
    with pytest.raises(SpecError, match=r"pattern 'x': truncation.*'pet' takes no first_sent_limit; fix"):
        Pattern("x", "{text_a} {mask}", truncation={"rule": "pet", "first_sent_limit": 3})
    with pytest.raises(SpecError, match="fix: use one of longest_first, pet, lmbff"):
        Pattern("x", "{text_a} {mask}", truncation="head")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} {mask}", "truncation": {"rule": "lmbff", "first_sent_limit": 0}},
                                            {"id": "b", "template": "{text_a} {mask}", "truncation": "tail"}]}))
    problems = validate_file(bad)
    assert any("$.patterns[0].truncation" in m for m in problems) and any("$.patterns[1].truncation" in m for m in problems)


def test_every_shipped_pvp_names_its_sources_truncation():
    """LM-BFF's PVPs cut as LM-BFF did for that task (run_experiment.sh), PET's as PET did."""
    from pet.utils.resources import shipped_dir

    lmbff = {"mr": (110, 50), "cr": (110, 50), "subj": (110, 50), "sst5": (110, 20), "trec": (110, None), "mpqa": (110, None), "rte": (240, None)}
    seen = set()
    for f in sorted(shipped_dir("patterns").glob("*.json")):
        task = f.stem
        for p in load_patterns(f):
            src, t = p.source or "", p.truncation
            if src.startswith("PET"):
                assert t.rule == "pet", (task, p.id)
            elif src.startswith("LM-BFF") and task != "imdb":  # IMDB: SST-2's template on long reviews, not LM-BFF's setting
                assert (t.rule, t.first_sent_limit, t.other_sent_limit) == ("lmbff", *lmbff.get(task, (None, None))), (task, p.id)
            else:
                assert t.rule == "longest_first", (task, p.id)
            seen.add(t.rule)
    assert seen == {"pet", "lmbff", "longest_first"}
