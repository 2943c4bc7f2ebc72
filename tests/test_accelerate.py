"""`accelerate launch --multi_gpu --num_processes 2` on CPU models: the one training loop,
data-parallel on 2 CPU processes (torchrun + gloo), trains the same weights as 1 process on the
same global batch. (`accelerate launch --cpu --num_processes 2` starts ONE process unless an
mpirun hostfile is given: accelerate's multi-CPU path is MPI; torchrun is the launcher-free one.)

Global batch 4: 1 process × batch_size 4 vs 2 processes × batch_size 2 (IndexStream gives rank r
the r-th half of the same global batch; DDP averages the two halves' gradients, which equals the
full batch's mean-loss gradient). Dropout is off so both runs are deterministic. Tolerance:
max |Δw| ≤ 1e-5 after 4 AdamW steps (float32 all-reduce sums in another order; observed ~1e-7).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = r'''
import json, sys
import torch
from safetensors.torch import save_file
from pet.models.prompt_model import PromptModel
from pet.examples import Example
from pet.prompts.spec import PVP, Pattern, Verbalizer
from pet.training.loop import TrainConfig
from pet.training.prompt import train_prompt_model

model_dir, out, bs = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
pvp = PVP(Pattern("p", "{text_a} It was {mask}."), Verbalizer("v", {"0": ["bad"], "1": ["good"]}))
texts = ["a great film", "dull and long", "lovely acting", "awful plot", "superb", "boring", "fine music", "weak cast"]
train = [Example({"text_a": t}, str(1 - i % 2), f"e{i}") for i, t in enumerate(texts)]
model = PromptModel.from_pretrained(model_dir, device="cpu")
log = train_prompt_model(model, pvp, train, TrainConfig(steps=4, lr=1e-3, batch_size=bs, seed=3), ["0", "1"], progress=False)
from accelerate import PartialState
state = PartialState()
if state.is_main_process:  # one process writes
    save_file({k: v.detach().clone().contiguous() for k, v in model.mlm.state_dict().items()}, out)
    json.dump({"world": state.num_processes, "losses": [e["loss"] for e in log.entries]}, open(out + ".json", "w"))
'''


def _run(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]


def test_two_cpu_processes_match_one_with_the_same_global_batch(tmp_path):
    import transformers as tf
    from safetensors.torch import load_file

    from conftest import _tokenizer

    tok = _tokenizer("bert-wordpiece")
    torch.manual_seed(0)
    cfg = tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=tok.pad_token_id)
    tf.BertForMaskedLM(cfg).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    (tmp_path / "train.py").write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    env.pop("ACCELERATE_MIXED_PRECISION", None)
    _run([sys.executable, str(tmp_path / "train.py"), str(tmp_path / "m"), str(tmp_path / "one.st"), "4"], env)
    _run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(tmp_path / "train.py"), str(tmp_path / "m"), str(tmp_path / "two.st"), "2"], env)
    one, two = load_file(tmp_path / "one.st"), load_file(tmp_path / "two.st")
    meta1, meta2 = json.loads(Path(str(tmp_path / "one.st") + ".json").read_text()), json.loads(Path(str(tmp_path / "two.st") + ".json").read_text())
    assert meta1["world"] == 1 and meta2["world"] == 2
    start = tf.BertForMaskedLM.from_pretrained(tmp_path / "m").state_dict()
    moved = max(float((one[k] - start[k]).abs().max()) for k in one)
    assert moved > 1e-3  # training changed the weights
    diff = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert diff <= 1e-5, f"max |w1 - w2| = {diff}"
