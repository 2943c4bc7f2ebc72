"""What ``PetClassifier`` accepts as ``X`` and ``y``, turned into Examples and label values.

``X`` is a collection of texts, never a numeric matrix:

* a list (or tuple, 1-D array, pandas ``Series``) of strings, ``{field: text}`` dicts or
  :class:`pet.examples.Example` objects;
* a one-column pandas ``DataFrame`` or an ``(n, 1)`` array: the column is ``text_a``, whatever
  its name (``clf.predict(df[["review"]])``);
* a DataFrame with several columns: each column is the template field of that name
  (``text_a``, ``text_b``, or any field a pattern names), one example per row.

Anything else (a single string, a 2-D array with several columns, numbers) is a one-line
``DataError`` naming what was given and what to pass instead.

``y`` must be class labels (``sklearn.utils.multiclass.type_of_target``: binary or multiclass);
continuous or multi-output ``y`` is refused with scikit-learn's "Unknown label type" error. The
labels come back from ``predict`` in the type they were given: integers stay integers, even the
classes a cross-validation fold did not contain.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.utils.multiclass import type_of_target

from ..errors import DataError
from ..examples import Example

_FIX_X = "fix: pass a list of texts, a pandas Series, a one-column DataFrame, or a DataFrame whose columns are the template's fields"


def _rows(X: Any) -> list:
    """``X`` as a list of items (texts, field dicts, Examples), the table shapes unpacked."""
    if isinstance(X, (str, bytes, Example, dict)):
        raise DataError(f"X is a single {type(X).__name__}, not a collection of texts; fix: wrap it in a list")
    columns = getattr(X, "columns", None)
    if columns is not None and hasattr(X, "itertuples"):  # a pandas DataFrame
        names = [str(c) for c in columns]
        if len(names) == 1:
            return list(X.iloc[:, 0])
        if len(set(names)) != len(names) or not names:
            raise DataError(f"X: DataFrame columns {names} are not distinct field names; {_FIX_X}")
        return [dict(zip(names, row)) for row in X.itertuples(index=False, name=None)]
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # a pandas Series
        return list(X.to_numpy())
    if isinstance(X, np.ndarray) or hasattr(X, "toarray") or hasattr(X, "__array__"):
        arr = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        if arr.ndim == 2 and arr.shape[1] == 1:
            return list(arr[:, 0])
        if arr.ndim != 1:
            raise DataError(f"X: a {arr.ndim}-D array of shape {arr.shape}; a text classifier reads one text per row; {_FIX_X}")
        return list(arr)
    try:
        return list(X)
    except TypeError:
        raise DataError(f"X: a {type(X).__name__} is not a collection of texts; {_FIX_X}") from None


def _example(i: int, x: Any, label: str | None) -> Example:
    if isinstance(x, np.str_):
        x = str(x)
    if isinstance(x, Example):
        return x if label is None else Example(dict(x.fields), label, x.guid, dict(x.meta))
    if isinstance(x, str):
        return Example({"text_a": x}, label, f"input-{i}")
    if isinstance(x, dict):
        bad = [k for k, v in x.items() if not isinstance(v, str)]
        if bad:
            raise DataError(f"X row {i}: field '{bad[0]}' is a {type(x[bad[0]]).__name__} ({x[bad[0]]!r}), not text; fix: pass strings (fill or drop missing values)")
        return Example({str(k): v for k, v in x.items()}, label, f"input-{i}")
    raise DataError(f"X row {i}: a {type(x).__name__} ({x!r:.40}) is not a text, field dict or Example; {_FIX_X}")


def as_examples(X: Any, y: Sequence[Any] | None = None) -> list[Example]:
    """Any accepted ``X`` (see the module doc), with optional labels ``y``, → Examples."""
    rows = _rows(X)
    keys = None
    if y is not None:
        keys = [None if v is None else label_key(v) for v in labels_list(y)]
        if len(keys) != len(rows):
            raise DataError(f"{len(rows)} inputs but {len(keys)} labels; fix: pass one label per input")
    return [_example(i, x, keys[i] if keys is not None else None) for i, x in enumerate(rows)]


def labels_list(y: Any) -> list:
    """``y`` (a list, Series, 1-D or ``(n, 1)`` array) as a list of plain Python values."""
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return [v.item() if hasattr(v, "item") else v for v in arr.ravel()] if arr.ndim <= 1 else list(arr)


def check_targets(y: Any) -> None:
    """scikit-learn's error for ``y`` that is not class labels (continuous, multi-output…)."""
    kind = type_of_target(y, input_name="y")
    if kind not in ("binary", "multiclass"):
        raise DataError(
            f"y: Unknown label type: {kind!r}; a classifier needs class labels (binary or multiclass, one per input); "
            "fix: pass one discrete label per input (for a continuous target, bin it into classes first)"
        )


def label_key(v: Any) -> str:
    """The label id (a string) of a label value: ``1``, ``np.int64(1)``, ``1.0`` and ``"1"`` are ``"1"``."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def label_values(labels: Sequence[str], given: Sequence[Any]) -> np.ndarray:
    """``classes_``: each label id in the type the user gave labels in (``given``: ``y`` or
    ``labels=``). A label the user never gave takes that type too when it can (``'0'`` → ``0``
    when ``y`` holds integers), so ``classes_`` never mixes types."""
    seen: dict[str, Any] = {}
    for v in given:
        seen.setdefault(label_key(v), v.item() if hasattr(v, "item") else v)
    types = {type(v) for v in seen.values()}
    kind = types.pop() if len(types) == 1 else None
    out = []
    for lab in labels:
        if lab in seen:
            out.append(seen[lab])
        elif kind in (int, float, bool) and kind is not bool:
            try:
                out.append(kind(lab))
            except ValueError:
                raise DataError(f"label '{lab}' cannot be given as {kind.__name__} like the other labels; fix: pass y as strings, or labels=") from None
        else:
            out.append(lab)
    mixed = len({type(v) for v in out}) > 1
    return np.array(out, dtype=object if mixed else None)
