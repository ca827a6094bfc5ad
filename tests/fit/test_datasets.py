"""`Datasets.info_table`, per dataset and cumulative (Gammapy's ``cumulative=True``)."""

from __future__ import annotations

import numpy as np
import pytest

import xspec_ds as xs

from ..conftest import build_arrays


def make(name, seed, safe_from=0):
    arrays, _, _ = build_arrays(n=8)
    rng = np.random.default_rng(seed)
    arrays["counts"] = arrays["counts"].copy(data=rng.poisson(20, 8).astype(float))
    arrays["background"] = arrays["background"].copy(data=rng.uniform(1, 5, 8))
    arrays["mask_safe"] = arrays["mask_safe"].copy(data=np.arange(8) >= safe_from)
    return xs.SpectrumDataset(name=name, **arrays)


@pytest.fixture
def datasets():
    return xs.Datasets([make("a", 1), make("b", 2, safe_from=2), make("c", 3, safe_from=5)])


def test_info_table_one_row_per_dataset(datasets):
    table = datasets.info_table()
    assert list(table["name"]) == ["a", "b", "c"]
    for row, d in zip(table, datasets, strict=True):
        safe = d.mask_safe.values
        assert row["counts"] == d.counts.values[safe].sum()


def test_info_table_cumulative_sums_safe_counts(datasets):
    before = [d.data.copy(deep=True) for d in datasets]
    table = datasets.info_table(cumulative=True)
    assert list(table["name"]) == ["stacked"] * 3
    safe_counts = [d.counts.values[d.mask_safe.values].sum() for d in datasets]
    safe_bkg = [d.background.values[d.mask_safe.values].sum() for d in datasets]
    np.testing.assert_array_equal(table["counts"], np.cumsum(safe_counts))
    np.testing.assert_allclose(table["background"], np.cumsum(safe_bkg), rtol=1e-14, atol=0)
    # the union of the safe masks: all 8 bins from the first dataset on
    np.testing.assert_array_equal(table["n_fit_bins"], [8, 8, 8])
    for d, b in zip(datasets, before, strict=True):  # inputs unchanged
        assert d.data.identical(b)
    assert not np.array_equal(table["counts"], datasets.info_table()["counts"])
