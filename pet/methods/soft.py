"""Soft-prompt methods: ``prompt-tuning``, ``p-tuning``, ``p-tuning-ft`` and ``deep-prompt``.

Each trains one fresh model per soft PVP with :func:`pet.training.train_prompt_model` (soft
parameters always train; the LM only for ``p-tuning-ft``) and scores it on the test split:
one ``"pvp"`` row per soft PVP, plus an ``"ensemble"`` row when there are several.

With ``ctx.output_dir`` (``pet train --output DIR``) the trained models are saved there as one
:class:`pet.classifier.PetClassifier` folder (``pet predict DIR`` reads it; option ``save=false``
turns saving off). Only what was trained is stored: the soft parameters, plus the LM only for
``p-tuning-ft``; a frozen LM is referenced by its base model name/path (see
:mod:`pet.classifier`).

Which PVPs (first rule that applies):

1. ``options["template"]``: that template with the verbalizer of the task's first PVP;
2. ``options["prompt_length"] = N``: ``{soft:N}`` inserted right before ``{mask}`` of the first PVP;
3. the run's PVPs that have soft tokens;
4. the task's patterns file: patterns whose id starts with ``soft-`` (e.g. ``soft-4``), with the
   verbalizer of the first PVP;
5. otherwise ``{soft:4}`` before ``{mask}`` of the first PVP (``{text_a} It was {soft:4} {mask}.``).

Default learning rates for the soft parameters (``soft_lr``; Adam(W), linear decay, no weight
decay on soft parameters), chosen for short budgets on the offline 6-layer model — soft
prompts need far more than fine-tuning's 1e-5…1e-4 (Lester et al. use 0.3 with Adafactor):
see :data:`DEFAULTS` and ``docs/soft.md``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..scoring import ensemble as ensemble_log_probs
from ..spec import PVP, Pattern, load_patterns
from .base import RunContext, StageResult, register
from .cls_ft import peak_memory_mb, reset_peak_memory

#: Keys that configure the soft prompt (everything else is a TrainConfig key).
SOFT_KEYS = ("encoder", "hidden_size", "lstm_layers", "init", "prompt_length", "verbalizer")
#: Keys of the method itself.
OWN_KEYS = ("template", "save")

#: Per method: the soft-prompt method, LM tuning, and default training options.
DEFAULTS: dict[str, dict[str, Any]] = {
    "prompt-tuning": {"soft": {"method": "prompt-tuning"}, "train": {"tune": "frozen", "lr": 3e-2, "soft_lr": 3e-2}},
    "p-tuning": {"soft": {"method": "p-tuning", "encoder": "lstm"}, "train": {"tune": "frozen", "lr": 3e-3, "soft_lr": 3e-3}},
    "p-tuning-ft": {"soft": {"method": "p-tuning", "encoder": "lstm", "tune": "full"}, "train": {"tune": "full", "soft_lr": 3e-3}},
    "deep-prompt": {"soft": {"method": "deep"}, "train": {"tune": "frozen", "lr": 1e-2, "soft_lr": 1e-2}},
}


def soft_pvps(ctx: RunContext, options: dict) -> list[PVP]:
    """The soft PVPs a soft method trains (rules in the module docstring)."""
    from ..soft import soft_before_mask

    if not ctx.pvps:
        raise ConfigError("soft prompts: the run has no PVPs to take a verbalizer from; fix: give the task default PVPs or pass --pvp")
    first = ctx.pvps[0]
    if options.get("template"):
        return [PVP(Pattern("custom-soft", str(options["template"]), source="options.template"), first.verbalizer)]
    if options.get("prompt_length"):
        return [soft_before_mask(first, int(options["prompt_length"]))]
    own = [p for p in ctx.pvps if p.pattern.is_soft]
    if own:
        return own
    path = getattr(ctx.task, "patterns_path", None)
    if path is not None and Path(path).is_file():
        shipped = [p for p in load_patterns(path) if p.id.startswith("soft-") and p.is_soft]
        if shipped:
            return [PVP(p, first.verbalizer) for p in shipped]
    return [soft_before_mask(first, 4)]


def split_soft_options(method: str, options: dict, seed: int, max_length: int):
    """(TrainConfig, SoftConfig, own options) for ``method`` with its defaults filled in."""
    from ..soft import SoftConfig
    from ..training import CONFIG_KEYS, TrainConfig

    options = dict(options or {})
    d = DEFAULTS[method]
    soft = {**d["soft"], **{k: options.pop(k) for k in SOFT_KEYS if k in options}}
    own = {k: options.pop(k) for k in OWN_KEYS if k in options}
    unknown = sorted(k for k in options if k not in CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"method '{method}': unknown option(s) {unknown}; fix: use soft keys ({', '.join(SOFT_KEYS + OWN_KEYS)}) "
            f"or training keys ({', '.join(CONFIG_KEYS)})"
        )
    train = {**d["train"], **options}
    if "lr" in options and "soft_lr" not in options and method != "p-tuning-ft":
        train["soft_lr"] = options["lr"]  # frozen LM: lr means the soft lr
    train.setdefault("seed", int(seed))
    if train.get("max_length") is None:
        train["max_length"] = int(max_length)
    if train["tune"] not in ("frozen", "full"):
        raise ConfigError(f"method '{method}': tune={train['tune']!r}; fix: soft prompts support tune=frozen or tune=full")
    soft["tune"] = train["tune"]
    soft.setdefault("seed", int(train["seed"]))
    if "prompt_length" in soft and own.get("template"):
        soft.pop("prompt_length")  # the template decides
    return TrainConfig.from_dict(train, f"method '{method}' options"), SoftConfig.from_dict(soft), own


def run_soft(method: str, ctx: RunContext, options: dict) -> list[StageResult]:
    """Train and score one soft prompt per soft PVP (see the module docstring)."""
    from ..model import PromptModel
    from ..soft import attach_soft_prompt
    from ..training import train_prompt_model

    max_length = int(getattr(ctx.task, "max_length", 256) or 256)
    config, soft_config, own = split_soft_options(method, options, ctx.seed, max_length)
    labels = ctx.labels
    gold = [e.label for e in ctx.test]
    saving = ctx.output_dir is not None and own.get("save", True) not in (False, "false", "no", 0)
    rows, per_pvp, members, logs = [], [], [], {}
    pvps = soft_pvps(ctx, {**own, **({"prompt_length": soft_config.prompt_length} if soft_config.prompt_length else {})})
    for pvp in pvps:
        pvp.check_labels(labels, f"task '{ctx.task.name}'")
        reset_peak_memory(ctx.device)
        model = PromptModel.from_pretrained(ctx.model, device=ctx.device)
        t0 = time.perf_counter()
        enc = model.encoder_for(pvp, config.max_length, labels)
        module = attach_soft_prompt(model, enc, dataclasses.replace(soft_config))
        attach_secs = time.perf_counter() - t0
        log = train_prompt_model(model, pvp, ctx.train, config, labels, progress=ctx.progress)
        train_secs = log.train_seconds
        t1 = time.perf_counter()
        lp = model.predict_log_proba(ctx.test, pvp, batch_size=config.eval_batch_size, max_length=config.max_length, labels=labels)
        eval_secs = time.perf_counter() - t1
        per_pvp.append(lp)
        score = ctx.score(gold, [labels[i] for i in lp.argmax(1)])
        extra = {
            "template": pvp.pattern.template,
            "n_soft": enc.n_soft,
            "soft_config": module.config.to_dict(),
            "train_config": config.to_dict(),
            "final_loss": log.final_loss,
            "soft_parameters": int(sum(p.numel() for p in module.parameters())),
            "attach_seconds": attach_secs,
        }
        logs[pvp.id] = log
        rows.append(
            StageResult(
                method,
                "pvp",
                float(score),
                ctx.task.metric,
                pvp=pvp.id,
                train_seconds=train_secs,
                eval_examples_per_second=len(ctx.test) / max(eval_secs, 1e-9),
                trained_parameters=int(log.trained_parameters),
                peak_memory_mb=peak_memory_mb(ctx.device),
                extra=extra,
            )
        )
        if saving:
            members.append((model, pvp))
        else:
            del model
    if members:
        from ..classifier import PetClassifier, PromptEnsemble

        predictor = PromptEnsemble(members, labels, max_length=config.max_length, batch_size=config.eval_batch_size)
        PetClassifier.from_trained(
            ctx.model, method, labels, config, predictor, pvps=pvps, logs=logs, metrics=[r.to_dict() for r in rows]
        ).save(ctx.output_dir, overwrite=True)
        for r in rows:
            r.extra["saved_to"] = str(ctx.output_dir)
    if len(per_pvp) > 1:
        ens = ensemble_log_probs(per_pvp)
        rows.append(
            StageResult(
                method,
                "ensemble",
                float(ctx.score(gold, [labels[i] for i in ens.argmax(1)])),
                ctx.task.metric,
                train_seconds=sum(r.train_seconds for r in rows),
                trained_parameters=sum(r.trained_parameters for r in rows),
                extra={"members": [r.pvp for r in rows], "combine": "mean log-prob"},
            )
        )
    return rows


@register("prompt-tuning")
def run_prompt_tuning(ctx: RunContext, options: dict) -> list[StageResult]:
    """Prompt tuning (Lester et al. 2021): trained input vectors at the soft tokens; LM frozen."""
    return run_soft("prompt-tuning", ctx, options)


@register("p-tuning")
def run_p_tuning(ctx: RunContext, options: dict) -> list[StageResult]:
    """P-tuning (Liu et al. 2021): soft tokens from a bi-LSTM+MLP prompt encoder; LM frozen."""
    return run_soft("p-tuning", ctx, options)


@register("p-tuning-ft")
def run_p_tuning_ft(ctx: RunContext, options: dict) -> list[StageResult]:
    """P-tuning with the LM fine-tuned too (the paper's few-shot SuperGLUE setting)."""
    return run_soft("p-tuning-ft", ctx, options)


@register("deep-prompt")
def run_deep_prompt(ctx: RunContext, options: dict) -> list[StageResult]:
    """Deep prompts (P-tuning v2 style): a trained vector per soft token at every layer; LM frozen."""
    return run_soft("deep-prompt", ctx, options)
