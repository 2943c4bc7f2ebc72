"""The one training loop (``accelerate``), its configuration and its losses.

Every trained method goes through :func:`train_loop`: per-PVP prompt fine-tuning
(:func:`pet.training.prompt.train_prompt_model`, used by prompt-ft, PET, iPET and soft prompts), the ``[CLS]``
baseline and PET's distillation (:func:`pet.methods.cls_ft.train_sequence_classifier`). The loop
knows nothing about models: it gets a module, a ``loss_fn(module, batch) -> {"loss": …}`` and
a stream of micro-batches, and does seeding, AdamW, linear warm-up/decay, gradient
accumulation, clipping, the progress bar and the log. Because it runs through
``accelerate.Accelerator``, ``accelerate launch --multi_gpu …`` works without code changes
(each process takes its own slice of every global batch); a plain call runs one process on
the model's device.

Losses (see ``docs/training.md``):

* ``ce``: cross-entropy over the verbalizer label scores (``PromptModel.label_scores``);
* ``mlm`` (``mlm_weight > 0``): auxiliary masked-LM loss on unlabelled text, tokenised plainly
  (not through the pattern), 15% of tokens selected, of those 80% ``[MASK]``, 10% random,
  10% unchanged. Total loss = ``ce + mlm_weight * mlm``. (PET writes ``(1-α)·ce + α·mlm`` with
  α = 1e-4; ``mlm_weight`` is the plain weight of the MLM term, not PET's α.)
* ``kl`` (``soft_targets`` given): distillation, ``KL(q ‖ softmax(s/T)) · T²`` where ``s`` are
  the student's label scores and ``q = softmax(log p / T)`` softens the ensemble's
  probabilities ``p`` with the same temperature — exactly PET's loss on its ensemble logits.
* ``supcon`` (a ``second_view`` of weight > 0): supervised contrastive loss between the
  mask-position hidden states of each example and of its rendering under another template
  (Jian et al. 2022; :mod:`pet.training.contrastive`). Total loss adds ``weight * supcon``.
* ``dlo`` / ``lcm`` (an ``adapet`` objective): ADAPET's decoupled label objective in place of
  ``ce``, and ``lcm_weight *`` its label-conditioned MLM loss (:mod:`pet.training.adapet`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..examples import Example
from .checkpoint import LoopCheckpoint, load_state, restore_state, save_state
from ..models.tuning import TUNING_MODES, trainable_parameter_count
from ..options import Options, option
from ..utils.defaults import DEFAULT_EVAL_BATCH_SIZE, DEFAULT_MAX_LENGTH, DEFAULT_SEED

# ----------------------------------------------------------------------------- config


@dataclass
class TrainConfig(Options):
    """Training hyper-parameters (one per run; stored with every saved model).

    Every default is a paper's value or a choice made without test data (PET's recipe: 250
    steps, batch 4, AdamW at lr 1e-5 — also LM-BFF's —, weight decay 0.01, clipping 1.0, no
    warm-up); docs/training.md lists each with its source. Every trained method's options
    dataclass extends this one.
    """

    where: ClassVar[str] = "training config"

    steps: int = option(250, "optimizer steps", min=0)
    lr: float = option(1e-5, "peak learning rate (AdamW, linear warm-up and decay; PET and LM-BFF: 1e-5)", min=0, min_exclusive=True)
    batch_size: int = option(4, "labelled examples per micro-batch (per process)", min=1)
    grad_accum: int = option(1, "micro-batches per optimizer step (gradient accumulation; PET: 4)", min=1)
    max_length: int | None = option(None, "longest input in tokens (null: the task's max_length)", min=8)
    tune: str = option("full", "which weights train: full, bitfit, lora, head (MLM head only) or frozen", choices=TUNING_MODES)
    lora_r: int = option(8, "LoRA rank (tune=lora)", min=1)
    lora_alpha: int = option(16, "LoRA alpha (tune=lora)", min=1)
    lora_dropout: float = option(0.0, "LoRA dropout (tune=lora)", min=0, max=1, max_exclusive=True)
    mlm_weight: float = option(0.0, "weight of the auxiliary MLM loss on unlabelled text (0: off)", min=0)
    mlm_probability: float = option(0.15, "share of tokens masked for the auxiliary MLM loss", min=0, max=1, min_exclusive=True, max_exclusive=True)
    unlabelled_batch_size: int = option(4, "unlabelled examples per micro-batch for the MLM loss", min=1)
    temperature: float = option(2.0, "distillation temperature", min=0, min_exclusive=True)
    warmup_ratio: float = option(0.0, "share of steps with linear warm-up", min=0, max=1, max_exclusive=True)
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases, LayerNorm or soft prompts)", min=0)
    max_grad_norm: float = option(1.0, "gradient clipping norm (0: off)", min=0)
    seed: int | None = option(None, "training seed: data order, initialisation, dropout (null: the run's seed)")
    eval_batch_size: int = option(DEFAULT_EVAL_BATCH_SIZE, "examples per forward pass when scoring", min=1)
    soft_lr: float | None = option(None, "learning rate of soft-prompt parameters (null: lr)", min=0, min_exclusive=True)
    precision: str = option("fp32", "training and scoring precision: fp32, or mixed bf16 (CPU or GPU) / fp16 (GPU)", choices=("fp32", "bf16", "fp16"))
    eval_every: int | None = option(None, "evaluate on the dev set every N steps and at the end, and keep the best checkpoint (needs dev data: selection dev)", min=1)

    def resolved(self, max_length: int = DEFAULT_MAX_LENGTH, seed: int = DEFAULT_SEED) -> "TrainConfig":
        """A copy with null ``max_length`` / ``seed`` filled in (from the task and the run)."""
        return dataclasses.replace(
            self,
            max_length=int(max_length) if self.max_length is None else self.max_length,
            seed=int(seed) if self.seed is None else self.seed,
        )


def train_config(options: TrainConfig) -> TrainConfig:
    """The plain ``TrainConfig`` part of a method's options (what a saved model records)."""
    return TrainConfig.from_dict({k: getattr(options, k) for k in TrainConfig.keys()})


