"""Why do LM-BFF's demonstrations not help TREC here? Measure it (not a test; chooses nothing).

LM-BFF (Gao et al. 2021, Table 3, RoBERTa-large) reports prompt-based fine-tuning on TREC at
84.8 (5.1) and with demonstrations at 87.5 (3.2): +2.7. The flagship store has both recipes on
the same five splits with ``minilm-mlm`` (``prompt-ft-lmbff`` and ``prompt-ft-lmbff-demo``): the
paired difference is -0.4 [-2.3, +1.7]. This script separates the candidate causes on the
splits of seeds 13 / 21 / 42, each model at the flagship's recipe (LM-BFF's budget: 1,000 steps
x batch 8, lr 1e-5, the split's dev set choosing the checkpoint every 100 steps; the task's
first PVP, LM-BFF's manual template and label words; 16 demonstration sets at evaluation):

* ``input`` — are demonstrations cut? Token lengths of the test inputs with one demonstration
  set, against the 256-token limit (LM-BFF's too).
* ``base`` — does the untrained masked LM use demonstrations in context at all? Its test score
  without demonstrations, with SBERT-filtered ones (``st:all-MiniLM-L6-v2``, filter rate 0.5, as
  the flagship) and with uniformly sampled ones.
* ``plain`` — a model fine-tuned WITHOUT demonstrations (the flagship's ``prompt-ft-lmbff``,
  retrained here; its no-demonstration score checks the reproduction), tested without, with
  SBERT-filtered and with uniform demonstrations: do demonstrations at test time alone help?
* ``uniform`` — a model fine-tuned WITH uniformly sampled demonstrations (LM-BFF's "uniform
  sampling" ablation, Table 6), tested with uniform demonstrations and without any: does the
  SBERT filter matter, and does training with demonstrations help the model without them?
* ``stored`` — the flagship's two rows per split (free: read from ``--store``).

Each condition's per-example predictions are kept in ``OUTPUT.json`` (the run resumes from it:
a condition already there is not recomputed); the tables go to ``OUTPUT`` with each mean's
hierarchical bootstrap interval and paired differences (:mod:`pet.bench.stats`).

    OMP_NUM_THREADS=1 python benchmarks/demo_diagnosis.py --store benchmarks/results/flagship/results.jsonl \\
        --data-dir ../shared/data --model ../shared/models/minilm-mlm \\
        --sentence-model ../shared/models/all-minilm-l6-v2 --output benchmarks/results/demo_diagnosis.md
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from pet.bench.stats import Metric, Run, bootstrap_mean, paired_comparison
from pet.utils.io import atomic_write_text

#: the flagship's prompt-ft-lmbff / prompt-ft-lmbff-demo recipe (benchmarks/flagship_lmbff_demo.yaml)
BUDGET = {"steps": 1000, "lr": 1e-5, "batch_size": 8, "weight_decay": 0.0, "eval_every": 100, "pvp": ["first"]}
DEMO = {"demo_sets": 16, "demo_filter_rate": 0.5}
MAX_LENGTH = 256  # LM-BFF's limit with demonstrations (and pet's default demo_max_length)

CONDITIONS = {  # key: (what was trained, what the test inputs carried)
    "base/none": ("untrained", "no demonstrations"),
    "base/sbert": ("untrained", "SBERT-filtered demonstrations"),
    "base/uniform": ("untrained", "uniform demonstrations"),
    "plain/none": ("fine-tuned without demonstrations", "no demonstrations"),
    "plain/sbert": ("fine-tuned without demonstrations", "SBERT-filtered demonstrations"),
    "plain/uniform": ("fine-tuned without demonstrations", "uniform demonstrations"),
    "uniform/uniform": ("fine-tuned with uniform demonstrations", "uniform demonstrations"),
    "uniform/none": ("fine-tuned with uniform demonstrations", "no demonstrations"),
    "stored/prompt-ft-lmbff": ("flagship store: fine-tuned without demonstrations", "no demonstrations"),
    "stored/prompt-ft-lmbff-demo": ("flagship store: fine-tuned with SBERT-filtered demonstrations", "SBERT-filtered demonstrations"),
}
#: paired differences reported: (A, B, what A - B measures)
PAIRS = [
    ("base/sbert", "base/none", "in-context use by the untrained model (SBERT demonstrations)"),
    ("base/uniform", "base/none", "in-context use by the untrained model (uniform demonstrations)"),
    ("plain/sbert", "plain/none", "demonstrations at test time only (SBERT)"),
    ("plain/uniform", "plain/none", "demonstrations at test time only (uniform)"),
    ("uniform/uniform", "plain/none", "LM-BFF's recipe with uniform sampling vs none"),
    ("stored/prompt-ft-lmbff-demo", "stored/prompt-ft-lmbff", "LM-BFF's recipe with the SBERT filter vs none (the flagship's rows)"),
    ("stored/prompt-ft-lmbff-demo", "uniform/uniform", "the SBERT filter, both trained with demonstrations"),
    ("uniform/none", "plain/none", "training with demonstrations, tested without any"),
    ("uniform/uniform", "uniform/none", "use of the demonstrations by the model trained with them (removed at test time)"),
    ("plain/none", "stored/prompt-ft-lmbff", "reproduction of the flagship's prompt-ft-lmbff (should be ~0)"),
]


def stored_runs(store: str, task: str, seeds: list[int]) -> dict:
    """The flagship's dev-chosen final rows of prompt-ft-lmbff(-demo) per seed."""
    from pet.bench.rows import ResultRow

    out: dict = {}
    with open(store, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if (d.get("task") == task and d.get("type") == "row" and d.get("final") and d.get("selected")
                    and d.get("method") in ("prompt-ft-lmbff", "prompt-ft-lmbff-demo") and d.get("seed") in seeds):
                row = ResultRow.from_dict(d)
                out[(f"stored/{d['method']}", d["seed"])] = {"pred": row.pred_array().tolist(), "gold": row.gold_array().tolist(),
                                                             "best_step": json_extra(d).get("best_step")}
    return out


def json_extra(d: dict) -> dict:
    extra = d.get("extra") or {}
    return extra if isinstance(extra, dict) else {}


class Diagnosis:
    def __init__(self, args):
        from pet.data.rundata import task_run_data

        self.args = args
        self.cache_path = args.output + ".json"
        self.cache = json.load(open(self.cache_path, encoding="utf-8")) if os.path.exists(self.cache_path) else {}
        self.runs = {s: task_run_data(args.task, args.data_dir, k=16, seed=s) for s in args.seeds}
        self.sbert = f"st:{args.sentence_model}"

    def _save(self) -> None:
        atomic_write_text(self.cache_path, json.dumps(self.cache, sort_keys=True) + "\n")

    def have(self, cond: str, seed: int) -> bool:
        return f"{cond}@{seed}" in self.cache

    def put(self, cond: str, seed: int, run, log_proba: np.ndarray, **info) -> None:
        from pet.evaluation.evaluator import gold_indices

        gold = gold_indices(run.test, [str(x) for x in run.task.label_ids], "test").tolist()
        pred = np.asarray(log_proba).argmax(-1).tolist()
        self.cache[f"{cond}@{seed}"] = {"pred": pred, "gold": gold, **info}
        self._save()
        print(f"  {cond} seed {seed}: {100 * np.mean(np.asarray(pred) == np.asarray(gold)):.1f}", flush=True)

    def demo_scores(self, inner, run, similarity: str) -> np.ndarray:
        """``inner`` (a PromptEnsemble) on the test set with 16 demonstration sets from the split's training examples."""
        from pet.methods.predictors import DemonstrationEnsemble, PromptEnsemble
        from pet.prompts.demonstrations import DemoConfig

        wide = PromptEnsemble(inner.members, inner.labels, MAX_LENGTH, inner.batch_size)
        cfg = DemoConfig(sets=DEMO["demo_sets"], similarity=similarity, filter_rate=DEMO["demo_filter_rate"], seed=run.seed)
        return DemonstrationEnsemble(wide, run.train, cfg).predict_log_proba(run.test)

    def input_lengths(self, seed: int) -> dict:
        from pet.models.prompt_model import PromptModel
        from pet.prompts.demonstrations import DemoConfig, DemoSampler, demonstration_pvp, make_embedder, with_demonstrations
        from pet.prompts.encoding import PVPEncoder

        run = self.runs[seed]
        model = PromptModel.from_pretrained(self.args.model)
        pvp = run.pvps[0]
        cfg = DemoConfig(sets=1, similarity=self.sbert, filter_rate=DEMO["demo_filter_rate"], seed=seed)
        sampler = DemoSampler(run.train, run.task.label_ids, cfg, make_embedder(self.sbert, model))
        demo_pvp = demonstration_pvp(pvp, run.task.label_ids, sep=model.tokenizer.sep_token_id is not None)
        aug = with_demonstrations(run.test, sampler.sample(run.test, 0))
        n = np.array([len(e.input_ids) for e in PVPEncoder(demo_pvp, model.tokenizer, max_length=100_000).encode(aug)])
        plain = np.array([len(e.input_ids) for e in PVPEncoder(pvp, model.tokenizer, max_length=100_000).encode(run.test)])
        return {"seed": seed, "plain_mean": float(plain.mean()), "plain_max": int(plain.max()), "demo_mean": float(n.mean()),
                "demo_max": int(n.max()), "over_limit": int((n > MAX_LENGTH).sum()), "n": len(n)}

    def base(self, seed: int) -> None:
        from pet.methods.predictors import PromptEnsemble
        from pet.models.prompt_model import PromptModel

        todo = [c for c in ("base/none", "base/sbert", "base/uniform") if not self.have(c, seed)]
        if not todo:
            return
        run = self.runs[seed]
        model = PromptModel.from_pretrained(self.args.model)
        inner = PromptEnsemble([(model, run.pvps[0])], list(run.task.label_ids), MAX_LENGTH, 32)
        for cond in todo:
            t0 = time.perf_counter()
            lp = inner.predict_log_proba(run.test) if cond == "base/none" else self.demo_scores(inner, run, self.sbert if cond == "base/sbert" else "none")
            self.put(cond, seed, run, lp, eval_seconds=time.perf_counter() - t0)

    def trained(self, seed: int, kind: str) -> None:
        """``kind`` plain: fine-tuned without demonstrations; uniform: with uniform demonstrations."""
        from pet.methods import FitSetup, get_method

        tests = {"plain": ("none", "sbert", "uniform"), "uniform": ("uniform", "none")}[kind]
        todo = [t for t in tests if not self.have(f"{kind}/{t}", seed)]
        if not todo:
            return
        run = self.runs[seed]
        options = {**BUDGET, "seed": seed}
        if kind == "uniform":
            options.update(demonstrations=True, demo_similarity="none", **DEMO)
        setup = FitSetup(model=self.args.model, labels=list(run.task.label_ids), pvps=list(run.pvps), seed=seed,
                         max_length=run.task.max_length, dev=run.dev)
        t0 = time.perf_counter()
        fitted = get_method("prompt-ft").fit(run.train, run.unlabelled, options, setup)
        log = next(iter(fitted.logs.values()))
        info = {"best_step": log.best_step, "train_seconds": round(time.perf_counter() - t0, 1)}
        pred = fitted.predictor
        inner = pred.inner if kind == "uniform" else pred  # the PromptEnsemble under the demonstrations
        for t in todo:
            if t == "none":
                lp = inner.predict_log_proba(run.test)
            elif kind == "uniform" and t == "uniform":
                lp = pred.predict_log_proba(run.test)  # as trained: its own demonstration predictor
            else:
                lp = self.demo_scores(inner, run, self.sbert if t == "sbert" else "none")
            self.put(f"{kind}/{t}", seed, run, lp, **info)


def runs_of(cache: dict, cond: str, seeds: list[int]) -> list[Run] | None:
    if not all(f"{cond}@{s}" in cache for s in seeds):
        return None
    out = []
    for s in seeds:
        c = cache[f"{cond}@{s}"]
        gold, pred = np.asarray(c["gold"]), np.asarray(c["pred"])
        out.append(Run(s, float((gold == pred).mean()), gold, pred))
    return out


def report(cache: dict, seeds: list[int], lengths: list[dict], n_labels: int) -> str:
    metric = Metric("accuracy", n_labels)
    lines = [f"# Demonstrations on TREC: where the +2.7 of LM-BFF goes (seeds {', '.join(map(str, seeds))})", "",
             "Written by `benchmarks/demo_diagnosis.py` (its docstring has the command and the recipe). Base model "
             "`minilm-mlm`; full TREC test set (500); accuracy in %, mean over the seeds with its 95% hierarchical "
             "bootstrap interval (seeds x test examples, 2,000 resamples).", ""]
    if lengths:
        lines += ["## Input lengths (one SBERT-filtered demonstration set per test question)", "",
                  "| seed | tokens without demonstrations (mean / max) | with (mean / max) | over 256 |", "|---|---|---|---|"]
        lines += [f"| {d['seed']} | {d['plain_mean']:.1f} / {d['plain_max']} | {d['demo_mean']:.1f} / {d['demo_max']} | "
                  f"{d['over_limit']} of {d['n']} |" for d in lengths]
        lines.append("")
    lines += ["## Accuracy per condition", "", "| trained | tested with | per seed | mean [95% interval] | dev-chosen step |",
              "|---|---|---|---|---|"]
    for cond, (trained, tested) in CONDITIONS.items():
        runs = runs_of(cache, cond, seeds)
        if runs is None:
            continue
        iv = bootstrap_mean(runs, metric)
        steps = [cache[f"{cond}@{s}"].get("best_step") for s in seeds]
        lines.append(f"| {trained} | {tested} | {' / '.join(f'{100 * r.score:.1f}' for r in runs)} | "
                     f"{100 * iv.mean:.1f} [{100 * iv.low:.1f}, {100 * iv.high:.1f}] | "
                     f"{' / '.join('-' if x is None else str(x) for x in steps)} |")
    lines += ["", "## Paired differences (A - B, same splits and test examples)", "",
              "| A | B | what it measures | A - B [95% interval] |", "|---|---|---|---|"]
    for a, b, what in PAIRS:
        ra, rb = runs_of(cache, a, seeds), runs_of(cache, b, seeds)
        if ra is None or rb is None:
            continue
        c = paired_comparison(ra, rb, metric)
        mark = "**" if not c.within_noise else ""
        lines.append(f"| {a} | {b} | {what} | {mark}{100 * c.mean:+.1f} [{100 * c.low:+.1f}, {100 * c.high:+.1f}]{mark} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="the flagship's results.jsonl")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", required=True, help="the masked LM (../shared/models/minilm-mlm)")
    ap.add_argument("--sentence-model", required=True, help="the SBERT filter's encoder, as the flagship (../shared/models/all-minilm-l6-v2)")
    ap.add_argument("--output", required=True, help="the markdown report; OUTPUT.json keeps each condition's predictions")
    ap.add_argument("--task", default="trec")
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42])
    ap.add_argument("--parts", nargs="+", default=["input", "base", "plain", "uniform"], choices=["input", "base", "plain", "uniform"],
                    help="what to compute, part by part in the order given, each over the seeds (stored rows are always read)")
    args = ap.parse_args()
    diag = Diagnosis(args)
    diag.cache.update({f"{c}@{s}": v for (c, s), v in stored_runs(args.store, args.task, args.seeds).items()})
    n_labels = len(next(iter(diag.runs.values())).task.label_ids)
    lengths = [diag.input_lengths(s) for s in args.seeds] if "input" in args.parts else diag.cache.get("lengths", [])
    diag.cache["lengths"] = lengths
    write = lambda: atomic_write_text(args.output, report(diag.cache, args.seeds, lengths, n_labels))  # noqa: E731
    write()
    for part in [p for p in args.parts if p != "input"]:
        for seed in args.seeds:
            print(f"{part} seed {seed}", flush=True)
            (diag.base(seed) if part == "base" else diag.trained(seed, part))
            write()
    print(open(args.output, encoding="utf-8").read())


if __name__ == "__main__":
    main()
