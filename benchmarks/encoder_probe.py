"""Where does SetFit's lead on TREC come from? Linear probes on frozen features (not a test; chooses nothing).

SetFit (on ``all-MiniLM-L6-v2``) beats every prompt method on TREC by 7+ points in the flagship,
although ``minilm-mlm`` was built from that very encoder. Two candidate causes are told apart
here, before any training: (1) the starting features — ``minilm-mlm``'s encoder is
``all-MiniLM-L6-v2`` after ~1,800 steps of masked-LM training (``../shared/models/minilm-mlm/SOURCE.md``),
which may have worn away the sentence geometry the contrastive pre-training gave it; (2) what
each method reads — SetFit a mean-pooled sentence vector, prompt fine-tuning the hidden state
at the ``[MASK]`` of the task's first PVP (LM-BFF's manual template).

For each task and split, scikit-learn's ``LogisticRegression()`` (SetFit's default head, its
defaults) is fitted on the split's 16-per-class training examples over three frozen feature sets,
L2-normalised as the sentence encoder's own pipeline normalises:

* ``sbert``    — ``all-MiniLM-L6-v2`` through sentence-transformers (mean pooling): SetFit's body
  before its contrastive fine-tuning;
* ``mlm-mean`` — ``minilm-mlm``'s encoder, mean of the last hidden states over the text's tokens;
* ``mlm-mask`` — ``minilm-mlm``'s last hidden state at the mask of the task's first PVP.

The flagship's stored ``setfit-paper`` and ``prompt-ft-lmbff`` rows of the same splits are read
from ``--store`` for reference, so every table pairs on the same test examples (hierarchical
bootstrap over seeds × test examples, :mod:`pet.bench.stats`). Features do not depend on the
split (frozen models); they are computed once per task. Per-example predictions go to
``OUTPUT.json`` (a finished task/seed is not recomputed), the tables to ``OUTPUT``.

    OMP_NUM_THREADS=1 python benchmarks/encoder_probe.py --store benchmarks/results/flagship/results.jsonl \\
        --data-dir ../shared/data --model ../shared/models/minilm-mlm \\
        --sentence-model ../shared/models/all-minilm-l6-v2 --output benchmarks/results/encoder_probe.md
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from pet.bench.stats import Metric, Run, bootstrap_mean, paired_comparison, stream
from pet.utils.io import atomic_write_text

FEATURES = ("sbert", "mlm-mean", "mlm-mask")
STORED = ("setfit-paper", "prompt-ft-lmbff")
#: paired differences reported: (A, B, what A - B measures)
PAIRS = [
    ("sbert", "mlm-mean", "the sentence encoder against the masked LM's encoder, both mean-pooled: what masked-LM training changed"),
    ("mlm-mean", "mlm-mask", "mean-pooled text against the prompt's mask state, same masked LM"),
    ("setfit-paper", "sbert", "SetFit's contrastive fine-tuning over its frozen body (the same head)"),
    ("prompt-ft-lmbff", "mlm-mask", "prompt fine-tuning over a probe of its own frozen mask state"),
    ("setfit-paper", "prompt-ft-lmbff", "the flagship's gap"),
]


def stored_rows(store: str, tasks: list[str], seeds: list[int]) -> dict:
    from pet.bench.rows import ResultRow

    out: dict = {}
    with open(store, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if (d.get("type") == "row" and d.get("final") and d.get("selected") is not False and d.get("task") in tasks
                    and d.get("method") in STORED and d.get("seed") in seeds):
                row = ResultRow.from_dict(d)
                out[f"{d['task']}/{d['method']}@{d['seed']}"] = {"pred": digits(row.pred_array()), "gold": digits(row.gold_array())}
    return out


def digits(labels) -> str:
    """Label indices (< 10: every task here) as one string of digits, the cache's compact form."""
    return "".join(str(int(x)) for x in labels)


def undigits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")


