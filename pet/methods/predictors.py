"""Predictors: what a fitted stage predicts with, and how each kind is saved in a folder.

* :class:`PromptEnsemble` — (PromptModel, PVP) members whose label log-probs are averaged
  (optionally weighted, optionally calibrated); one member = one prompt model. Zero-shot,
  prompt-ft, PET's per-PVP models and ensembles, and every soft-prompt method predict with it.
* :class:`SequencePredictor` — a ``[CLS]`` + MLP :class:`pet.models.sequence.SequenceClassifier`
  (cls-ft, and PET's distilled model).

Every predictor class has the same shape (the registry relies on nothing else):

* ``kind: ClassVar[str]`` — its name in a saved folder's ``pet_config.json``;
* ``labels`` and ``predict_log_proba(examples, progress=False, cache=None) -> [N, L]``; ``cache``
  (a dict shared across the stages of one evaluation) lets an ensemble reuse the log-probs its
  members already computed as their own stages;
* ``save(folder) -> spec``: writes its files into ``folder`` and returns a JSON-able spec that
  includes ``"kind"`` and everything ``load`` needs (labels, PVPs…);
* ``classmethod load(spec, folder, device=None)``: the one load signature.

:func:`register_predictor` adds a kind (a plugin's predictor included); :func:`get_predictor_class`
finds it when a folder is loaded.

In a saved folder (see :mod:`pet.estimator.folder`), a prompt predictor writes each distinct
masked LM once under ``models/<j>/`` (Hugging Face format, tokenizer files): members whose LM
weights are equal share that folder (LoRA-tuned members their unmerged base, soft prompts on a
frozen LM that LM; folders saved with one copy per member load as they are). A LoRA-tuned
member adds its PEFT adapter under ``adapters/<i>/`` (``adapter_config.json``,
``adapter_model.safetensors``), a soft-prompt member its parameters under
``soft_prompts/<i>.safetensors``. A sequence predictor writes ``model/`` in transformers' own
``*ForSequenceClassification`` layout. Every path a saved spec names is relative to the folder
and resolved inside it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..utils.defaults import DEFAULT_EVAL_BATCH_SIZE, DEFAULT_MAX_LENGTH
from ..errors import ConfigError, ModelError
from ..examples import Example
from ..models.hf import check_sentence_transformers_folder, quiet_hf, reading_weights
from ..models.prompt_model import PromptModel
from ..models.scoring import calibrate, ensemble
from ..models.sequence import SequenceClassifier
from ..models.soft import attach_soft_prompt
from ..prompts.spec import PVP
from ..models.tuning import attach_lora_adapter, has_lora, lora_base, save_lora_adapter, shared_copy
from ..utils.paths import resolve_inside

MODELS_DIR = "models"
ADAPTER_DIR = "adapters"
SIMILARITY_DIR = "similarity"  # a demonstration ensemble's st: similarity encoder
SOFT_DIR = "soft_prompts"
#: the file of a saved folder that holds a predictor's spec, under ``$.predictor`` (error messages)
SPEC_FILE = "pet_config.json"

_PREDICTORS: dict[str, type] = {}


def register_predictor(kind: str, cls: type) -> type:
    """Make predictor class ``cls`` loadable as ``kind`` (its ``kind`` attribute must agree).
    Registering the same class again is a no-op; another class under a taken kind is refused."""
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"register_predictor: kind {kind!r} is not a name; fix: pass a non-empty string")
    if getattr(cls, "kind", None) != kind:
        raise ConfigError(f"register_predictor('{kind}', {cls.__name__}): {cls.__name__}.kind is {getattr(cls, 'kind', None)!r}; "
                          f"fix: set kind = '{kind}' on the class")
    missing = [a for a in ("save", "load", "predict_log_proba") if not callable(getattr(cls, a, None))]
    if missing:
        raise ConfigError(f"register_predictor('{kind}', {cls.__name__}): no {missing[0]}(); fix: give the class save, load and predict_log_proba")
    if _PREDICTORS.get(kind, cls) is not cls:
        raise ConfigError(f"register_predictor: kind '{kind}' is taken by {_PREDICTORS[kind].__name__}; fix: choose another kind")
    _PREDICTORS[kind] = cls
    return cls


def get_predictor_class(kind: Any, where: str = SPEC_FILE) -> type:
    """The class registered as ``kind``; a one-line ``ModelError`` naming the known kinds if none."""
    if kind not in _PREDICTORS:
        raise ModelError(f"{where}: $.predictor.kind {kind!r} is unknown (known: {', '.join(sorted(_PREDICTORS))}); "
                         "fix: re-save the classifier, or import the plugin that registers that predictor first")
    return _PREDICTORS[kind]


def available_predictors() -> list[str]:
    return sorted(_PREDICTORS)


def _where(folder: Path) -> str:
    return str(Path(folder) / SPEC_FILE)


def _spec_labels_pvps(spec: dict, where: str) -> tuple[list[str], dict[str, PVP]]:
    """The labels and PVPs a prompt predictor's spec carries (``save`` writes both)."""
    if not isinstance(spec.get("labels"), list) or not isinstance(spec.get("pvps"), dict):
        raise ModelError(f"{where}: $.predictor: a {spec.get('kind')} spec needs 'labels' (a list) and 'pvps' (an object); fix: re-save the classifier")
    try:
        pvps = {k: PVP.from_dict(v) for k, v in spec["pvps"].items()}
    except Exception as e:  # a spec error names the field
        raise ModelError(f"{where}: $.predictor.pvps: {e}; fix: re-save the classifier") from None
    return [str(x) for x in spec["labels"]], pvps


