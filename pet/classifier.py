"""``PetClassifier``: a scikit-learn-style face over every method.

    clf = PetClassifier("path/to/mlm", pvps=pvps, method="prompt-ft", config={"steps": 100})
    clf.fit(texts, y)                 # or clf.fit(list_of_Examples)
    clf.predict(["a great film"])     # -> ["1"]
    clf.save("my-model"); PetClassifier.load("my-model")

Whatever the method, the fitted classifier holds one *final predictor*:

* ``PromptEnsemble`` — (PromptModel, PVP) members whose label log-probs are averaged
  (zero-shot: one shared model scored with every PVP; prompt-ft: one trained model per PVP);
* ``SequenceClassifier`` — ``[CLS]``+MLP (cls-ft, and PET's distilled final model).

Saved directory (format_version 1), written atomically (temp folder + rename)::

    pet_config.json      format_version, method, base model, labels, training config,
                         predictor layout (per member: its PVP, where its LM comes from, its
                         soft prompt), package versions
    patterns.json        the PVPs' patterns and verbalizers, in the shipped file format
    verbalizers.json
    models/<j>/          prompt predictors: each distinct *trained* masked LM in Hugging Face
                         format (config.json, model.safetensors, tokenizer files), LoRA
                         merged into the weights
    soft_prompts/<i>.safetensors
                         soft-prompt members (prompt tuning, P-tuning, deep prompts, soft
                         verbalizer): only the prompt module's parameters; its SoftConfig and
                         the PVP it was attached for are in pet_config.json
    model/               sequence classifier: encoder (config.json, model.safetensors),
                         tokenizer files, classifier_head.safetensors, classifier.json
    training_log.jsonl   one line per optimizer step of every trained model ("run" names it)
    metrics.json         the evaluated stages (StageResult rows), when known

A soft-prompt member whose LM stayed frozen (``SoftConfig.tune == "frozen"`` and no LM
parameter trainable) stores **no LM weights**: its member entry names the base model
(``base_model``: the name/path it was loaded from, the absolute path of a local folder, and a
SHA-256 of its weights) and loading rebuilds the exact model from it — base LM, then
``attach_soft_prompt`` with the saved config, then the saved parameters; a base model whose
weights no longer match the hash is refused. A soft prompt over a tuned LM (``p-tuning-ft``)
stores the LM under ``models/<j>/`` as well.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError, DataError
from .examples import Example
from .spec import PVP, load_patterns, load_verbalizers, make_pvps, save_patterns, save_verbalizers

FORMAT_VERSION = 1
CONFIG_FILE = "pet_config.json"
METHODS = ("zero-shot", "prompt-ft", "cls-ft", "pet", "ipet")
SOFT_DIR = "soft_prompts"


def as_examples(X: Sequence[Any], y: Sequence[Any] | None = None) -> list[Example]:
    """Texts, field dicts or ``Example`` objects (with optional labels ``y``) → Examples."""
    if isinstance(X, (str, Example, dict)):
        raise DataError("expected a list of texts or examples, got a single item; fix: wrap it in a list")
    X = list(X)
    if y is not None:
        y = [None if v is None else str(v) for v in y]
        if len(y) != len(X):
            raise DataError(f"{len(X)} inputs but {len(y)} labels; fix: pass one label per input")
    out = []
    for i, x in enumerate(X):
        lab = y[i] if y is not None else None
        if isinstance(x, Example):
            out.append(x if y is None else Example(dict(x.fields), lab, x.guid, dict(x.meta)))
        elif isinstance(x, str):
            out.append(Example({"text_a": x}, lab, f"input-{i}"))
        elif isinstance(x, dict):
            out.append(Example({k: str(v) for k, v in x.items()}, lab, f"input-{i}"))
        else:
            raise DataError(f"input {i}: {type(x).__name__} is not a text, field dict or Example; fix: pass strings")
    return out


# ----------------------------------------------------------------------------- predictors


class PromptEnsemble:
    """Average of label log-probs of (PromptModel, PVP) members (a single member = one model)."""

    kind = "prompt-ensemble"

    def __init__(self, members, labels: Sequence[str], max_length: int = 256, batch_size: int = 32, weights: Sequence[float] | None = None):
        if not members:
            raise ConfigError("a prompt predictor needs at least one (model, PVP) member")
        self.members = list(members)
        self.labels = list(labels)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.weights = list(weights) if weights is not None else None

    def predict_log_proba(self, examples: Sequence[Example], progress: bool = False) -> np.ndarray:
        from .scoring import ensemble

        per = [
            m.predict_log_proba(examples, pvp, batch_size=self.batch_size, max_length=self.max_length, labels=self.labels, progress=progress)
            for m, pvp in self.members
        ]
        return per[0] if len(per) == 1 else ensemble(per, self.weights)

    def save(self, d: Path) -> dict:
        from .tuning import merged_copy

        entries: dict[int, dict] = {}  # id(model) -> where its LM and soft prompt are saved
        n_models = n_soft = 0
        spec_members = []
        for m, pvp in self.members:
            if id(m) not in entries:
                pe = m.prompt_encoder
                entry: dict[str, Any] = {}
                base = _frozen_base(m) if pe is not None else None
                if base is None:
                    rel = f"models/{n_models}"
                    n_models += 1
                    out = d / rel
                    out.mkdir(parents=True)
                    merged_copy(m.mlm).save_pretrained(out)
                    m.tokenizer.save_pretrained(out)
                    entry["model"] = rel
                else:
                    entry["base_model"] = base
                if pe is not None:
                    entry["soft_prompt"] = _save_soft_prompt(pe, d, f"{SOFT_DIR}/{n_soft}.safetensors")
                    n_soft += 1
                entries[id(m)] = entry
            entry = entries[id(m)]
            if "soft_prompt" in entry and entry["soft_prompt"]["pvp"] != pvp.id:
                raise ConfigError(
                    f"member '{pvp.id}': its model's soft prompt was attached for PVP '{entry['soft_prompt']['pvp']}'; "
                    "fix: score each soft-prompt model with the PVP it was attached for"
                )
            spec_members.append({"pvp": pvp.id, **entry})
        return {"kind": self.kind, "members": spec_members, "max_length": self.max_length, "batch_size": self.batch_size, "weights": self.weights}

    @classmethod
    def load(cls, d: Path, spec: dict, pvps: dict[str, PVP], labels: list[str], device=None) -> "PromptEnsemble":
        from .model import PromptModel

        loaded: dict[str, Any] = {}
        members = []
        for mem in spec["members"]:
            if mem["pvp"] not in pvps:
                raise ConfigError(f"{d / CONFIG_FILE}: member PVP '{mem['pvp']}' is not in patterns.json/verbalizers.json; fix: re-save the classifier")
            pvp = pvps[mem["pvp"]]
            soft = mem.get("soft_prompt")
            source = mem["model"] if mem.get("model") else "base:" + json.dumps(mem.get("base_model"), sort_keys=True)
            # a soft prompt lives on its model (model.prompt_encoder): one model per soft member
            key = source if soft is None else f"{source}#{json.dumps(soft, sort_keys=True)}"
            if key not in loaded:
                if mem.get("model"):
                    m = PromptModel.from_pretrained(str(d / mem["model"]), device=device)
                    m.name = mem["model"]
                elif mem.get("base_model") and soft is not None:
                    m = _load_base(mem["base_model"], d / CONFIG_FILE, device)
                else:
                    raise ConfigError(f"{d / CONFIG_FILE}: member '{mem['pvp']}' has neither a saved model nor a base model and soft prompt; fix: re-save the classifier")
                if soft is not None:
                    _attach_saved_soft_prompt(m, pvp, d, mem, spec.get("max_length", 256), labels)
                loaded[key] = m
            members.append((loaded[key], pvp))
        return cls(members, labels, spec.get("max_length", 256), spec.get("batch_size", 32), spec.get("weights"))


def weights_sha256(mlm) -> str:
    """SHA-256 over a model's state dict (names, dtypes, shapes, bytes; sorted by name): what
    a frozen-LM soft prompt records of its base model, so loading can check it is the same."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(mlm.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{t.numel()}|".encode())
        h.update(t.view(torch.uint8).numpy())
    return h.hexdigest()


