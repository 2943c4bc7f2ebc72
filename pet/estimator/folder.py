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
(every path in ``pet_config.json`` is confined to it), refuses pickle weights, refuses a folder
whose checked files changed since it was saved, and checks the values it reads before using them
(:func:`check_predictor_spec`: ``$.predictor.max_length``, ``batch_size``, ``weights``,
``priors``; duplicate ``$.labels``), so a folder from someone else fails in one line naming the
JSON path, never with an internal error.

Saving over an existing folder (``overwrite=True``, what ``save_pretrained`` does by default)
replaces it only when it holds nothing but what a save writes (:func:`check_replaceable`): the
files its ``manifest.json`` lists, the manifest and the card — or, without a readable manifest,
only the names pet writes at the top (``models/``, ``pet_config.json``, …). A file of the user's
(``notes.txt``, a ``.git/`` folder) makes it refuse, naming that entry, so nothing is lost. Format 2 (the previous release) is read too,
upgraded on load (:func:`_upgrade_format_2`); re-saving writes format 3.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..errors import ConfigError, ModelError, UsageError
from ..evaluation.evaluator import without_predictions
from ..methods import Fitted, Stage, get_method
from ..methods.predictors import get_predictor_class
from ..prompts.spec import PVP, load_patterns, load_verbalizers, make_pvps, save_patterns, save_verbalizers
from ..utils.io import atomic_directory, atomic_write_json, recover_directory
from ..utils.jsonio import read_json
from ..utils.versions import package_versions
from .inputs import label_key
from .manifest import MANIFEST_FILE, read_manifest, refuse_pickle, verify_manifest, write_manifest
from .modelcard import CARD_FILE, model_card

FORMAT_VERSION = 3
#: the format versions :func:`load_folder` reads: this one, and format 2 (the previous release),
#: which it upgrades on load (:func:`_upgrade_format_2`)
READABLE_VERSIONS = (2, 3)
CONFIG_FILE = "pet_config.json"
#: what a save writes at the top of the folder (every predictor kind pet ships): a folder without a
#: readable manifest may be replaced only when it holds nothing else
SAVED_NAMES = frozenset({CONFIG_FILE, MANIFEST_FILE, CARD_FILE, "patterns.json", "verbalizers.json", "training_log.jsonl",
                         "metrics.json", "models", "adapters", "soft_prompts", "model", "setfit", "similarity"})
_RESAVE = "fix: re-save the folder with `pet train --output DIR --overwrite` (or PetClassifier.save)"
#: the predictor kinds pet ships whose spec :func:`check_predictor_spec` checks: prompt predictors
#: (members, weights, priors, max_length, batch_size) and the others (batch_size); a plugin's
#: predictor checks its own spec in its ``load``
PROMPT_KINDS = frozenset({"prompt-ensemble", "demonstration-ensemble"})
OTHER_KINDS = frozenset({"sequence-classifier", "setfit"})


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


def _unexpected_entry(d: Path) -> str | None:
    """The first entry below ``d`` (relative path; a folder with a trailing ``/``) that a save
    does not write, or None when ``d`` holds only what a save writes."""
    try:
        listed = set(read_manifest(d))
    except ModelError:  # no or no readable manifest: only the names a save writes at the top
        listed = None
    if listed is None:
        for c in sorted(d.iterdir(), key=lambda c: c.name):
            if c.name not in SAVED_NAMES or c.is_symlink():
                return c.name + ("/" if c.is_dir() and not c.is_symlink() else "")
        return None
    allowed = listed | {MANIFEST_FILE, CARD_FILE}
    parents = {"/".join(rel.split("/")[:i]) for rel in allowed for i in range(1, rel.count("/") + 1)}
    for dirpath, dirnames, filenames in os.walk(d):
        base = Path(dirpath).relative_to(d).as_posix()
        dirnames.sort()
        for name in sorted(filenames) + list(dirnames):
            rel = name if base == "." else f"{base}/{name}"
            p = Path(dirpath) / name
            if p.is_dir() and not p.is_symlink():
                if rel not in parents:  # a folder of the user's, or one no listed file is in
                    return rel + "/"
            elif rel not in allowed or p.is_symlink():
                return rel
    return None