class PromptEnsemble:
    """Mean (or weighted mean) of the label log-probs of (PromptModel, PVP) members."""

    kind: ClassVar[str] = "prompt-ensemble"

    def __init__(
        self,
        members: Sequence[tuple[PromptModel, PVP]],
        labels: Sequence[str],
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
        weights: Sequence[float] | None = None,
        priors: Sequence[Sequence[float]] | None = None,
    ):
        if not members:
            raise ConfigError("a prompt predictor needs at least one (model, PVP) member")
        self.members = list(members)
        self.labels = [str(x) for x in labels]
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.weights = [float(w) for w in weights] if weights is not None else None
        #: per member, the content-free log prior to divide by (contextual calibration), or None
        self.priors = [np.asarray(p, dtype=np.float64) for p in priors] if priors is not None else None

    def cache_keys(self, examples: Sequence[Example]) -> list[tuple]:
        """The keys under which the members' log-probs on ``examples`` are cached."""
        return [(id(model), pvp.id, id(examples), self.max_length) for model, pvp in self.members]

    def member_log_proba(self, i: int, examples: Sequence[Example], progress: bool = False, cache: dict | None = None) -> np.ndarray:
        """Member ``i``'s label log-probs; ``cache`` maps a key to ``(log-probs, seconds)``."""
        model, pvp = self.members[i]
        key = self.cache_keys(examples)[i]
        if cache is not None and key in cache:
            lp = cache[key][0]
        else:
            t0 = time.perf_counter()
            lp = model.predict_log_proba(examples, pvp, batch_size=self.batch_size, max_length=self.max_length, labels=self.labels, progress=progress)
            if cache is not None:
                cache[key] = (lp, time.perf_counter() - t0)
        return calibrate(lp, self.priors[i]) if self.priors is not None else lp

    def predict_log_proba(self, examples: Sequence[Example], progress: bool = False, cache: dict | None = None) -> np.ndarray:
        per = [self.member_log_proba(i, examples, progress, cache) for i in range(len(self.members))]
        return per[0] if len(per) == 1 else ensemble(per, self.weights)

    def to(self, device) -> "PromptEnsemble":
        for m, _ in self.members:
            m.to(device)
        return self

    # ------------------------------------------------------------------ saving

    def save(self, d: Path) -> dict[str, Any]:
        """Write the members' models, adapters and soft prompts under ``d``; returns the JSON spec."""
        writer = _ModelWriter(d)
        spec_members = []
        for model, pvp in self.members:
            entry = writer.entry(model)
            if "soft_prompt" in entry and entry["soft_prompt"]["pvp"] != pvp.id:
                raise ConfigError(
                    f"member '{pvp.id}': its model's soft prompt was attached for PVP '{entry['soft_prompt']['pvp']}'; "
                    "fix: score each soft-prompt model with the PVP it was attached for"
                )
            spec_members.append({"pvp": pvp.id, **entry})
        return {
            "kind": self.kind,
            "labels": list(self.labels),
            "pvps": {pvp.id: pvp.to_dict() for _, pvp in self.members},
            "members": spec_members,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "weights": self.weights,
            "priors": [p.tolist() for p in self.priors] if self.priors is not None else None,
        }

    @classmethod
    def load(cls, spec: dict, folder: Path, device=None) -> "PromptEnsemble":
        where = _where(folder)
        labels, pvps = _spec_labels_pvps(spec, where)
        if not isinstance(spec.get("members"), list) or not spec["members"]:
            raise ModelError(f"{where}: $.predictor.members: missing or empty; fix: re-save the classifier")
        max_length = int(spec.get("max_length") or DEFAULT_MAX_LENGTH)
        reader = _ModelReader(Path(folder), where, device)
        members = []
        for i, mem in enumerate(spec["members"]):
            if not isinstance(mem, dict) or mem.get("pvp") not in pvps:
                pvp_id = mem.get("pvp") if isinstance(mem, dict) else None
                raise ModelError(f"{where}: $.predictor.members[{i}].pvp '{pvp_id}' is not in $.predictor.pvps; fix: re-save the classifier")
            pvp = pvps[mem["pvp"]]
            members.append((reader.model(i, mem, pvp, max_length, labels), pvp))
        return cls(members, labels, max_length, spec.get("batch_size", DEFAULT_EVAL_BATCH_SIZE), spec.get("weights"), spec.get("priors"))


