"""PetClassifier as a scikit-learn estimator: the tags of a text classifier, sklearn's own API
checks, the input shapes it accepts, labels in the type given, and options__NAME for searches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.utils import estimator_checks as ec
from sklearn.utils import get_tags

from pet.errors import ConfigError, DataError
from pet.estimator.classifier import PetClassifier
from pet.estimator.inputs import as_examples

TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad"]
OPTS = {"steps": 1, "max_length": 32}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def clf(tiny_bert_dir):
    return PetClassifier(tiny_bert_dir, "prompt-ft", task="sst2", pvps=["it-was:great-terrible"], options=OPTS)


def test_tags_say_text_and_sklearns_suite_passes(clf):
    tags = get_tags(clf)
    assert tags.input_tags.string and not tags.input_tags.two_d_array and tags.estimator_type == "classifier"
    failed = [r for r in ec.check_estimator(clf, on_fail=None, on_skip=None) if r["status"] == "failed"]
    assert failed == []  # before the tags: 37 of 55 numeric-array checks failed
    # the API checks that apply to any estimator, run one by one on the text classifier
    for check in (ec.check_estimator_cloneable, ec.check_estimator_tags_renamed, ec.check_valid_tag_types, ec.check_estimator_repr,
                  ec.check_no_attributes_set_in_init, ec.check_estimators_unfitted, ec.check_do_not_raise_errors_in_init_or_set_params,
                  ec.check_mixin_order, ec.check_get_params_invariance, ec.check_set_params, ec.check_parameters_default_constructible):
        check("PetClassifier", clf)


def test_accepted_input_shapes():
    texts = ["a", "b", "c", "d"]
    df = pd.DataFrame({"review": texts})
    for X in (texts, pd.Series(texts), df, df[["review"]], np.array(texts), np.array(texts)[:, None], tuple(texts)):
        assert [e.fields for e in as_examples(X)] == [{"text_a": t} for t in texts], type(X)
    pair = pd.DataFrame({"text_a": ["x", "y"], "text_b": ["p", "q"]})
    assert [e.fields for e in as_examples(pair)] == [{"text_a": "x", "text_b": "p"}, {"text_a": "y", "text_b": "q"}]
    for bad, match in (("one text", "single str"), (np.zeros((3, 2)), r"2-D array of shape \(3, 2\)"), ([1.5, 2.0], "float .* is not a text"),
                       (pd.DataFrame({"a": ["x"], "b": [None]}), "field 'b' is a NoneType"), (42, "int is not a collection")):
        with pytest.raises(DataError, match=match) as e:
            as_examples(bad)
        assert "\n" not in str(e.value) and "fix:" in str(e.value)


def test_dataframe_fit_and_predict_row_per_row(clf):
    df = pd.DataFrame({"review": TEXTS, "stars": [1, 0, 1, 0, 1, 0]})
    fitted = clf.fit(df[["review"]], df["stars"])
    pred = fitted.predict(df[["review"]].head(4))
    assert pred.shape == (4,) and pred.dtype.kind == "i"  # one prediction per row, not per column name
    assert fitted.predict_proba(df["review"]).shape == (6, 2)


def test_classes_keep_the_type_of_y(clf):
    fitted = clf.fit(TEXTS[::2], [1, 1, 1])  # a fold without label 0: the task's '0' still comes back as 0
    assert list(fitted.classes_) == [0, 1] and fitted.classes_.dtype.kind == "i"
    assert list(clf.fit(TEXTS, ["1", "0"] * 3).classes_) == ["0", "1"]
    with pytest.raises(ValueError, match="Unknown label type: 'continuous'"):
        clf.fit(TEXTS, [0.5, 1.2, 0.1, 3.3, 2.2, 0.7])
    with pytest.raises(ValueError, match="Unknown label type: 'multilabel-indicator'"):
        clf.fit(TEXTS, np.eye(2, dtype=int)[[0, 1, 0, 1, 0, 1]])


def test_grid_search_over_options(clf):
    assert clf.get_params()["options__steps"] == 1
    twin = clf.set_params(options__lr=1e-3)
    assert twin.options == {**OPTS, "lr": 1e-3} and OPTS == {"steps": 1, "max_length": 32}  # a new dict
    y = [1, 0, 1, 0, 1, 0]
    search = GridSearchCV(clf, {"options__lr": [1e-4, 1e-3]}, cv=2).fit(TEXTS, y)
    assert search.best_params_["options__lr"] in (1e-4, 1e-3) and search.best_estimator_.options["steps"] == 1
    with pytest.raises(ConfigError, match="unknown option 'stepz'"):
        clf.set_params(options__stepz=2).fit(TEXTS, y)
