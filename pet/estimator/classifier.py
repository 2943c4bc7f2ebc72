"""``PetClassifier``: a scikit-learn estimator over every registered method, and its saved folder.

    clf = PetClassifier("path/to/mlm", method="prompt-ft", task="sst2", options={"steps": 100})
    clf.fit(texts, y)                  # texts: strings, field dicts or Examples
    clf.predict(["a great film"])      # -> labels, in the type ``y`` had
    clf.save("my-model"); PetClassifier.load("my-model")
    sklearn.model_selection.cross_val_score(PetClassifier(...), texts, y, cv=3)

``__init__`` only stores parameters (``get_params``/``set_params``/``sklearn.base.clone``
work); ``fit`` builds the method's typed options (unknown keys fail here), fits and keeps
``fitted_`` (a :class:`pet.methods.base.Fitted` with every stage), ``classes_`` and
``labels_``. Prediction uses the final stage.

Saved folder (format_version 3), written atomically (temp folder + swap) with a manifest::

    pet_config.json      format_version, method, base model, labels (and their original values),
                         the method's options, the final stage, the predictor layout, versions
    patterns.json        the PVPs' patterns and verbalizers, in the shipped file format
    verbalizers.json
    models/<j>/          prompt predictors: each distinct masked LM in Hugging Face format
                         (config.json, model.safetensors, tokenizer files), LoRA merged
    soft_prompts/<i>.safetensors   soft-prompt parameters (the LM they sit on is in models/)
    model/               sequence classifier: encoder, tokenizer, classifier_head.safetensors
    training_log.jsonl   one line per optimizer step of every trained model ("run" names it)
    metrics.json         evaluated rows, when the caller passes them to ``save``
    README.md            model card (:mod:`pet.estimator.modelcard`): front matter for the Hugging Face Hub,
                         method, PVPs, options, data summary, metrics, how to load it
    manifest.json        SHA-256 of every other file, written last and checked on load

Loading reads nothing outside the folder (every path in ``pet_config.json`` is confined to it),
refuses pickle weights and refuses a folder whose files changed since it was saved.

Hugging Face conventions: ``save_pretrained(dir)`` / ``from_pretrained(dir_or_repo_id)`` (a Hub
repo is fetched with ``huggingface_hub.snapshot_download`` into the HF cache and goes through the
same checks) and ``push_to_hub(repo_id)`` (``HfApi.upload_folder`` of the saved folder);
:func:`push_folder_to_hub` uploads a folder already saved (e.g. by ``pet train --output``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .. import __version__
from ..data import TaskSpec, load_task, task_pvps
from ..utils.defaults import DEFAULT_MAX_LENGTH, DEFAULT_SEED
from ..errors import ConfigError, DataError, IntegrityError, ModelError
from ..examples import Example
from ..utils.io import atomic_directory, atomic_write_json, recover_directory
from ..utils.jsonio import read_json
from .manifest import refuse_pickle, resolve_inside, verify_manifest, write_manifest
from ..methods import FitSetup, Fitted, Stage, get_method
from .modelcard import CARD_FILE, LIBRARY_NAME, hub_model_id, model_card
from ..methods.predictors import get_predictor_class
from ..prompts.spec import PVP, load_patterns, load_verbalizers, make_pvps, save_patterns, save_verbalizers
from ..utils.versions import package_versions

FORMAT_VERSION = 3
CONFIG_FILE = "pet_config.json"


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
            bad = [k for k, v in x.items() if not isinstance(v, str)]
            if bad:
                raise DataError(f"input {i}: field '{bad[0]}' is a {type(x[bad[0]]).__name__}, not text; fix: pass strings")
            out.append(Example(dict(x), lab, f"input-{i}"))
        else:
            raise DataError(f"input {i}: {type(x).__name__} is not a text, field dict or Example; fix: pass strings")
    return out


def _label_key(v: Any) -> str:
    return str(v.item() if hasattr(v, "item") else v)


class PetClassifier(ClassifierMixin, BaseEstimator):
    """A few-shot text classifier trained by any registered method (``pet.methods``).

    Parameters
    ----------
    model : masked LM — a local folder or a hub name.
    method : a registered method name (``zero-shot``, ``prompt-ft``, ``cls-ft``, ``pet``,
        ``ipet``, ``prompt-tuning``, ``p-tuning``, ``p-tuning-ft``, ``deep-prompt``).
    task : optional shipped task name or task JSON file: its PVPs, labels and max length are
        the defaults.
    patterns, verbalizers : PVP files (override the task's).
    pvps : ``"pattern:verbalizer"`` ids, or ``PVP`` objects (then no files are needed).
    options : the method's options (see ``pet train --method M --help``); unknown keys fail.
    labels : label ids in order (default: the verbalizer's, else the sorted labels of ``y``).
    seed : training seed (options may pin their own).
    max_length : longest input (default: the task's, else 256); ``options`` may override it.
    device : ``cpu``, ``cuda``… (default: cuda if available).
    progress : show progress bars while fitting.
    """

    def __init__(
        self,
        model: str | None = None,
        method: str = "prompt-ft",
        *,
        task: str | None = None,
        patterns: str | None = None,
        verbalizers: str | None = None,
        pvps: Sequence[str | PVP] | None = None,
        options: dict | None = None,
        labels: Sequence[Any] | None = None,
        seed: int = DEFAULT_SEED,
        max_length: int | None = None,
        device: str | None = None,
        progress: bool = False,
    ):
        self.model = model
        self.method = method
        self.task = task
        self.patterns = patterns
        self.verbalizers = verbalizers
        self.pvps = pvps
        self.options = options
        self.labels = labels
        self.seed = seed
        self.max_length = max_length
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ fitting

    def _task(self) -> TaskSpec | None:
        return load_task(self.task) if self.task is not None else None

    def _pvps(self, task: TaskSpec | None, needed: bool) -> list[PVP]:
        if self.pvps is not None and all(isinstance(p, PVP) for p in self.pvps):
            return list(self.pvps)
        ids = [str(p) for p in self.pvps] if self.pvps is not None else None
        if task is None and (self.patterns is None or self.verbalizers is None):
            if needed:
                raise ConfigError(f"method '{self.method}' needs PVPs; fix: pass task=, or patterns= and verbalizers= files, or pvps=[PVP, …]")
            return []
        return task_pvps(task, self.patterns, self.verbalizers, ids, include_soft=True)

    def fit(self, X, y=None, unlabelled=None) -> "PetClassifier":
        """Fit on texts/examples ``X`` with labels ``y`` (or labelled Examples); ``unlabelled``:
        extra texts for methods that use them (PET/iPET distillation, the MLM loss)."""
        if self.model is None:
            raise ConfigError("PetClassifier: no model; fix: pass model='path/or/hub-name'")
        method = get_method(self.method)
        options = method.make_options(self.options)
        train = as_examples(X, y)
        if any(e.label is None for e in train):
            raise DataError("fit: every example needs a label; fix: pass y, or labelled Examples")
        originals: dict[str, Any] = {}
        for v in (y if y is not None else [e.label for e in train]):
            originals.setdefault(_label_key(v), v.item() if hasattr(v, "item") else v)
        task = self._task()
        pvps = self._pvps(task, method.needs_pvps)
        if self.labels is not None:
            labels = [_label_key(v) for v in self.labels]
            originals.update({_label_key(v): v for v in self.labels})
        elif task is not None:
            labels = list(task.label_ids)
        elif pvps:
            labels = list(pvps[0].verbalizer.label_ids)
        else:
            labels = sorted(originals, key=lambda s: (len(s), s) if s.isdigit() else (0, s))
        unknown = sorted({e.label for e in train} - set(labels))
        if unknown:
            raise DataError(f"fit: label '{unknown[0]}' is not one of the classifier's labels {labels}; fix: add it to the verbalizer or labels=")
        unl = as_examples(unlabelled) if unlabelled is not None else []
        setup = FitSetup(
            model=str(self.model), labels=labels, pvps=pvps, seed=int(self.seed),
            max_length=int(self.max_length or (task.max_length if task is not None else DEFAULT_MAX_LENGTH)),
            device=self.device, progress=bool(self.progress), regression=task.regression if task is not None else None,
        )
        self.fitted_ = method.fit(train, unl, options, setup)
        self._set_labels(labels, originals)
        per_label = {lab: sum(e.label == lab for e in train) for lab in labels}
        self.train_data_ = {"examples": len(train), "per_label": per_label, "unlabelled": len(unl)}
        return self

    def _set_labels(self, labels: list[str], originals: dict[str, Any]) -> None:
        self.labels_ = list(labels)
        values = [originals.get(lab, lab) for lab in labels]
        self.classes_ = np.array(values, dtype=object if len({type(v) for v in values}) > 1 else None)

    @classmethod
    def from_fitted(cls, fitted: Fitted, device: str | None = None) -> "PetClassifier":
        """A fitted classifier around a method's :class:`Fitted` (e.g. from ``fit_evaluate``)."""
        self = cls(fitted.model, fitted.method, options=fitted.options.to_dict(), pvps=list(fitted.pvps), labels=list(fitted.labels), device=device)
        self.fitted_ = fitted
        self._set_labels(list(fitted.labels), {})
        return self

    # ------------------------------------------------------------------ predicting

    def predict_log_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "fitted_")
        return np.asarray(self.fitted_.predictor.predict_log_proba(as_examples(X), progress=bool(self.progress)))

    def predict_proba(self, X) -> np.ndarray:
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "fitted_")
        return self.classes_[self.predict_log_proba(X).argmax(1)]

    def predict_stream(self, X: Iterable[Any], chunk_size: int = 1024) -> Iterator[tuple[Any, np.ndarray]]:
        """``(input, probabilities)`` for every item of the iterable ``X`` (texts, Examples or
        ``{"text_a": …}`` dicts), scored ``chunk_size`` at a time: memory stays flat however
        long ``X`` is (see :mod:`pet.evaluation.streaming` for files)."""
        import itertools

        check_is_fitted(self, "fitted_")
        it = iter(X)
        while chunk := list(itertools.islice(it, chunk_size)):
            proba = self.predict_proba(chunk)
            yield from zip(chunk, proba)

    @classmethod
    def zero_shot(cls, model: str, pvps: Sequence[PVP], labels: Sequence[str], options: dict | None = None,
                  device: str | None = None, max_length: int = DEFAULT_MAX_LENGTH) -> "PetClassifier":
        """The zero-shot method on ``pvps`` (no training data): ``fitted_`` holds every PVP's
        stage and their ensemble (what ``pet zero-shot`` reports)."""
        method = get_method("zero-shot")
        setup = FitSetup(model=str(model), labels=list(labels), pvps=list(pvps), max_length=int(max_length), device=device)
        fitted = method.fit([], [], method.make_options(options), setup)
        return cls.from_fitted(fitted, device=device)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, overwrite: bool = False, metrics: Sequence[dict] | None = None, *, repo_id: str | None = None) -> Path:
        """Write the self-contained folder ``path`` atomically (see the module doc); ``metrics``
        (evaluated rows) go to ``metrics.json`` and the model card; ``repo_id`` is the Hub repo
        the card's loading snippet names (default: a placeholder folder path)."""
        check_is_fitted(self, "fitted_")
        f = self.fitted_
        final = Path(path)
        with atomic_directory(final, overwrite=overwrite, marker=CONFIG_FILE, what="saved model folder") as d:
            stage = f.stage()
            spec = stage.predictor.save(d)
            pvps = _unique(list(f.pvps) + [pvp for _, pvp in getattr(stage.predictor, "members", [])])
            if pvps:
                save_patterns(d / "patterns.json", _unique([p.pattern for p in pvps]))
                save_verbalizers(d / "verbalizers.json", _unique([p.verbalizer for p in pvps]))
            (d / "training_log.jsonl").write_text(
                "".join(json.dumps({"run": run, **e}, sort_keys=True) + "\n" for run, log in f.logs.items() for e in log.entries),
                encoding="utf-8",
            )
            if metrics is not None:
                atomic_write_json(d / "metrics.json", {"stages": list(metrics)})
            meta = {
                "format_version": FORMAT_VERSION,
                "method": f.method,
                "model": f.model or self.model,
                "labels": self.labels_,
                "label_values": [v.item() if hasattr(v, "item") else v for v in self.classes_],
                "options": f.options.to_dict(),
                "final_stage": stage.key,
                "pvps": [p.id for p in pvps],
                "predictor": spec,
                "training": {run: {"steps": log.steps, "train_seconds": log.train_seconds, "trained_parameters": log.trained_parameters,
                                   "final_loss": log.final_loss} for run, log in f.logs.items()},
                "versions": {"pet": __version__, **package_versions()},
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if getattr(self, "train_data_", None):
                meta["train_data"] = self.train_data_
            (d / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
            card_meta = json.loads(json.dumps(meta, default=str))  # what pet_config.json holds
            card_metrics = json.loads(json.dumps(list(metrics), default=str)) if metrics is not None else None
            (d / CARD_FILE).write_text(model_card(card_meta, pvps, card_metrics, repo_id=repo_id), encoding="utf-8")
            write_manifest(d)  # last: covers every file above, the card included
        return final

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "PetClassifier":
        """Load a folder written by :meth:`save` (checked: manifest, containment, no pickle)."""
        d = Path(path)
        cfg_path = d / CONFIG_FILE
        if not d.is_dir() or not cfg_path.is_file():
            raise ModelError(f"{d}: not a saved classifier ({CONFIG_FILE} missing); fix: point at a folder written by `pet train --output` or PetClassifier.save")
        recover_directory(d)  # a replacement killed mid-swap: put the complete folder back first
        refuse_pickle(d)  # before the manifest: a hostile folder may carry a consistent manifest
        verify_manifest(d)
        meta = read_json(cfg_path, error=ModelError)
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if version != FORMAT_VERSION:
            raise ModelError(
                f"{cfg_path}: $.format_version is {version!r}, this pet reads format_version {FORMAT_VERSION}; "
                "fix: re-train and save with this version, or load it with the pet version that wrote it"
            )
        where = str(cfg_path)
        for key in ("method", "model", "labels", "options", "predictor", "final_stage"):
            if key not in meta:
                raise ModelError(f"{where}: $.{key} missing; fix: re-save the classifier")
        method = get_method(meta["method"])
        options = method.make_options(meta["options"], where=f"{where}: $.options")
        labels = [str(x) for x in meta["labels"]]
        pvps: dict[str, PVP] = {}
        if (d / "patterns.json").is_file():
            found = make_pvps(load_patterns(d / "patterns.json"), load_verbalizers(d / "verbalizers.json"), meta.get("pvps") or None)
            pvps = {p.id: p for p in found}
            for p in pvps.values():
                if sorted(p.verbalizer.label_ids) != sorted(labels):
                    raise ModelError(f"{where}: $.labels {labels} disagree with verbalizer '{p.verbalizer.id}' ({p.verbalizer.label_ids}); fix: re-save the classifier")
        spec = meta["predictor"]
        if not isinstance(spec, dict):
            raise ModelError(f"{where}: $.predictor is not an object; fix: re-save the classifier")
        predictor = get_predictor_class(spec.get("kind"), where).load(spec, d, device=device)
        if [str(x) for x in predictor.labels] != labels:
            raise ModelError(f"{where}: $.labels {labels} disagree with the saved predictor's {list(predictor.labels)}; fix: re-save the classifier")
        name, _, pvp = str(meta["final_stage"]).partition("[")
        stage = Stage(name, predictor, pvp=pvp.rstrip("]").split("]#")[0] or None)
        self = cls(meta["model"], meta["method"], options=options.to_dict(), labels=meta.get("label_values") or labels, device=device)
        self.fitted_ = Fitted(meta["method"], labels, options, [stage], stage.key, pvps=list(pvps.values()), model=meta["model"])
        values = meta.get("label_values") or labels
        if len(values) != len(labels):
            raise ModelError(f"{where}: $.label_values has {len(values)} entries for {len(labels)} labels; fix: re-save the classifier")
        self._set_labels(labels, dict(zip(labels, values)))
        self.saved_config_ = meta
        if isinstance(meta.get("train_data"), dict):
            self.train_data_ = meta["train_data"]
        return self

    # ------------------------------------------------------------------ Hugging Face Hub

    def save_pretrained(self, save_directory: str | Path, *, metrics: Sequence[dict] | None = None, overwrite: bool = True,
                        repo_id: str | None = None, push_to_hub: bool = False, **push_kwargs: Any) -> Path:
        """:meth:`save` the Hugging Face way: an existing saved folder is replaced by default (a
        swap; a folder that is not a saved classifier never is). ``push_to_hub=True`` then uploads
        it to ``repo_id`` (default: the folder's name) with :func:`push_folder_to_hub`."""
        repo = (repo_id or Path(save_directory).name) if push_to_hub else repo_id
        out = self.save(save_directory, overwrite=overwrite, metrics=metrics, repo_id=repo)
        if push_to_hub:
            push_folder_to_hub(out, repo, **push_kwargs)
        return out

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, revision: str | None = None, token: str | bool | None = None,
                        cache_dir: str | Path | None = None, local_files_only: bool = False, force_download: bool = False,
                        device: str | None = None) -> "PetClassifier":
        """A saved folder, or a Hub repo id (``user/name``) fetched with
        ``huggingface_hub.snapshot_download`` into the HF cache (``revision``: branch, tag or
        commit). Either way it goes through :meth:`load`'s checks (manifest, containment, no
        pickle); the Hub's own ``.gitattributes`` is the one file a repo may add."""
        src = str(pretrained_model_name_or_path)
        p = Path(src).expanduser()
        if p.exists() or isinstance(pretrained_model_name_or_path, Path) or hub_model_id(src) is None:
            return cls.load(p, device=device)
        snapshot = _hub_download(src, revision, token, cache_dir, local_files_only, force_download)
        return _load_snapshot(cls, src + (f"@{revision}" if revision else ""), snapshot, device)

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | bool | None = None, revision: str | None = None,
                    commit_message: str | None = None, create_pr: bool = False, metrics: Sequence[dict] | None = None) -> str:
        """Save into a temporary folder (card naming ``repo_id``) and upload it with
        ``HfApi.upload_folder`` (creating the repo if needed). Returns the commit URL. A loaded
        classifier holds no metrics or training log: to publish a folder as saved by
        ``pet train --output``, use :func:`push_folder_to_hub`."""
        check_is_fitted(self, "fitted_")
        with tempfile.TemporaryDirectory(prefix="pet-push-") as tmp:
            folder = self.save(Path(tmp) / "model", metrics=metrics, repo_id=repo_id)
            return push_folder_to_hub(folder, repo_id, private=private, token=token, revision=revision,
                                      commit_message=commit_message, create_pr=create_pr)


