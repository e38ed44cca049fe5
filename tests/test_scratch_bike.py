"""The bike-sharing feature pipeline, on the generated table with the columns of hour.csv."""

from __future__ import annotations

import numpy as np
import pytest

from dlnd.scratch.bike_sharing import CATEGORIES, TEST_DAYS, VAL_DAYS, prepare
from dlnd.scratch.synthetic import bike_sharing_table


@pytest.fixture(scope="module")
def data():
    return prepare(bike_sharing_table(days=150, seed=0))


def test_split_is_by_day_with_test_last(data):
    assert len(np.unique(data.test.dates)) == TEST_DAYS
    assert len(np.unique(data.val.dates)) == VAL_DAYS
    train, val, test = (sorted(set(part.dates)) for part in (data.train, data.val, data.test))
    assert train[-1] < val[0] <= val[-1] < test[0]
    assert len(data.train.X) + len(data.val.X) + len(data.test.X) == 150 * 24


def test_features_are_one_hot_and_standardised_on_training_days(data):
    names = data.feature_names
    assert len(names) == 56 and data.train.X.shape[1] == 56 and data.train.X.dtype == np.float32
    for column in CATEGORIES:
        group = [i for i, n in enumerate(names) if n.startswith(f"{column}_")]
        np.testing.assert_array_equal(data.train.X[:, group].sum(axis=1), 1)
    temp = data.train.X[:, names.index("temp")]
    assert abs(temp.mean()) < 1e-5 and temp.std() == pytest.approx(1, abs=1e-5)
    assert abs(data.train.y.mean()) < 1e-5 and data.train.y.std() == pytest.approx(1, abs=1e-5)
    assert not any(
        n.startswith(("casual", "registered", "cnt", "atemp", "workingday")) for n in names
    )


def test_to_rentals_undoes_the_standardisation():
    table = bike_sharing_table(days=100, seed=1)
    data = prepare(table)
    np.testing.assert_allclose(
        data.to_rentals(data.test.y[:, 0]), table["cnt"][-TEST_DAYS * 24 :], rtol=1e-5
    )


def test_missing_columns_are_named():
    table = bike_sharing_table(days=100)
    del table["hum"]
    with pytest.raises(ValueError, match="hum"):
        prepare(table)