class _ModelWriter:
    """Writes each distinct model of a prompt ensemble into a saved folder once.

    A member's LM goes to ``models/<j>/`` unless an equal one (same tensors, same vocabulary, same
    config) is there already: soft prompts trained on one frozen LM, or LoRA-tuned members (whose
    base weights, LoRA layers removed, not merged, are what is compared and written), share it.
    A LoRA member adds its PEFT adapter under ``adapters/<i>/``, a soft prompt its parameters
    under ``soft_prompts/<i>.safetensors``."""

    def __init__(self, d: Path):
        self.d = d
        self.entries: dict[int, dict] = {}  # id(PromptModel) -> its spec entry
        self.bases: list[tuple[str, dict, dict, dict]] = []  # (folder, state dict, vocabulary, config) per written LM
        self.n_adapters = self.n_soft = 0

    def entry(self, model: PromptModel) -> dict[str, Any]:
        if id(model) not in self.entries:
            entry: dict[str, Any] = {"model": self._base(model)}
            if has_lora(model.encoder):
                entry["adapter"] = f"{ADAPTER_DIR}/{self.n_adapters}"
                self.n_adapters += 1
                with quiet_hf():
                    save_lora_adapter(model.encoder, self.d / entry["adapter"], base_model=entry["model"])
            if model.prompt_encoder is not None:
                entry["soft_prompt"] = _save_soft_prompt(model.prompt_encoder, self.d, f"{SOFT_DIR}/{self.n_soft}.safetensors")
                self.n_soft += 1
            self.entries[id(model)] = entry
        return self.entries[id(model)]

    def _base(self, model: PromptModel) -> str:
        """The folder of ``model``'s LM (for a LoRA-tuned model, its base): one written before
        for an equal LM if any (:meth:`written`), else a new one."""
        base = lora_base(model.mlm) if has_lora(model.mlm) else model.mlm
        state, vocab, config = base.state_dict(), model.tokenizer.get_vocab(), base.config.to_dict()
        rel = self.written(state, vocab, config)
        if rel is None:
            rel = f"{MODELS_DIR}/{len(self.bases)}"
            (self.d / rel).mkdir(parents=True)
            with quiet_hf():
                base.save_pretrained(self.d / rel)
                model.tokenizer.save_pretrained(self.d / rel)
            self.bases.append((rel, state, vocab, config))
        return rel

    def written(self, state: dict, vocab: dict, config: dict) -> str | None:
        """The folder of an LM written before with equal weights, vocabulary and config, or None."""
        for rel, other, other_vocab, other_config in self.bases:
            if other_vocab == vocab and other_config == config and other.keys() == state.keys() and all(
                    _same_tensor(other[k], state[k]) for k in state):
                return rel
        return None


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.device == b.device and torch.equal(a, b)


