"""The model card (``README.md``) of a saved classifier, the way the Hugging Face Hub shows one.

``model_card(meta, pvps, metrics, repo_id, folder, card)`` → Markdown with YAML front matter
built by ``huggingface_hub.ModelCardData`` (the Hub's own schema)::

    ---
    license / language / datasets   # what the user passes as card={...}
    library_name: pet-fewshot
    pipeline_tag: text-classification
    tags: [pet, few-shot, pattern-verbalizer-pairs, <method>, text-classification]
    base_model: <hub id>          # only when the base model is a hub id, not a local folder
    metrics: [accuracy, ...]      # the metrics metrics.json reports
    model-index: [...]            # the final stage's results (EvalResult), when metrics were given
    labels: [...]                 # the label names (the task's, else the label values), column order
    task: <task>                  # when metrics.json names one (pet train)
    ---

then the method, the PVPs (templates and label words), the training options and runs, the
training data summary, the evaluated metrics (from ``metrics.json`` when the caller gave any),
how to load it, and the versions that wrote it. ``meta`` is the ``pet_config.json`` dict;
everything comes from what the folder itself holds, so a card never says more than the folder.

The card is written inside the atomic save but is outside ``manifest.json``: nothing loads it,
and the Hub's "edit model card", a bot's PR adding ``license:`` or a ``git clone`` may change it
without making the folder unloadable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import ConfigError
from ..prompts.spec import PVP

LIBRARY_NAME = "pet-fewshot"
CARD_FILE = "README.md"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


def hub_model_id(model: Any) -> str | None:
    """``model`` when it reads as a Hub model id (``bert-base-uncased``, ``org/name``) and is
    not an existing local path, else None (a local folder is no ``base_model`` for the Hub)."""
    s = str(model or "")
    if not _HUB_ID.match(s) or s.endswith((".", "-")) or ".." in s or Path(s).exists():
        return None
    return s


def _cell(v: Any) -> str:
    """A value for a Markdown table cell: one line, pipes escaped."""
    s = v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True, width=10**6).strip() if isinstance(v, (list, dict)) else str(v)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(s: str) -> str:
    """An inline code span that survives backticks inside ``s``."""
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{ticks}{pad}{s}{pad}{ticks}"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4f}"
    return "" if x is None else str(x)


#: what ``card=`` may set, and the type each takes
CARD_FIELDS = {"license": str, "language": (str, list), "datasets": (str, list)}


def _check_card(card: dict | None) -> dict:
    card = dict(card or {})
    for k, v in card.items():
        if k not in CARD_FIELDS:
            raise ConfigError(f"card: unknown field '{k}'; fix: use {', '.join(CARD_FIELDS)}")
        if v is not None and not isinstance(v, CARD_FIELDS[k]):
            raise ConfigError(f"card.{k}: {v!r} is a {type(v).__name__}; fix: pass a string" + (" or a list of strings" if k != "license" else ""))
    return card


def label_names(meta: dict) -> list[str]:
    """The labels as people read them: ``meta['label_names']`` (the task's), else the label values."""
    names = meta.get("label_names")
    if isinstance(names, list) and len(names) == len(meta.get("labels") or []):
        return [str(n) for n in names]
    return [str(v) for v in (meta.get("label_values") or meta.get("labels") or [])]


def _eval_results(metrics: Sequence[dict] | None, name: str) -> list:
    from huggingface_hub import EvalResult

    final = next((r for r in metrics or [] if r.get("final")), None)
    if not final:
        return []
    task = str(final.get("task") or "custom")
    return [EvalResult(task_type="text-classification", dataset_type=task, dataset_name=task, dataset_split=str(final.get("split") or "test"),
                       metric_type=str(k), metric_value=float(v)) for k, v in (final.get("metrics") or {}).items() if isinstance(v, (int, float))]


def _front_matter(meta: dict, metrics: Sequence[dict] | None, card: dict, name: str) -> str:
    from huggingface_hub import ModelCardData

    method = str(meta.get("method", ""))
    results = _eval_results(metrics, name)
    task = next((r.get("task") for r in metrics or [] if r.get("task")), None)
    data = ModelCardData(
        license=card.get("license"), language=card.get("language"), datasets=card.get("datasets"),
        library_name=LIBRARY_NAME, pipeline_tag="text-classification", base_model=hub_model_id(meta.get("model")),
        tags=["pet", "few-shot", "pattern-verbalizer-pairs", method, "text-classification"],
        metrics=sorted({r.metric_type for r in results}) or None, model_name=name if results else None, eval_results=results or None,
        labels=label_names(meta), task=str(task) if task else None,
    )
    return data.to_yaml()


#: what a card says when a sequence classifier was trained on LM-BFF's one-separator pair input
SINGLE_SEP_NOTE = (
    "**Text pairs: use `pet` to predict, not transformers' `pipeline`.** This classifier was trained on "
    "LM-BFF's fine-tuning input `[CLS] a [SEP] b [SEP]` with one separator (`<s> a </s> b </s>`; option "
    "`pair_format: single_sep`). `pipeline(...)` and `tokenizer(a, b)` build the tokenizer's own pair input "
    "instead (`<s> a </s></s> b </s>` for RoBERTa), which this model was not trained on; `pet` encodes as in "
    "training. Single texts are encoded alike either way."
)


def _pvp_section(meta: dict, pvps: Sequence[PVP]) -> list[str]:
    out = ["## Patterns and verbalizers (PVPs)", ""]
    if not pvps:
        out += ["This classifier uses no pattern-verbalizer pairs: it is a sequence classifier "
                "(a `[CLS]` head on the encoder).", ""]
        if (meta.get("options") or {}).get("pair_format") == "single_sep":
            out += [SINGLE_SEP_NOTE, ""]
        return out
    labels = [str(x) for x in meta.get("labels") or []]
    values = [str(v) for v in meta.get("label_values") or labels]
    shown = dict(zip(labels, values))
    if (meta.get("predictor") or {}).get("kind") == "sequence-classifier" and meta.get("method") in ("pet", "ipet"):
        out += ["The PVPs below trained the teacher ensemble; the saved (final) model is the distilled classifier.", ""]
    out += [f"{len(pvps)} PVP{'s' if len(pvps) != 1 else ''}; a label's score is the mean probability of its words at the mask.", ""]
    for p in pvps:
        out.append(f"### `{p.id}`")
        out.append("")
        out.append(f"- template: {_code(p.pattern.template)}")
        if p.pattern.source:
            out.append(f"- source: {_cell(p.pattern.source)}")
        out.append("")
        out.append("| label | label words |")
        out.append("| --- | --- |")
        for lab, words in p.verbalizer.labels.items():
            name = lab if shown.get(lab, lab) == lab else f"{lab} ({shown[lab]})"
            out.append(f"| {_cell(name)} | {', '.join(_code(w) for w in words)} |")
        out.append("")
    return out


def _training_section(meta: dict, metrics: Sequence[dict] | None) -> list[str]:
    out = ["## Training", ""]
    data = meta.get("train_data") or {}
    info = next((r for r in metrics or [] if any(k in r for k in ("task", "n_train"))), {})
    facts = []
    if info.get("task"):
        facts.append(f"task `{info['task']}`")
    if info.get("k") is not None:
        facts.append(f"{info['k']} examples per label")
    if info.get("seed") is not None:
        facts.append(f"split seed {info['seed']}")
    n_train = data.get("examples", info.get("n_train"))
    if n_train is not None:
        facts.append(f"{n_train} labelled training examples")
    if data.get("per_label"):
        facts.append("per label: " + ", ".join(f"{_cell(k)}: {v}" for k, v in data["per_label"].items()))
    n_unl = data.get("unlabelled", info.get("n_unlabelled"))
    if n_unl:
        facts.append(f"{n_unl} unlabelled texts")
    if isinstance(info.get("columns"), dict):
        facts.append("columns " + ", ".join(f"`{{{_cell(k)}}}` ← `{_cell(v)}`" for k, v in info["columns"].items()))
    out.append("Data: " + ("; ".join(facts) + "." if facts else "not recorded (saved without a training data summary)."))
    out.append("")
    options = meta.get("options") or {}
    if options:
        out += ["Options (the method's options dataclass, as saved in `pet_config.json`):", "", "| option | value |", "| --- | --- |"]
        out += [f"| `{k}` | {_cell(v)} |" for k, v in options.items()]
        out.append("")
    runs = meta.get("training") or {}
    if runs:
        out += ["| trained model | steps | final loss | seconds | trained parameters |", "| --- | ---: | ---: | ---: | ---: |"]
        for run, r in runs.items():
            out.append(f"| {_cell(run)} | {_fmt(r.get('steps'))} | {_fmt(r.get('final_loss'))} | "
                       f"{format(r['train_seconds'], '.1f') if isinstance(r.get('train_seconds'), (int, float)) else _fmt(r.get('train_seconds'))} | "
                       f"{_fmt(r.get('trained_parameters'))} |")
        out.append("")
    elif str(meta.get("method")) == "zero-shot":
        out += ["Zero-shot: no weights were trained.", ""]
    return out


def _metrics_section(metrics: Sequence[dict] | None) -> list[str]:
    out = ["## Evaluation", ""]
    if not metrics:
        return out + ["No evaluation was saved with this classifier (`metrics.json` absent).", ""]
    names: list[str] = []
    for r in metrics:
        for k in (r.get("metrics") or {}):
            if k not in names:
                names.append(k)
    out += ["From `metrics.json` (every evaluated stage; **final** is the stage this classifier predicts with):", ""]
    out.append("| stage | split | n | " + " | ".join(names or ["score"]) + " |")
    out.append("| --- | --- | ---: | " + " | ".join("---:" for _ in names or ["score"]) + " |")
    for r in metrics:
        stage = str(r.get("key") or r.get("stage") or "")
        if r.get("final"):
            stage = f"**{stage}** (final)"
        vals = [_fmt((r.get("metrics") or {}).get(n)) for n in names] if names else [_fmt(r.get("score"))]
        out.append(f"| {_cell(stage)} | {_cell(r.get('split', ''))} | {_fmt(r.get('n'))} | " + " | ".join(vals) + " |")
    out.append("")
    return out


def model_card(meta: dict, pvps: Sequence[PVP], metrics: Sequence[dict] | None = None, repo_id: str | None = None,
               folder: str | Path | None = None, card: dict | None = None) -> str:
    """The README.md of a saved classifier (see the module doc). The usage snippet loads
    ``repo_id`` when given, else ``folder`` (the path it was saved to)."""
    card = _check_card(card)
    method = str(meta.get("method", ""))
    base = str(meta.get("model") or "")
    hub_base = hub_model_id(base)
    base_text = f"[`{hub_base}`](https://huggingface.co/{hub_base})" if hub_base else f"a local model folder (`{Path(base).name or base}`)"
    versions = meta.get("versions") or {}
    pet_version = versions.get("pet", "")
    labels = [str(x) for x in meta.get("labels") or []]
    values = [str(v) for v in meta.get("label_values") or labels]
    where = repo_id or (Path(folder).as_posix() if folder is not None else "path/to/this/folder")
    name = repo_id.rsplit("/", 1)[-1] if repo_id else (Path(folder).name if folder is not None else f"pet-{method}")
    lines = [
        "---",
        _front_matter(meta, metrics, card, name).rstrip(),
        "---",
        "",
        f"# {method} few-shot classifier on {Path(base).name or base}",
        "",
        f"A few-shot text classifier trained with `pet` ({LIBRARY_NAME}: Pattern-Verbalizer Pairs on masked "
        f"language models), method `{method}`, on {base_text}. Saved by pet {pet_version} "
        f"(saved-folder format_version {meta.get('format_version')}).",
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
        f"| method | `{method}` |",
        f"| base model | {base_text} |",
        f"| final stage | `{_cell(meta.get('final_stage', ''))}` |",
        f"| predictor | `{_cell((meta.get('predictor') or {}).get('kind', ''))}` |",
        f"| labels (column order of `predict_proba`) | {', '.join(_code(v) for v in values)} |",
        f"| label names | {', '.join(_cell(n) for n in label_names(meta))} |",
        "",
    ]
    lines += _pvp_section(meta, pvps)
    lines += _training_section(meta, metrics)
    lines += _metrics_section(metrics)
    lines += [
        "## How to use",
        "",
        "```bash",
        f"pip install {LIBRARY_NAME}",
        "```",
        "",
        "```python",
        "from pet.estimator.classifier import PetClassifier",
        "",
        f"clf = PetClassifier.from_pretrained({json.dumps(where)})   # a Hub repo id or a local folder",
        "clf.predict([\"an example text\"])                 # labels",
        "clf.predict_proba([\"an example text\"])           # [N, L], columns = clf.classes_",
        "```",
        "",
        "A local copy of the folder also works with the command line: "
        "`pet predict FOLDER --input texts.csv --output preds.jsonl` (it reads the columns it was trained on when "
        "`metrics.json` records them, else `text`; `--text-field` names others).",
        "",
        "Loading checks the folder: `manifest.json` holds the SHA-256 of every file that loading reads, and a "
        "changed, added or missing one is refused; weights are safetensors only (no pickle). This card is not "
        "checked: edit it freely.",
        "",
        "## Versions",
        "",
        ", ".join(f"{k} {v}" for k, v in versions.items()) + (f"; saved {meta['saved_at']}" if meta.get("saved_at") else "") + ".",
        "",
    ]
    return "\n".join(lines)


def read_front_matter(text: str) -> dict:
    """The YAML front matter of a card (``{}`` when there is none)."""
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    return (yaml.safe_load(m.group(1)) or {}) if m else {}
