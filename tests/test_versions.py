"""The code fingerprint that guards saved partial work (:mod:`pet.utils.versions`): it changes
with code that training runs and only with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import pet
from pet.utils.versions import PRESENTATION_ONLY, source_digest, source_digest_of


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "pet"
    shutil.copytree(Path(pet.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_installed_digest_is_the_digest_of_the_package_folder():
    assert source_digest() == source_digest_of(Path(pet.__file__).parent)


def test_comments_and_docstrings_do_not_change_the_digest(tree):
    before = source_digest_of(tree)
    loop = tree / "training" / "loop.py"
    text = loop.read_text(encoding="utf-8")
    end = text.index('"""', 3) + 3  # the module docstring
    loop.write_text('"""Reworded entirely."""' + text[end:] + "\n# a comment added at the end\n", encoding="utf-8")
    _edit(tree / "utils" / "versions.py", "    import ast\n", "    import ast  # the parser\n")
    assert source_digest_of(tree) == before


def test_a_code_change_in_a_training_module_changes_the_digest(tree):
    before = source_digest_of(tree)
    _edit(tree / "training" / "loop.py", "0.15", "0.16")
    assert source_digest_of(tree) != before


def test_a_function_docstring_is_removed_but_a_string_statement_later_is_code(tree):
    before = source_digest_of(tree)
    (tree / "training" / "extra.py").write_text('def f():\n    """doc"""\n    return 1\n', encoding="utf-8")
    with_doc = source_digest_of(tree)
    assert with_doc != before  # a new module is new code
    (tree / "training" / "extra.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    assert source_digest_of(tree) == with_doc
    (tree / "training" / "extra.py").write_text('def f():\n    x = 1\n    "not a docstring"\n    return x\n', encoding="utf-8")
    assert source_digest_of(tree) != with_doc


def test_command_line_and_report_modules_are_not_part_of_the_digest(tree):
    before = source_digest_of(tree)
    for rel in PRESENTATION_ONLY:
        target = tree / rel
        files = sorted(target.rglob("*.py")) if rel.endswith("/") else [target]
        assert files and all(f.exists() for f in files), f"PRESENTATION_ONLY names {rel}, which is not in pet/"
        for f in files:
            f.write_text(f.read_text(encoding="utf-8") + "\nCHANGED = 1\n", encoding="utf-8")
    assert source_digest_of(tree) == before
    runner = tree / "bench" / "runner.py"  # runs the cells: part of the digest
    runner.write_text(runner.read_text(encoding="utf-8") + "\nCHANGED = 1\n", encoding="utf-8")
    assert source_digest_of(tree) != before


def test_a_file_that_does_not_parse_is_hashed_as_bytes(tree):
    (tree / "broken.py").write_text("def (:\n", encoding="utf-8")
    first = source_digest_of(tree)
    (tree / "broken.py").write_text("def (:  \n", encoding="utf-8")
    assert source_digest_of(tree) != first