class _ModelReader:
    """Loads the models a prompt ensemble's spec names: each base folder once; a member with an
    adapter or a soft prompt gets its own module tree over the base's weights (a shared copy)."""

    def __init__(self, folder: Path, where: str, device):
        self.folder, self.where, self.device = folder, where, device
        self.bases: dict[str, PromptModel] = {}
        self.models: dict[tuple, PromptModel] = {}

    def _path(self, rel: Any, what: str) -> Path:
        return resolve_inside(self.folder, rel, f"{self.where}: {what}")

    def model(self, i: int, mem: dict, pvp: PVP, max_length: int, labels: list[str]) -> PromptModel:
        at = f"$.predictor.members[{i}]"
        if not isinstance(mem.get("model"), str):
            raise ModelError(f"{self.where}: {at}.model: missing; fix: re-save the classifier")
        adapter, soft = mem.get("adapter"), mem.get("soft_prompt")
        if soft is not None and not (isinstance(soft, dict) and isinstance(soft.get("weights"), str)):
            raise ModelError(f"{self.where}: {at}.soft_prompt.weights: missing; fix: re-save the classifier")
        key = (mem["model"], adapter, soft["weights"] if soft else None)
        if key in self.models:
            return self.models[key]
        if mem["model"] not in self.bases:
            base = PromptModel.from_pretrained(str(self._path(mem["model"], f"{at}.model")), device=self.device)
            base.name = mem["model"]
            self.bases[mem["model"]] = base
        base = self.bases[mem["model"]]
        m = base
        if adapter is not None or soft is not None:  # its own modules, the base's weights
            m = PromptModel(shared_copy(base.mlm), base.tokenizer, name=mem["model"], device=base.device)
        if adapter is not None:
            attach_lora_adapter(m.encoder, self._path(adapter, f"{at}.adapter"))
            m.eval()
        if soft is not None:
            _attach_saved_soft_prompt(m, pvp, self._path(soft["weights"], f"{at}.soft_prompt.weights"), soft, max_length, labels)
        self.models[key] = m
        return m


def _save_soft_prompt(pe, d: Path, rel: str) -> dict:
    cfg = getattr(pe, "config", None)
    meta = getattr(pe, "meta", None) or {}
    if not hasattr(cfg, "to_dict") or "pvp" not in meta:
        raise ConfigError(f"cannot save prompt encoder {type(pe).__name__}: not a pet.models.soft soft prompt; fix: attach it with pet.models.soft.attach_soft_prompt")
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


def _attach_saved_soft_prompt(model: PromptModel, pvp: PVP, weights: Path, soft: dict, max_length: int, labels) -> None:
    module = attach_soft_prompt(model, model.encoder_for(pvp, soft.get("max_length") or max_length, labels), soft["config"])
    with reading_weights(str(weights.parent), weights.name):
        missing, unexpected = module.load_state_dict(load_file(str(weights)), strict=False)
    if missing or unexpected:
        raise ModelError(f"{weights}: does not fit the soft prompt (missing {missing}, unexpected {unexpected}); fix: re-save the classifier")
    module.to(model.device)
    model.eval()


class SequencePredictor:
    """A ``[CLS]`` + MLP sequence classifier as a predictor."""

    kind: ClassVar[str] = "sequence-classifier"

    def __init__(self, clf: SequenceClassifier, batch_size: int = DEFAULT_EVAL_BATCH_SIZE):
        self.clf = clf
        self.batch_size = int(batch_size)

    @property
    def labels(self) -> list[str]:
        return self.clf.labels

    @property
    def label_names(self) -> list[str]:
        """The names a saved ``config.json`` gives the labels (``id2label``)."""
        return self.clf.label_names

    @label_names.setter
    def label_names(self, names: Sequence[str]) -> None:
        self.clf.label_names = [str(n) for n in names]

    def predict_log_proba(self, examples: Sequence[Example], progress: bool = False, cache: dict | None = None) -> np.ndarray:
        return self.clf.predict_log_proba(examples, batch_size=self.batch_size, progress=progress)

    def to(self, device) -> "SequencePredictor":
        self.clf.to(device)
        return self

    def save(self, d: Path) -> dict[str, Any]:
        with quiet_hf():
            self.clf.save(d / "model")
        return {"kind": self.kind, "path": "model", "batch_size": self.batch_size}

    @classmethod
    def load(cls, spec: dict, folder: Path, device=None) -> "SequencePredictor":
        path = resolve_inside(folder, spec.get("path", "model"), f"{_where(folder)}: $.predictor.path")
        return cls(SequenceClassifier.load(path, device=device), spec.get("batch_size", DEFAULT_EVAL_BATCH_SIZE))


