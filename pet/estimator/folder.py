"""The saved classifier folder (format_version 3): written atomically, checked on load.

::

    pet_config.json      format_version, method, base model, labels (and their original values),
                         the method's options, the final stage, the predictor's spec, versions
    patterns.json        the PVPs' patterns and verbalizers, in the shipped file format
    verbalizers.json
    models/<j>/          prompt predictors: each distinct base masked LM, once, in Hugging Face
                         format (config.json, model.safetensors, tokenizer files)
    adapters/<i>/        LoRA-tuned members: the PEFT adapter (adapter_config.json,
                         adapter_model.safetensors) over its base in models/<j>/
    soft_prompts/<i>.safetensors   soft-prompt parameters (the LM they sit on is in models/)
    model/               sequence classifier (cls-ft, PET's distilled model) in transformers'
                         own layout: AutoModelForSequenceClassification / pipeline() load it
    training_log.jsonl   one line per optimizer step of every trained model ("run" names it)
    metrics.json         evaluated rows, when the caller passes them to ``save``
    README.md            model card (:mod:`pet.estimator.modelcard`), outside the manifest
    manifest.json        SHA-256 of every file loading reads, written last and checked on load

Which predictor wrote ``$.predictor`` is its ``kind``, looked up in the predictor registry
(:func:`pet.methods.predictors.get_predictor_class`). Loading reads nothing outside the folder
(every path in ``pet_config.json`` is confined to it), refuses pickle weights and refuses a folder
whose checked files changed since it was saved. Format 2 (the previous release) is read too,
upgraded on load (:func:`_upgrade_format_2`); re-saving writes format 3.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..errors import ModelError
from ..evaluation.evaluator import without_predictions
from ..methods import Fitted, Stage, get_method
from ..methods.predictors import get_predictor_class
from ..prompts.spec import PVP, load_patterns, load_verbalizers, make_pvps, save_patterns, save_verbalizers
from ..utils.io import atomic_directory, atomic_write_json, recover_directory
from ..utils.jsonio import read_json
from ..utils.versions import package_versions
from .manifest import refuse_pickle, verify_manifest, write_manifest
from .modelcard import CARD_FILE, model_card

FORMAT_VERSION = 3
#: the format versions :func:`load_folder` reads: this one, and format 2 (the previous release),
#: which it upgrades on load (:func:`_upgrade_format_2`)
READABLE_VERSIONS = (2, 3)
CONFIG_FILE = "pet_config.json"


@dataclass
class SavedFolder:
    """What :func:`load_folder` read: the fitted method (its final stage), the config, and the
    label values in the type they were given at fit time."""

    fitted: Fitted
    meta: dict
    label_values: list


def _unique(items, key=lambda x: x.id):
    seen, out = set(), []
    for it in items:
        if key(it) not in seen:
            seen.add(key(it))
            out.append(it)
    return out


def _json(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def save_folder(path: str | Path, fitted: Fitted, label_values: Sequence[Any], *, label_names: Sequence[str] | None = None,
                model: str | None = None, train_data: dict | None = None, metrics: Sequence[dict] | None = None,
                repo_id: str | None = None, card: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``fitted``'s final stage as the folder ``path`` (see the module doc), atomically.
    ``label_names`` (e.g. the task's ``negative``/``positive``) name the labels in the card and in
    a predictor that has ``label_names`` (a transformers ``id2label``)."""
    f = fitted
    final = Path(path)
    names = [str(n) for n in label_names] if label_names is not None else [str(v) for v in label_values]
    with atomic_directory(final, overwrite=overwrite, marker=CONFIG_FILE, what="saved model folder") as d:
        stage = f.stage()
        if hasattr(stage.predictor, "label_names"):
            stage.predictor.label_names = names
        spec = stage.predictor.save(d)
        pvps = _unique(list(f.pvps) + [pvp for _, pvp in getattr(stage.predictor, "members", [])])
        if pvps:
            save_patterns(d / "patterns.json", _unique([p.pattern for p in pvps]))
            save_verbalizers(d / "verbalizers.json", _unique([p.verbalizer for p in pvps]))
        (d / "training_log.jsonl").write_text(
            "".join(json.dumps({"run": run, **e}, sort_keys=True) + "\n" for run, log in f.logs.items() for e in log.entries), encoding="utf-8")
        if metrics is not None:
            metrics = [without_predictions(r) for r in metrics]  # per-example arrays are not a summary
            atomic_write_json(d / "metrics.json", {"stages": metrics})
        meta = {
            "format_version": FORMAT_VERSION,
            "method": f.method,
            "model": f.model or model,
            "labels": list(f.labels),
            "label_values": [v.item() if hasattr(v, "item") else v for v in label_values],
            "label_names": names,
            "options": f.options.to_dict(),
            "final_stage": stage.key,
            "pvps": [p.id for p in pvps],
            "predictor": spec,
            "training": {run: {"steps": log.steps, "train_seconds": log.train_seconds, "trained_parameters": log.trained_parameters,
                               "final_loss": log.final_loss} for run, log in f.logs.items()},
            "versions": {"pet": __version__, **package_versions()},
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if train_data:
            meta["train_data"] = train_data
        (d / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        card_metrics = _json(list(metrics)) if metrics is not None else None
        (d / CARD_FILE).write_text(model_card(_json(meta), pvps, card_metrics, repo_id=repo_id, folder=final, card=card), encoding="utf-8")
        write_manifest(d)  # last: every file loading reads (the card is not one of them)
    return final


def _read_config(d: Path) -> dict:
    cfg_path = d / CONFIG_FILE
    meta = read_json(cfg_path, error=ModelError)
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ModelError(
            f"{cfg_path}: $.format_version is {version!r}, this pet reads format_version {' and '.join(map(str, READABLE_VERSIONS))}; "
            "fix: re-train and re-save with this version, or load it with the pet version that wrote it"
        )
    for key in ("method", "model", "labels", "options", "predictor", "final_stage"):
        if key not in meta:
            raise ModelError(f"{cfg_path}: $.{key} missing; fix: re-save the classifier")
    if not isinstance(meta["predictor"], dict):
        raise ModelError(f"{cfg_path}: $.predictor is not an object; fix: re-save the classifier")
    return meta


def _read_pvps(d: Path, meta: dict, labels: list[str], where: str) -> list[PVP]:
    if not (d / "patterns.json").is_file():
        return []
    pvps = make_pvps(load_patterns(d / "patterns.json"), load_verbalizers(d / "verbalizers.json"), meta.get("pvps") or None)
    for p in pvps:
        if sorted(p.verbalizer.label_ids) != sorted(labels):
            raise ModelError(f"{where}: $.labels {labels} disagree with verbalizer '{p.verbalizer.id}' ({p.verbalizer.label_ids}); fix: re-save the classifier")
    return pvps


def _upgrade_format_2(meta: dict, pvps: list[PVP]) -> dict:
    """A format-2 config in format 3's shape. Format 2 (the release before the predictor
    registry) kept a prompt predictor's labels and PVPs outside its spec: in ``$.labels`` and in
    ``patterns.json`` / ``verbalizers.json`` (read into ``pvps``). It had no ``$.label_names``
    (the label values name the labels), and its sequence classifier has no ``layout`` in
    ``model/classifier.json``, which :meth:`SequenceClassifier.load` reads as encoder + head."""
    spec = dict(meta["predictor"])
    if isinstance(spec.get("members"), list):  # prompt-ensemble (demonstration-ensemble had both already)
        spec.setdefault("labels", list(meta["labels"]))
        spec.setdefault("pvps", {p.id: p.to_dict() for p in pvps})
    return {**meta, "predictor": spec}


def load_folder(path: str | Path, device: str | None = None) -> SavedFolder:
    """Read a folder written by :func:`save_folder` (checked: manifest, containment, no pickle),
    or by the previous release (format 2, upgraded on load)."""
    d = Path(path)
    if not d.exists():
        raise ModelError(f"{d}: not a saved classifier: no such folder; fix: check the path")
    if not d.is_dir() or not (d / CONFIG_FILE).is_file():
        raise ModelError(f"{d}: not a saved classifier ({CONFIG_FILE} missing); fix: point at a folder written by `pet train --output` or PetClassifier.save")
    recover_directory(d)  # a replacement killed mid-swap: put the complete folder back first
    refuse_pickle(d)  # before the manifest: a hostile folder may carry a consistent manifest
    verify_manifest(d)
    meta = _read_config(d)
    where = str(d / CONFIG_FILE)
    options = get_method(meta["method"]).make_options(meta["options"], where=f"{where}: $.options")
    labels = [str(x) for x in meta["labels"]]
    names = meta.get("label_names")
    if names is not None and (not isinstance(names, list) or len(names) != len(labels)):
        raise ModelError(f"{where}: $.label_names must be a list of {len(labels)} names; fix: re-save the classifier")
    pvps = _read_pvps(d, meta, labels, where)
    if meta["format_version"] == 2:
        meta = _upgrade_format_2(meta, pvps)
    spec = meta["predictor"]
    predictor = get_predictor_class(spec.get("kind"), where).load(spec, d, device=device)
    if [str(x) for x in predictor.labels] != labels:
        raise ModelError(f"{where}: $.labels {labels} disagree with the saved predictor's {list(predictor.labels)}; fix: re-save the classifier")
    values = meta.get("label_values") or labels
    if len(values) != len(labels):
        raise ModelError(f"{where}: $.label_values has {len(values)} entries for {len(labels)} labels; fix: re-save the classifier")
    name, _, pvp = str(meta["final_stage"]).partition("[")
    stage = Stage(name, predictor, pvp=pvp.rstrip("]").split("]#")[0] or None)
    fitted = Fitted(meta["method"], labels, options, [stage], stage.key, pvps=pvps, model=meta["model"])
    return SavedFolder(fitted, meta, list(values))
