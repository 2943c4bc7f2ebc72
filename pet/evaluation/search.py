"""Automatic label-word search: a verbalizer file for a pattern, found from the labelled split.

    result = search_verbalizer(model, pattern, train, labels, dev=dev, method="lmbff")
    result.save("my_verbalizers.json", task="sst2")     # `pet validate` accepts it; use it as --verbalizers

Two criteria over the masked LM's log-probabilities at the pattern's mask on the training examples:

* ``lmbff`` (Gao et al. 2021, automatic label selection): per label, the top-``candidates`` words by
  the summed log-probability over that label's training examples; assignments (one word per label)
  grown label by label in a beam of ``beam`` by zero-shot accuracy on the training examples; the
  ``rerank`` best re-ranked by zero-shot accuracy on the split's dev examples, or — with no dev
  data — by ``folds``-fold cross-validation over the training examples (:func:`pet.evaluation.selection.folds`):
  on each fold the candidates are found on the other folds, and an assignment scores its accuracy
  on the held-out fold when all its words were found there, else 0. (LM-BFF fine-tunes each
  assignment before re-ranking; here re-ranking is zero-shot, which costs one scoring pass.)
* ``petal`` (Schick et al. 2020, PETAL): the same candidates, then per label the words with the
  best (normalised) log-likelihood ratio between the label's examples and the others.

Candidates are the vocabulary's single-token words (a word-initial token of at least two letters
that tokenises back to itself in the cloze) plus ``extra_words``; an extra word that the tokenizer
splits is scored with as many masks as it needs (mean sub-token log-prob, the scoring rule of
:mod:`pet.models.prompt_model`). Only ``train`` and ``dev`` are read: :func:`search_for_task` loads the few-shot
split and never the test file. The result records every word's score and the procedure in the
verbalizer's ``source`` field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..utils.defaults import DEFAULT_MAX_LENGTH
from ..prompts.encoding import iter_batches, word_token_ids
from ..errors import ConfigError, DataError, SpecError
from ..examples import Example
from ..prompts.spec import PVP, Literal, Mask, Pattern, Verbalizer, save_verbalizers

METHODS = ("lmbff", "petal")


@dataclass
class SearchResult:
    """A searched verbalizer, each word's score, and how it was found."""

    verbalizer: Verbalizer
    scores: dict[str, dict[str, float]]  # label -> word -> criterion score
    procedure: dict
    ranking: list[dict] = field(default_factory=list)  # re-ranked assignments, best first
    #: what the user should know about the result (``pet search-verbalizer`` prints each as
    #: ``note: …``), e.g. a label that got fewer words than asked for
    notes: list[str] = field(default_factory=list)

    def save(self, path: str | Path, task: str | None = None) -> Path:
        save_verbalizers(path, [self.verbalizer], task=task)
        return Path(path)

    def to_dict(self) -> dict:
        return {"verbalizer": self.verbalizer.to_dict(), "scores": self.scores, "procedure": self.procedure, "ranking": self.ranking}


def _glued(pattern: Pattern) -> bool:
    segs = pattern.segments
    i = next(k for k, s in enumerate(segs) if isinstance(s, Mask))
    prev = segs[i - 1] if i else None
    return bool(isinstance(prev, Literal) and prev.text and not prev.text[-1].isspace())


def vocabulary_words(tokenizer, after_space: bool = True) -> tuple[list[str], list[int]]:
    """Single-token candidate words: word-initial vocabulary tokens of 2+ letters that
    tokenise back to exactly that token in the cloze."""
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    marked = any(t.startswith(("Ġ", "▁")) for t in list(vocab)[:5000])
    words, ids = [], []
    for tok, i in vocab.items():
        if i in special:
            continue
        if marked:
            if not tok.startswith(("Ġ", "▁")):
                continue
            w = tok[1:]
        else:
            if tok.startswith("##"):
                continue
            w = tok
        if len(w) >= 2 and w.isalpha():
            words.append(w)
            ids.append(i)
    got = [word_token_ids(tokenizer, w, after_space) for w in words]
    keep = [k for k, g in enumerate(got) if g == [ids[k]]]
    order = sorted(keep, key=lambda k: ids[k])
    return [words[k] for k in order], [ids[k] for k in order]


