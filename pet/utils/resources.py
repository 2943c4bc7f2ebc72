"""Where the shipped files live: task definitions, patterns, verbalizers, published references
and JSON Schemas.

In an installed package (``pip install .``) they are package data under ``pet/shipped/``, mapped
there at build time from the repository's top-level ``data/``, ``patterns/`` and
``verbalizers/`` folders (see ``setup.cfg``). In a source checkout or an editable install they
are read from those top-level folders directly.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_PACKAGE = Path(str(files("pet")))
#: kind -> (folder inside an installed package, folder in a source checkout)
_WHERE = {
    "tasks": ("shipped/data/tasks", "../data/tasks"),
    "references": ("shipped/data", "../data"),
    "patterns": ("shipped/patterns", "../patterns"),
    "verbalizers": ("shipped/verbalizers", "../verbalizers"),
    "schemas": ("prompts/schemas", "prompts/schemas"),
}


def shipped_dir(kind: str) -> Path:
    """The folder of one kind of shipped file (``tasks``, ``patterns``, ``verbalizers``,
    ``references``, ``schemas``)."""
    installed, checkout = _WHERE[kind]
    p = _PACKAGE / installed
    return p if p.is_dir() else (_PACKAGE / checkout).resolve()
