"""Square, non-symmetric dispersion kernels through the on-off (WSTAT) path, dense and sparse
(including the fit-mask restriction of large sparse kernels): a transposed fold or adjoint fails.

References are written here: the fold as an explicit sum over true bins, WSTAT from the XSPEC
manual's bin-by-bin form (`tests.test_onoff.xspec_wstat`), gradients by central differences.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest

import xspec_ds as xs
from xspec_ds import forward
from xspec_ds.axes import MapAxis

from ._asserts import assert_close, assert_gradient_is_central_difference
from .conftest import pl_integral_ref, skew_kernel
from .test_onoff import xspec_wstat


def make_onoff(n: int, seed: int = 0, mask=None) -> xs.SpectrumDatasetOnOff:
    e_reco = MapAxis.from_energy_bounds("0.1 TeV", "30 TeV", n)
    e_true = MapAxis.from_energy_bounds("0.1 TeV", "30 TeV", n, name="energy_true")
    ds = xs.SpectrumDatasetOnOff.create(e_reco, e_true, name=f"sq{n}")
    ds.exposure = np.geomspace(1e10, 1e11, n) * u.Unit("cm2 s")
    ds.edisp = skew_kernel(n)
    ds.acceptance = np.ones(n)
    ds.acceptance_off = np.full(n, 4.0)
    ds.mask_safe = np.ones(n, bool) if mask is None else mask
    ds.models = xs.SkyModel(xs.PowerLawSpectralModel(index=2.4, amplitude="2e-11 cm-2 s-1 TeV-1"), name="src")
    ds.fake(random_state=seed, npred_background=np.full(n, 3.0))
    return ds


def explicit_npred_signal(ds) -> np.ndarray:
    et = ds.data["energy_true_min"].values, ds.data["energy_true_max"].values
    mu_true = pl_integral_ref(2e-11, 2.4, 1.0, *et) * np.geomspace(1e10, 1e11, et[0].size)
    m = skew_kernel(mu_true.size)
    return np.array([sum(mu_true[i] * m[i, j] for i in range(mu_true.size)) for j in range(mu_true.size)])


@pytest.mark.parametrize("n", [8, 220])  # 220 x 220 = 48400 elements, 1.4 % non-zero: a sparse kernel
def test_onoff_npred_and_wstat_with_square_nonsymmetric_kernel(n):
    mask = np.ones(n, bool)
    mask[: n // 3] = False  # also exercises the fit-mask restriction of sparse kernels
    ds = make_onoff(n, mask=mask)
    assert isinstance(ds._hot().edisp, forward.SparseKernel) == (n == 220)
    expected = explicit_npred_signal(ds)
    assert_close(ds.npred_signal().values, expected, rtol=1e-12)
    wstat = xspec_wstat(ds.counts.values, ds.counts_off.values, ds.alpha.values, expected)
    assert_close(ds.stat_sum(), wstat[mask].sum(), rtol=1e-12)


@pytest.mark.parametrize("n", [8, 220])
def test_onoff_gradient_with_square_nonsymmetric_kernel(n):
    mask = np.ones(n, bool)
    mask[: n // 3] = False
    ds = make_onoff(n, seed=2, mask=mask)
    pl = ds.models[0].spectral_model
    pl.index.value = 2.25  # away from the optimum
    params = [pl.index, pl.amplitude]
    assert_close(ds._stat_gradient(params)[0], ds.stat_sum(), rtol=1e-12)
    assert_gradient_is_central_difference(ds, params, rtol=1e-5)
