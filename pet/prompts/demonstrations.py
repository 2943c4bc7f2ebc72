"""LM-BFF demonstrations (Gao et al. 2021, §6): each input gets one labelled example per label
appended after it, rendered through the same pattern with the label word in place of the mask.

    query:  [CLS] A fun ride . It was [MASK] . [SEP] Dull . It was terrible . [SEP] Great fun . It was great . [SEP]

* **Sampling** — per label, one training example of that label, never the query itself (an
  example with the same text fields is skipped); seeded per (set, query text), so a prediction
  does not depend on the batch or chunk it is scored in.
* **Similarity filtering** (``similarity``) — LM-BFF samples, per label, from the ``limit`` training
  examples most similar to the query by a sentence encoder, ``limit`` = (pool examples other than
  the query) // (labels) × ``filter_rate`` (0.5), truncated, as its ``src/dataset.py`` does: ``"mlm"`` uses the
  masked LM's own mean-pooled last hidden states (offline, the default encoder), ``"st:NAME"``
  any sentence-transformers model (needs the package), ``"none"`` samples uniformly.
* **Rendering** — :func:`demonstration_pvp` builds one PVP whose template is the query's
  template followed, per label, by ``{sep}`` (when the tokenizer has one) and the template with
  its fields renamed ``demo<j>__<field>`` and ``{mask}`` replaced by the label's first word
  (``{cls}`` and ``{segment}`` dropped from the demonstrations). :func:`with_demonstrations`
  adds those fields to each example. Encoding is then the ordinary :class:`pet.prompts.encoding.PVPEncoder`:
  truncation cuts text fields only, never a mask, a template word or a label word, by the
  pattern's rule (``lmbff``: the query's first sentence to ``first_sent_limit``, every
  demonstration sentence to ``other_sent_limit``, then the tail; else longest field first).
* **Ensembling** — at evaluation, :class:`pet.methods.predictors.DemonstrationEnsemble` averages the label
  log-probs over ``sets`` independently sampled demonstration sets (LM-BFF: 16).

Training with demonstrations (prompt-ft) follows LM-BFF's ``src/dataset.py``: a training example
gets a newly sampled set each time it is drawn (set ``"train:<d>"`` for its d-th draw, passed to
:func:`pet.training.prompt.train_prompt_model` as ``redraw``), and a dev set that picks the
checkpoint is scored with ``sets`` sets averaged, as the test set is (LM-BFF's ``num_sample``).
A query that is one of the pool's examples reuses the pool's embedding (so sampling a training
example's demonstrations during training never runs the model being trained).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np

from ..errors import ConfigError, DataError, ModelError, first_line
from ..examples import Example
from ..options import Options, option
from .spec import PVP
from .template import FieldRef, Literal, Mask, SegmentBreak, Soft, Special

DEMO_FIELD = "demo{j}__{name}"


def similarity_problem(value: str) -> tuple[str, str] | None:
    """Why ``value`` is not a demonstration similarity, and the fix (None when it is one)."""
    if value in ("none", "mlm") or (value.startswith("st:") and len(value) > 3):
        return None
    return "not a similarity", "use none, mlm, or st:MODEL (a sentence-transformers model)"


@dataclass
class DemoConfig(Options):
    """How demonstrations are sampled: an options dataclass (:mod:`pet.options`) whose fields
    the methods' ``demo_*`` options are declared from (:class:`pet.methods.zero_shot.DemoOptions`)."""

    where: ClassVar[str] = "demonstrations"

    sets: int = option(16, "demonstration sets sampled per input at evaluation, their label log-probs averaged (LM-BFF: 16)", min=1)
    similarity: str = option("none", "sample demonstrations from the most similar training examples: none, mlm (the model's mean-pooled states) or st:MODEL (sentence-transformers)",
                             check=similarity_problem)
    filter_rate: float = option(0.5, "share of a label's training examples, most similar first, that demonstrations are sampled from (LM-BFF: 0.5)",
                                min=0, max=1, min_exclusive=True)
    seed: int = option(13, "seeds the sampling (with each query's text)")


def check_similarity(value: str, where: str = "option demo_similarity") -> str:
    problem = similarity_problem(value)
    if problem:
        raise ConfigError(f"{where}: '{value}' is {problem[0]}; fix: {problem[1]}")
    return value