def _frozen_base(m) -> dict | None:
    """The base-model reference of a soft-prompt model whose LM was not trained, else None
    (then the LM weights are saved). Not trained = the soft config says ``tune="frozen"``, no
    LM parameter is trainable (``pet.tuning.apply_tuning("frozen")`` leaves none) and no LoRA;
    and the model was loaded from a name/path it can be loaded from again."""
    from .tuning import has_lora

    cfg = getattr(m.prompt_encoder, "config", None)
    if getattr(cfg, "tune", None) != "frozen" or has_lora(m.mlm) or any(p.requires_grad for p in m.mlm.parameters()):
        return None
    src = str(getattr(m.mlm, "name_or_path", "") or "")
    if not src:  # built in memory (from a config), not loadable by name
        return None
    path = Path(src).expanduser()
    return {"name": src, "path": str(path.resolve()) if path.exists() else None, "sha256": weights_sha256(m.mlm)}


def _load_base(ref: dict, where: Path, device):
    from .errors import ModelError
    from .model import PromptModel

    name = ref.get("name")
    src = ref["path"] if ref.get("path") and Path(ref["path"]).is_dir() else name
    try:
        m = PromptModel.from_pretrained(str(src), device=device)
    except ModelError as e:
        raise ModelError(
            f"{where}: this classifier stores only its soft prompts and needs the base model '{name}'"
            f"{' (' + ref['path'] + ')' if ref.get('path') else ''}, which cannot be loaded ({e}); "
            "fix: restore the base model there, or re-train and save"
        ) from None
    if ref.get("sha256") and weights_sha256(m.mlm) != ref["sha256"]:
        raise ModelError(
            f"{where}: base model '{src}' is not the one the soft prompts were trained on (its weights' SHA-256 differs); "
            "fix: restore the original base model, or re-train and save"
        )
    m.name = name
    return m


