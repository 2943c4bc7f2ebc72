"""``pet validate``: check pattern, verbalizer and task files; print every problem (on stdout,
one line each). Exit status 2 when any file has a problem (bad input, like every command)."""

from __future__ import annotations

import argparse

from . import help_text

EXAMPLES = (
    "pet validate patterns/sst2.json verbalizers/sst2.json",
    "pet validate my_patterns.json my_verbalizers.json data/tasks/my_task.json",
)


def register(sub) -> None:
    p = sub.add_parser("validate", help="check PVP and task JSON files",
                       **help_text("Print every problem with file, JSON path and fix.", *EXAMPLES))
    p.add_argument("files", nargs="+", help="pattern, verbalizer or task files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.registry import validate_task_dict
    from ..errors import SpecError
    from ..prompts.spec import read_json, validate_file

    n_bad = 0
    for f in args.files:
        try:
            data = read_json(f)
        except SpecError as e:
            problems = [str(e)]
        else:
            is_task = isinstance(data, dict) and "patterns" not in data and "verbalizers" not in data and "splits" in data
            problems = validate_task_dict(data, str(f)) if is_task else validate_file(f)
        for p in problems:
            print(p)
        n_bad += bool(problems)
        if not problems:
            print(f"{f}: ok")
    return 2 if n_bad else 0
