"""``PetClassifier``: a scikit-learn estimator over every registered method.

    clf = PetClassifier("path/to/mlm", method="prompt-ft", task="sst2", options={"steps": 100})
    clf.fit(texts, y)                  # texts: a list, Series or DataFrame (see pet.estimator.inputs)
    clf.predict(["a great film"])      # -> labels, in the type ``y`` had
    clf.save("my-model"); PetClassifier.load("my-model")
    sklearn.model_selection.GridSearchCV(PetClassifier(...), {"options__lr": [1e-5, 3e-5]}, cv=3)

``__init__`` only stores parameters (``get_params``/``set_params``/``sklearn.base.clone`` work;
``options__NAME`` reaches one entry of ``options``); ``fit`` checks them (a one-line
``ConfigError`` naming the parameter: ``seed`` an integer 0 … 2**32-1, ``max_length`` a positive
integer or None, ``labels`` distinct, ``pvps`` a list, not one string…), builds the method's typed
options (unknown keys fail here), fits and keeps ``fitted_`` (a :class:`pet.methods.base.Fitted`
with every stage), ``classes_`` and ``labels_``. ``classes_`` holds the labels in the type ``y``
had (scikit-learn's convention: ``labels=["0", "1"]`` with integer ``y`` gives ``classes_ ==
[0, 1]``, so ``score(X, y)`` compares like with like); ``labels=`` sets their order and adds
labels ``y`` lacks. Prediction uses the final stage. The estimator's tags
say what it reads: text (``input_tags.string``), not a numeric 2-D array.

The saved folder is :mod:`pet.estimator.folder`; Hub transport is :mod:`pet.estimator.hub`
(``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` follow Hugging Face's names).
"""

from __future__ import annotations

import os
import tempfile
from numbers import Integral
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..data import TaskSpec, load_task, task_pvps
from ..errors import ConfigError, DataError
from ..methods import FitSetup, Fitted, get_method
from ..prompts.spec import PVP
from ..utils.defaults import DEFAULT_MAX_LENGTH, DEFAULT_SEED
from .folder import CONFIG_FILE, load_folder, save_folder
from .hub import hub_download, load_snapshot, push_folder_to_hub
from .inputs import as_examples, check_targets, label_key, label_values, labels_list
from .modelcard import hub_model_id

__all__ = ["CONFIG_FILE", "PetClassifier", "as_examples", "push_folder_to_hub"]

OPTIONS_PREFIX = "options__"
#: the seeds numpy and torch both accept (as ``pet train --seed``)
MAX_SEED = 2**32 - 1


def _is_int(v: Any) -> bool:
    """An integer (Python or numpy), not a bool (``True`` is no seed or length)."""
    return isinstance(v, Integral) and not isinstance(v, (bool, np.bool_))


