"""Typed rows of the results store: :class:`ResultRow`, what ``pet bench`` writes and the report reads.

One row is one evaluated stage of one cell (task, method, K, seed). The store keeps rows as flat
JSON objects; :meth:`ResultRow.from_dict` reads every row ever written (rows of an older schema
simply lack the newer fields, which take their defaults) and :meth:`ResultRow.to_dict` gives the
flat object back. Keys this class does not know are kept in :attr:`ResultRow.other` and written
back unchanged, so a newer writer's rows survive a round trip through an older reader.

Schema history:

- 1 — the rows written before this module (no ``schema`` key in the row).
- 2 — ``inputs`` (role -> SHA-256 of every file the cell read), ``pet_version`` and
  ``predictions`` (per-example test predictions, compactly encoded, see :func:`encode_predictions`).
"""

from __future__ import annotations

import base64
import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

SCHEMA_VERSION = 3  # 3: bit-packed prediction indices (2: int16)

#: Keys the store itself adds to every row line (not part of a row's content).
STORE_KEYS = ("type", "write_id")

_INT = np.dtype("<i2")  # predicted / gold label indices: little-endian int16
_FLOAT = np.dtype("<f4")  # regression scores: little-endian float32


def _b64(a: Any, dtype: np.dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(np.asarray(a), dtype=dtype).tobytes()).decode("ascii")


def _unb64(s: str | None, dtype: np.dtype) -> np.ndarray | None:
    if s is None:
        return None
    return np.frombuffer(base64.b64decode(s), dtype=dtype).astype(dtype.newbyteorder("="))


def _bits_for(n_labels: int) -> int:
    return max(1, int(np.ceil(np.log2(max(n_labels, 2)))))


