"""Streaming prediction: read, score and write in chunks, with bounded memory.

* :func:`iter_chunks` reads a CSV/TSV/JSONL(.gz) file (or any iterable of records) as lists of
  at most ``chunk_size`` :class:`Example` s — pandas' chunked reader for CSV/TSV, line by line
  for JSONL (line-numbered errors, as the whole-file reader gives);
* :func:`atomic_output` writes a file through a temporary file in the same folder, renamed over
  the target only when everything was written (nothing half-written is left on failure);
* :func:`predict_to_jsonl` is ``pet predict``: a saved classifier's predictions, one JSON line
  per input row, written as each chunk is scored;
* :func:`zero_shot_stream_report` is ``pet zero-shot --data``: the zero-shot report of every PVP
  and their ensemble, keeping only the predicted and gold label ids (not texts, not scores).

Peak memory depends on ``chunk_size`` and the model, not on the input's length (see
benchmarks/predict_memory.py and the Scale-out section of benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .jsonl import iter_jsonl_records
from .errors import DataError
from .examples import Example

DEFAULT_CHUNK_SIZE = 1024


def _cell(v: Any) -> str | None:
    from .data.tables import _cell as cell

    return cell(v)


def _fmt(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    return "tsv" if name.endswith(".tsv") else "csv"


def _csv_rows(path: Path, wanted: Sequence[str], chunk_size: int) -> Iterator[tuple[int, dict]]:
    """(row number, {column: value}) of a CSV/TSV file, read ``chunk_size`` rows at a time by pandas."""
    import pandas as pd

    tsv = _fmt(path) == "tsv"
    kw: dict[str, Any] = dict(sep="\t" if tsv else ",", dtype=str, keep_default_na=False, na_filter=False,
                              quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, encoding="utf-8-sig", compression="infer",
                              chunksize=chunk_size)
    row = 0
    try:
        with pd.read_csv(path, **kw) as reader:
            for df in reader:
                df.columns = [str(c).strip() for c in df.columns]
                missing = [c for c in wanted if c not in df.columns]
                if missing:
                    raise DataError(f"{path}: no column '{missing[0]}'; columns present: {list(df.columns)}; fix: name an existing column in --text-field/--label-field")
                cols = {c: df[c].tolist() for c in wanted}
                for i in range(len(df)):
                    row += 1
                    yield row, {c: cols[c][i] for c in wanted}
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start}); fix: re-save the file as UTF-8") from None
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        return
    except Exception as e:  # pandas parser errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot read as {'tsv' if tsv else 'csv'}: {msg}; fix: check the file's format") from None


def iter_records(path: str | Path, columns: Sequence[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[tuple[int, dict]]:
    """(row/line number, record) of a file, streamed; ``columns`` must exist in every record."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; fix: check the path")
    wanted = [c for c in dict.fromkeys(columns) if c]
    return iter_jsonl_records(p, wanted, require=True) if _fmt(p) == "jsonl" else _csv_rows(p, wanted, chunk_size)


