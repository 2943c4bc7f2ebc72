"""Peak memory of streaming `pet predict` vs input size (benchmark, not a test).

Builds a tiny random BERT masked LM on the tokenizer of --tokenizer (default $PET_MODEL), saves a
zero-shot classifier with it, generates N short rows per size, and runs `pet predict` on each
file in a fresh process, reporting its peak RSS (getrusage of the child) and examples/s.

    PET_MODEL=/path/to/minilm-mlm OMP_NUM_THREADS=1 python benchmarks/predict_memory.py --sizes 10000 200000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=os.environ.get("PET_MODEL"), help="folder with a tokenizer (default $PET_MODEL)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    ap.add_argument("--chunk-size", type=int, default=1024)
    args = ap.parse_args()
    import transformers as tf

    from pet.estimator.classifier import PetClassifier
    from pet.prompts.spec import PVP, Pattern, Verbalizer

    work = Path(tempfile.mkdtemp(prefix="predict-memory-"))
    tok = tf.AutoTokenizer.from_pretrained(args.tokenizer)
    cfg = tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        pad_token_id=tok.pad_token_id)
    tf.BertForMaskedLM(cfg).save_pretrained(work / "m")
    tok.save_pretrained(work / "m")
    pvp = PVP(Pattern("p", "{text_a} It was {mask}."), Verbalizer("v", {"0": ["bad"], "1": ["good"]}))
    PetClassifier(str(work / "m"), "zero-shot", pvps=[pvp]).fit(["good", "bad"], ["1", "0"]).save(work / "clf")
    print(f"{'rows':>8}  {'peak RSS MB':>11}  {'examples/s':>10}  {'seconds':>7}")
    for n in args.sizes:
        inp = work / f"in{n}.csv"
        with open(inp, "w", encoding="utf-8") as f:
            f.write("text\n")
            for i in range(n):
                f.write(f"review {i}: the film was {'fine' if i % 2 else 'dull'} overall\n")
        out = work / f"out{n}.jsonl"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pet", "predict", str(work / "clf"), "--input", str(inp), "--output", str(out),
                        "--chunk-size", str(args.chunk_size), "--batch-size", "64"], check=True)
        secs = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far: sizes run ascending
        assert sum(1 for _ in open(out, encoding="utf-8")) == n
        print(f"{n:>8}  {peak / 1024:>11.0f}  {n / secs:>10.0f}  {secs:>7.1f}" + ("" if peak > before else "  (peak not above the previous size's)"))


if __name__ == "__main__":
    main()
