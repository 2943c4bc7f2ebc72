"""Hard prompts vs soft prompts vs ``[CLS]`` fine-tuning on identical splits and budgets.

:func:`compare_prompts` runs a list of registered methods (:func:`pet.methods.base.get_method`,
so any new method plugs in by name) on the same few-shot train/dev split per seed, the same
test set and the same training budget (``steps``, batch size), and writes

* ``rows.csv`` — every row every method returned, per seed (``extra`` as JSON);
* ``summary.csv`` / ``summary.md`` — per method: mean ± std over seeds of its headline row,
  trained parameter count, training time, evaluation examples/s;
* ``chart.png`` — bar chart of the mean with std error bars, the majority-class line;
* ``run.json`` — the exact configuration, package versions, timings.

The output folder is written atomically (built under a temporary name, renamed at the end);
while running, finished rows are appended to ``<output>.partial.jsonl`` next to it, so a
crash keeps what was done. ``pet compare-prompts`` is the command-line face of this function.

Headline row of a method in one seed: its ``"final"`` row if it has one (cls-ft), else its
``"ensemble"`` row when it scored several PVPs, else its single ``"pvp"`` row (else the mean
of its ``"pvp"`` rows). Standard deviation is over seeds, population (ddof=0), as LM-BFF.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ConfigError
from .examples import Example

log = logging.getLogger(__name__)

#: The comparison's methods, in table order.
DEFAULT_METHODS = ("zero-shot", "prompt-ft", "prompt-tuning", "p-tuning", "p-tuning-ft", "deep-prompt", "cls-ft")
#: Methods that do not train (they get no ``steps``).
UNTRAINED = ("zero-shot",)


@dataclass
class CompareResult:
    rows: Any  # pandas.DataFrame, one row per StageResult per seed
    summary: Any  # pandas.DataFrame, one row per method (+ the majority class)
    output: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)


def _pick_test(test: list[Example], size: int | None, seed: int = 0) -> list[Example]:
    if not size or size >= len(test):
        return test
    idx = sorted(random.Random(seed).sample(range(len(test)), size))
    return [test[i] for i in idx]


def headline(rows: Sequence[dict]) -> dict | None:
    """The row that stands for a method in one seed (see the module docstring)."""
    if not rows:
        return None
    by_stage: dict[str, list[dict]] = {}
    for r in rows:
        by_stage.setdefault(r["stage"], []).append(r)
    if "final" in by_stage:
        return by_stage["final"][-1]
    pvp_rows = by_stage.get("pvp", [])
    if "ensemble" in by_stage and len(pvp_rows) != 1:
        return by_stage["ensemble"][-1]
    if len(pvp_rows) == 1:
        return pvp_rows[0]
    if pvp_rows:
        r = dict(pvp_rows[0])
        r["score"] = float(np.mean([p["score"] for p in pvp_rows]))
        r["pvp"] = "mean of PVPs"
        return r
    return rows[-1]


def summarize(rows_df, methods: Sequence[str], majority: float | None = None):
    """Per method: mean ± std of the headline score over seeds, params, time, examples/s."""
    import pandas as pd

    out = []
    for m in methods:
        sub = rows_df[rows_df["method"] == m]
        if sub.empty:
            continue
        heads = [headline(g.to_dict("records")) for _, g in sub.groupby("seed", sort=True)]
        heads = [h for h in heads if h is not None]
        scores = np.array([h["score"] for h in heads], dtype=float)
        out.append(
            {
                "method": m,
                "stage": heads[0]["stage"],
                "pvp": heads[0].get("pvp") if isinstance(heads[0].get("pvp"), str) else "",
                "mean": float(scores.mean()),
                "std": float(scores.std(ddof=0)),
                "n_seeds": len(scores),
                "scores": " ".join(f"{s:.4f}" for s in scores),
                "trained_parameters": int(np.max([h["trained_parameters"] for h in heads])),
                "train_seconds": float(np.mean([h["train_seconds"] for h in heads])),
                "eval_examples_per_second": float(np.mean([h["eval_examples_per_second"] for h in heads])),
            }
        )
    if majority is not None:
        out.append(
            {"method": "majority class", "stage": "reference", "pvp": "", "mean": majority, "std": 0.0, "n_seeds": 0, "scores": "",
             "trained_parameters": 0, "train_seconds": 0.0, "eval_examples_per_second": float("nan")}
        )
    return pd.DataFrame(out)


def _fmt_int(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else (f"{n / 1e3:.1f}k" if n >= 1e3 else str(n))


def summary_markdown(summary, metric: str, title: str = "") -> str:
    """The summary as a Markdown table (scores in %, mean ± std over seeds)."""
    head = ["method", f"{metric} (mean ± std, %)", "seeds", "trained params", "train s", "eval ex/s", "row"]
    lines = [f"{title}\n" if title else "", "| " + " | ".join(head) + " |", "|" + "|".join([" --- "] * len(head)) + "|"]
    for r in summary.to_dict("records"):
        eps = r["eval_examples_per_second"]
        lines.append(
            "| "
            + " | ".join(
                [
                    r["method"],
                    f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}" if r["n_seeds"] else f"{100 * r['mean']:.1f}",
                    str(r["n_seeds"]) if r["n_seeds"] else "–",
                    _fmt_int(int(r["trained_parameters"])),
                    f"{r['train_seconds']:.0f}" if r["n_seeds"] else "–",
                    f"{eps:.0f}" if eps == eps else "–",
                    f"{r['stage']}" + (f" `{r['pvp']}`" if r["pvp"] else ""),
                ]
            )
            + " |"
        )
    return "\n".join(l for l in lines if l is not None).lstrip("\n") + "\n"


def bar_chart(summary, path: Path, metric: str, title: str) -> None:
    """Bar chart (mean with std error bars; majority class as a dashed line), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = summary[summary["stage"] != "reference"]
    ref = summary[summary["stage"] == "reference"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(data) + 1.5), 4.0))
    x = np.arange(len(data))
    ax.bar(x, 100 * data["mean"], yerr=100 * data["std"], capsize=4, color="#4C72B0")
    for xi, m, sd in zip(x, data["mean"], data["std"]):
        ax.text(xi, 100 * (m + sd) + 1.5, f"{100 * m:.1f}", ha="center", va="bottom", fontsize=8)
    if not ref.empty:
        ax.axhline(100 * float(ref["mean"].iloc[0]), color="grey", ls="--", lw=1, label="majority class")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(data["method"], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _majority(task, test: list[Example], score: Callable) -> float | None:
    gold = [e.label for e in test]
    if not gold or any(g is None for g in gold):
        return None
    top = max(set(gold), key=gold.count)
    return float(score(gold, [top] * len(gold)))


def compare_prompts(
    task,
    model: str,
    *,
    data_dir: str | Path | None = None,
    shots: int | None = 16,
    seeds: Sequence[int] = (13, 21, 42),
    steps: int | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    method_options: dict[str, dict] | None = None,
    common_options: dict | None = None,
    pvps: Sequence[str] | None = None,
    test_size: int | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    train_examples: Sequence[Example] | None = None,
    test_examples: Sequence[Example] | None = None,
) -> CompareResult:
    """Run ``methods`` on identical splits and budgets; write the table and chart to ``output``.

    ``task``: a task name, task JSON path or ``TaskSpec``. Per seed the few-shot split is
    :func:`pet.tasks.few_shot` (LM-BFF's fixed ``16-<seed>`` files for K=16) unless
    ``train_examples`` is given (then every seed uses it and only the training order and
    initialisation change). ``pvps``: the hard PVPs (``pattern:verbalizer`` ids); default the
    task's first default PVP — zero-shot and prompt-ft score those, soft methods take their
    verbalizer. ``steps`` is given to every trained method (same batch size: TrainConfig's).
    ``method_options[method]`` overrides per method; ``common_options`` go to every trained
    method. ``test_size`` scores a seeded subset of the test split (the same for every method).
    """
    import pandas as pd

    from .io import atomic_directory
    from .methods.base import RunContext, get_method
    from .spec import load_patterns, load_verbalizers, make_pvps
    from .data import few_shot, load_examples, load_task
    from .versions import package_versions

    echo = echo or (lambda s: log.info(s))
    t = load_task(task)
    methods = list(methods)
    fns = {m: get_method(m) for m in methods}  # unknown names fail before any work
    method_options = {k: dict(v) for k, v in (method_options or {}).items()}
    for k in method_options:
        if k not in methods:
            raise ConfigError(f"options given for method '{k}' which is not run; fix: add it to --methods or drop the option")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("no seeds; fix: pass --seeds 13,21,42")
    if steps is not None and (not isinstance(steps, int) or steps < 0):
        raise ConfigError(f"steps={steps!r}; fix: give a whole number ≥ 0")
    out = Path(output) if output is not None else None
    if out is not None and out.exists() and not overwrite and out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out}: output directory exists and is not empty; fix: choose another --output or pass --overwrite")

    all_pvps = make_pvps(load_patterns(t.patterns_path), load_verbalizers(t.verbalizers_path), list(pvps) if pvps else t.pvp_ids()[:1])
    hard = [p for p in all_pvps if not p.pattern.is_soft] or all_pvps
    full_test = load_examples(t, "test", data_dir) if test_examples is None else list(test_examples)
    test = _pick_test(full_test, test_size)
    common = dict(common_options or {})
    if steps is not None:
        common["steps"] = steps

    partial = out.with_name(f".{out.name}.partial.jsonl") if out is not None else None
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")
    records: list[dict] = []
    t_start = time.perf_counter()
    first_ctx = None
    for seed in seeds:
        if train_examples is None:
            train, dev = few_shot(t, data_dir, k=shots, seed=seed)
        else:
            train, dev = list(train_examples), []
        ctx = RunContext(task=t, model=model, train=train, test=test, pvps=hard, seed=seed, k=shots, dev=dev, device=device, progress=progress)
        first_ctx = first_ctx or ctx
        for m in methods:
            opts = {} if m in UNTRAINED else dict(common)
            opts.update(method_options.get(m, {}))
            t0 = time.perf_counter()
            rows = fns[m](ctx, opts)
            wall = time.perf_counter() - t0
            for r in rows:
                d = r.to_dict()
                d["extra"] = json.dumps(d.get("extra") or {}, default=str, sort_keys=True)
                rec = {"task": t.name, "model": model, "k": shots, "seed": seed, **d, "wall_seconds": wall}
                records.append(rec)
                if partial is not None:
                    with partial.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(rec, default=str) + "\n")
            h = headline([r.to_dict() for r in rows])
            echo(
                f"[{time.perf_counter() - t_start:6.0f}s] {t.name} seed {seed} {m:<14} "
                f"{t.metric} {h['score'] if h else float('nan'):.4f}  ({wall:.0f}s)"
            )

    rows_df = pd.DataFrame.from_records(records)
    majority = _majority(t, test, first_ctx.score) if first_ctx else None
    summary = summarize(rows_df, methods, majority)
    result = CompareResult(rows_df, summary)
    if out is None:
        return result
    title = f"{t.name}, K={shots}, seeds {','.join(map(str, seeds))}, model {Path(model).name or model}, steps {steps if steps is not None else 'default'}"
    with atomic_directory(out, overwrite=True) as tmp:
        rows_df.to_csv(tmp / "rows.csv", index=False)
        summary.to_csv(tmp / "summary.csv", index=False)
        (tmp / "summary.md").write_text(summary_markdown(summary, t.metric, f"**{title}**"), encoding="utf-8")
        bar_chart(summary, tmp / "chart.png", t.metric, title)
        run = {
            "task": t.name,
            "model": model,
            "shots": shots,
            "seeds": seeds,
            "steps": steps,
            "methods": methods,
            "method_options": method_options,
            "common_options": common,
            "hard_pvps": [p.id for p in hard],
            "test_size": len(test),
            "test_subset": len(test) < len(full_test),
            "test_full_size": len(full_test),
            "majority_class": majority,
            "total_seconds": time.perf_counter() - t_start,
            "command": " ".join(["pet", *sys.argv[1:]]) if "compare-prompts" in sys.argv else None,  # no machine paths
            "torch_threads": _threads(),
            "platform": platform.platform(),
            "versions": package_versions(),
        }
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n", encoding="utf-8")
    if partial is not None:
        partial.unlink(missing_ok=True)
    result.output = out
    result.files = {n: out / n for n in ("rows.csv", "summary.csv", "summary.md", "chart.png", "run.json")}
    return result