def texts_of(examples, separator: str) -> list[str]:
    from pet.methods.setfit import example_texts

    return example_texts(examples, separator)


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def mask_states(model, pvp, examples, max_length: int, batch_size: int = 32) -> np.ndarray:
    import torch

    from pet.prompts.encoding import collate

    enc = model.encoder_for(pvp, max_length).encode(list(examples))
    pad = model.tokenizer.pad_token_id or 0
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(enc), batch_size):
            out.append(model.mask_hidden(collate(enc[s : s + batch_size], pad), 1)[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def probe(task: str, seeds: list[int], args, cache: dict, save) -> None:
    from sklearn.linear_model import LogisticRegression

    from pet.data.rundata import task_run_data
    from pet.evaluation.evaluator import gold_indices
    from pet.models.prompt_model import PromptModel
    from pet.prompts.demonstrations import mlm_embedder, sentence_transformer_embedder

    todo = [s for s in seeds if not all(f"{task}/{f}@{s}" in cache for f in FEATURES)]
    if not todo:
        return
    runs = {s: task_run_data(task, args.data_dir, k=16, seed=s) for s in todo}
    first = runs[todo[0]]
    labels = [str(x) for x in first.task.label_ids]
    model = PromptModel.from_pretrained(args.model)
    sbert = sentence_transformer_embedder(args.sentence_model)
    sep = model.tokenizer.sep_token or ""
    max_length = first.task.max_length

    def feats(examples) -> dict[str, np.ndarray]:
        texts = texts_of(examples, sep)
        return {"sbert": normalise(sbert(texts)), "mlm-mean": normalise(mlm_embedder(model, max_length=max_length)(texts)),
                "mlm-mask": normalise(mask_states(model, first.pvps[0], examples, max_length))}

    test = feats(first.test)
    gold = gold_indices(first.test, labels, "test")
    for s in todo:
        run = runs[s]
        train = feats(run.train)
        y = gold_indices(run.train, labels, "train")
        for f in FEATURES:
            pred = LogisticRegression().fit(train[f], y).predict(test[f])
            cache[f"{task}/{f}@{s}"] = {"pred": digits(pred), "gold": digits(gold)}
            print(f"  {task} seed {s} {f}: {100 * np.mean(pred == gold):.1f}", flush=True)
        save()


def runs_of(cache: dict, task: str, cond: str, seeds: list[int]) -> list[Run] | None:
    if not all(f"{task}/{cond}@{s}" in cache for s in seeds):
        return None
    out = []
    for s in seeds:
        gold, pred = (undigits(cache[f"{task}/{cond}@{s}"][k]) for k in ("gold", "pred"))
        out.append(Run(s, float(np.mean(gold == pred)), gold, pred))
    return out


def n_label_metric(cache: dict, task: str) -> Metric:
    golds = [v["gold"] for k, v in cache.items() if k.startswith(f"{task}/")]
    return Metric("accuracy", n_labels=1 + max(int(undigits(g).max()) for g in golds) if golds else 0)


def check_gold(cache: dict, tasks: list[str], seeds: list[int]) -> None:
    """The stored rows and the probes must score the same test examples in the same label order."""
    for t in tasks:
        for s in seeds:
            golds = {c: cache[f"{t}/{c}@{s}"]["gold"] for c in (*FEATURES, *STORED) if f"{t}/{c}@{s}" in cache}
            if len(set(golds.values())) > 1:
                raise SystemExit(f"{t} seed {s}: the stored rows' gold labels differ from the probe's ({sorted(golds)}); "
                                 "fix: pass the store of the same data")


def fmt(iv, sign: bool = False) -> str:
    f = "{:+.1f}" if sign else "{:.1f}"
    return f"{f.format(100 * iv.mean)} [{f.format(100 * iv.low)}, {f.format(100 * iv.high)}]"


def report(cache: dict, tasks: list[str], seeds: list[int], command: str) -> str:
    conds = [*FEATURES, *STORED]
    lines = ["# Linear probes on frozen features (benchmarks/encoder_probe.py)", "", f"Command: `{command}`", "",
             f"Splits: LM-BFF's K = 16 seeds {', '.join(map(str, seeds))}; full test sets; accuracy %, mean [95% bootstrap "
             "interval over seeds × test examples]. A diagnosis: it chooses nothing.", "",
             "| task | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    for t in tasks:
        metric = n_label_metric(cache, t)
        cells = []
        for c in conds:
            r = runs_of(cache, t, c, seeds)
            cells.append("–" if r is None else fmt(bootstrap_mean(r, metric, seed=stream(t, c))))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences (A − B, points):", ""]
    lines += ["| A − B | what it measures | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for a, b, what in PAIRS:
        cells = []
        for t in tasks:
            metric = n_label_metric(cache, t)
            ra, rb = runs_of(cache, t, a, seeds), runs_of(cache, t, b, seeds)
            cells.append("–" if ra is None or rb is None else fmt(paired_comparison(ra, rb, metric, seed=stream(t, a, b)), sign=True))
        lines.append(f"| {a} − {b} | {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="the flagship's results.jsonl (reference rows)")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", required=True, help="the masked LM (minilm-mlm)")
    ap.add_argument("--sentence-model", required=True, help="the sentence encoder it was built from (all-MiniLM-L6-v2)")
    ap.add_argument("--tasks", nargs="+", default=["trec", "sst5", "sst2", "mr", "cr", "mpqa", "subj", "rte"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 21, 42, 87, 100])
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    path = args.output + ".json"
    cache = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}

    def save() -> None:
        atomic_write_text(path, json.dumps({k: v for k, v in cache.items() if "/setfit-paper@" not in k and "/prompt-ft-lmbff@" not in k},
                                           sort_keys=True) + "\n")

    for t in args.tasks:
        probe(t, args.seeds, args, cache, save)
    cache.update(stored_rows(args.store, args.tasks, args.seeds))
    check_gold(cache, args.tasks, args.seeds)
    command = "OMP_NUM_THREADS=1 python benchmarks/encoder_probe.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items())
    text = report(cache, args.tasks, args.seeds, command)
    atomic_write_text(args.output, text)
    print(text)


if __name__ == "__main__":
    main()
