"""SetFit (Tunstall et al. 2022) as a registered method, built on the ``setfit`` library.

SetFit fine-tunes a sentence-transformers body contrastively on pairs of the labelled examples
(same label = positive pair, CosineSimilarityLoss), then fits a classification head on the
tuned embeddings. It needs no PVPs and no masked-LM head: it is the baseline users pick instead
of prompting. Every step is the library's own (``setfit.Trainer``: pair sampling, loss,
head); this module maps pet's options, examples and saved folder onto it.

``--model`` is any sentence-transformers folder or hub id (a plain transformers encoder gets
mean pooling from sentence-transformers). Inputs are ``text_a``, or ``text_a <sep> text_b`` for
pair tasks (``<sep>``: the body tokenizer's separator token). Regression tasks are refused.

The optional extra: ``pip install "pet-fewshot[setfit]"``.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataError, ModelError, first_line
from ..examples import Example
from ..models.hf import check_max_length, check_sentence_transformers_folder, quiet_hf
from ..models.prompt_model import resolve_device
from ..options import Options, option
from ..training.loop import seed_everything
from ..utils.paths import resolve_inside
from .base import FitSetup, Fitted, Stage, register_method
from .predictors import SPEC_FILE, register_predictor

INSTALL_HINT = 'fix: pip install "pet-fewshot[setfit]"'
#: setfit's predict_proba batch size (``SetFitModel.predict_proba(batch_size=32)``)
SETFIT_EVAL_BATCH_SIZE = 32
HEADS = ("logistic", "differentiable")
#: where the predictor puts setfit's own saved model, inside pet's saved folder
SETFIT_DIR = "setfit"
HEAD_FILE = "model_head.safetensors"  # replaces setfit's model_head.pkl: pet never unpickles


@dataclass
class SetFitOptions(Options):
    """What users tune; every default is ``setfit.TrainingArguments``' in setfit 1.2.0."""

    where: ClassVar[str] = "setfit options"

    batch_size: int = option(16, "sentence pairs per batch in the contrastive phase (setfit: batch_size[0] = 16)", min=1)
    epochs: int = option(1, "passes over the sampled pairs in the contrastive phase (setfit: num_epochs[0] = 1)", min=1)
    sampling_strategy: str = option(
        "oversampling", "how pairs are drawn: oversampling (balanced positives/negatives until every pair is drawn once), "
        "undersampling, unique (every pair once) (setfit: oversampling)", choices=("oversampling", "undersampling", "unique"))
    num_iterations: int | None = option(None, "pairs drawn per labelled example and round; overrides sampling_strategy (setfit: null; the SetFit paper: 20)", min=1)
    max_steps: int | None = option(None, "cap on contrastive steps, i.e. at most max_steps x batch_size pairs (setfit: -1 = no cap)", min=1)
    body_learning_rate: float = option(2e-5, "learning rate of the body in the contrastive phase (setfit: body_learning_rate[0] = 2e-5)", min=0, min_exclusive=True)
    warmup_proportion: float = option(0.1, "share of contrastive steps with linear warm-up (setfit: 0.1)", min=0, max=1, max_exclusive=True)
    head: str = option("logistic", "classification head: logistic (scikit-learn LogisticRegression) or differentiable (a torch linear layer) (setfit: logistic)", choices=HEADS)
    head_learning_rate: float = option(1e-2, "learning rate of the differentiable head (setfit: 1e-2)", min=0, min_exclusive=True)
    head_batch_size: int = option(2, "examples per batch when training the differentiable head (setfit: batch_size[1] = 2)", min=1)
    head_epochs: int = option(16, "epochs of the differentiable head (setfit: num_epochs[1] = 16)", min=1)
    end_to_end: bool = option(False, "train the body too while training the differentiable head (setfit: false)")
    end_to_end_learning_rate: float = option(1e-5, "body learning rate when end_to_end (setfit: body_learning_rate[1] = 1e-5)", min=0, min_exclusive=True)
    l2_weight: float = option(0.01, "weight decay of the differentiable head (setfit: 0.01)", min=0)
    max_length: int | None = option(None, "longest input in tokens (null: the body's own max_seq_length, as setfit does)", min=8)
    normalize_embeddings: bool = option(False, "L2-normalise the body's sentence embeddings before the head (setfit: false; a body whose own "
                                        "pipeline ends in Normalize, as all-MiniLM-L6-v2's does, is normalised either way; a plain "
                                        "transformers encoder as body is not)")
    seed: int | None = option(None, "training seed: pair sampling, initialisation, data order (null: the run's seed)")
    eval_batch_size: int = option(SETFIT_EVAL_BATCH_SIZE, "texts per forward pass when predicting (setfit: 32)", min=1)


def _require_setfit():
    try:
        import setfit
    except ImportError:
        raise ConfigError(f"method setfit needs the `setfit` package; {INSTALL_HINT}") from None
    return setfit