def rerender(output: str | Path) -> CompareResult:
    """Rebuild ``summary.csv``, ``summary.md`` and ``chart.png`` of a finished comparison from its
    ``rows.csv`` and ``run.json`` (each file replaced atomically)."""
    import pandas as pd

    from .io import atomic_write_text
    from .data import load_task

    out = Path(output)
    if not (out / "rows.csv").is_file() or not (out / "run.json").is_file():
        raise ConfigError(f"{out}: no rows.csv/run.json; fix: point at a folder written by `pet compare-prompts`")
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    rows_df = pd.read_csv(out / "rows.csv")
    metric = str(rows_df["metric"].iloc[0]) if len(rows_df) else load_task(run["task"]).metric
    summary = summarize(rows_df, run["methods"], run.get("majority_class"))
    title = (
        f"{run['task']}, K={run['shots']}, seeds {','.join(map(str, run['seeds']))}, model {Path(run['model']).name or run['model']}, "
        f"steps {run['steps'] if run['steps'] is not None else 'default'}"
    )
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(out / "summary.md", summary_markdown(summary, metric, f"**{title}**"))
    bar_chart(summary, out / "chart.png", metric, title)
    return CompareResult(rows_df, summary, out, {n: out / n for n in ("rows.csv", "summary.csv", "summary.md", "chart.png", "run.json")})


def _threads() -> int:
    import torch

    return torch.get_num_threads()