def check_replaceable(path: str | Path) -> None:
    """Refuse (one-line ``UsageError``) to replace an existing saved folder that holds anything a
    save does not write (see the module doc): replacing it would delete the user's file. Call it
    before long work too (``pet train --output DIR --overwrite``). A missing or empty folder, or
    one without ``pet_config.json`` (refused by :func:`pet.utils.io.check_output_folder` as not a
    saved folder), passes."""
    d = Path(path)
    if d.is_symlink() or not d.is_dir() or not (d / CONFIG_FILE).is_file():
        return
    extra = _unexpected_entry(d)
    if extra is not None:
        raise UsageError(f"{d}: holds {extra}, which a saved classifier folder does not, and replacing the folder would delete it; "
                         "fix: move it out of the folder, or save to another path")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def check_predictor_spec(spec: dict, labels: Sequence[str], where: str) -> None:
    """The values of ``$.predictor`` that predicting uses without another check, checked when a
    folder is loaded (a folder from someone else is input too): ``max_length`` and
    ``batch_size`` positive integers (or null where the predictor has a default),
    ``weights`` one non-negative number per member with a positive sum (or null: equal weights),
    ``priors`` one list of ``len(labels)`` finite numbers (log-probabilities) per member (or
    null). One-line ``ModelError`` naming the JSON path. Only the kinds pet ships are checked
    (:data:`PROMPT_KINDS`, :data:`OTHER_KINDS`): a plugin's spec is its own."""
    def bad(field: str, what: str) -> ModelError:
        return ModelError(f"{where}: $.predictor.{field}: {what}; {_RESAVE}")

    kind = spec.get("kind")
    if kind not in PROMPT_KINDS | OTHER_KINDS:
        return
    for key in ("max_length", "batch_size") if kind in PROMPT_KINDS else ("batch_size",):
        if spec.get(key) is not None and not _positive_int(spec[key]):
            raise bad(key, f"{spec[key]!r:.40} is not a positive integer")
    if kind in PROMPT_KINDS and "batch_size" in spec and spec["batch_size"] is None:  # no default there: int(None)
        raise bad("batch_size", "null is not a positive integer")
    if kind not in PROMPT_KINDS:
        return
    members = spec.get("members")
    n = len(members) if isinstance(members, list) else None
    weights = spec.get("weights")
    if weights is not None:
        if not isinstance(weights, list) or (n is not None and len(weights) != n):
            raise bad("weights", f"{weights!r:.60} is not a list of {n} non-negative numbers (one per member) with a positive sum"
                      if n is not None else f"{weights!r:.60} is not a list of non-negative numbers")
        for i, w in enumerate(weights):
            if not _number(w) or w < 0:
                raise bad(f"weights[{i}]", f"{w!r} is not a non-negative number")
        if weights and sum(weights) <= 0:
            raise bad("weights", f"{weights!r} sum to 0, and ensemble weights need a positive sum")
    priors = spec.get("priors")
    if priors is not None:
        if not isinstance(priors, list) or (n is not None and len(priors) != n):
            raise bad("priors", f"{priors!r:.60} is not a list of {n if n is not None else 'per-member'} priors "
                      f"(one per member, each a list of {len(labels)} log-probabilities)")
        for i, prior in enumerate(priors):
            if not isinstance(prior, list) or len(prior) != len(labels):
                raise bad(f"priors[{i}]", f"{prior!r:.60} is not a list of {len(labels)} log-probabilities (one per label)")
            for j, v in enumerate(prior):
                if not _number(v):
                    raise bad(f"priors[{i}][{j}]", f"{v!r} is not a finite number")
    for i, mem in enumerate(members if n else []):
        soft = mem.get("soft_prompt") if isinstance(mem, dict) else None
        if isinstance(soft, dict) and soft.get("max_length") is not None and not _positive_int(soft["max_length"]):
            raise bad(f"members[{i}].soft_prompt.max_length", f"{soft['max_length']!r} is not a positive integer")
    demo = spec.get("demonstrations")
    if kind == "demonstration-ensemble" and isinstance(demo, dict):
        _check_demonstrations(demo, bad, where)