def _demo_parts(parts, j: int, word: str) -> list:
    """The template parts of demonstration ``j``: fields renamed ``demo<j>__<field>``, the mask
    replaced by the label ``word``, ``{cls}`` dropped, ``{segment}`` a space; adjacent text
    merged and stripped at both ends (a demonstration starts and ends at its separator)."""
    out: list = []
    for s in parts:
        if isinstance(s, FieldRef):
            s = FieldRef(DEMO_FIELD.format(j=j, name=s.name), s.filters)
        elif isinstance(s, Mask):
            s = Literal(word)
        elif isinstance(s, SegmentBreak):
            s = Literal(" ")
        elif isinstance(s, Special) and s.kind == "cls":
            continue
        if isinstance(s, Literal) and out and isinstance(out[-1], Literal):
            s = Literal(out.pop().text + s.text)
        out.append(s)
    if out and isinstance(out[0], Literal):
        out[0] = Literal(out[0].text.lstrip())
    if out and isinstance(out[-1], Literal):
        out[-1] = Literal(out[-1].text.rstrip())
    return [s for s in out if not (isinstance(s, Literal) and not s.text)]


def demonstration_pvp(pvp: PVP, labels: Sequence[str], sep: bool = True) -> PVP:
    """The PVP whose template is ``pvp``'s followed by one demonstration per label (see module
    doc); its truncation rule is ``pvp``'s (LM-BFF's limits cut demonstrations' fields as
    "other" sentences)."""
    parts = list(pvp.pattern.segments)
    if any(isinstance(s, Soft) for s in parts):
        raise ConfigError("demonstrations: soft-token patterns are not supported; fix: use a hard pattern")
    for j, lab in enumerate(labels):
        parts += [Special("sep") if sep else Literal(" "), *_demo_parts(pvp.pattern.segments, j, pvp.verbalizer.labels[lab][0])]
    return PVP(pvp.pattern.derive(pvp.pattern.id, parts, pvp.pattern.source), pvp.verbalizer)


def _text(ex: Example) -> str:
    return " ".join(str(ex.fields[k]) for k in sorted(ex.fields))


def _key(ex: Example) -> tuple:
    return tuple(sorted(ex.fields.items()))


def _stable_seed(*parts) -> int:
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little")