def iter_chunks(
    source: str | Path | Iterable[dict],
    fields: dict[str, str],
    label_field: str | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    labels: Sequence[str] | None = None,
    empty_text: str = "keep",
    name: str | None = None,
) -> Iterator[list[Example]]:
    """Lists of at most ``chunk_size`` Examples from a file (or an iterable of dict records, e.g.
    a Hugging Face dataset), in order. ``fields`` maps template fields to columns; text is kept
    exactly as read; ``empty_text``: keep (as "") or error. ``labels`` restricts label ids."""
    if chunk_size < 1:
        raise DataError(f"chunk_size={chunk_size}; fix: 1 or more")
    columns = [*fields.values(), *([label_field] if label_field else [])]
    if isinstance(source, (str, Path)):
        where, unit, prefix = str(source), "line" if _fmt(Path(source)) == "jsonl" else "row", Path(source).stem
        records: Iterable[tuple[int, dict]] = iter_records(source, columns, chunk_size)
    else:
        where, unit, prefix = name or "records", "record", name or "record"
        records = enumerate(source, 1)
    chunk: list[Example] = []
    for n, rec in records:
        values = {}
        for f, col in fields.items():
            if col not in rec:
                raise DataError(f"{where}: {unit} {n}: no field '{col}'; fields present: {list(rec)}; fix: name an existing field in --text-field")
            text = _cell(rec[col])
            if text is None or not text.strip():
                if empty_text == "error":
                    raise DataError(f"{where}: {unit} {n}: field '{f}' (column {col}) is empty; fix: remove or fill in that {unit}")
                text = text or ""
            values[f] = text
        label = None
        if label_field:
            raw = _cell(rec.get(label_field))
            label = raw.strip() if raw is not None else ""
            if not label:
                raise DataError(f"{where}: {unit} {n}: empty label in column '{label_field}'; fix: fill in the label or drop the {unit}")
            if labels is not None and label not in labels:
                raise DataError(f"{where}: {unit} {n}: label '{label}' is not one of {list(labels)}; fix: correct the {unit} or the verbalizer")
        chunk.append(Example(fields=values, label=label, guid=f"{prefix}-{n}", meta={unit: n}))
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextlib.contextmanager
def atomic_output(path: str | Path, what: str = "output") -> Iterator[Any]:
    """A text file handle on a temporary file next to ``path``; on success it is flushed, synced
    and renamed to ``path``; on any error it is removed and ``path`` is left as it was."""
    from .io import check_parent_writable

    final = Path(path)
    check_parent_writable(final, what)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=str(final.parent or Path(".")))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def predict_stream(
    predict_log_proba: Callable[[list[Example]], np.ndarray], chunks: Iterable[list[Example]]
) -> Iterator[tuple[list[Example], np.ndarray]]:
    """(chunk, label log-probs ``[len(chunk), L]``) for every chunk, scored one chunk at a time."""
    for chunk in chunks:
        yield chunk, np.asarray(predict_log_proba(chunk))