class DemonstrationEnsemble:
    """LM-BFF demonstrations at evaluation: each member's label log-probs averaged over
    ``config.sets`` sampled demonstration sets (see :mod:`pet.prompts.demonstrations`), then over the
    members like :class:`PromptEnsemble`. The labelled pool the demonstrations come from (the
    training examples) is saved with the predictor."""

    kind: ClassVar[str] = "demonstration-ensemble"

    def __init__(self, inner: PromptEnsemble, pool: Sequence[Example], config, embed=None):
        from ..prompts.demonstrations import DemoSampler, make_embedder

        if inner.priors is not None:
            raise ConfigError("demonstrations with contextual calibration are not supported; fix: turn off calibrate or demonstrations")
        self.inner = inner
        self.pool = list(pool)
        self.config = config
        if embed is None and config.similarity != "none":
            embed = make_embedder(config.similarity, inner.members[0][0])
        self.sampler = DemoSampler(self.pool, inner.labels, config, embed)

    @property
    def labels(self) -> list[str]:
        return self.inner.labels

    @property
    def members(self):
        return self.inner.members

    def member_log_proba(self, i: int, examples: Sequence[Example], progress: bool = False, cache: dict | None = None) -> np.ndarray:
        from ..prompts.demonstrations import demonstration_pvp, with_demonstrations

        model, pvp = self.inner.members[i]
        key = ("demonstrations", id(model), pvp.id, id(examples), self.inner.max_length, tuple(sorted(self.config.to_dict().items())))
        if cache is not None and key in cache:
            return cache[key][0]
        t0 = time.perf_counter()
        demo_pvp = demonstration_pvp(pvp, self.labels, sep=model.tokenizer.sep_token_id is not None)
        per_set = []
        for demos in self.sampler.sample_sets(examples, range(self.config.sets)):
            aug = with_demonstrations(examples, demos)
            per_set.append(model.predict_log_proba(aug, demo_pvp, batch_size=self.inner.batch_size, max_length=self.inner.max_length,
                                                   labels=self.labels, progress=progress))
        lp = ensemble(per_set, None) if len(per_set) > 1 else per_set[0]
        if cache is not None:
            cache[key] = (lp, time.perf_counter() - t0)
        return lp

    def predict_log_proba(self, examples: Sequence[Example], progress: bool = False, cache: dict | None = None) -> np.ndarray:
        examples = list(examples) if not isinstance(examples, list) else examples
        per = [self.member_log_proba(i, examples, progress, cache) for i in range(len(self.inner.members))]
        return per[0] if len(per) == 1 else ensemble(per, self.inner.weights)

    def to(self, device) -> "DemonstrationEnsemble":
        self.inner.to(device)
        return self

    def save(self, d: Path) -> dict[str, Any]:
        from ..prompts.demonstrations import SentenceEmbedder

        spec = self.inner.save(d)
        spec["kind"] = self.kind
        spec["demonstrations"] = {
            **self.config.to_dict(),
            "pool": [{"fields": dict(e.fields), "label": e.label, "guid": e.guid} for e in self.pool],
        }
        if self.config.similarity.startswith("st:"):  # its encoder goes into the folder: a load reads nothing outside it
            embed = self.sampler.embed
            if not isinstance(embed, SentenceEmbedder):
                raise ModelError(f"demonstrations: the similarity encoder of {self.config.similarity!r} is a custom function, which cannot be saved; "
                                 "fix: let pet load it (embed=None), or use demo_similarity mlm")
            embed.save(d / SIMILARITY_DIR)
            spec["demonstrations"]["similarity_path"] = SIMILARITY_DIR
        return spec

    @classmethod
    def load(cls, spec: dict, folder: Path, device=None) -> "DemonstrationEnsemble":
        from ..prompts.demonstrations import DemoConfig, SentenceEmbedder

        demo = spec.get("demonstrations")
        if not isinstance(demo, dict):
            raise ModelError(f"{_where(folder)}: $.predictor: a demonstration-ensemble needs 'demonstrations'; fix: re-save the classifier")
        inner = PromptEnsemble.load(spec, folder, device=device)
        config = DemoConfig(int(demo["sets"]), str(demo["similarity"]), float(demo["filter_rate"]), int(demo["seed"]))
        pool = [Example(dict(e["fields"]), e.get("label"), e.get("guid", "")) for e in demo.get("pool", [])]
        embed = None
        if config.similarity.startswith("st:"):  # the encoder saved in the folder, never the name it was made from
            if not isinstance(demo.get("similarity_path"), str):
                raise ModelError(f"{_where(folder)}: $.predictor.demonstrations: similarity {config.similarity!r} was saved without its encoder "
                                 "(by an earlier pet), and loading it by name would read a model outside the folder; "
                                 "fix: re-save the classifier with this pet")
            path = resolve_inside(folder, demo["similarity_path"], f"{_where(folder)}: $.predictor.demonstrations.similarity_path")
            check_sentence_transformers_folder(path)  # only sentence-transformers' own module classes
            embed = SentenceEmbedder.load(config.similarity[3:], path, device=device)
        return cls(inner, pool, config, embed=embed)


for _cls in (PromptEnsemble, SequencePredictor, DemonstrationEnsemble):
    register_predictor(_cls.kind, _cls)