# ---------------------------------------------------------------------- Hugging Face Hub

_HUB_FIX_AUTH = "pass token= (or run `hf auth login`) with access to it"
_NET_MODULES = {"httpx", "httpx2", "httpcore", "requests", "urllib3"}


def _hub():
    try:
        import huggingface_hub
    except ImportError:  # it comes with transformers; only a broken install lacks it
        raise ModelError("the Hugging Face Hub needs the `huggingface_hub` package; fix: pip install huggingface_hub") from None
    return huggingface_hub


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _is_network_error(e: BaseException) -> bool:
    return isinstance(e, (ConnectionError, TimeoutError)) or type(e).__module__.partition(".")[0] in _NET_MODULES


def _hub_download(repo_id: str, revision: str | None, token, cache_dir, local_files_only: bool, force_download: bool) -> Path:
    """``snapshot_download`` into the HF cache, its failures as one-line ``ModelError``s."""
    hf = _hub()
    from huggingface_hub import errors as he

    where = repo_id + (f"@{revision}" if revision else "")
    try:
        return Path(hf.snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
                                         force_download=force_download, library_name=LIBRARY_NAME, library_version=__version__))
    except he.GatedRepoError:
        raise ModelError(f"{where}: the Hub repo is gated and you have no access yet; fix: request access on its page, then {_HUB_FIX_AUTH}") from None
    except he.RepositoryNotFoundError:
        raise ModelError(f"{where}: no local folder by that name, and no model repo with that id on the Hugging Face Hub (or it is private); "
                         f"fix: check the id, {_HUB_FIX_AUTH}, or give the path of a saved folder") from None
    except he.RevisionNotFoundError:
        raise ModelError(f"{where}: the Hub repo has no revision '{revision or 'main'}'; fix: pass an existing branch, tag or commit as revision=") from None
    except he.HFValidationError as e:
        raise ModelError(f"{repo_id}: not a saved folder here and not a valid Hub repo id ({_first_line(e)}); fix: give the path of a saved folder or an id like 'user/name'") from None
    except he.LocalEntryNotFoundError:
        raise ModelError(f"{where}: cannot download it from the Hugging Face Hub (no connection, or offline mode: HF_HUB_OFFLINE) and no copy is in the cache; "
                         "fix: connect to the network (and unset HF_HUB_OFFLINE) once to fetch it, or give the path of a saved folder") from None
    except he.HfHubHTTPError as e:
        raise ModelError(f"{where}: cannot download from the Hugging Face Hub ({_first_line(e)}); fix: check the id and your access ({_HUB_FIX_AUTH}), then retry") from None
    except Exception as e:
        if isinstance(e, OSError) or _is_network_error(e):
            raise ModelError(f"{where}: cannot download from the Hugging Face Hub ({_first_line(e)}); fix: check the network connection and disk space, then retry") from None
        raise