def predict_to_jsonl(clf: Any, chunks: Iterable[list[Example]], output: str | Path, *, progress: Callable[[int], None] | None = None) -> int:
    """``pet predict``: one line ``{"index", "guid", "label", "probabilities"}`` per input
    example, written chunk by chunk into ``output`` (atomically). Returns the number of lines."""
    labels = list(clf.labels_)
    n = 0
    with atomic_output(output) as f:
        for chunk, lp in predict_stream(clf.predict_log_proba, chunks):
            proba = np.exp(lp)
            lines = []
            for ex, row in zip(chunk, proba):
                rec = {"index": n, "guid": ex.guid, "label": labels[int(row.argmax())],
                       "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, row)}}
                lines.append(json.dumps(rec, ensure_ascii=False))
                n += 1
            f.write("\n".join(lines) + "\n")
            if progress:
                progress(n)
    return n


def own_task_spec(source: str, fields: dict[str, str], label_field: str | None, labels: Sequence[str],
                  metric: str = "accuracy", max_length: int | None = None) -> Any:
    """The task of a user's own data (a file or ``hf:`` dataset) without reading its rows: what
    :func:`pet.data.own_data_task` builds, with the labels given (e.g. from :func:`scan_labels`)."""
    from .data import TaskSpec
    from .defaults import DEFAULT_MAX_LENGTH

    name = Path(source[3:] if source.startswith("hf:") else source).stem or "data"
    return TaskSpec(name=name, folder="", labels={lab: lab for lab in labels}, splits={}, fields={k: (v,) for k, v in fields.items()},
                    label=label_field or "", metric=metric, default_pvps=(), max_length=max_length or DEFAULT_MAX_LENGTH,
                    path=None if source.startswith("hf:") else Path(source))


def scan_labels(source: str | Path | Iterable[dict], label_field: str, fields: dict[str, str] | None = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE, empty_text: str = "keep") -> list[str]:
    """The sorted label ids of a source's label column (numbers numerically), in one streaming
    pass that also checks every record's ``fields`` (line-numbered errors before any model loads)."""
    found: set[str] = set()
    for chunk in iter_chunks(source, fields or {}, label_field, chunk_size=chunk_size, empty_text=empty_text):
        found.update(e.label for e in chunk)
    return sorted(found, key=lambda s: (len(s), s) if s.isdigit() else (0, s))


def check_source(source: str | Path, fields: dict[str, str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Read a whole file once, chunk by chunk, checking every row (columns, JSONL objects, text
    values): errors surface before a model is loaded; memory stays flat. Returns the row count."""
    return sum(len(c) for c in iter_chunks(source, fields, chunk_size=chunk_size))


def zero_shot_stream_report(
    fitted: Any,
    chunks: Iterable[list[Example]],
    task: Any,
    *,
    split: str,
    progress: bool = False,
) -> dict:
    """What :func:`pet.evaluation.zero_shot_report` returns, computed chunk by chunk from a
    fitted zero-shot method (``PetClassifier.zero_shot(...).fitted_``): every stage's predicted
    label ids and the gold ids are all that is kept per example."""
    from tqdm.auto import tqdm

    from .metrics import REGRESSION_METRICS, compute_metric, gold_scores, regression_scores
    from .versions import package_versions

    labels = list(fitted.labels)
    regression = [m for m in (task.metric, *task.extra_metrics) if m in REGRESSION_METRICS]
    reg_pred: dict[str, list[np.ndarray]] = {st.key: [] for st in fitted.stages}  # regression tasks: p(high)-interpolated scores
    reg_gold: list[float] = []
    preds: dict[str, list[np.ndarray]] = {st.key: [] for st in fitted.stages}
    seconds = {st.key: 0.0 for st in fitted.stages}
    gold: list[np.ndarray] = []
    n = 0
    bar = tqdm(desc="zero-shot", unit="ex", disable=not progress, leave=False)
    for chunk in chunks:
        missing = next((e.guid for e in chunk if e.label is None), None)
        if missing:
            raise DataError(f"{split}: example '{missing}' has no label; fix: give --label-field")
        bad = next((e for e in chunk if e.label not in labels), None)
        if bad is not None:
            raise DataError(f"{split}: example '{bad.guid}': label '{bad.label}' is not one of {labels}; fix: correct it or the verbalizer")
        gold.append(np.array([labels.index(e.label) for e in chunk], dtype=np.int32))
        if regression:
            reg_gold.extend(gold_scores(chunk))
        cache: dict = {}
        for st in fitted.stages:
            t0 = time.perf_counter()
            lp = np.asarray(st.predictor.predict_log_proba(chunk, cache=cache))
            secs = time.perf_counter() - t0
            keys = getattr(st.predictor, "cache_keys", None)
            if keys is not None:  # an ensemble's cost is its members' scoring time
                secs = sum(cache[k][1] for k in keys(chunk) if k in cache)
            seconds[st.key] += secs
            preds[st.key].append(lp.argmax(1).astype(np.int32))
            if regression:
                reg_pred[st.key].append(regression_scores(task, lp[:, [labels.index(x) for x in task.label_ids]]))
        n += len(chunk)
        bar.update(len(chunk))
    bar.close()
    if n == 0:
        raise DataError(f"{split}: no rows; fix: give a file with at least one example")
    g = [labels[i] for i in np.concatenate(gold)]
    rows = []
    for st in fitted.stages:
        pred = [labels[i] for i in np.concatenate(preds[st.key])]
        m = {}
        for name in (task.metric, *task.extra_metrics):
            if name in REGRESSION_METRICS:
                m[name] = compute_metric(name, reg_gold, list(np.concatenate(reg_pred[st.key])))
            else:
                m[name] = compute_metric(name, g, pred, labels=task.label_ids, pos_label=task.positive_label)
        for name in ("accuracy", "macro_f1"):  # what every evaluated row carries (pet.evaluation.COMMON_METRICS)
            m.setdefault(name, compute_metric(name, g, pred, labels=task.label_ids, pos_label=task.positive_label))
        rows.append({"stage": st.name, "pvp": st.pvp, "score": float(m[task.metric]), "metrics": m,
                     "eps": n / max(seconds[st.key], 1e-9), "template": st.extra.get("template", "")})
    per = [r for r in rows if r["stage"] == "pvp"]
    ens = next((r for r in rows if r["stage"] == "ensemble"), per[0])
    return {
        "task": task.name, "model": fitted.model, "split": split, "n": n, "metric": task.metric,
        "calibrated": bool(getattr(fitted.options, "calibrate", False)),
        "pvps": [{"pattern": r["pvp"].split(":")[0], "verbalizer": r["pvp"].split(":", 1)[1], "score": r["score"],
                  "examples_per_second": r["eps"], "template": r["template"], "metrics": r["metrics"]} for r in per],
        "ensemble": {"score": ens["score"], "members": [r["pvp"] for r in per], "combine": "mean log-prob", "metrics": ens["metrics"]},
        "versions": package_versions(),
    }
