"""LM-BFF-style prompt-based fine-tuning: one fresh model per PVP, trained on the labelled
examples with cross-entropy over the verbalizer label scores, evaluated on the test split.

Options: any ``TrainConfig`` key (``steps``, ``lr``, ``tune``, ``mlm_weight``…), plus
``pvp`` (one ``"pattern:verbalizer"`` id, or a list of them) to restrict the PVPs run.
With ``ctx.output_dir`` the trained models are saved there as one ``PetClassifier`` (an
ensemble of the per-PVP models; one PVP → LM-BFF's single model).
"""

from __future__ import annotations

import time

from ..errors import ConfigError
from ..model import PromptModel
from ..training import split_options, train_prompt_model
from .base import RunContext, StageResult, register
from .cls_ft import peak_memory_mb, reset_peak_memory


def select_pvps(pvps, wanted) -> list:
    if wanted is None:
        return list(pvps)
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    by_id = {p.id: p for p in pvps}
    by_pattern = {}
    for p in pvps:
        by_pattern.setdefault(p.pattern.id, p)
    out = []
    for w in wanted:
        if w in by_id:
            out.append(by_id[w])
        elif w in by_pattern:
            out.append(by_pattern[w])
        else:
            raise ConfigError(f"option pvp='{w}': not one of this run's PVPs ({', '.join(by_id)}); fix: use one of them")
    return out


@register("prompt-ft")
def run(ctx: RunContext, options: dict) -> list[StageResult]:
    # the run's seed unless the options pin one: every method of a cell trains with the same seed
    config, own = split_options({"seed": ctx.seed, **options}, allowed=("pvp",), where="prompt-ft options")
    if config.max_length is None:
        config = config.replace(max_length=getattr(ctx.task, "max_length", None) or 256)
    pvps = select_pvps(ctx.pvps, own.get("pvp"))
    if not pvps:
        raise ConfigError("prompt-ft: no PVPs to train; fix: pass --pvps or a task with default PVPs")
    if config.mlm_weight > 0 and not ctx.unlabelled:
        raise ConfigError(f"prompt-ft: mlm_weight={config.mlm_weight} needs an unlabelled pool but it is empty; fix: pass --unlabelled-size > 0 or set mlm_weight 0")
    gold = [e.label for e in ctx.test]
    rows, members, logs = [], [], {}
    keep = ctx.output_dir is not None
    for pvp in pvps:
        reset_peak_memory(ctx.device)
        model = PromptModel.from_pretrained(ctx.model, device=ctx.device)
        log = train_prompt_model(model, pvp, ctx.train, config, ctx.labels, unlabelled=ctx.unlabelled, progress=ctx.progress)
        t0 = time.perf_counter()
        lp = model.predict_log_proba(
            ctx.test, pvp, batch_size=config.eval_batch_size, max_length=config.max_length, labels=ctx.labels, progress=ctx.progress
        )
        secs = time.perf_counter() - t0
        pred = [ctx.labels[i] for i in lp.argmax(1)]
        rows.append(
            StageResult(
                "prompt-ft",
                "pvp",
                float(ctx.score(gold, pred)),
                ctx.task.metric,
                pvp=pvp.id,
                train_seconds=log.train_seconds,
                eval_examples_per_second=len(ctx.test) / max(secs, 1e-9),
                trained_parameters=log.trained_parameters,
                peak_memory_mb=peak_memory_mb(ctx.device),
                extra={"steps": log.steps, "final_loss": log.final_loss, "tune": config.tune, "config": config.to_dict()},
            )
        )
        logs[pvp.id] = log
        if keep:
            members.append((model, pvp))
        else:
            del model
    if keep:
        from ..classifier import PetClassifier, PromptEnsemble

        predictor = PromptEnsemble(members, ctx.labels, max_length=config.max_length, batch_size=config.eval_batch_size)
        PetClassifier.from_trained(
            ctx.model, "prompt-ft", ctx.labels, config, predictor, pvps=pvps, logs=logs, metrics=[r.to_dict() for r in rows]
        ).save(ctx.output_dir, overwrite=True)
    return rows