@contextmanager
def _quiet() -> Iterator[None]:
    """No info logs or progress bars from setfit / sentence-transformers / transformers."""
    loggers = [logging.getLogger(n) for n in ("setfit", "sentence_transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with quiet_hf(), _no_datasets_bars(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pin_memory.*")  # the library's CPU data loader
            warnings.filterwarnings("ignore", message=".*get_sentence_embedding_dimension.*", category=FutureWarning)  # setfit 1.2 on sentence-transformers 6
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextmanager
def _no_datasets_bars() -> Iterator[None]:
    """No "Map: 100%" bars while setfit prepares its datasets."""
    try:
        import datasets
    except ImportError:
        yield
        return
    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


def example_texts(examples: Sequence[Example], separator: str) -> list[str]:
    """The text SetFit embeds per example: ``text_a``, or ``text_a <separator> text_b``."""
    out = []
    for e in examples:
        a = e.fields.get("text_a")
        if a is None:
            raise DataError(f"example '{e.guid}': no text_a field (fields: {', '.join(e.fields)}); fix: map the text column to text_a")
        b = e.fields.get("text_b")
        out.append(a if b is None else " ".join(s for s in (a, separator, b) if s))
    return out


class SetFitPredictor:
    """A fitted ``setfit.SetFitModel`` as a predictor: label log-probs ``[N, L]`` in ``labels``
    order. The model is trained on label indices, so a head column is a label index; a label
    absent from training gets probability 0 (log clipped to ``log(1e-12)``)."""

    kind: ClassVar[str] = "setfit"

    def __init__(self, model: Any, labels: Sequence[str], separator: str = "", batch_size: int = SETFIT_EVAL_BATCH_SIZE):
        self.model = model
        self.labels = [str(x) for x in labels]
        self.separator = separator
        self.batch_size = int(batch_size)

    def _columns(self) -> np.ndarray:
        classes = getattr(self.model.model_head, "classes_", None)
        return np.arange(len(self.labels)) if classes is None else np.asarray(classes, dtype=np.int64)

    def predict_log_proba(self, examples: Sequence[Example], progress: bool = False, cache: dict | None = None) -> np.ndarray:
        texts = example_texts(examples, self.separator)
        if not texts:
            return np.zeros((0, len(self.labels)))
        with _quiet():
            proba = np.asarray(self.model.predict_proba(texts, batch_size=self.batch_size, as_numpy=True, show_progress_bar=progress), dtype=np.float64)
        full = np.zeros((len(texts), len(self.labels)))
        full[:, self._columns()] = proba
        return np.log(np.clip(full, 1e-12, 1.0))

    def to(self, device) -> SetFitPredictor:
        self.model.to(device)
        return self

    # ------------------------------------------------------------------ saving

    def save(self, folder: Path) -> dict[str, Any]:
        """setfit's ``save_pretrained`` into ``folder/setfit``, its pickled head replaced by
        safetensors (pet loads no pickle) and its model card dropped (the folder's README.md is
        pet's card, and setfit's names local paths). Returns the JSON spec."""
        from safetensors.numpy import save_file

        d = Path(folder) / SETFIT_DIR
        with _quiet():
            self.model.save_pretrained(str(d))
        (d / "model_head.pkl").unlink()
        (d / "README.md").unlink(missing_ok=True)
        head = self.model.model_head
        if self.model.has_differentiable_head:
            tensors = {k: v.detach().cpu().numpy() for k, v in head.state_dict().items()}
            head_spec = {"type": "differentiable", "config": {k: getattr(head, k) for k in ("in_features", "out_features", "temperature", "bias", "multitarget")}}
        else:
            tensors = {"coef": head.coef_, "intercept": head.intercept_, "classes": np.asarray(head.classes_, dtype=np.int64)}
            head_spec = {"type": "logistic", "params": _json_params(head.get_params())}
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(d / HEAD_FILE))
        return {"kind": self.kind, "path": SETFIT_DIR, "head": head_spec, "separator": self.separator,
                "batch_size": self.batch_size, "labels": list(self.labels)}

    @classmethod
    def load(cls, spec: dict, folder: Path, device=None) -> SetFitPredictor:
        """The predictor saved in ``folder`` (its ``path`` resolved inside the folder;
        sentence-transformers modules other than the library's own are refused)."""
        where = f"{Path(folder) / SPEC_FILE}: $.predictor"
        d = resolve_inside(folder, spec.get("path", SETFIT_DIR), f"{where}.path")
        head = spec.get("head") if isinstance(spec.get("head"), dict) else {}
        if head.get("type") not in HEADS or not isinstance(spec.get("labels"), list):
            raise ModelError(f"{where}: needs 'labels' and head.type ({' or '.join(HEADS)}); fix: re-save the classifier")
        check_sentence_transformers_folder(d)
        sf = _require_setfit()
        with _quiet():
            model = sf.SetFitModel.from_pretrained(str(d), local_files_only=True, device=device,
                                                   use_differentiable_head=head["type"] == "differentiable",
                                                   head_params=dict(head.get("config") or {}) if head["type"] == "differentiable" else {})
        _load_head(model, head, d / HEAD_FILE, where)
        return cls(model, spec["labels"], str(spec.get("separator") or ""), int(spec.get("batch_size") or SETFIT_EVAL_BATCH_SIZE))