class DemoSampler:
    """Samples demonstration sets for queries from a labelled pool (see the module docstring)."""

    def __init__(self, pool: Sequence[Example], labels: Sequence[str], config: DemoConfig,
                 embed: Callable[[list[str]], np.ndarray] | None = None):
        self.pool = [e for e in pool if e.label is not None]
        self.labels = [str(x) for x in labels]
        self.config = config
        self.by_label = {lab: [i for i, e in enumerate(self.pool) if e.label == lab] for lab in self.labels}
        missing = [lab for lab, idx in self.by_label.items() if not idx]
        if missing:
            raise DataError(f"demonstrations: label '{missing[0]}' has no training example to demonstrate it; fix: give every label labelled examples, or turn demonstrations off")
        self.embed = embed
        self._pool_emb = None
        self._pool_rows: dict[str, int] = {}
        if config.similarity != "none":
            if embed is None:
                raise ConfigError("demonstrations: similarity filtering needs a sentence encoder; fix: pass embed=…, or demo_similarity: none")
            texts = [_text(e) for e in self.pool]
            self._pool_emb = _normalise(embed(texts))
            self._pool_rows = {t: i for i, t in enumerate(texts)}

    def _similarities(self, queries: Sequence[Example]) -> np.ndarray | None:
        """Cosine similarities ``[query, pool example]`` (None without filtering). A query that
        is a pool example's text reuses that example's embedding; only the others are embedded."""
        if self._pool_emb is None or not queries:
            return None
        texts = [_text(q) for q in queries]
        new = sorted({t for t in texts if t not in self._pool_rows})
        fresh = dict(zip(new, _normalise(self.embed(new)))) if new else {}
        q = np.stack([self._pool_emb[self._pool_rows[t]] if t in self._pool_rows else fresh[t] for t in texts])
        return q @ self._pool_emb.T

    def sample(self, queries: Sequence[Example], set_index: int | str) -> list[list[Example]]:
        """For each query, one demonstration per label (in label order) for set ``set_index``."""
        return self.sample_sets(queries, [set_index])[0]

    def sample_sets(self, queries: Sequence[Example], set_indices: Sequence[int | str]) -> list[list[list[Example]]]:
        """:meth:`sample` for each of ``set_indices`` (the queries are embedded once)."""
        sims = self._similarities(queries)
        candidates = [self._candidates(q, None if sims is None else sims[qi]) for qi, q in enumerate(queries)]
        out = []
        for s in set_indices:
            sets = []
            for q, cands in zip(queries, candidates):
                rng = np.random.default_rng(_stable_seed(self.config.seed, s, _text(q)))
                sets.append([self.pool[c[int(rng.integers(len(c)))]] for c in cands])
            out.append(sets)
        return out

    def _candidates(self, q: Example, sims: np.ndarray | None) -> list[list[int]]:
        """Per label, the pool indices a demonstration for ``q`` is drawn from: every example of
        the label but ``q`` itself, or — with filtering — the ``limit`` most similar to ``q``,
        where ``limit = int(n // n_labels * filter_rate)`` for the ``n`` pool examples other than
        ``q`` (LM-BFF's ``src/dataset.py``: ``limit_each_label``; at least 1)."""
        qk = _key(q)
        own = [[i for i in self.by_label[lab] if _key(self.pool[i]) != qk] for lab in self.labels]
        limit = max(1, int(sum(map(len, own)) // len(self.labels) * self.config.filter_rate))
        out = []
        for lab, cand in zip(self.labels, own):
            if not cand:
                raise DataError(f"demonstrations: label '{lab}' has no training example other than '{q.guid}' itself; "
                                "fix: give every label at least 2 labelled examples, or turn demonstrations off")
            if sims is not None:
                cand = sorted(cand, key=lambda i: (-sims[i], i))[:limit]
            out.append(cand)
        return out


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def with_demonstrations(queries: Sequence[Example], demos: Sequence[Sequence[Example]]) -> list[Example]:
    """Each query with its demonstrations' fields added as ``demo<j>__<field>``."""
    out = []
    for q, ds in zip(queries, demos):
        fields = dict(q.fields)
        for j, d in enumerate(ds):
            for name, value in d.fields.items():
                fields[DEMO_FIELD.format(j=j, name=name)] = value
        out.append(Example(fields, q.label, q.guid, q.meta))
    return out


def mlm_embedder(model, batch_size: int = 32, max_length: int = 128) -> Callable[[list[str]], np.ndarray]:
    """Sentence embeddings from a :class:`pet.models.prompt_model.PromptModel`'s own encoder: mean of the last
    hidden states over the text's tokens (the offline default of similarity filtering)."""
    import torch

    def embed(texts: list[str]) -> np.ndarray:
        tok = model.tokenizer
        outs = []
        was = model.training
        model.eval()
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                b = tok(texts[s : s + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
                b = {k: v.to(model.device) for k, v in b.items() if k in ("input_ids", "attention_mask")}
                h = model.mlm.base_model(**b).last_hidden_state.float()
                m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
                outs.append(((h * m).sum(1) / m.sum(1).clamp(min=1)).cpu().numpy())
        model.train(was)
        return np.concatenate(outs) if outs else np.zeros((0, 1))

    return embed


class SentenceEmbedder:
    """Embeddings from a sentence-transformers model (``st:NAME`` similarity). A classifier
    saves it in its own folder (:meth:`save`) and loads it from there (:meth:`load`), so a saved
    classifier never reads a model from outside its folder."""

    def __init__(self, name: str, model) -> None:
        self.name = name
        self.model = model

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False))

    def save(self, path) -> None:
        self.model.save(str(path))

    @classmethod
    def load(cls, name: str, path, device=None) -> "SentenceEmbedder":
        """The encoder saved at ``path`` (inside a classifier's folder): local files only, no
        remote code. (Its loader checks the folder's module classes first:
        :func:`pet.models.hf.check_sentence_transformers_folder`.)"""
        return cls(name, _sentence_transformer(str(path), device, local_files_only=True))


def _sentence_transformer(name: str, device=None, **kw):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(f"demo_similarity 'st:{name}' needs the sentence-transformers package; fix: pip install sentence-transformers, or use demo_similarity: mlm") from None
    try:
        return SentenceTransformer(name, device=str(device) if device is not None else None, trust_remote_code=False, **kw)
    except Exception as e:  # noqa: BLE001 - a model that cannot be loaded: one line
        raise ModelError(f"cannot load sentence-transformers model '{name}': {first_line(e)}; fix: pass a local folder or a hub name when online") from None


def sentence_transformer_embedder(name: str, device=None) -> SentenceEmbedder:
    """Embeddings from a sentence-transformers model (``st:NAME`` similarity)."""
    return SentenceEmbedder(name, _sentence_transformer(name, device))


def make_embedder(similarity: str, model, device=None) -> Callable[[list[str]], np.ndarray] | None:
    check_similarity(similarity)
    if similarity == "none":
        return None
    if similarity == "mlm":
        return mlm_embedder(model)
    return sentence_transformer_embedder(similarity[3:], device)
