"""Schema violations in PVP and task files: one line each, naming the JSON path, what is wrong and
a concrete fix built from the schema (pet/utils/schema.py), never a pointer to the schema file."""

from __future__ import annotations

import json

import pytest

from pet.data.registry import validate_task_dict
from pet.prompts.spec import validate_file
from pet.utils.schema import schema_problems


def _problems(tmp_path, data, name="v.json"):
    f = tmp_path / name
    f.write_text(json.dumps(data))
    return [p.removeprefix(f"{f}: ") for p in validate_file(f)]


def test_verbalizer_file_mistakes_get_a_concrete_fix(tmp_path):
    got = _problems(tmp_path, {"verbalizers": [
        {"id": "v 1", "labels": {"0": "bad", "1": ["good"]}, "lables": 3},
        {"labels": {}},
        {"id": "x", "labels": {"0": [""], "1": []}},
    ], "extra": 1})
    assert got == [
        "$: unknown field 'extra'; fix: remove it (allowed here: task, description, verbalizers)",
        "$.verbalizers[0]: unknown field 'lables'; fix: rename it to 'labels'",
        "$.verbalizers[0].id: \"v 1\" is not allowed here; fix: write an id without spaces or ':' "
        "(a PVP is named pattern:verbalizer), e.g. \"good-bad\"",
        "$.verbalizers[0].labels.0: \"bad\" is a string; fix: write a list […], e.g. [\"good\"]",
        "$.verbalizers[1]: missing 'id'; fix: add \"id\": \"good-bad\"",
        "$.verbalizers[1].labels: {} is empty; fix: give at least 1 entry, e.g. {\"0\": [\"bad\"], \"1\": [\"good\"]}",
        "$.verbalizers[2].labels.0[0]: \"\" is empty; fix: give at least 1 character, e.g. \"good\"",
        "$.verbalizers[2].labels.1: [] is empty; fix: give at least 1 item, e.g. [\"good\"]",
    ]


def test_a_oneof_is_explained_through_the_branch_for_the_values_type(tmp_path):
    got = _problems(tmp_path, {"patterns": [
        {"id": "q", "template": "{text_a} [MASK]", "truncation": "middle"},
        {"id": "r", "template": "{text_a} [MASK]", "truncation": {"rule": "lmbf"}},
        {"id": "s", "template": "{text_a} [MASK]", "truncation": {"rule": "lmbff", "first_sent_limit": 0, "foo": 1}},
        {"id": "t", "template": "{text_a} [MASK]", "truncation": 3},
    ]}, "p.json")
    assert got == [
        "$.patterns[0].truncation: \"middle\" is not an allowed value; fix: use one of \"longest_first\", \"pet\", \"lmbff\"",
        "$.patterns[1].truncation.rule: \"lmbf\" is not an allowed value; fix: did you mean \"lmbff\"? "
        "use one of \"longest_first\", \"pet\", \"lmbff\"",
        "$.patterns[2].truncation: unknown field 'foo'; fix: remove it (allowed here: rule, first_sent_limit, other_sent_limit)",
        "$.patterns[2].truncation.first_sent_limit: 0 is out of range; fix: use a number >= 1",
        "$.patterns[3].truncation: 3 is a whole number; fix: write one of \"longest_first\", \"pet\", \"lmbff\" or an object {…}",
    ]


def test_task_file_mistakes_get_a_concrete_fix():
    task = {"name": "My Task", "folder": "/abs", "fields": {"text_a": 1.5}, "label": "label", "labels": {"0": "neg"},
            "splits": {"train": {"file": "t.csv", "fromat": "csv"}}, "metric": "acc", "default_pvps": [["a"]],
            "max_length": 8, "clean": ["html_breaks", "html_breaks"]}
    got = [p.removeprefix("t.json: ") for p in validate_task_dict(task, "t.json")]
    assert "$.metric: \"acc\" is not an allowed value; fix: did you mean \"accuracy\"? use one of \"accuracy\", \"macro_f1\", " \
           "\"mcc\", \"f1\", \"pearson\", \"spearman\"" in got
    assert "$.splits.train: unknown field 'fromat'; fix: rename it to 'format'" in got
    assert "$.labels: {\"0\": \"neg\"} is too short; fix: give at least 2 entries, e.g. {\"0\": \"negative\", \"1\": \"positive\"}" in got
    assert "$.max_length: 8 is out of range; fix: use a number >= 16" in got
    assert "$.clean: [\"html_breaks\", \"html_breaks\"] repeats an item; fix: list each item once" in got
    assert any(p.startswith("$.folder: \"/abs\" is not allowed here; fix: write the task's folder, a path relative to the data root") for p in got)
    assert any(p.startswith("$.name: \"My Task\" is not allowed here; fix: write the task's name: lower-case") for p in got)
    assert len(got) == 9 and all("; fix: " in p and "schema.json" not in p for p in got)
    missing = validate_task_dict({"name": "x"}, "t.json")
    assert len(missing) == 1 and missing[0].startswith("t.json: $: missing 'folder', 'fields', 'label', 'labels', 'splits', "
                                                       "'metric', 'default_pvps', 'max_length'; fix: add \"folder\": \"my-task\", ")
    assert "\"metric\": \"accuracy\"" in missing[0]


