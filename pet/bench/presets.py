"""Preset experiments: common comparisons as experiment definitions for the one runner.

``compare_prompts_experiment`` is what ``pet compare-prompts`` runs: zero-shot, prompt-ft,
prompt tuning, P-tuning (frozen and fine-tuned LM), deep prompts and ``[CLS]`` fine-tuning on
the same few-shot split per seed, the same test set and the same training budget — an ordinary
experiment, so it gets the results store (resume, concurrent runs), the config hashes and the
report (headline table, every stage, hard vs soft, cost, plots) of ``pet bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..data import load_task
from ..errors import ConfigError
from ..prompts.spec import load_patterns
from .experiment import Experiment, experiment_from_dict

#: The comparison's methods, in table order.
COMPARE_METHODS = ("zero-shot", "prompt-ft", "prompt-tuning", "p-tuning", "p-tuning-ft", "deep-prompt", "cls-ft")


def compare_prompts_experiment(
    task: str,
    *,
    shots: int | None = 16,
    seeds: Sequence[int] = (13, 21, 42),
    steps: int | None = None,
    methods: Sequence[str] = COMPARE_METHODS,
    method_options: dict[str, dict] | None = None,
    common_options: dict[str, Any] | None = None,
    pvps: Sequence[str] | None = None,
    test_size: int | None = None,
    results: str | Path | None = None,
) -> Experiment:
    """The hard-vs-soft comparison on ``task`` as an :class:`Experiment`.

    PVPs: ``pvps`` (hard ``pattern:verbalizer`` ids; default the task's first default PVP) plus
    the task's shipped ``soft-*`` patterns with the first PVP's verbalizer. Hard-prompt methods
    score the hard PVPs; soft-prompt methods train the soft ones (or ``{soft:4}`` before the
    mask of the first PVP when the task ships none). ``steps`` and ``common_options`` go to every
    trained method, ``method_options[m]`` to method ``m``; ``test_size`` scores a seeded subset of
    the test split (the same for every method). No unlabelled pool: none of these methods uses one.
    """
    t = load_task(task)
    methods = list(methods)
    for m in method_options or {}:
        if m not in methods:
            raise ConfigError(f"options given for method '{m}' which is not run; fix: add it to --methods or drop the option")
    if not seeds:
        raise ConfigError("no seeds; fix: pass --seeds 13,21,42")
    hard = list(pvps) if pvps else t.pvp_ids()[:1]
    verbalizer = hard[0].split(":", 1)[1] if ":" in hard[0] else None
    soft = [f"{p.id}:{verbalizer}" for p in load_patterns(t.patterns_path) if p.id.startswith("soft-") and p.is_soft] if verbalizer else []
    budgets = dict(common_options or {})
    if steps is not None:
        budgets["steps"] = steps
    data: dict[str, Any] = {
        "name": f"compare-prompts-{t.name}",
        "description": f"hard vs soft prompts vs [CLS] fine-tuning on {t.name}: identical splits, test set and budget",
        "tasks": [{"name": str(task), "pvps": hard + soft, **({"test_limit": test_size} if test_size else {})}],
        "k": [shots],
        "seeds": [int(s) for s in seeds],
        "unlabelled": 0,
        "budgets": budgets,
        "methods": [{"name": m, **({"options": dict(method_options[m])} if m in (method_options or {}) else {})} for m in methods],
    }
    if results is not None:
        data["results"] = str(results)
    return experiment_from_dict(data)