def _json_params(params: dict) -> dict:
    """The JSON-able part of a scikit-learn estimator's ``get_params()``."""
    return {k: v for k, v in params.items() if v is None or isinstance(v, (bool, int, float, str))}


def _load_head(model: Any, head: dict, path: Path, where: str) -> None:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise ModelError(f"{where}: {path.name} missing; fix: re-save the classifier")
    tensors = load_file(str(path))
    if head["type"] == "differentiable":
        import torch

        state = {k: torch.from_numpy(v) for k, v in tensors.items()}
        missing, unexpected = model.model_head.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(f"{where}: {path.name} does not fit the head (missing {missing}, unexpected {unexpected}); fix: re-save the classifier")
        model.model_head.eval()
        return
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(**head.get("params", {}))
    clf.coef_, clf.intercept_, clf.classes_ = tensors["coef"], tensors["intercept"], tensors["classes"]
    clf.n_features_in_ = clf.coef_.shape[1]
    model.model_head = clf


def _training_args(sf, options: SetFitOptions, seed: int, output_dir: str, progress: bool):
    return sf.TrainingArguments(
        output_dir=output_dir, save_strategy="no", report_to="none", logging_strategy="no", logging_first_step=False, show_progress_bar=progress,
        batch_size=(options.batch_size, options.head_batch_size), num_epochs=(options.epochs, options.head_epochs),
        max_steps=options.max_steps or -1, sampling_strategy=options.sampling_strategy, num_iterations=options.num_iterations,
        body_learning_rate=(options.body_learning_rate, options.end_to_end_learning_rate), head_learning_rate=options.head_learning_rate,
        end_to_end=options.end_to_end, warmup_proportion=options.warmup_proportion, l2_weight=options.l2_weight,
        max_length=options.max_length, seed=seed,
    )


def _body(sf, setup: FitSetup, options: SetFitOptions):
    differentiable = options.head == "differentiable"
    device = str(resolve_device(setup.device)) if setup.device is not None else None  # checked before loading
    try:
        with _quiet():
            model = sf.SetFitModel.from_pretrained(setup.model, device=device, use_differentiable_head=differentiable,
                                                   head_params={"out_features": len(setup.labels)} if differentiable else {},
                                                   normalize_embeddings=options.normalize_embeddings)
    except (OSError, ValueError) as e:
        raise ModelError(f"--model {setup.model}: not a loadable sentence-transformers body ({first_line(e)}); "
                         "fix: pass a sentence-transformers folder or hub id, e.g. sentence-transformers/all-MiniLM-L6-v2") from None
    if options.max_length is not None:
        check_max_length(model.model_body, options.max_length, setup.model)
        model.model_body.max_seq_length = options.max_length
    return model


def fit_setfit(train: list[Example], unlabelled: list[Example], options: SetFitOptions, setup: FitSetup) -> Fitted:
    """SetFit: contrastive fine-tuning of a sentence-transformers body, then a classification head."""
    if setup.regression:
        raise ConfigError("setfit: regression tasks are not supported (SetFit classifies); fix: pick a classification task or another method")
    sf = _require_setfit()
    from datasets import Dataset  # dependencies of setfit
    from transformers.trainer_callback import PrinterCallback

    seed = setup.seed if options.seed is None else options.seed
    seed_everything(seed)  # the differentiable head is initialised before setfit seeds its trainer
    model = _body(sf, setup, options)
    separator = model.model_body.tokenizer.sep_token or ""
    data = Dataset.from_dict({"text": example_texts(train, separator), "label": [setup.labels.index(e.label) for e in train]})
    with tempfile.TemporaryDirectory(prefix="pet-setfit-") as tmp, _quiet():
        trainer = sf.Trainer(model=model, args=_training_args(sf, options, seed, tmp, setup.progress), train_dataset=data)
        trainer.st_trainer.remove_callback(PrinterCallback)  # it prints the loss dicts to stdout, where pet prints its table
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    predictor = SetFitPredictor(model, setup.labels, separator, options.eval_batch_size)
    params = sum(p.numel() for p in model.model_body.parameters()) + _head_parameters(model)
    extra = {"steps": int(trainer.st_trainer.state.global_step), "head": options.head}
    stage = Stage("final", predictor, train_seconds=seconds, trained_parameters=int(params), extra=extra)
    return Fitted("setfit", list(setup.labels), options, [stage], "final", pvps=[], model=setup.model)


def _head_parameters(model: Any) -> int:
    head = model.model_head
    if model.has_differentiable_head:
        return int(sum(p.numel() for p in head.parameters()))
    return int(np.size(head.coef_) + np.size(head.intercept_))


register_method(
    "setfit", "baseline", SetFitOptions, fit_setfit, needs_pvps=False, needs_unlabelled=lambda o: False, baseline=True,
    description="SetFit: contrastive sentence-transformers fine-tuning + classification head (setfit library)",
)
register_predictor(SetFitPredictor.kind, SetFitPredictor)