def _check_demonstrations(demo: dict, bad, where: str) -> None:
    """``$.predictor.demonstrations`` of a demonstration-ensemble: the sampling options (typed as
    the method's ``demo_*`` options are) and the pool of labelled examples."""
    from ..prompts.demonstrations import DemoConfig

    keys = DemoConfig.keys()
    missing = [k for k in keys if k not in demo]
    if missing:
        raise bad("demonstrations", f"'{missing[0]}' missing")
    try:
        DemoConfig.from_dict({k: demo[k] for k in keys}, where=f"{where}: $.predictor.demonstrations")
    except ConfigError as e:  # the option's own fix is for a user's option, not for a saved folder
        raise ModelError(f"{str(e).partition('; fix: ')[0]}; {_RESAVE}") from None
    if "similarity_path" in demo and not isinstance(demo["similarity_path"], str):
        raise bad("demonstrations.similarity_path", "not a path inside the folder")
    pool = demo.get("pool", [])
    if not isinstance(pool, list):
        raise bad("demonstrations.pool", "not a list of examples")
    for i, e in enumerate(pool):
        fields = e.get("fields") if isinstance(e, dict) else None
        if not isinstance(fields, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
            raise bad(f"demonstrations.pool[{i}].fields", "not an object of text fields")
        if not isinstance(e.get("label"), (str, type(None))) or not isinstance(e.get("guid", ""), str):
            raise bad(f"demonstrations.pool[{i}]", "'label' and 'guid' must be strings")


def save_folder(path: str | Path, fitted: Fitted, label_values: Sequence[Any], *, label_names: Sequence[str] | None = None,
                model: str | None = None, train_data: dict | None = None, metrics: Sequence[dict] | None = None,
                repo_id: str | None = None, card: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``fitted``'s final stage as the folder ``path`` (see the module doc), atomically.
    ``label_names`` (e.g. the task's ``negative``/``positive``) name the labels in the card and in
    a predictor that has ``label_names`` (a transformers ``id2label``)."""
    f = fitted
    final = Path(path)
    names = [str(n) for n in label_names] if label_names is not None else [str(v) for v in label_values]
    if overwrite:
        check_replaceable(final)
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
        if overwrite:  # again just before the swap: a file added to the old folder while saving is kept too
            check_replaceable(final)
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


def _labels(meta: dict, where: str) -> list[str]:
    """``$.labels`` as label ids, checked: a non-empty list, each label once."""
    if not isinstance(meta["labels"], list) or not meta["labels"]:
        raise ModelError(f"{where}: $.labels: not a non-empty list of labels; {_RESAVE}")
    labels = [str(x) for x in meta["labels"]]
    dup = next((lab for i, lab in enumerate(labels) if lab in labels[:i]), None)
    if dup is not None:
        raise ModelError(f"{where}: $.labels: '{dup}' is listed twice; {_RESAVE}")
    return labels


def saved_labels(path: str | Path) -> list[str]:
    """The label ids a saved folder predicts, in column order, read from its config alone: cheap
    enough to check an input against before the model loads (:func:`load_folder` checks the rest)."""
    d = Path(path)
    if not (d / CONFIG_FILE).is_file():
        raise ModelError(f"{d}: not a saved classifier ({CONFIG_FILE} missing); fix: point at a folder written by `pet train --output` or PetClassifier.save")
    return _labels(_read_config(d), str(d / CONFIG_FILE))


def saved_columns(path: str | Path) -> dict[str, str] | None:
    """The columns ``pet train --data`` read (template field → column), recorded in the folder's
    ``metrics.json``; None when it records none (a registered task, or a save from Python)."""
    f = Path(path) / "metrics.json"
    if not f.is_file():
        return None
    try:
        stages = json.loads(f.read_text(encoding="utf-8")).get("stages")
    except (ValueError, OSError, AttributeError):
        raise ModelError(f"{f}: not a JSON object with a list $.stages; fix: re-save the classifier") from None
    cols = stages[-1].get("columns") if isinstance(stages, list) and stages and isinstance(stages[-1], dict) else None
    if cols is None:
        return None
    if not isinstance(cols, dict) or not cols or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in cols.items()):
        raise ModelError(f"{f}: $.stages[-1].columns: not an object of template field → column name; fix: re-save the classifier, "
                         "or give the columns with --text-field")
    return dict(cols)


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
    labels = _labels(meta, where)
    names = meta.get("label_names")
    if names is not None and (not isinstance(names, list) or len(names) != len(labels)):
        raise ModelError(f"{where}: $.label_names must be a list of {len(labels)} names; fix: re-save the classifier")
    pvps = _read_pvps(d, meta, labels, where)
    if meta["format_version"] == 2:
        meta = _upgrade_format_2(meta, pvps)
    spec = meta["predictor"]
    predictor_class = get_predictor_class(spec.get("kind"), where)
    check_predictor_spec(spec, labels, where)
    predictor = predictor_class.load(spec, d, device=device)
    if [str(x) for x in predictor.labels] != labels:
        raise ModelError(f"{where}: $.labels {labels} disagree with the saved predictor's {list(predictor.labels)}; fix: re-save the classifier")
    values = meta.get("label_values") or labels
    if not isinstance(values, list) or len(values) != len(labels):
        n = len(values) if isinstance(values, list) else "no list of"
        raise ModelError(f"{where}: $.label_values has {n} entries for {len(labels)} labels; fix: re-save the classifier")
    for v in values:
        if not isinstance(v, (str, int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise ModelError(f"{where}: $.label_values: {v!r:.40} is not a label value; {_RESAVE}")
    keys = [label_key(v) for v in values]
    dup = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if dup is not None:
        raise ModelError(f"{where}: $.label_values: '{dup}' is listed twice; {_RESAVE}")
    name, _, pvp = str(meta["final_stage"]).partition("[")
    stage = Stage(name, predictor, pvp=pvp.rstrip("]").split("]#")[0] or None)
    fitted = Fitted(meta["method"], labels, options, [stage], stage.key, pvps=pvps, model=meta["model"])
    return SavedFolder(fitted, meta, list(values))