def _save_soft_prompt(pe, d: Path, rel: str) -> dict:
    from safetensors.torch import save_file

    cfg = getattr(pe, "config", None)
    meta = getattr(pe, "meta", None) or {}
    if not hasattr(cfg, "to_dict") or "pvp" not in meta:
        raise ConfigError(f"cannot save prompt encoder {type(pe).__name__}: not a pet.soft soft prompt; fix: attach it with pet.soft.attach_soft_prompt")
    (d / rel).parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in pe.state_dict().items()}
    save_file(state, str(d / rel))
    return {
        "config": cfg.to_dict(),
        "weights": rel,
        "pvp": PVP.from_dict(meta["pvp"]).id,
        "max_length": meta.get("max_length"),
        "parameters": int(sum(v.numel() for v in state.values())),
    }


def _attach_saved_soft_prompt(model, pvp: PVP, d: Path, mem: dict, max_length: int, labels) -> None:
    from safetensors.torch import load_file

    from .errors import ModelError

    try:
        from .soft import attach_soft_prompt
    except ImportError:
        raise ConfigError(f"{d}: this classifier uses soft prompts but pet.soft is not available; fix: install a pet version with soft prompts") from None
    soft = mem["soft_prompt"]
    weights = d / soft["weights"]
    module = attach_soft_prompt(model, model.encoder_for(pvp, soft.get("max_length") or max_length, labels), soft["config"])
    missing, unexpected = module.load_state_dict(load_file(str(weights)), strict=False)
    if missing or unexpected:
        raise ModelError(f"{weights}: does not fit the soft prompt (missing {missing}, unexpected {unexpected}); fix: re-save the classifier")
    module.to(model.device)
    model.eval()


