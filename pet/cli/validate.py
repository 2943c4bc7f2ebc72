"""``pet validate``: check pattern, verbalizer, task and experiment files. Every problem is one
line ``error: FILE: JSON path: problem; fix: …`` on stderr; each good file is a ``FILE: ok`` line
on stdout. Exit status 2 when any file has a problem (bad input, like every command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import help_text

EXAMPLES = (
    "pet validate patterns/sst2.json verbalizers/sst2.json",
    "pet validate my_patterns.json my_verbalizers.json data/tasks/my_task.json",
    "pet validate benchmarks/quick.yaml",
)

#: top-level keys only an experiment file has (a pattern, verbalizer or task file has none of them)
EXPERIMENT_KEYS = ("methods", "tasks", "seeds", "budgets")


def register(sub) -> None:
    p = sub.add_parser("validate", help="check PVP, task and experiment files",
                       **help_text("Print every problem with file, JSON path and fix (on stderr; `FILE: ok` on stdout). "
                                   "Experiment files (.yaml/.yml, or JSON with tasks/methods) are checked as `pet bench` "
                                   "loads them; `pet bench FILE --dry-run` also lists their cells.", *EXAMPLES))
    p.add_argument("files", nargs="+", help="pattern, verbalizer, task or experiment files")
    p.set_defaults(func=run)


def is_experiment(path: Path, data) -> bool:
    """An experiment file: YAML (pet's other files are JSON), or JSON with an experiment's keys."""
    if path.suffix.lower() in (".yaml", ".yml"):
        return True
    return (isinstance(data, dict) and "patterns" not in data and "verbalizers" not in data and "splits" not in data
            and any(k in data for k in EXPERIMENT_KEYS))


def experiment_problems(path: Path) -> list[str]:
    """An experiment file's problems, as ``pet bench`` finds them when loading it (schema, then
    tasks, methods and every option); its ``imports`` are not run (Python code)."""
    from ..bench.experiment import experiment_from_dict, read_experiment_file, validate_experiment_dict
    from ..errors import PetError

    try:
        data = read_experiment_file(path)
        problems = validate_experiment_dict(data, str(path))
        if not problems:
            experiment_from_dict(data, path, check_registries=not data.get("imports"))
    except PetError as e:
        return [str(e)]
    return problems


def run(args: argparse.Namespace) -> int:
    from ..data.registry import validate_task_dict
    from ..errors import SpecError
    from ..prompts.spec import read_json, validate_file

    n_bad = 0
    for f in args.files:
        path = Path(f)
        kind = ""
        if path.suffix.lower() in (".yaml", ".yml"):
            problems, kind = experiment_problems(path), "experiment"
        else:
            try:
                data = read_json(f)
            except SpecError as e:
                problems = [str(e)]
            else:
                if is_experiment(path, data):
                    problems, kind = experiment_problems(path), "experiment"
                elif isinstance(data, dict) and "patterns" not in data and "verbalizers" not in data and "splits" in data:
                    problems = validate_task_dict(data, str(f))
                else:
                    problems = validate_file(f)
        for p in problems:
            print(f"error: {' '.join(str(p).split())}", file=sys.stderr)
        n_bad += bool(problems)
        if not problems:
            note = f" (experiment file; `pet bench {f} --dry-run` lists its cells)" if kind else ""
            print(f"{f}: ok{note}")
    return 2 if n_bad else 0