def _pack(a: Any, bits: int) -> str:
    """Label indices as ``bits`` bits each (least significant first), bit-packed, zlib-compressed,
    base64: 2,000 binary predictions take ~350 characters instead of 5,300 as int16."""
    v = np.asarray(a, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() >= 1 << bits):
        raise ValueError(f"label indices must lie in [0, {1 << bits}) for a {bits}-bit encoding")
    matrix = ((v[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return base64.b64encode(zlib.compress(np.packbits(matrix.reshape(-1)).tobytes(), 9)).decode("ascii")


def _unpack(s: str | None, bits: int, n: int) -> np.ndarray | None:
    if s is None:
        return None
    flat = np.unpackbits(np.frombuffer(zlib.decompress(base64.b64decode(s)), dtype=np.uint8))[: n * bits]
    return (flat.reshape(n, bits).astype(np.int64) << np.arange(bits)).sum(1).astype(np.int64)


def encode_predictions(labels: Sequence[str], pred: Any, gold: Any, pred_score: Any = None,
                       gold_score: Any = None) -> dict:
    """The ``predictions`` field of a row: label names, and the label indices (into ``labels``) of
    every test example in order, bit-packed (``encoding: "bits"``: ``bits`` bits per index,
    ``n`` examples, zlib + base64); regression tasks add float32 scores. Rows of schema 2 stored
    base64 int16 arrays without an ``encoding`` key; both read back the same."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    if pred.shape != gold.shape or pred.ndim != 1:
        raise ValueError(f"pred and gold must be 1-D arrays of one length (got {pred.shape} and {gold.shape})")
    bits = _bits_for(len(labels))
    out = {"labels": [str(x) for x in labels], "encoding": "bits", "bits": bits, "n": int(pred.size),
           "pred": _pack(pred, bits), "gold": _pack(gold, bits)}
    if pred_score is not None:
        out["pred_score"] = _b64(pred_score, _FLOAT)
    if gold_score is not None:
        out["gold_score"] = _b64(gold_score, _FLOAT)
    return out


@dataclass
class ResultRow:
    """One stored row. Field groups: what was run, what it scored, how long / how much memory it
    took, what it read (``inputs``: role such as ``train``, ``dev``, ``test``, ``unlabelled``,
    ``patterns``, ``verbalizers``, ``task`` -> SHA-256 of the file content; ``weights`` -> one
    SHA-256 over the model's weight files, absent in older rows), and the code that made it."""

    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION

    # what was run
    task: str = ""
    method: str = ""
    method_name: str | None = None
    stage: str = ""
    pvp: str | None = None
    key: str | None = None
    final: bool | None = None  # None: a row written before methods marked their final stage
    k: int | None = None
    seed: int | None = None
    config_hash: str | None = None
    experiment: str | None = None
    model: str | None = None
    model_id: Any = None
    options: dict = field(default_factory=dict)  # as the experiment file wrote them
    #: every option as the method ran it, its defaults filled in (None: a row written before
    #: rows recorded them); the config hash covers ``options`` only, so reports compare these
    #: to catch a default that changed between cells
    resolved_options: dict | None = None
    pvps: Any = None
    selection: str | None = None
    grid_point: dict | None = None
    grid: list | None = None
    # what it scored
    score: float | None = None
    metric: str | None = None
    metrics: dict = field(default_factory=dict)
    dev_score: float | None = None
    selected: bool | None = None
    predictions: dict | None = None
    # cost
    train_seconds: float | None = None
    eval_examples_per_second: float | None = None
    peak_memory_mb: float | None = None
    peak_memory_source: str | None = None
    cell_peak_rss_mb: float | None = None
    trained_parameters: int | None = None
    cell_seconds: float | None = None
    fit_seconds: float | None = None
    # what it read
    split: dict | None = None
    test: dict | None = None
    unlabelled: dict | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    # the code and machine that made it
    git_commit: str | None = None
    git_dirty: bool | None = None
    pet_version: str | None = None
    versions: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    timestamp: str | None = None
    extra: dict = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    other: dict = field(default_factory=dict)  # keys this version does not know, kept verbatim

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "other")

    @classmethod
    def from_dict(cls, d: dict) -> ResultRow:
        """A row from its stored object, of this schema or an older one (missing fields take
        their defaults; ``pet_version`` of a schema-1 row comes from its ``versions``)."""
        names = set(cls.field_names())
        known = {k: v for k, v in d.items() if k in names}
        other = {k: v for k, v in d.items() if k not in names and k not in STORE_KEYS}
        known.setdefault("schema", 1)
        for name in ("options", "metrics", "inputs", "versions", "machine", "extra"):
            if known.get(name) is None:
                known.pop(name, None)
        row = cls(**known, other=other)
        if row.pet_version is None and isinstance(row.versions, dict):
            row.pet_version = row.versions.get("pet")
        return row

    def to_dict(self) -> dict:
        """The flat object the store writes (``final`` is left out when unknown, as old rows had it)."""
        out = {name: getattr(self, name) for name in self.field_names()}
        if out["final"] is None:
            del out["final"]
        return {**self.other, **out}

    def get(self, name: str, default: Any = None) -> Any:
        """Dict-style read of a field or a kept unknown key (for code written against row dicts)."""
        if name in self.field_names():
            value = getattr(self, name)
            return default if value is None else value
        return self.other.get(name, default)

    # per-example predictions (contract: int16 label indices, float32 regression scores)

    @property
    def labels(self) -> list[str] | None:
        return None if not self.predictions else list(self.predictions.get("labels", []))

    def pred_array(self) -> np.ndarray | None:
        """Predicted label index per test example (indexing :attr:`labels`), or None when not stored."""
        return self._indices("pred")

    def gold_array(self) -> np.ndarray | None:
        """Gold label index per test example, or None when not stored."""
        return self._indices("gold")

    def _indices(self, key: str) -> np.ndarray | None:
        p = self.predictions or {}
        if p.get("encoding") == "bits":
            return _unpack(p.get(key), int(p["bits"]), int(p["n"]))
        return _unb64(p.get(key), _INT)  # schema 2: base64 int16

    def pred_score_array(self) -> np.ndarray | None:
        """Predicted score per test example of a regression task, or None."""
        return _unb64((self.predictions or {}).get("pred_score"), _FLOAT)

    def gold_score_array(self) -> np.ndarray | None:
        """Gold score per test example of a regression task, or None."""
        return _unb64((self.predictions or {}).get("gold_score"), _FLOAT)