# ----------------------------------------------------------------------------- log


@dataclass
class TrainLog:
    """What a training run did: one entry per optimizer step plus totals."""

    entries: list[dict] = field(default_factory=list)  # {step, loss, lr, seconds, [ce, mlm, kl, supcon, dlo, lcm]}
    train_seconds: float = 0.0
    steps: int = 0
    trained_parameters: int = 0
    examples: int = 0
    config: dict = field(default_factory=dict)
    best_step: int | None = None  # with eval_every: the step whose checkpoint was kept
    best_dev_score: float | None = None

    @property
    def final_loss(self) -> float | None:
        return self.entries[-1]["loss"] if self.entries else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

# ----------------------------------------------------------------------------- seeding


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class _Deterministic:
    """Deterministic kernels during training; the caller's setting is restored afterwards."""

    def __enter__(self):
        self.prev = torch.are_deterministic_algorithms_enabled()
        self.prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.prev, warn_only=self.prev_warn)
        return False


class IndexStream:
    """Endless seeded batches of indices: consecutive random permutations of ``range(n)``.

    Every example is seen equally often; each global batch of ``batch_size × world`` indices is
    split so process ``rank`` takes its own slice (data parallel under ``accelerate launch``).
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if n < 1:
            raise DataError("no training examples; fix: pass at least one labelled example")
        self.n, self.bs, self.rank, self.world = n, batch_size, rank, world
        self.gen = torch.Generator().manual_seed(seed)
        self.buf: list[int] = []

    def __iter__(self) -> "IndexStream":
        return self

    def __next__(self) -> list[int]:
        need = self.bs * self.world
        while len(self.buf) < need:
            self.buf.extend(torch.randperm(self.n, generator=self.gen).tolist())
        batch, self.buf = self.buf[:need], self.buf[need:]
        return batch[self.rank * self.bs : (self.rank + 1) * self.bs]


# ----------------------------------------------------------------------------- the loop


class _LossModule(nn.Module):
    """Wraps (module, loss_fn) so the loss is computed in ``forward`` — what DDP needs."""

    def __init__(self, inner: nn.Module, loss_fn: Callable[[nn.Module, Any], dict]):
        super().__init__()
        self.inner = inner
        self.loss_fn = loss_fn

    def forward(self, batch):
        return self.loss_fn(self.inner, batch)


def make_accelerator(device: torch.device | None = None, precision: str = "fp32"):
    """An ``Accelerator`` for the model's device (CPU model → CPU; under ``accelerate launch``
    the launcher's settings win) with ``precision`` as accelerate's ``mixed_precision``
    (``fp32``: the launcher's choice, default none)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    if precision == "fp16" and device is not None and device.type == "cpu":
        raise ConfigError("precision fp16 needs a GPU; fix: --precision bf16 on CPU (or fp32)")
    mixed = {"bf16": "bf16", "fp16": "fp16"}.get(precision, "no")
    if mixed == "no" and os.environ.get("ACCELERATE_MIXED_PRECISION"):
        mixed = os.environ["ACCELERATE_MIXED_PRECISION"]  # fp32 asked for nothing: `accelerate launch --mixed_precision` wins
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    cpu = device is not None and device.type == "cpu"
    if AcceleratorState._shared_state:  # already initialised in this process: reuse its choice,
        acc = Accelerator(kwargs_handlers=handlers)
        if acc.num_processes > 1 or ((device is None or acc.device.type == device.type) and acc.mixed_precision == mixed):
            return acc
        # ... unless it was made for another device (a CPU model after a GPU one) or another
        # precision in a plain single process: start afresh rather than move the model behind
        # the caller's back
        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=cpu, mixed_precision=mixed, kwargs_handlers=handlers)