def _plain_copy(snapshot: Path, into: Path, where: str) -> None:
    """``snapshot`` as plain files in ``into``. In the HF cache every snapshot file is a symbolic
    link to ``../../blobs/<sha>``: each becomes a hard link to (or, across file systems, a copy
    of) its blob, so :meth:`PetClassifier.load` checks plain files. Only links into the repo's
    own ``blobs`` folder are followed; the Hub's ``.gitattributes`` is left out."""
    blobs = (snapshot.parent.parent / "blobs").resolve()
    fix = "fix: download it again with force_download=True, or load only folders pushed with pet"
    for dirpath, dirnames, filenames in os.walk(snapshot):
        here = Path(dirpath)
        rel = here.relative_to(snapshot)
        for name in dirnames:
            if (here / name).is_symlink():
                raise IntegrityError(f"{where}: {(rel / name).as_posix()} is a linked folder in the download; {fix}")
        (into / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            if rel == Path(".") and name == ".gitattributes":
                continue
            src = here / name
            target = src.resolve() if src.is_symlink() else src
            if src.is_symlink() and (blobs not in target.parents or not target.is_file()):
                raise IntegrityError(f"{where}: {(rel / name).as_posix()} links outside the Hugging Face cache's blobs; {fix}")
            try:
                os.link(target, into / rel / name)
            except OSError:
                shutil.copyfile(target, into / rel / name)


def _load_snapshot(cls, where: str, snapshot: Path, device: str | None) -> PetClassifier:
    """Load a downloaded snapshot through :meth:`PetClassifier.load` (its errors name the repo)."""
    parent = snapshot.parent.parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".pet-load-", dir=parent))
    except OSError:  # a read-only cache: copy to the temp folder instead
        tmp = Path(tempfile.mkdtemp(prefix="pet-load-"))
    try:
        _plain_copy(snapshot, tmp, where)
        if not (tmp / CONFIG_FILE).is_file():
            raise ModelError(f"{where}: this Hub repo is not a saved pet classifier (no {CONFIG_FILE}); fix: give the id of a repo pushed with "
                             "PetClassifier.push_to_hub (a plain masked LM goes to PetClassifier(model=…) instead)")
        try:
            return cls.load(tmp, device=device)
        except IntegrityError as e:
            problem = str(e).replace(str(tmp.resolve()), where).replace(str(tmp), where).split("; fix:")[0]
            raise IntegrityError(f"{problem}; fix: the repo's files differ from what pet saved (edited on the Hub?): re-push it with "
                                 "PetClassifier.push_to_hub, or pass the revision= of an unedited commit") from None
        except ModelError as e:
            raise type(e)(str(e).replace(str(tmp.resolve()), where).replace(str(tmp), where)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push_folder_to_hub(folder: str | Path, repo_id: str, *, private: bool | None = None, token: str | bool | None = None,
                       revision: str | None = None, commit_message: str | None = None, create_pr: bool = False) -> str:
    """Upload a saved classifier folder as it is (card, metrics, training log) to the Hub repo
    ``repo_id`` (created if missing; ``private`` applies only then) with ``HfApi.upload_folder``,
    in one commit that also deletes the repo's files the folder no longer has (a re-push of a
    smaller ensemble would otherwise leave files the manifest refuses). The folder is checked
    first (manifest, no pickle): nothing that would not load is published. Returns the commit URL."""
    d = Path(folder)
    if not d.is_dir() or not (d / CONFIG_FILE).is_file():
        raise ModelError(f"{d}: not a saved classifier ({CONFIG_FILE} missing); fix: push a folder written by PetClassifier.save or `pet train --output`")
    refuse_pickle(d)
    verify_manifest(d)
    hf = _hub()
    from huggingface_hub import errors as he

    method = (read_json(d / CONFIG_FILE, error=ModelError) or {}).get("method", "?")
    try:
        api = hf.HfApi(token=token)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=getattr(url, "repo_id", None) or repo_id, repo_type="model", folder_path=str(d), revision=revision, create_pr=create_pr,
            commit_message=commit_message or f"Upload pet classifier ({method}) with pet {__version__}", delete_patterns=["*"],
        )
    except he.HFValidationError as e:
        raise ModelError(f"{repo_id}: not a valid Hub repo id ({_first_line(e)}); fix: use an id like 'user/name'") from None
    except (he.LocalTokenNotFoundError, he.RepositoryNotFoundError) as e:
        raise ModelError(f"{repo_id}: cannot push ({_first_line(e)}); fix: {_HUB_FIX_AUTH} (a token with write access to that namespace)") from None
    except he.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        fix = f"{_HUB_FIX_AUTH} (a token with write access)" if status in (401, 403) else "check the repo id and revision, then retry"
        raise ModelError(f"{repo_id}: the Hugging Face Hub refused the upload ({_first_line(e)}); fix: {fix}") from None
    except Exception as e:
        if isinstance(e, OSError) or _is_network_error(e):
            raise ModelError(f"{repo_id}: cannot upload to the Hugging Face Hub ({_first_line(e)}); fix: check the network connection "
                             "(and unset HF_HUB_OFFLINE), then retry") from None
        raise
    return str(getattr(info, "commit_url", None) or info)


def _unique(items, key=lambda x: x.id):
    seen, out = set(), []
    for it in items:
        if key(it) not in seen:
            seen.add(key(it))
            out.append(it)
    return out
