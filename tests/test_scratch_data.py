"""Lesson data pipelines and generated data of dlnd.scratch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.scratch import LogisticRegression, synthetic
from dlnd.scratch.admissions import admissions_split


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 300), seed=st.integers(0, 1000))
def test_admissions_split_shapes_one_hot_and_scaling(n, seed):
    table = synthetic.admissions_table(n=n, seed=seed)
    X_train, y_train, X_test, y_test = admissions_split(table, seed=seed)
    assert X_train.shape == (len(y_train), 6) and X_test.shape == (len(y_test), 6)
    assert len(y_train) + len(y_test) == n and len(y_test) == round(0.1 * n)
    np.testing.assert_array_equal(np.vstack([X_train, X_test])[:, 2:].sum(axis=1), 1)
    assert np.abs(X_train[:, :2].mean(axis=0)).max() < 1e-9  # gre, gpa standardised on train rows
    assert set(np.unique(np.concatenate([y_train, y_test]))) <= {0, 1}


def test_admissions_split_names_missing_columns():
    table = synthetic.admissions_table(50)
    del table["gpa"]
    with pytest.raises(ValueError, match="gpa"):
        admissions_split(table)


def test_generated_admissions_follow_their_logistic_ground_truth():
    X_train, y_train, X_test, y_test = admissions_split(synthetic.admissions_table(4000, seed=3))
    model = LogisticRegression(6)
    model.fit(X_train, y_train, epochs=300, lr=0.5)
    gre_weight, gpa_weight, *rank_weights = model.weights
    assert gre_weight > 0 and gpa_weight > 0  # better scores help
    assert rank_weights == sorted(rank_weights, reverse=True)  # rank 1 helps most


def test_two_blobs_and_image_classes_shapes():
    X, y = synthetic.two_blobs(30, seed=1)
    assert X.shape == (60, 2) and np.bincount(y).tolist() == [30, 30]
    images, labels = synthetic.image_classes(n=50, n_classes=4, side=6, seed=2)
    assert images.shape == (50, 36) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1 and labels.max() < 4


def test_generated_bike_table_has_the_columns_of_hour_csv():
    header = [
        "instant",
        "dteday",
        "season",
        "yr",
        "mnth",
        "hr",
        "holiday",
        "weekday",
        "workingday",
        "weathersit",
        "temp",
        "atemp",
        "hum",
        "windspeed",
        "casual",
        "registered",
        "cnt",
    ]
    table = synthetic.bike_sharing_table(days=400, seed=0)
    assert list(table) == header
    assert all(len(column) == 400 * 24 for column in table.values())
    np.testing.assert_array_equal(table["cnt"], table["casual"] + table["registered"])
    assert table["dteday"][0] == "2011-01-01" and table["weekday"][0] == 6  # a Saturday
    working = table["workingday"] == 1
    rush, night = table["hr"] == 8, table["hr"] == 3
    assert table["cnt"][working & rush].mean() > 5 * table["cnt"][working & night].mean()