def _param_groups(module: nn.Module, config: TrainConfig, soft: nn.Module | None) -> list[dict]:
    soft_ids = {id(p) for p in soft.parameters()} if soft is not None else set()
    decay, no_decay, soft_params, seen = [], [], [], set()
    for name, p in module.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) in soft_ids:
            soft_params.append(p)
        elif p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": config.weight_decay, "lr": config.lr})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": config.lr})
    if soft_params:
        groups.append({"params": soft_params, "weight_decay": 0.0, "lr": config.soft_lr or config.lr})
    return groups


def _adamw(groups: list[dict], config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused where torch supports it (CPU and CUDA float params: several times faster
    per step than the default per-tensor loop, same update rule)."""
    try:
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def _prepare(module: nn.Module, loss_fn: Callable[[nn.Module, Any], dict], config: TrainConfig, soft_module: nn.Module | None,
             device: torch.device):
    """(accelerator, prepared loss module, prepared optimizer, LR schedule, trained parameters)."""
    from transformers import get_linear_schedule_with_warmup

    accelerator = make_accelerator(device, config.precision)
    groups = _param_groups(module, config, soft_module)
    optimizer = _adamw(groups, config)
    # the schedule counts optimizer steps, so it is stepped by hand (not prepared: accelerate
    # would step it once per process)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(round(config.warmup_ratio * config.steps)), config.steps)
    # micro-batches per optimizer step, counted by accelerate, not reset at the "end of a
    # dataloader": this loop feeds its own endless stream, and a prepared DataLoader another
    # library left half-iterated in this process (setfit's Trainer stopping at max_steps) leaves
    # accelerate's shared end_of_dataloader flag set, which made every micro-batch step
    accelerator.gradient_state.plugin_kwargs.update({"num_steps": config.grad_accum, "sync_with_dataloader": False})
    wrapped, optimizer = accelerator.prepare(_LossModule(module, loss_fn), optimizer)
    return accelerator, wrapped, optimizer, scheduler, [p for g in groups for p in g["params"]]


def _optimizer_step(accelerator, wrapped, optimizer, stream: Iterator[Any], params: list, config: TrainConfig) -> dict[str, float]:
    """One optimizer step over ``grad_accum`` micro-batches; returns the mean of each loss part."""
    parts: dict[str, float] = {}
    for _ in range(config.grad_accum):
        # accelerate's accumulation: backward() divides the loss by grad_accum, the prepared
        # optimizer steps (and zeroes) only on the last micro-batch, and gradients are not
        # all-reduced before it (no_sync under DDP)
        with accelerator.accumulate(wrapped):
            out = wrapped(next(stream))
            accelerator.backward(out["loss"])
            if accelerator.sync_gradients and config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for k, v in out.items():
            parts[k] = parts.get(k, 0.0) + float(v.detach()) / config.grad_accum
    return parts


class _BestCheckpoint:
    """LM-BFF's best checkpoint: the trainable parameters at the best dev score (earliest on
    ties), kept in memory and copied back at the end."""

    def __init__(self, module: nn.Module, evaluate: Callable[[], float] | None, every: int | None, last: int):
        self.module, self.evaluate, self.every, self.last = module, evaluate, every, last
        self.best: dict[str, torch.Tensor] | None = None

    def after(self, step: int, log: TrainLog) -> None:
        """Score the module after ``step`` when due; remember it if it is the best so far."""
        if self.evaluate is None or self.every is None or not (step % self.every == 0 or step == self.last):
            return
        self.module.eval()
        score = float(self.evaluate())
        self.module.train()
        log.entries[-1]["dev_score"] = score
        if log.best_dev_score is None or score > log.best_dev_score:
            log.best_dev_score, log.best_step = score, step
            self.best = {n: p.detach().clone() for n, p in self.module.named_parameters() if p.requires_grad}

    def restore(self, log: TrainLog) -> None:
        if self.best is not None and log.best_step != self.last:
            with torch.no_grad():
                for n, p in self.module.named_parameters():
                    if n in self.best:
                        p.copy_(self.best[n])


def train_loop(
    module: nn.Module,
    loss_fn: Callable[[nn.Module, Any], dict],
    batches: Callable[[int, int], Iterator[Any]],
    config: TrainConfig,
    *,
    soft_module: nn.Module | None = None,
    desc: str = "train",
    progress: bool = True,
    examples: int = 0,
    evaluate: Callable[[], float] | None = None,
    resume: LoopCheckpoint | None = None,
) -> TrainLog:
    """Train ``module``'s parameters that have ``requires_grad`` in place.

    ``batches(rank, world)`` returns an endless iterator of micro-batches for this process;
    ``loss_fn(module, batch)`` returns a dict with ``"loss"`` (a scalar tensor) and, for the
    log, any other scalar parts. ``soft_module``'s parameters get ``config.soft_lr``.
    Seeds torch/numpy/random with ``config.seed`` first, so the same seed on the same machine
    gives bit-identical weights.

    Best checkpoint (LM-BFF): with ``config.eval_every`` and ``evaluate`` (a callable returning
    the dev score of the module as it is), the module is scored every ``eval_every`` steps and
    after the last one; the trainable parameters of the best score (the earliest on ties) are
    kept in memory and restored at the end. Scoring uses no random numbers, so the training
    trajectory is the same with or without it.

    Resumable runs: with ``resume`` (a :class:`pet.training.checkpoint.LoopCheckpoint`) the
    run's whole state is saved every ``resume.every`` steps and after the last; a run killed
    part-way and started again with the same checkpoint continues after the last saved step
    and ends with the weights of an uninterrupted run (:mod:`pet.training.checkpoint`).
    """
    from tqdm.auto import tqdm

    config = config.resolved()
    seed_everything(config.seed)
    trained = trainable_parameter_count(module)
    log = TrainLog(trained_parameters=trained, examples=examples, config=config.to_dict())
    if config.steps == 0 or trained == 0:
        return log
    device = next(module.parameters()).device
    accelerator, wrapped, optimizer, scheduler, params = _prepare(module, loss_fn, config, soft_module, device)
    stream = batches(accelerator.process_index, accelerator.num_processes)
    was_training = module.training
    module.train()
    bar = tqdm(total=config.steps, desc=desc, disable=not progress or not accelerator.is_local_main_process, leave=False, unit="step")
    t0 = time.perf_counter()
    checkpoint = _BestCheckpoint(module, evaluate, config.eval_every, config.steps)
    done, seconds_before = _resume(resume, config, module, optimizer, scheduler, log, checkpoint, stream)
    bar.update(done)
    try:
        with _Deterministic():
            for step in range(done + 1, config.steps + 1):
                lr = scheduler.get_last_lr()[0]
                parts = _optimizer_step(accelerator, wrapped, optimizer, stream, params, config)
                scheduler.step()  # once per optimizer step (the schedule counts optimizer steps)
                if not math.isfinite(parts["loss"]):
                    raise ConfigError(f"training diverged at step {step} (loss {parts['loss']}); fix: lower lr (now {config.lr})")
                log.entries.append({"step": step, **{k: round(v, 6) for k, v in parts.items()}, "lr": lr,
                                    "seconds": round(seconds_before + time.perf_counter() - t0, 4)})
                checkpoint.after(step, log)
                if resume is not None and accelerator.is_main_process and (step % resume.every == 0 or step == config.steps):
                    save_state(resume, module, optimizer, scheduler, step, log, seconds_before + time.perf_counter() - t0, checkpoint)
                bar.update(1)
                if step % 10 == 0 or step == config.steps:
                    bar.set_postfix(loss=f"{parts['loss']:.4f}")
    finally:
        bar.close()
        module.train(was_training)
    checkpoint.restore(log)
    log.train_seconds = seconds_before + time.perf_counter() - t0
    log.steps = config.steps
    if device.type == "cuda":
        accelerator.free_memory()
    return log


def _resume(resume: LoopCheckpoint | None, config: TrainConfig, module: nn.Module, optimizer, scheduler, log: TrainLog,
            best: _BestCheckpoint, stream: Iterator[Any]) -> tuple[int, float]:
    """Load ``resume``'s saved state into the run, if there is one for it: (steps done, seconds
    they took). The stream is advanced past the micro-batches those steps used."""
    if resume is None:
        return 0, 0.0
    state = load_state(resume, config.steps)
    if state is None:
        return 0, 0.0
    try:
        restore_state(state, module, optimizer, scheduler, log, best)
    except (ValueError, KeyError, RuntimeError) as e:
        raise ConfigError(f"{resume.path}: this saved training state does not fit the model ({str(e).splitlines()[0]}); "
                          "fix: delete the file to train from the start") from e
    done = int(state["step"])
    for _ in range(done * config.grad_accum):  # the batches are drawn from their own seeded generators
        next(stream)
    resume.resumed_from = done
    return done, float(state["train_seconds"])


# ----------------------------------------------------------------------------- prompt models


def check_targets(soft_targets, n: int, n_labels: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(soft_targets, dtype=np.float64), dtype=torch.float32)
    if t.ndim != 2 or t.shape != (n, n_labels):
        raise ConfigError(
            f"soft_targets: shape {tuple(t.shape)} does not match {n} examples × {n_labels} labels; fix: pass one probability row per training example"
        )
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ConfigError("soft_targets: must be finite non-negative probabilities; fix: pass exp(log-probs)")
    return t / t.sum(1, keepdim=True).clamp_min(1e-12)


def check_dev(config: TrainConfig, dev: Sequence[Example]) -> bool:
    """Whether best-checkpoint selection is on; ``eval_every`` without labelled dev data is an error."""
    if config.eval_every is None:
        return False
    if not dev or any(e.label is None for e in dev):
        raise ConfigError(f"eval_every={config.eval_every} needs labelled dev examples but there are none; "
                          "fix: use selection: dev (the split's dev set), or drop eval_every")
    return True


def dev_score(dev: Sequence[Example], pred: Sequence[str], metric: Callable[[list, list], float] | None) -> float:
    gold = [e.label for e in dev]
    return float(metric(gold, list(pred))) if metric is not None else float(np.mean([g == p for g, p in zip(gold, pred)]))
