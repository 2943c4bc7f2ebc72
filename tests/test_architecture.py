"""The package's shape: no import cycles, a thin CLI, every method registered with typed options
whose command-line flags and experiment keys come from one dataclass."""

from __future__ import annotations

import argparse
import ast
import graphlib
from pathlib import Path

import pytest

from pet.errors import ConfigError
from pet.methods import available_methods, get_method
from pet.options import Options

PKG = Path(__file__).resolve().parent.parent / "pet"


def _import_graph() -> dict[str, set[str]]:
    """Module -> the pet modules it imports (module- and function-level alike; the package
    root itself excluded, as in ../shared/tools/import_cycles.py)."""
    mods = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        base = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                b = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
                targets = [b] + [f"{b}.{a.name}" for a in node.names] if b else []
            for t in targets:
                while t and t not in mods:
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != m and not m.startswith(t + ".") and t != "pet":
                    graph[m].add(t)
    return graph


def test_no_import_cycles():
    graph = _import_graph()
    assert len(graph) > 40
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


#: the layers, bottom to top: a module imports only from its own layer or a lower one
LAYERS = ["pet.utils", "pet.prompts", "pet.data", "pet.models", "pet.training", "pet.methods",
          "pet.evaluation", "pet.estimator", "pet.bench", "pet.cli"]
#: the shared core every layer may use (one module each, directly in pet/)
CORE = {"pet.errors", "pet.examples", "pet.options", "pet.metrics"}


def _layer(m: str) -> int:
    if m in CORE:
        return -1
    for i, pkg in enumerate(LAYERS):
        if m == pkg or m.startswith(pkg + "."):
            return i
    raise AssertionError(f"{m} is in no layer: put it in one of {LAYERS} (or the core {sorted(CORE)})")


def test_lower_layers_do_not_import_higher_ones():
    graph = _import_graph()
    for m, deps in graph.items():
        if m in ("pet", "pet.__main__"):  # the public facade (lazy re-exports) and `python -m pet`
            continue
        for d in deps:
            assert _layer(d) <= _layer(m), f"{m} ({LAYERS[_layer(m)] if _layer(m) >= 0 else 'core'}) imports {d} (a higher layer)"
    for d in graph.get("pet.utils", set()) | {d for m, ds in graph.items() if m.startswith("pet.utils.") for d in ds}:
        assert d in CORE or d.startswith("pet.utils"), f"pet.utils imports {d}"


def test_the_tree_is_the_layers():
    """At most ~12 modules directly in pet/; everything else lives in a layer's folder."""
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 12, top
    assert set(top) <= {"__init__.py", "__main__.py"} | {m.split(".")[1] + ".py" for m in CORE}, top
    for pkg in LAYERS:
        assert (PKG.parent / pkg.replace(".", "/") / "__init__.py").is_file(), pkg


def test_cli_modules_only_parse_call_and_print():
    """No sampling, task building or saving logic in pet/cli: those live in the library."""
    forbidden = ("import random", "TaskSpec(", "few_shot(", "unlabelled_pool(", "sample_k_per_class(", "save_pretrained(",
                 "save_file(", "atomic_directory(", "write_manifest(", ".fit(")
    for f in (PKG / "cli").glob("*.py"):
        text = f.read_text(encoding="utf-8")
        for bad in forbidden:
            assert bad not in text, f"{f.name} contains {bad!r}"


@pytest.mark.parametrize("name", ["zero-shot", "prompt-ft", "adapet", "cls-ft", "pet", "ipet", "prompt-tuning", "p-tuning", "p-tuning-ft", "deep-prompt"])
def test_every_method_is_registered_with_typed_documented_options(name):
    assert name in available_methods()
    m = get_method(name)
    assert m.family in ("hard", "soft", "baseline") and issubclass(m.options, Options)
    defaults = m.make_options({})
    for f in m.options.fields():
        assert f.metadata.get("help"), f"{name}.{f.name} has no help text"
    with pytest.raises(ConfigError, match=rf"{name} options: unknown option 'bogus_key'"):
        m.make_options({"bogus_key": 1})
    # the derived command-line flags give back the same options
    p = argparse.ArgumentParser()
    m.options.add_arguments(p)
    given = m.options.from_args(p.parse_args([]))
    assert given == {} and m.make_options(given) == defaults


def test_options_flags_parse_types_and_ranges():
    m = get_method("ipet")
    p = argparse.ArgumentParser()
    m.options.add_arguments(p)
    args = p.parse_args(["--steps", "7", "--lr", "2e-5", "--no-distill", "--generations", "3", "--tune", "bitfit"])
    opts = m.make_options(m.options.from_args(args))
    assert (opts.steps, opts.lr, opts.distill, opts.generations, opts.tune) == (7, 2e-5, False, 3, "bitfit")
    for bad in (["--steps", "-1"], ["--lr", "0"], ["--tune", "everything"], ["--ipet-fraction", "1.5"], ["--steps", "two"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)


def test_docs_worked_example_is_a_working_method(tiny_bert_dir):
    """docs/architecture.md's 'Adding a method' code registers a method that fits, predicts and
    evaluates through the same API as the built-in ones."""
    import re

    import numpy as np

    from pet.estimator.classifier import PetClassifier
    from pet.data.registry import load_task
    from pet.evaluation import evaluate

    text = (PKG.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 60
    if "train-prior" not in available_methods():
        exec(compile(code, "docs/architecture.md", "exec", dont_inherit=True), {"__name__": "docs_example"})
    m = get_method("train-prior")
    assert m.make_options({"strength": 0.5}).strength == 0.5
    with pytest.raises(ConfigError, match="did you mean 'strength'"):
        m.make_options({"strenght": 0.5})
    texts, y = ["a great film", "awful", "loved it", "terrible"], ["1", "0", "1", "0"]
    clf = PetClassifier(tiny_bert_dir, "train-prior", task="sst2", pvps=["it-was:great-terrible"], max_length=32).fit(texts, y)
    f = clf.fitted_
    assert f.final == "debiased" and [s.key for s in f.stages] == ["zero-shot", "debiased"]
    # independent check: debiased = zero-shot log-probs minus the mean training prior, renormalised
    from pet.examples import Example

    ex = [Example({"text_a": t}) for t in texts]
    zs = f.stage("zero-shot").predictor.predict_log_proba(ex)
    shifted = zs - np.log(np.exp(zs).mean(0))
    np.testing.assert_allclose(clf.predict_log_proba(texts), shifted - np.log(np.exp(shifted).sum(1, keepdims=True)), atol=1e-9)
    rows = evaluate(f, [Example({"text_a": t}, lab) for t, lab in zip(texts, y)], load_task("sst2"))
    assert [r["final"] for r in rows] == [False, True] and all(0 <= r["score"] <= 1 for r in rows)