@torch.inference_mode()
def candidate_log_probs(model, pattern: Pattern, examples: Sequence[Example], extra_words: Sequence[str] = (),
                        max_length: int = DEFAULT_MAX_LENGTH, batch_size: int = 32, max_vocab: int | None = None) -> tuple[list[str], np.ndarray]:
    """(words, ``[N, W]`` log-probs of each candidate word at the mask for each example)."""
    tok = model.tokenizer
    after_space = not _glued(pattern)
    words, ids = vocabulary_words(tok, after_space)
    if max_vocab is not None:
        words, ids = words[:max_vocab], ids[:max_vocab]
    known = set(words)
    by_len: dict[int, list[tuple[str, list[int]]]] = {}
    for w in extra_words:
        w = w.strip()
        if not w or w in known:
            continue
        t = word_token_ids(tok, w, after_space)
        if not t or (tok.unk_token_id is not None and tok.unk_token_id in t):
            raise SpecError(f"candidate word '{w}' tokenises to the unknown token; fix: drop it or choose a word in the model's vocabulary")
        if len(t) == 1:
            words.append(w)
            ids.append(t[0])
        else:
            by_len.setdefault(len(t), []).append((w, t))
        known.add(w)
    plain = [Example(dict(e.fields), None, e.guid) for e in examples]
    model.eval()
    pad = tok.pad_token_id or 0

    def run(word: str, n: int):
        pvp = PVP(pattern, Verbalizer("_search", {"_": [word]}))
        enc = model.encoder_for(pvp, max_length, ["_"])
        if enc.verbalizer_tokens.n_masks != n:
            raise SpecError(f"candidate '{word}': expected {n} mask(s)")
        out = []
        for idx, batch in iter_batches(enc.encode(plain), batch_size, pad, sort_by_length=False):
            out.append(torch.log_softmax(model.mask_logits(batch, n).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, n, len(tok))

    single = run(words[0], 1)[:, 0, :]  # [N, V]
    cols = [single[:, torch.tensor(ids)].numpy()]
    for n, group in sorted(by_len.items()):
        lp = run(group[0][0], n)  # [N, n, V]
        for w, t in group:
            cols.append(lp[:, torch.arange(n), torch.tensor(t)].mean(1, keepdim=True).numpy())
            words.append(w)
    return words, np.concatenate(cols, axis=1).astype(np.float64)


# ----------------------------------------------------------------------------- criteria


def _label_index(examples: Sequence[Example], labels: Sequence[str]) -> np.ndarray:
    pos = {lab: i for i, lab in enumerate(labels)}
    bad = [e for e in examples if e.label not in pos]
    if bad:
        raise DataError(f"example '{bad[0].guid}': label '{bad[0].label}' is not one of {list(labels)}; fix: correct the label")
    return np.array([pos[e.label] for e in examples])


def top_candidates(lp: np.ndarray, y: np.ndarray, n_labels: int, k: int) -> list[np.ndarray]:
    """Per label, the ``k`` candidates with the highest summed log-prob over its examples."""
    out = []
    for c in range(n_labels):
        s = lp[y == c].sum(0)
        out.append(np.argsort(-s, kind="stable")[:k])
    return out


def _accuracy(lp: np.ndarray, y: np.ndarray, assignment: Sequence[int]) -> float:
    return float((lp[:, list(assignment)].argmax(1) == y).mean()) if len(y) else 0.0


def beam_assignments(lp: np.ndarray, y: np.ndarray, cands: list[np.ndarray], beam: int) -> list[tuple[tuple[int, ...], float]]:
    """Assignments (one candidate per label, all distinct) grown label by label, keeping the
    ``beam`` best by zero-shot accuracy on the examples of the labels assigned so far."""
    partial: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    for c, cand in enumerate(cands):
        rows = y <= c
        sub_lp, sub_y = lp[rows], y[rows]
        grown = []
        for a, _ in partial:
            fixed = sub_lp[:, list(a)] if a else np.zeros((len(sub_y), 0))
            best_fixed = fixed.max(1) if a else np.full(len(sub_y), -np.inf)
            arg_fixed = fixed.argmax(1) if a else np.zeros(len(sub_y), dtype=int)
            new = sub_lp[:, cand]  # [n, K]
            pred_new = new > best_fixed[:, None]  # the new label wins
            correct = np.where(pred_new, (sub_y == c)[:, None], (arg_fixed == sub_y)[:, None] & (sub_y != c)[:, None])
            acc = correct.mean(0) if len(sub_y) else np.zeros(len(cand))
            for j, w in enumerate(cand):
                if int(w) not in a:
                    grown.append((a + (int(w),), float(acc[j])))
        grown.sort(key=lambda t: -t[1])  # stable: ties keep the candidate order
        partial = grown[:beam]
    return partial


def petal_scores(lp: np.ndarray, y: np.ndarray, c: int, cand: np.ndarray, normalize: bool = True) -> np.ndarray:
    """PETAL's log-likelihood ratio of candidates ``cand`` for label ``c`` (normalised for the
    label's share of the examples)."""
    p = np.clip(np.exp(lp[:, cand]), 1e-12, 1 - 1e-12)
    pos = (y == c)
    scale = (len(y) - pos.sum()) / max(pos.sum(), 1) if normalize else 1.0
    logit = np.log(p) - np.log1p(-p)
    return scale * logit[pos].sum(0) - logit[~pos].sum(0)


# ----------------------------------------------------------------------------- search


@dataclass
class _Choice:
    """What one criterion chose: per label the chosen candidate indices, each candidate's score
    per label, the name of that score, the ranked assignments and how they were re-ranked."""

    chosen: dict[int, list[int]]
    score: dict[int, np.ndarray]
    score_name: str
    ranking: list[dict]
    rerank: str | None = None


def _check_search_args(method: str, **counts: int) -> None:
    if method not in METHODS:
        raise ConfigError(f"search method '{method}' is unknown; fix: use one of {', '.join(METHODS)}")
    for name, v in counts.items():
        if int(v) < 1:
            raise ConfigError(f"{name} {v}: must be at least 1; fix: pass a positive number")
    check_words_per_label(counts["words_per_label"], counts["candidates"])


def check_words_per_label(words_per_label: int, candidates: int, names: tuple[str, str] = ("words_per_label", "candidates")) -> None:
    """A label's words are picked from its candidates, so it cannot get more words than that:
    refused rather than silently written with fewer words for some labels."""
    if int(words_per_label) > int(candidates):
        w, c = names
        raise ConfigError(f"{w} {words_per_label} is more than {c} {candidates}: a label's words are chosen among its candidates; "
                          f"fix: raise {c} to at least {words_per_label}, or lower {w}")


def check_verbalizer_id(verbalizer_id: str | None, where: str = "verbalizer_id") -> None:
    """``None`` (the default id) or an id the verbalizer schema accepts (the rule is read from it,
    so a written file passes ``pet validate``): non-empty, no ``:`` (it separates pattern and
    verbalizer in a PVP id) and no whitespace."""
    import re

    from ..prompts.spec import _schema

    if verbalizer_id is None:
        return
    rule = _schema("verbalizers")["properties"]["verbalizers"]["items"]["properties"]["id"]["pattern"]
    if not isinstance(verbalizer_id, str) or not re.search(rule, verbalizer_id):
        raise ConfigError(f"{where} {verbalizer_id!r}: a verbalizer id must be non-empty, without ':' (it separates pattern and "
                          f"verbalizer in PVP ids) or whitespace; fix: e.g. {where} my-words")


def cv_rerank_scores(lp: np.ndarray, y: np.ndarray, train: Sequence[Example], assignments: Sequence[tuple[int, ...]],
                     n_labels: int, k: int, folds: int, seed: int) -> tuple[dict[tuple[int, ...], float], int]:
    """Cross-validated re-ranking without dev data: on each of ``n`` folds
    (:func:`pet.evaluation.selection.folds`) the top-``k`` candidates are found on the other
    folds; an assignment scores its zero-shot accuracy on the held-out fold when every one of its
    words was found there, else 0. Returns (assignment → mean over folds, ``n``), where ``n`` is
    ``folds`` capped by the smallest label's count (at least 2)."""
    from .selection import Selection, folds as make_folds

    n = max(2, min(folds, int(np.bincount(y, minlength=n_labels).min())))
    fold_scores: dict[tuple[int, ...], list[float]] = {a: [] for a in assignments}
    index = {id(e): i for i, e in enumerate(train)}
    for fit, held in make_folds(list(train), Selection("cv", n), seed):
        fi = np.array([index[id(e)] for e in fit])
        hi = np.array([index[id(e)] for e in held])
        found = [set(map(int, s)) for s in top_candidates(lp[fi], y[fi], n_labels, k)]
        for a in assignments:
            ok = all(w in found[c] for c, w in enumerate(a))
            fold_scores[a].append(_accuracy(lp[hi], y[hi], a) if ok else 0.0)
    return {a: float(np.mean(s)) for a, s in fold_scores.items()}, n


def _lmbff_choice(lp, y, lp_dev, y_dev, train, cands, labels, words, *, k, beam, rerank, folds, seed, words_per_label) -> _Choice:
    """LM-BFF: beam over assignments by train accuracy, re-ranked on dev (or by cross-validation),
    then more words per label from each label's next unused candidates."""
    L = len(labels)
    top = beam_assignments(lp, y, cands, beam)[:rerank]
    if len(y_dev):
        scored = [(a, _accuracy(lp_dev, y_dev, a), tr) for a, tr in top]
        how = f"zero-shot accuracy on the {len(y_dev)} dev examples"
    else:
        cv, n = cv_rerank_scores(lp, y, train, [a for a, _ in top], L, k, folds, seed)
        scored = [(a, cv[a], tr) for a, tr in top]
        how = f"{n}-fold cross-validation over the training examples (held-out zero-shot accuracy; 0 on a fold whose candidates lack a word)"
    scored.sort(key=lambda t: (-t[1], -t[2]))
    ranking = [{"words": {labels[c]: words[w] for c, w in enumerate(a)}, "rerank_accuracy": round(s, 4), "train_accuracy": round(tr, 4)}
               for a, s, tr in scored]
    best = scored[0][0]
    chosen: dict[int, list[int]] = {c: [best[c]] for c in range(L)}
    used = set(best)
    for c in range(L):  # more words per label: the label's next candidates, unused elsewhere
        for w in cands[c]:
            if len(chosen[c]) >= words_per_label:
                break
            if int(w) not in used:
                chosen[c].append(int(w))
                used.add(int(w))
    score = {c: lp[y == c].mean(0) for c in range(L)}
    return _Choice(chosen, score, "mean log-prob at the mask over the label's training examples", ranking, how)


def _petal_choice(lp, y, lp_dev, y_dev, cands, labels, words, *, words_per_label) -> _Choice:
    """PETAL: per label the candidates with the best likelihood ratio; a word shared by several
    labels goes to the label where it scores highest."""
    L = len(labels)
    per = {c: petal_scores(lp, y, c, cands[c]) for c in range(L)}
    owner: dict[int, tuple[int, float]] = {}
    for c in range(L):
        for w, s in zip(cands[c], per[c]):
            if int(w) not in owner or s > owner[int(w)][1]:
                owner[int(w)] = (c, float(s))
    chosen: dict[int, list[int]] = {}
    for c in range(L):
        order = [int(cands[c][j]) for j in np.argsort(-per[c], kind="stable") if owner[int(cands[c][j])][0] == c]
        chosen[c] = order[:words_per_label]
        if not chosen[c]:
            raise DataError(f"search-verbalizer: no candidate word is left for label '{labels[c]}'; fix: raise --candidates")
    score = {c: np.full(len(words), np.nan) for c in range(L)}
    for c in range(L):
        score[c][cands[c]] = per[c]
    assignment = [chosen[c][0] for c in range(L)]
    ranking = [{"words": {labels[c]: words[w] for c, w in enumerate(assignment)},
                "train_accuracy": round(_accuracy(lp, y, assignment), 4),
                **({"dev_accuracy": round(_accuracy(lp_dev, y_dev, assignment), 4)} if len(y_dev) else {})}]
    return _Choice(chosen, score, "PETAL log-likelihood ratio (normalised)", ranking)


def _describe(method: str, pattern: Pattern, procedure: dict, scores: dict, ranking: list[dict], score_name: str) -> str:
    """The verbalizer's ``source``: the procedure, every chosen word's score and the best assignment."""
    best = (f"; best assignment {json.dumps(ranking[0]['words'], ensure_ascii=False)} "
            + ", ".join(f"{k2} {v}" for k2, v in ranking[0].items() if k2 != "words")) if ranking else ""
    return (f"pet search-verbalizer {method} on pattern '{pattern.id}' ({procedure['train_examples']} train, "
            f"{procedure['dev_examples']} dev examples, model {procedure['model']}, {procedure['candidates_per_label']} candidates per label"
            + (f", re-ranked by {procedure['rerank']}" if "rerank" in procedure else "")
            + f"); scores ({score_name}): "
            + "; ".join(f"{lab}: " + ", ".join(f"{w} {s:.3f}" for w, s in ws.items()) for lab, ws in scores.items())
            + best)


def search_verbalizer(
    model,
    pattern: Pattern,
    train: Sequence[Example],
    labels: Sequence[str],
    *,
    dev: Sequence[Example] = (),
    method: str = "lmbff",
    words_per_label: int = 1,
    candidates: int = 100,
    beam: int = 100,
    rerank: int = 10,
    folds: int = 4,
    extra_words: Sequence[str] = (),
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = 32,
    seed: int = 13,
    verbalizer_id: str | None = None,
    max_vocab: int | None = None,
    device: str | None = None,
) -> SearchResult:
    """Search label words for ``pattern`` from ``train`` (and ``dev``) only; see the module doc.
    ``model`` is a :class:`pet.models.prompt_model.PromptModel` or a model folder / hub name."""
    from ..models.prompt_model import PromptModel

    _check_search_args(method, words_per_label=words_per_label, candidates=candidates, beam=beam, rerank=rerank)
    check_verbalizer_id(verbalizer_id)
    labels = [str(x) for x in labels]
    train, dev = list(train), list(dev)
    if not train:
        raise DataError("search-verbalizer: no labelled training examples; fix: pass a non-empty training set")
    if isinstance(model, (str, Path)):
        model = PromptModel.from_pretrained(str(model), device=device)
    y = _label_index(train, labels)
    missing = [labels[c] for c in range(len(labels)) if not (y == c).any()]
    if missing:
        raise DataError(f"search-verbalizer: label '{missing[0]}' has no training example; fix: give every label labelled examples")
    words, lp_all = candidate_log_probs(model, pattern, train + dev, extra_words, max_length, batch_size, max_vocab)
    lp, lp_dev = lp_all[: len(train)], lp_all[len(train):]
    y_dev = _label_index(dev, labels) if dev else np.zeros(0, dtype=int)
    k = min(candidates, len(words))
    cands = top_candidates(lp, y, len(labels), k)
    procedure: dict = {"method": method, "pattern": pattern.id, "template": pattern.template, "model": Path(str(getattr(model, "name", ""))).name,
                       "train_examples": len(train), "dev_examples": len(dev), "candidates_per_label": k,
                       "candidate_words": len(words), "extra_words": [w.strip() for w in extra_words if w.strip()],
                       "words_per_label": words_per_label, "seed": seed}
    if method == "lmbff":
        choice = _lmbff_choice(lp, y, lp_dev, y_dev, train, cands, labels, words, k=k, beam=beam, rerank=rerank, folds=folds,
                               seed=seed, words_per_label=words_per_label)
        procedure["rerank"] = choice.rerank
    else:
        choice = _petal_choice(lp, y, lp_dev, y_dev, cands, labels, words, words_per_label=words_per_label)
    procedure["score"] = choice.score_name
    scores = {labels[c]: {words[w]: round(float(choice.score[c][w]), 4) for w in choice.chosen[c]} for c in range(len(labels))}
    desc = _describe(method, pattern, procedure, scores, choice.ranking, choice.score_name)
    verbalizer = Verbalizer(f"search-{method}" if verbalizer_id is None else verbalizer_id,
                            {labels[c]: [words[w] for w in choice.chosen[c]] for c in range(len(labels))}, source=desc)
    short = {labels[c]: len(choice.chosen[c]) for c in range(len(labels)) if len(choice.chosen[c]) < words_per_label}
    notes = [f"{words_per_label} words per label were asked for, but " + ", ".join(f"label '{lab}' got {n}" for lab, n in short.items())
             + f": its other candidates among the top {k} are taken by other labels; raise the candidates for more"] if short else []
    return SearchResult(verbalizer, scores, procedure, choice.ranking, notes)


def search_for_task(
    task,
    pattern_id: str,
    model,
    *,
    data_dir=None,
    k: int | None = 16,
    seed: int = 13,
    patterns: str | Path | None = None,
    **kw,
) -> SearchResult:
    """Search on a registered task's few-shot split (train and dev only; the test file is never read)."""
    from ..data import load_task
    from ..data.fewshot import few_shot
    from ..prompts.spec import load_patterns

    t = load_task(task)
    train, dev = few_shot(t, data_dir, k=k, seed=seed)
    pattern = _pattern(load_patterns(patterns or t.patterns_path), pattern_id, patterns or t.patterns_path)
    kw.setdefault("max_length", t.max_length)
    return search_verbalizer(model, pattern, train, list(t.label_ids), dev=dev, seed=seed, **kw)


def search_for_data(
    data,
    text_fields: dict[str, str],
    label_field: str,
    patterns: str | Path,
    pattern_id: str,
    model,
    *,
    k: int = 16,
    seed: int = 13,
    **kw,
) -> SearchResult:
    """Search on K per class drawn (seeded) from a user's labelled file; no dev: cross-validation."""
    from ..data.owndata import own_data_task
    from ..data.rundata import sample_k_per_class
    from ..prompts.spec import load_patterns

    spec, examples = own_data_task(data, text_fields, label_field)
    train, _ = sample_k_per_class(examples, spec.label_ids, k, seed, str(data))
    pattern = _pattern(load_patterns(patterns), pattern_id, patterns)
    return search_verbalizer(model, pattern, train, list(spec.label_ids), seed=seed, **kw)


def _pattern(patterns: list[Pattern], pattern_id: str, where) -> Pattern:
    for p in patterns:
        if p.id == pattern_id:
            if p.is_soft:
                raise ConfigError(f"pattern '{pattern_id}' has soft tokens; fix: search label words for a hard pattern")
            return p
    raise ConfigError(f"pattern '{pattern_id}' is not in {where}; fix: use one of {', '.join(p.id for p in patterns)}")
