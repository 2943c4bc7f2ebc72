"""Zero-shot scoring speed, side by side in one run (not a test; the machine is shared and noisy).

    python benchmarks/scoring_speed.py --model ../shared/models/minilm-mlm --data-dir ../shared/data

On 512 SST-2 test examples and the PVP ``{text_a} It was {mask}.`` / terrible, great:

(a) pet: ``PromptModel.predict_log_proba`` (encoding included): encoder once, MLM head on the
    mask rows only, dynamic padding, length-sorted batches;
(b) the same model's bare encoder forward on the same batches (the limit for (a));
(c) full-vocabulary logits at every position with padding to 256 (how PET and OpenPrompt score);
(d) ``transformers.pipeline("fill-mask", targets=...)`` on the same cloze texts.

Methods run interleaved for several rounds; the table reports the median examples/s of each and
the ratios the targets are stated in: (a)/(b) ≥ 0.9, (a)/(d) ≥ 3.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from pet.prompts.encoding import iter_batches
from pet.models.prompt_model import PromptModel
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.data import load_examples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("PET_MODEL"))
    ap.add_argument("--data-dir", default=os.environ.get("PET_DATA_DIR"))
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    examples = load_examples("sst2", "test", args.data_dir)[: args.n]
    pvp = PVP(Pattern("it-was", "{text_a} It was {mask}."), Verbalizer("great-terrible", {"0": ["terrible"], "1": ["great"]}))
    model = PromptModel.from_pretrained(args.model, device="cpu")
    tok, mlm = model.tokenizer, model.mlm
    bs = args.batch_size
    enc = model.encoder_for(pvp, max_length=256)
    encoded = enc.encode(examples)
    batches = [b for _, b in iter_batches(encoded, bs, tok.pad_token_id)]
    texts = [f"{e.fields['text_a']} It was {tok.mask_token}." for e in examples]
    fill = pipeline("fill-mask", model=mlm, tokenizer=tok, device=-1)

    def a_pet():
        return model.predict_log_proba(examples, pvp, batch_size=bs, max_length=256)

    @torch.inference_mode()
    def b_encoder():
        for b in batches:
            model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"])

    @torch.inference_mode()
    def c_full_vocab():
        out = []
        for s in range(0, len(encoded), bs):
            chunk = encoded[s : s + bs]
            ids = torch.full((len(chunk), 256), tok.pad_token_id)
            att = torch.zeros_like(ids)
            for i, e in enumerate(chunk):
                ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
                att[i, : len(e.input_ids)] = 1
            lp = torch.log_softmax(mlm(input_ids=ids, attention_mask=att).logits, -1)
            pos = torch.tensor([e.mask_start for e in chunk])
            out.append(lp[torch.arange(len(chunk)), pos][:, [tok.convert_tokens_to_ids("terrible"), tok.convert_tokens_to_ids("great")]])
        return torch.cat(out)

    def d_pipeline():
        return fill(texts, targets=["terrible", "great"], batch_size=bs)

    methods = {
        "(a) pet PromptModel.predict_log_proba": a_pet,
        "(b) bare encoder forward, same batches": b_encoder,
        "(c) full-vocab logits, all positions, pad 256": c_full_vocab,
        "(d) transformers fill-mask pipeline": d_pipeline,
    }
    a_pet(), b_encoder()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in methods}
    outs = {}
    for _ in range(args.rounds):
        for k, f in methods.items():
            t0 = time.perf_counter()
            outs[k] = f()
            times[k].append(time.perf_counter() - t0)
    eps = {k: args.n / statistics.median(v) for k, v in times.items()}

    # agreement of predictions: (a) vs (c) exact, (a) vs (d) argmax
    a = outs["(a) pet PromptModel.predict_log_proba"]
    c = torch.log_softmax(outs["(c) full-vocab logits, all positions, pad 256"].double(), -1).numpy()
    d = outs["(d) transformers fill-mask pipeline"]
    d_pred = np.array([0 if r[0]["token_str"] == "terrible" else 1 for r in d])
    ka, kb, kc, kd = list(methods)
    lines = [
        f"Model `{args.model}` · {args.n} SST-2 test examples · batch {bs} · CPU threads {torch.get_num_threads()} · "
        f"{platform.processor() or platform.machine()} · median of {args.rounds} interleaved rounds",
        "",
        "| method | examples/s |",
        "|---|---|",
        *[f"| {k} | {v:.0f} |" for k, v in eps.items()],
        "",
        f"- (a)/(b) = {eps[ka] / eps[kb]:.2f} (target ≥ 0.9)",
        f"- (a)/(c) = {eps[ka] / eps[kc]:.2f}",
        f"- (a)/(d) = {eps[ka] / eps[kd]:.2f} (target ≥ 3)",
        f"- max |(a) − (c)| label log-prob: {np.abs(a - c).max():.2e}; argmax agreement (a) vs (d): {(a.argmax(1) == d_pred).mean():.3f}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