@pytest.mark.parametrize("schema, data, expected", [
    ({"type": "object", "propertyNames": {"pattern": "^[a-z]+$", "description": "lower-case keys"}}, {"Ab": 1},
     "$: key \"Ab\" is not allowed here; fix: rename the key: lower-case keys"),
    ({"type": "array", "maxItems": 1}, [1, 2], "$: [1, 2] is too long; fix: give at most 1"),
    ({"type": "string", "pattern": "^x"}, "y", "$: \"y\" is not allowed here; fix: write text matching ^x"),
    ({"type": "object", "additionalProperties": False, "properties": {"alpha": {}}}, {"zzz": 1},
     "$: unknown field 'zzz'; fix: remove it (allowed here: alpha)"),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 1.5, "$: 1.5 is a number; fix: write a string or a whole number"),
])
def test_each_keyword_gets_its_own_fix(schema, data, expected):
    assert schema_problems(data, schema, "f.json") == [f"f.json: {expected}"]


def test_problems_come_in_document_order():
    schema = {"type": "array", "items": {"type": "string"}}
    lines = schema_problems([str(i) if i % 3 else i for i in range(12)], schema, "f")
    assert [line.split(":")[1].strip() for line in lines] == ["$[0]", "$[3]", "$[6]", "$[9]"]


def _with_examples(node, path="#"):
    """Every subschema of ``node`` that carries ``examples``, with its location."""
    if isinstance(node, dict):
        if "examples" in node:
            yield path, node
        for k, v in node.items():
            yield from _with_examples(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _with_examples(v, f"{path}/{i}")


@pytest.mark.parametrize("name", ["patterns", "verbalizers", "task", "experiment"])
def test_every_example_a_fix_suggests_is_valid_where_it_is_suggested(name):
    import jsonschema

    from pet.prompts.spec import Pattern, Verbalizer
    from pet.utils.resources import shipped_dir

    from pet.bench.schema import SCHEMA

    root = SCHEMA if name == "experiment" else json.loads((shipped_dir("schemas") / f"{name}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(root)
    found = list(_with_examples(root))
    assert len(found) >= 2
    for where, sub in found:
        for example in sub["examples"]:
            errors = list(validator.evolve(schema=sub).iter_errors(example))
            assert not errors, f"{name}.schema.json {where}: example {example!r}: {errors[0].message}"
    # beyond the schema: the suggested pattern and verbalizer build
    if name == "patterns":
        Pattern(**root["properties"]["patterns"]["examples"][0][0])
    if name == "verbalizers":
        Verbalizer(**root["properties"]["verbalizers"]["examples"][0][0])


def test_a_file_without_its_wrapper_is_told_which_key_to_wrap_it_in(tmp_path):
    pats = _problems(tmp_path, [{"id": "a", "template": "{text_a} {mask}"}], "p.json")
    verbs = _problems(tmp_path, [{"id": "v", "labels": {"0": ["a"], "1": ["b"]}}], "v.json")
    assert pats == ["$: a list, not an object with a 'patterns' list; fix: wrap it: {\"patterns\": [...]}"]
    assert verbs == ["$: a list, not an object with a 'verbalizers' list; fix: wrap it: {\"verbalizers\": [...]}"]
    (empty,) = _problems(tmp_path, {}, "e.json")
    assert empty.startswith("$: expected an object with a 'patterns' or 'verbalizers' list; fix: write {\"patterns\": [{\"id\"")
