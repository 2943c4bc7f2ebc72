"""JSON Schema problems as one line each, with a concrete fix.

jsonschema says *what* is wrong ("'lables' was unexpected", "'bad' is not of type 'array'");
a user editing a PVP or task file also needs *what to write*. :func:`schema_problems` turns every
violation into ``WHERE: $.json.path: what is wrong; fix: what to write``, the fix built from the
failing keyword and the schema itself: a missing field gets an ``add "id": "..."`` line with the
field's ``examples`` value, an unknown field the nearest allowed name, a wrong type the expected
type and an example, an enum the allowed values. A ``oneOf``/``anyOf`` is explained through the
branches meant for the value's type (a string checked against ``"longest_first" | {"rule": …}``
is told the allowed strings, not that it is not an object). A caller with better words for some
errors (the experiment files' seeds written as 13.0) passes ``explain``.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Callable, Iterable

from .jsonio import json_path

#: a caller's own words for an error it knows better: (what is wrong, fix), or None
Explain = Callable[[Any], "tuple[str, str] | None"]

_TYPES = {"object": "an object {…}", "array": "a list […]", "string": "a string", "integer": "a whole number",
          "number": "a number", "boolean": "true or false", "null": "null"}


def _type_of(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _show(value: Any, width: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _example(schema: dict) -> str | None:
    """A value to suggest for ``schema``: its first ``examples`` entry, else its first enum value."""
    if isinstance(schema, dict):
        if schema.get("examples"):
            return _show(schema["examples"][0], 80)
        if schema.get("enum"):
            return _show(schema["enum"][0])
    return None


def _closest(word: Any, choices: list[str]) -> str | None:
    """The allowed name ``word`` most likely meant: one it begins (``acc`` -> ``accuracy``), else the nearest spelling."""
    names = [str(c) for c in choices]
    start = [c for c in names if str(word) and c.startswith(str(word))]
    if len(start) == 1:
        return start[0]
    found = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    return found[0] if found else None


def _branch_rejects_type(sub) -> bool:
    """Whether ``sub`` (an error inside a ``oneOf``/``anyOf``) says its whole branch is for another
    type: a ``type``, ``enum`` or ``const`` check at the branch's root (through ``$ref``s), or a
    nested ``oneOf``/``anyOf`` there whose every branch does so."""
    keywords = list(sub.relative_schema_path)[1:]  # [branch index, ('$ref',)*, keyword]
    if not keywords or any(k != "$ref" for k in keywords[:-1]):
        return False
    if sub.validator == "type":
        return True
    if sub.validator in ("enum", "const"):
        values = sub.validator_value if sub.validator == "enum" else [sub.validator_value]
        return not any(_type_of(v) == _type_of(sub.instance) for v in values)
    return sub.validator in ("oneOf", "anyOf") and bool(sub.context) and all(_branch_rejects_type(c) for c in sub.context)


def _wanted(error) -> list[str]:
    """What a failed ``oneOf``/``anyOf`` accepts, from its branches' rejections: type names and
    allowed values."""
    out: list[str] = []
    for sub in error.context:
        if sub.validator == "type":
            want = sub.validator_value
            out += [_TYPES.get(t, t) for t in ([want] if isinstance(want, str) else want)]
        elif sub.validator == "enum":
            out.append("one of " + ", ".join(_show(v) for v in sub.validator_value))
        elif sub.validator == "const":
            out.append(_show(sub.validator_value))
        elif sub.validator in ("oneOf", "anyOf"):
            out += _wanted(sub)
    return list(dict.fromkeys(out))


def _explained(error, explain: Explain | None) -> list[tuple[Any, str, str]]:
    """(error, what is wrong, fix) for ``error``: ``explain``'s words when it has some; for a failed
    ``oneOf``/``anyOf`` the explanations of the branches meant for the value's type (recursively);
    else the generic words of :func:`_describe`."""
    told = explain(error) if explain is not None else None
    if told is not None:
        return [(error, *told)]
    if error.validator in ("oneOf", "anyOf") and error.context:
        own_type = [sub for sub in error.context if not _branch_rejects_type(sub)]
        if own_type:
            return [x for sub in own_type for x in _explained(sub, explain)]
    described = _describe(error)
    return [(error, *described)] if described is not None else []


def _unknown(value: Any, schema: dict) -> list[str]:
    """The keys of object ``value`` that ``schema`` does not name (when it closes the object)."""
    if not isinstance(value, dict) or schema.get("additionalProperties") is not False:
        return []
    return [k for k in value if k not in schema.get("properties", {})]


def _describe(error) -> tuple[str, str] | None:
    """(what is wrong, the fix) for one jsonschema error; None for a missing key that a misspelt
    key's "rename it to …" already names."""
    kw, want, value, schema = error.validator, error.validator_value, error.instance, error.schema
    if kw == "required":
        renamed = {_closest(k, list(schema.get("properties", {}))) for k in _unknown(value, schema)}
        missing = [k for k in want if k not in value and k not in renamed]  # a misspelt key's rename says it already
        if not missing:
            return None
        adds = [f"\"{k}\": {_example(schema.get('properties', {}).get(k, {})) or '…'}" for k in missing]
        return f"missing {', '.join(repr(k) for k in missing)}", "add " + ", ".join(adds)
    if kw == "additionalProperties" and _unknown(value, schema):
        allowed = list(schema.get("properties", {}))
        extra = _unknown(value, schema)
        fixes = [f"rename '{k}' to '{_closest(k, allowed)}'" if _closest(k, allowed) else f"remove '{k}'" for k in extra]
        if len(extra) == 1:
            fixes = [fixes[0].replace(f" '{extra[0]}'", " it", 1)]
        i = next((i for i, f in enumerate(fixes) if f.startswith("remove")), None)
        if i is not None:
            fixes[i] += f" (allowed here: {', '.join(allowed)})"
        return f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(repr(k) for k in extra)}", "; ".join(fixes)
    if kw == "type":
        expected = " or ".join(_TYPES.get(t, t) for t in ([want] if isinstance(want, str) else want))
        example = _example(schema)
        return f"{_show(value)} is {_TYPES[_type_of(value)]}", f"write {expected}" + (f", e.g. {example}" if example else "")
    if kw == "enum":
        near = _closest(value, want) if isinstance(value, str) else None
        options = ", ".join(_show(v) for v in want)
        return f"{_show(value)} is not an allowed value", (f"did you mean {_show(near)}? " if near else "") + f"use one of {options}"
    if kw == "const":
        return f"{_show(value)} is not {_show(want)}", f"write {_show(want)}"
    if kw == "pattern":
        rule = schema.get("description") or f"text matching {want}"
        if "propertyNames" in error.schema_path:  # a key of the object at this path
            return f"key {_show(value)} is not allowed here", f"rename the key: {rule}"
        example = _example(schema)
        return f"{_show(value)} is not allowed here", f"write {rule}" + (f", e.g. {example}" if example else "")
    if kw in ("minLength", "minItems", "minProperties"):
        unit = {"minLength": ("character", "characters"), "minItems": ("item", "items"), "minProperties": ("entry", "entries")}[kw][want != 1]
        example = _example(schema)
        return (f"{_show(value)} is empty" if not value else f"{_show(value)} is too short",
                f"give at least {want} {unit}" + (f", e.g. {example}" if example else ""))
    if kw in ("maxItems", "maxLength", "maxProperties"):
        return f"{_show(value)} is too long", f"give at most {want}"
    if kw in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kw]
        return f"{_show(value)} is out of range", f"use a number {op} {want}"
    if kw == "uniqueItems":
        return f"{_show(value)} repeats an item", "list each item once"
    if kw in ("oneOf", "anyOf"):  # no branch fits the value's type
        return f"{_show(value)} is {_TYPES[_type_of(value)]}", "write " + " or ".join(_wanted(error))
    return error.message, "see the schema at " + "/".join(str(p) for p in error.schema_path)


def schema_problems(data: Any, schema: dict, where: str, *, validator: type | None = None,
                    explain: Explain | None = None) -> list[str]:
    """Every violation of ``schema`` by ``data``, one line each (see :func:`problem_lines`).
    ``validator``: the jsonschema validator class (default Draft 2020-12)."""
    import jsonschema

    errors = (validator or jsonschema.Draft202012Validator)(schema).iter_errors(data)
    return problem_lines(errors, where, explain=explain)


def problem_lines(errors: Iterable[Any], where: str, *, explain: Explain | None = None) -> list[str]:
    """jsonschema ``errors`` as one line each, in document order (at one path an unknown key
    first: a misspelt key also makes its right spelling missing):
    ``WHERE: $.path: what is wrong; fix: what to write``. ``explain(error)``: a caller's own
    (what, fix) for an error it knows better, tried first at every level, else None."""

    def order(e) -> tuple:  # document order: list positions numerically
        return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e.absolute_path], e.validator != "additionalProperties"

    lines: list[str] = []
    for error in sorted(errors, key=order):
        for leaf, what, fix in _explained(error, explain):
            line = f"{where}: {json_path(leaf.absolute_path)}: {what}; fix: {fix}"
            if line not in lines:
                lines.append(line)
    return lines