def _is_path(v: Any) -> bool:
    return isinstance(v, (str, os.PathLike)) and str(v) != ""


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
    pvps : a list of ``"pattern:verbalizer"`` ids, or of ``PVP`` objects (then no files are
        needed); a single string is refused (like a single text as ``X``): wrap it in a list.
    options : the method's options (see ``pet train --method M --help``); unknown keys fail.
    labels : label ids in order, each once (default: the verbalizer's, else the sorted labels of
        ``y``); ``classes_`` gives them in the type of ``y``.
    seed : training seed, an integer 0 … 2**32-1 (options may pin their own).
    max_length : longest input, a positive integer (default: the task's, else 256); ``options``
        may override it.
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
        ids = list(self.pvps) if self.pvps is not None else None
        if task is None and (self.patterns is None or self.verbalizers is None):
            if needed:
                raise ConfigError(f"method '{self.method}' needs PVPs; fix: pass task=, or patterns= and verbalizers= files, or pvps=[PVP, …]")
            return []
        return task_pvps(task, self.patterns, self.verbalizers, ids, include_soft=True)

    def _check_params(self) -> None:
        """The constructor's parameters, checked at ``fit`` (scikit-learn stores them untouched in
        ``__init__``): a one-line ``ConfigError`` naming the parameter and the fix."""
        if not _is_path(self.model):
            raise ConfigError(f"PetClassifier(model={self.model!r}): not a model folder or hub name; fix: pass model='path/or/hub-name'")
        if not isinstance(self.method, str):
            raise ConfigError(f"PetClassifier(method={self.method!r}): not a method name; fix: pass e.g. method='prompt-ft'")
        for name in ("task", "patterns", "verbalizers"):
            v = getattr(self, name)
            if v is not None and not _is_path(v):
                raise ConfigError(f"PetClassifier({name}={v!r}): not a name or file path; fix: pass a string, or None")
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            what = "out of range" if _is_int(self.seed) else "not an integer"
            raise ConfigError(f"PetClassifier(seed={self.seed!r}): {what}; fix: pass an integer from 0 to {MAX_SEED}")
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < 1):
            raise ConfigError(f"PetClassifier(max_length={self.max_length!r}): not a positive integer; fix: pass a number of tokens "
                              f"(e.g. 128), or None for the task's (else {DEFAULT_MAX_LENGTH})")
        self._check_pvps_param()
        self._check_labels_param()

    def _check_pvps_param(self) -> None:
        pvps = self.pvps
        if pvps is None:
            return
        if isinstance(pvps, str):  # refused like a single text as X: "a:v" is no list of ids (and "a:v,b:w" would be ambiguous)
            raise ConfigError(f"PetClassifier(pvps={pvps!r}): a single string, not a list of PVP ids; fix: wrap it in a list: pvps=[{pvps!r}]")
        if isinstance(pvps, PVP):
            raise ConfigError(f"PetClassifier(pvps=<PVP '{pvps.id}'>): a single PVP, not a list of PVPs; fix: wrap it in a list: pvps=[pvp]")
        try:
            items = list(pvps)
        except TypeError:
            raise ConfigError(f"PetClassifier(pvps={pvps!r}): not a list of PVPs; fix: pass a list of 'pattern:verbalizer' ids or PVP objects") from None
        bad = next((p for p in items if not isinstance(p, (str, PVP))), None)
        if bad is not None:
            raise ConfigError(f"PetClassifier(pvps=[…, {bad!r}, …]): a {type(bad).__name__} is not a 'pattern:verbalizer' id or a PVP; "
                              "fix: pass a list of 'pattern:verbalizer' ids or a list of PVP objects")
        if any(isinstance(p, PVP) for p in items) and not all(isinstance(p, PVP) for p in items):
            raise ConfigError("PetClassifier(pvps=[…]): mixes PVP objects and 'pattern:verbalizer' ids; "
                              "fix: pass only ids (with task= or patterns=/verbalizers=) or only PVP objects")
        ids = [p.id if isinstance(p, PVP) else p for p in items]
        dup = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
        if dup is not None:
            raise ConfigError(f"PetClassifier(pvps=[…]): '{dup}' is listed twice; fix: list each PVP once")

    def _check_labels_param(self) -> None:
        labels = self.labels
        if labels is None:
            return
        if not isinstance(labels, (list, tuple, np.ndarray)) and not hasattr(labels, "to_numpy"):
            raise ConfigError(f"PetClassifier(labels={labels!r}): not a list of labels; fix: pass a list such as labels=['0', '1']")
        items = labels_list(labels)
        if not items:
            raise ConfigError("PetClassifier(labels=[]): no labels; fix: list the labels, or pass None to take them from the task, the verbalizer or y")
        for v in items:
            if v is None or isinstance(v, (list, tuple, dict, set)) or (isinstance(v, float) and v != v):
                raise ConfigError(f"PetClassifier(labels=[…, {v!r}, …]): {v!r} is not a label; fix: pass labels as strings or integers")
        keys = [label_key(v) for v in items]
        dup = next((k for n, k in enumerate(keys) if k in keys[:n]), None)
        if dup is not None:
            raise ConfigError(f"PetClassifier(labels={list(items)!r}): '{dup}' is listed twice (each label would get its own probability column); "
                              "fix: list each label once")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters; with ``deep``, also ``options__NAME`` for every option set."""
        params = super().get_params(deep=deep)
        if deep and isinstance(self.options, dict):
            params.update({OPTIONS_PREFIX + k: v for k, v in self.options.items()})
        return params

    def set_params(self, **params: Any) -> "PetClassifier":
        """Set constructor parameters; ``options__NAME=value`` sets one option (a new ``options``
        dict: the old one, which a clone may share, is not changed). Unknown option names fail
        at ``fit``, with the method's list of options."""
        opts = {k[len(OPTIONS_PREFIX):]: params.pop(k) for k in list(params) if k.startswith(OPTIONS_PREFIX)}
        if params:
            super().set_params(**params)
        if opts:
            self.options = {**(self.options if isinstance(self.options, dict) else {}), **opts}
        return self

    def __sklearn_tags__(self):
        """A text classifier: ``X`` is texts (strings, field dicts, a DataFrame of fields), not a
        numeric 2-D array, so scikit-learn's numeric-array checks do not apply."""
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.categorical = False
        return tags

    def _labels(self, task: TaskSpec | None, pvps: list[PVP], given: list[Any]) -> list[str]:
        """The label ids, in column order: ``labels=``, else the task's, the verbalizer's, or the
        sorted labels of ``y`` (numbers in numeric order)."""
        if self.labels is not None:
            return [label_key(v) for v in labels_list(self.labels)]
        if task is not None:
            return list(task.label_ids)
        if pvps:
            return list(pvps[0].verbalizer.label_ids)
        keys = {label_key(v) for v in given}
        return sorted(keys, key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))

    def fit(self, X, y=None, unlabelled=None) -> "PetClassifier":
        """Fit on texts/examples ``X`` (see :mod:`pet.estimator.inputs`) with labels ``y`` (or
        labelled Examples); ``unlabelled``: extra texts for methods that use them (PET/iPET
        distillation, the MLM loss)."""
        if self.model is None:
            raise ConfigError("PetClassifier: no model; fix: pass model='path/or/hub-name'")
        self._check_params()
        method = get_method(self.method)
        options = method.make_options(self.options)
        if y is not None:
            check_targets(y)
        train = as_examples(X, y)
        if any(e.label is None for e in train):
            raise DataError("fit: every example needs a label; fix: pass y, or labelled Examples")
        # the values whose type ``classes_`` takes: ``y``'s (scikit-learn: classes_ are values of y);
        # labelled Examples carry label ids (strings), so then ``labels=`` gives the type
        if y is not None:
            given = labels_list(y)
        else:
            given = (labels_list(self.labels) if self.labels is not None else []) + [e.label for e in train]
        task = self._task()
        pvps = self._pvps(task, method.needs_pvps)
        labels = self._labels(task, pvps, given)
        unknown = sorted({e.label for e in train} - set(labels))
        if unknown:
            raise DataError(f"fit: label '{unknown[0]}' is not one of the classifier's labels {labels}; fix: add it to the verbalizer or labels=")
        unl = as_examples(unlabelled) if unlabelled is not None else []
        setup = FitSetup(
            model=str(self.model), labels=labels, pvps=pvps, seed=int(self.seed),
            max_length=int(self.max_length if self.max_length is not None else (task.max_length if task is not None else DEFAULT_MAX_LENGTH)),
            device=self.device, progress=bool(self.progress), regression=task.regression if task is not None else None,
        )
        self.fitted_ = method.fit(train, unl, options, setup)
        self._set_labels(labels, given)
        if task is not None:
            self.label_names_ = [task.labels.get(lab, lab) for lab in labels]
        per_label = {lab: sum(e.label == lab for e in train) for lab in labels}
        self.train_data_ = {"examples": len(train), "per_label": per_label, "unlabelled": len(unl)}
        return self

    def _set_labels(self, labels: list[str], given: Sequence[Any]) -> None:
        self.labels_ = list(labels)
        self.classes_ = label_values(labels, given)
        #: the labels as people read them (the task's names, else the label values)
        self.label_names_ = [str(v) for v in self.classes_]

    @classmethod
    def from_fitted(cls, fitted: Fitted, device: str | None = None) -> "PetClassifier":
        """A fitted classifier around a method's :class:`Fitted` (e.g. from ``fit_evaluate``)."""
        self = cls(fitted.model, fitted.method, options=fitted.options.to_dict(), pvps=list(fitted.pvps), labels=list(fitted.labels), device=device)
        self.fitted_ = fitted
        self._set_labels(list(fitted.labels), [])
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
        long ``X`` is (see :mod:`pet.evaluation.streaming` for files). ``chunk_size`` is a
        positive integer, checked at the call (not at the first item)."""
        check_is_fitted(self, "fitted_")
        if not _is_int(chunk_size) or chunk_size < 1:
            raise ConfigError(f"predict_stream: chunk_size={chunk_size!r} is not a positive integer; "
                              "fix: pass chunk_size=1 or more (default 1024)")
        if isinstance(X, (str, bytes)):
            raise DataError(f"predict_stream: X is a single {type(X).__name__}, not an iterable of texts; fix: wrap it in a list")
        return self._stream(iter(X), int(chunk_size))

    def _stream(self, it: Iterator[Any], chunk_size: int) -> Iterator[tuple[Any, np.ndarray]]:
        import itertools

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

    def save(self, path: str | Path, overwrite: bool = False, metrics: Sequence[dict] | None = None, *, repo_id: str | None = None,
             card: dict | None = None) -> Path:
        """Write the self-contained folder ``path`` atomically (:mod:`pet.estimator.folder`);
        ``metrics`` (evaluated rows) go to ``metrics.json`` and the model card; ``repo_id`` is the
        Hub repo the card's loading snippet names (default: the folder's path); ``card`` sets the
        card's ``license``, ``language`` and ``datasets`` (see :func:`pet.estimator.modelcard.model_card`)."""
        check_is_fitted(self, "fitted_")
        return save_folder(path, self.fitted_, self.classes_, label_names=self.label_names_, model=self.model, train_data=getattr(self, "train_data_", None),
                           metrics=metrics, repo_id=repo_id, card=card, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "PetClassifier":
        """Load a folder written by :meth:`save` (checked: manifest, containment, no pickle)."""
        saved = load_folder(path, device=device)
        f, meta = saved.fitted, saved.meta
        self = cls(meta["model"], meta["method"], options=f.options.to_dict(), labels=saved.label_values, device=device)
        self.fitted_ = f
        self._set_labels(list(f.labels), saved.label_values)
        if isinstance(meta.get("label_names"), list):
            self.label_names_ = [str(n) for n in meta["label_names"]]
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
        snapshot = hub_download(src, revision, token, cache_dir, local_files_only, force_download)
        return load_snapshot(lambda folder: cls.load(folder, device=device), src + (f"@{revision}" if revision else ""), snapshot)

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


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