class _SequencePredictor:
    kind = "sequence-classifier"

    def __init__(self, clf, batch_size: int = 32):
        self.clf = clf
        self.batch_size = batch_size

    def predict_log_proba(self, examples, progress: bool = False) -> np.ndarray:
        return self.clf.predict_log_proba(examples, batch_size=self.batch_size, progress=progress)

    def save(self, d: Path) -> dict:
        self.clf.save(d / "model")
        return {"kind": self.kind, "path": "model", "batch_size": self.batch_size}

    @classmethod
    def load(cls, d: Path, spec: dict, device=None) -> "_SequencePredictor":
        from .methods.cls_ft import SequenceClassifier

        return cls(SequenceClassifier.load(d / spec["path"], device=device), spec.get("batch_size", 32))


def _wrap_predictor(p):
    from .methods.cls_ft import SequenceClassifier

    return _SequencePredictor(p) if isinstance(p, SequenceClassifier) else p


# ----------------------------------------------------------------------------- the classifier


class PetClassifier:
    """Few-shot text classifier; ``method`` is ``zero-shot``, ``prompt-ft``, ``cls-ft`` or ``pet``.

    (A loaded classifier may also carry a soft-prompt method's name — ``prompt-tuning``,
    ``p-tuning``, ``p-tuning-ft``, ``deep-prompt`` — as saved by those methods through
    :meth:`from_trained`; it predicts like any other, ``fit`` does not train those.)

    ``pvps``: a list of ``PVP`` objects, or of ``"pattern:verbalizer"`` ids together with
    ``patterns``/``verbalizers`` file paths (all pairs of the files' first verbalizer when
    ``pvps`` is None). ``config``: a ``TrainConfig`` or a dict of its keys.
    """

    def __init__(
        self,
        model: str,
        pvps: Sequence[PVP | str] | None = None,
        method: str = "prompt-ft",
        labels: Sequence[str] | None = None,
        config=None,
        *,
        patterns: str | Path | None = None,
        verbalizers: str | Path | None = None,
        device: str | None = None,
        progress: bool = False,
    ):
        from .training import TrainConfig

        if method not in METHODS:
            raise ConfigError(f"method='{method}': unknown; fix: use one of {', '.join(METHODS)}")
        self.model = str(model)
        self.method = method
        self.config = TrainConfig.from_dict(config)
        self.labels = [str(x) for x in labels] if labels is not None else None
        self.device = device
        self.progress = progress
        if patterns is not None or verbalizers is not None:
            if patterns is None or verbalizers is None:
                raise ConfigError("patterns and verbalizers files go together; fix: pass both")
            ids = [p for p in (pvps or []) if isinstance(p, str)] or None
            self.pvps = make_pvps(load_patterns(patterns), load_verbalizers(verbalizers), ids)
        else:
            if pvps and any(isinstance(p, str) for p in pvps):
                raise ConfigError("PVP ids given without patterns/verbalizers files; fix: pass patterns= and verbalizers=, or PVP objects")
            self.pvps = list(pvps or [])
        if method != "cls-ft" and not self.pvps:
            raise ConfigError(f"method '{method}' needs at least one PVP; fix: pass pvps= or patterns=/verbalizers=")
        self.predictor = None
        self.logs: dict[str, Any] = {}
        self.metrics: list[dict] = []

    # ------------------------------------------------------------------ sklearn API

    @property
    def classes_(self) -> list[str]:
        return list(self.labels or [])

    def _resolve_labels(self, labelled: list[Example]) -> list[str]:
        if self.labels is not None:
            return self.labels
        if self.pvps:
            return self.pvps[0].verbalizer.label_ids
        seen = sorted({e.label for e in labelled if e.label is not None})
        if not seen:
            raise DataError("no labelled examples; fix: pass labels y or labelled Examples")
        return seen

    def fit(self, X, y=None, unlabelled=None) -> "PetClassifier":
        from .training import train_prompt_model

        labelled = as_examples(X, y) if X is not None else []
        unl = as_examples(unlabelled) if unlabelled is not None else []
        self.labels = self._resolve_labels(labelled)
        for pvp in self.pvps:
            pvp.check_labels(self.labels, "the classifier's labels")
        cfg = self.config
        max_length = cfg.max_length or 256
        if self.method != "zero-shot":
            if not labelled:
                raise DataError("fit: no labelled examples; fix: pass texts and labels")
            bad = [e for e in labelled if e.label not in self.labels]
            if bad:
                raise DataError(f"fit: label {bad[0].label!r} of '{bad[0].guid}' is not one of {self.labels}; fix: correct y or labels=")
        self.logs = {}
        self.metrics = []
        if self.method == "zero-shot":
            from .model import PromptModel

            m = PromptModel.from_pretrained(self.model, device=self.device)
            self.predictor = PromptEnsemble([(m, p) for p in self.pvps], self.labels, max_length, cfg.eval_batch_size)
        elif self.method == "prompt-ft":
            from .model import PromptModel

            members = []
            for pvp in self.pvps:
                m = PromptModel.from_pretrained(self.model, device=self.device)
                self.logs[pvp.id] = train_prompt_model(m, pvp, labelled, cfg, self.labels, unlabelled=unl, progress=self.progress)
                members.append((m, pvp))
            self.predictor = PromptEnsemble(members, self.labels, max_length, cfg.eval_batch_size)
        elif self.method == "cls-ft":
            from .methods.cls_ft import train_sequence_classifier

            clf = train_sequence_classifier(self.model, labelled, self.labels, cfg, device=self.device, progress=self.progress)
            self.logs["cls"] = clf.train_log
            self.predictor = _SequencePredictor(clf, cfg.eval_batch_size)
        elif self.method in ("pet", "ipet"):
            try:
                from .methods.pet import fit_pet
            except ImportError:
                raise ConfigError("method 'pet': pet.methods.pet.fit_pet is not available in this version; fix: use prompt-ft or cls-ft") from None
            if not unl:
                raise ConfigError(f"method '{self.method}' distils into a classifier over unlabelled text, but none was given; fix: pass unlabelled=[...]")
            final, rows = fit_pet(
                self.model, self.pvps, labelled, unl, self.labels, cfg,
                ipet=self.method == "ipet", device=self.device, progress=self.progress,
            )
            self.predictor = _wrap_predictor(final)
            log = getattr(final, "train_log", None)
            if log is not None:
                self.logs["distilled"] = log
            self.metrics = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in rows]
        return self

    def _check_fitted(self) -> None:
        if self.predictor is None:
            raise ConfigError("this PetClassifier is not fitted; fix: call fit() or PetClassifier.load()")

    def predict_log_proba(self, X) -> np.ndarray:
        self._check_fitted()
        return self.predictor.predict_log_proba(as_examples(X), progress=self.progress)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities ``[N, L]``; columns in the order of ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> list[str]:
        lp = self.predict_log_proba(X)
        return [self.labels[i] for i in lp.argmax(1)]

    def score(self, X, y) -> float:
        """Accuracy (scikit-learn convention)."""
        pred = self.predict(X)
        return float(np.mean([p == str(t) for p, t in zip(pred, y)]))

    # ------------------------------------------------------------------ building from parts

    @classmethod
    def from_trained(cls, model: str, method: str, labels, config, predictor, pvps=(), logs=None, metrics=None) -> "PetClassifier":
        """Wrap an already trained predictor (what the methods do to save their final model)."""
        self = cls.__new__(cls)
        from .training import TrainConfig

        self.model = str(model)
        self.method = method
        self.config = TrainConfig.from_dict(config)
        self.labels = list(labels)
        self.pvps = list(pvps or [])
        self.device = None
        self.progress = False
        self.predictor = _wrap_predictor(predictor)
        self.logs = dict(logs or {})
        self.metrics = list(metrics or [])
        return self

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the self-contained directory ``path`` atomically (see the module doc)."""
        from . import __version__
        from .io import atomic_directory
        from .versions import package_versions

        self._check_fitted()
        final = Path(path)
        with atomic_directory(final, overwrite=overwrite) as d:
            predictor_spec = self.predictor.save(d)
            pvps = _unique(self.pvps + [pvp for _, pvp in getattr(self.predictor, "members", [])])
            if pvps:
                save_patterns(d / "patterns.json", _unique([p.pattern for p in pvps]))
                save_verbalizers(d / "verbalizers.json", _unique([p.verbalizer for p in pvps]))
            (d / "training_log.jsonl").write_text(
                "".join(json.dumps({"run": run, **e}, sort_keys=True) + "\n" for run, log in self.logs.items() for e in log.entries),
                encoding="utf-8",
            )
            (d / "metrics.json").write_text(json.dumps({"stages": self.metrics}, indent=2, default=str) + "\n", encoding="utf-8")
            meta = {
                "format_version": FORMAT_VERSION,
                "method": self.method,
                "model": self.model,
                "labels": self.labels,
                "pvps": [p.id for p in pvps],
                "config": self.config.to_dict(),
                "predictor": predictor_spec,
                "training": {
                    run: {"steps": log.steps, "train_seconds": log.train_seconds, "trained_parameters": log.trained_parameters, "final_loss": log.final_loss}
                    for run, log in self.logs.items()
                },
                "versions": {"pet": __version__, **package_versions()},
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            # written last: a folder without it is never taken for a saved classifier
            (d / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        return final

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "PetClassifier":
        from .training import TrainConfig

        d = Path(path)
        cfg_path = d / CONFIG_FILE
        if not cfg_path.is_file():
            raise ConfigError(f"{d}: not a saved classifier ({CONFIG_FILE} missing); fix: point at a folder written by `pet train --output` or PetClassifier.save")
        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{cfg_path}: unreadable ({e}); fix: re-save the classifier") from None
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"{cfg_path}: $.format_version is {version!r}, this pet reads format_version {FORMAT_VERSION}; "
                "fix: re-train and save with this version, or load it with the pet version that wrote it"
            )
        pvps: dict[str, PVP] = {}
        if (d / "patterns.json").is_file():
            all_pvps = make_pvps(load_patterns(d / "patterns.json"), load_verbalizers(d / "verbalizers.json"), meta.get("pvps") or None)
            pvps = {p.id: p for p in all_pvps}
        spec = meta["predictor"]
        labels = list(meta["labels"])
        if spec["kind"] == PromptEnsemble.kind:
            predictor = PromptEnsemble.load(d, spec, pvps, labels, device=device)
        elif spec["kind"] == _SequencePredictor.kind:
            predictor = _SequencePredictor.load(d, spec, device=device)
        else:
            raise ConfigError(f"{cfg_path}: $.predictor.kind '{spec['kind']}' is unknown; fix: re-save the classifier")
        self = cls.from_trained(meta["model"], meta["method"], labels, TrainConfig.from_dict(meta["config"], f"{cfg_path}: $.config"), predictor, list(pvps.values()))
        self.device = device
        self.metrics = _read_metrics(d)
        self.saved_meta = meta
        return self


def _unique(items, key=lambda x: x.id):
    seen, out = set(), []
    for it in items:
        if key(it) not in seen:
            seen.add(key(it))
            out.append(it)
    return out


def _read_metrics(d: Path) -> list[dict]:
    p = d / "metrics.json"
    if not p.is_file():
        return []
    try:
        return list(json.loads(p.read_text(encoding="utf-8")).get("stages", []))
    except (json.JSONDecodeError, AttributeError):
        return []
