"""Absorption models: XSPEC wabs (Morrison & McCammon 1983) and tabulated EBL absorption."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

import xspec_ds as xs

from .._requirements import require_gammapy

# Morrison & McCammon (1983), ApJ 270, 119, Table 2, typed here from the paper (independently of the
# package's table): upper edge of each range in keV, then c0, c1, c2 with
# sigma(E) = (c0 + c1 E + c2 E^2) E^-3 x 1e-24 cm2 (E in keV).
MM83 = """
0.100  17.3   608.1  -2150.0
0.284  34.6   267.9   -476.1
0.400  78.1    18.8      4.3
0.532  71.4    66.8    -51.4
0.707  95.5   145.8    -61.1
0.867 308.9  -380.6    294.0
1.303 120.6   169.3    -47.7
1.840 141.3   146.8    -31.5
2.471 202.7   104.7    -17.0
3.210 342.7    18.7      0.0
4.038 352.2    18.7      0.0
7.111 433.9    -2.4      0.75
8.331 629.0    30.9      0.0
10.00 701.2    25.2      0.0
"""


def _sigma_paper(e_kev):
    rows = np.array([line.split() for line in MM83.strip().splitlines()], dtype=float)
    out = np.empty_like(e_kev)
    for i, e in enumerate(e_kev):
        k = np.flatnonzero(e < rows[:, 0])
        c = rows[k[0] if k.size else -1, 1:]
        out[i] = (c[0] + c[1] * e + c[2] * e**2) / e**3 * 1e-24
    return out


@pytest.mark.parametrize("nh", [0.0, 0.02, 0.3, 5.0])
def test_wabs_equals_paper_formula(nh):
    energy = np.geomspace(0.03, 10, 200) * 0.99999  # stay off the edges themselves
    expected = np.exp(-nh * 1e22 * _sigma_paper(energy))
    model = xs.WabsNormSpectralModel(nh=nh)
    values = model(energy * u.keV)
    assert values.unit == u.dimensionless_unscaled
    np.testing.assert_allclose(values.value, expected, rtol=1e-12, atol=0)


def test_absorbed_powerlaw_integral_and_gradient():
    pl = xs.PowerLawSpectralModel(index=2, amplitude="1e-3 cm-2 s-1 keV-1", reference="1 keV")
    model = xs.WabsNormSpectralModel(nh=0.2) * pl
    assert type(model).__name__ == "AbsorbedSpectralModel"
    emin = np.geomspace(0.3, 8, 20) * 1e-9  # TeV
    emax = emin * 1.2
    # integral vs a dense trapezoid in log E written here (edges avoided by the grid)
    e = np.geomspace(emin, emax, 20001, axis=-1)
    f = model(e * u.TeV).to_value("cm-2 s-1 TeV-1")
    trap = np.sum(0.5 * (f[:, 1:] + f[:, :-1]) * np.diff(e, axis=-1), axis=-1)
    np.testing.assert_allclose(model._integral(emin, emax), trap, rtol=1e-4)
    params = [p for p in model.parameters if not p.frozen]
    analytic = model._integral_deriv(emin, emax, params)
    for k, p in enumerate(params):
        v = p.value
        h = 1e-6 * max(abs(v), 1e-3)
        p.value = v + h
        up = model._integral(emin, emax)
        p.value = v - h
        down = model._integral(emin, emax)
        p.value = v
        np.testing.assert_allclose(analytic[k], (up - down) / (2 * h), rtol=1e-6)


def test_absorbed_model_dict_roundtrip():
    model = xs.WabsNormSpectralModel(nh=0.3) * xs.PowerLawSpectralModel(index=1.7)
    back = xs.SpectralModel.from_dict(model.to_dict())
    assert type(back) is type(model)
    assert back.parameters["nh"].value == 0.3 and back.parameters["index"].value == 1.7


# ------------------------------------------------------------------------------------------------
# EBL: a synthetic table in Gammapy's XSPEC table-model layout
# ------------------------------------------------------------------------------------------------
def _write_ebl_table(path, redshifts, e_lo, e_hi, values):
    params = fits.BinTableHDU.from_columns(
        [
            fits.Column("NAME", "12A", array=["redshift"]),
            fits.Column("METHOD", "J", array=[0]),
            fits.Column("INITIAL", "E", array=[redshifts[0]]),
            fits.Column("DELTA", "E", array=[0.01]),
            fits.Column("MINIMUM", "E", array=[redshifts[0]]),
            fits.Column("BOTTOM", "E", array=[redshifts[0]]),
            fits.Column("TOP", "E", array=[redshifts[-1]]),
            fits.Column("MAXIMUM", "E", array=[redshifts[-1]]),
            fits.Column("NUMBVALS", "J", array=[len(redshifts)]),
            fits.Column("VALUE", f"{len(redshifts)}D", array=[redshifts]),
        ],
        name="PARAMETERS",
    )
    energies = fits.BinTableHDU.from_columns(
        [fits.Column("ENERG_LO", "D", array=e_lo), fits.Column("ENERG_HI", "D", array=e_hi)], name="ENERGIES"
    )
    spectra = fits.BinTableHDU.from_columns(
        [
            fits.Column("PARAMVAL", "D", array=redshifts),
            fits.Column("INTPSPEC", f"{len(e_lo)}D", array=values),
        ],
        name="SPECTRA",
    )
    fits.HDUList([fits.PrimaryHDU(), params, energies, spectra]).writeto(path)


@pytest.fixture
def ebl_table(tmp_path):
    redshifts = np.linspace(0.0, 1.0, 11)
    edges = np.geomspace(1e7, 1e11, 41)  # keV: 10 GeV - 100 TeV
    e_c = np.sqrt(edges[:-1] * edges[1:])
    tau = redshifts[:, None] * 3.0 * (e_c[None, :] / 1e9) ** 0.8  # a smooth optical depth
    path = tmp_path / "ebl_test.fits.gz"
    _write_ebl_table(path, redshifts, edges[:-1], edges[1:], np.exp(-tau))
    return path


@pytest.mark.gammapy
@pytest.mark.parametrize(("z", "alpha_norm"), [(0.0, 1.0), (0.137, 1.0), (0.5, 1.3), (1.0, 0.7)])
def test_ebl_matches_gammapy(ebl_table, z, alpha_norm):
    gp = require_gammapy("gammapy.modeling.models")
    energy = np.geomspace(0.005, 150, 300) * u.TeV  # includes extrapolation on both ends
    ours = xs.EBLAbsorptionNormSpectralModel.read(ebl_table, redshift=z, alpha_norm=alpha_norm)
    theirs = gp.EBLAbsorptionNormSpectralModel.read(ebl_table, redshift=z, alpha_norm=alpha_norm)
    np.testing.assert_allclose(ours(energy).value, theirs(energy).to_value(""), rtol=1e-6, atol=1e-300)


def test_ebl_redshift_outside_grid(ebl_table):
    with pytest.raises(ValueError, match=r"redshift 1\.5 is outside the table's grid \[0\.0, 1\.0\]"):
        xs.EBLAbsorptionNormSpectralModel.read(ebl_table, redshift=1.5)
    model = xs.EBLAbsorptionNormSpectralModel.read(ebl_table, redshift=0.2)
    model.parameters["redshift"].value = -0.1
    with pytest.raises(ValueError, match="outside the table's grid"):
        model("1 TeV")


def test_ebl_not_a_table(tmp_path):
    path = tmp_path / "x.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(path)
    with pytest.raises(ValueError, match="no PARAMETERS extension"):
        xs.EBLAbsorptionNormSpectralModel.read(path)


def _absorbed_models(ebl_path):
    pl = xs.PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    ebl = xs.EBLAbsorptionNormSpectralModel.read(ebl_path, redshift=0.15, alpha_norm=1.0)
    ebl.parameters["redshift"].frozen = False
    ebl.parameters["alpha_norm"].frozen = False
    return {
        "wabs": xs.WabsNormSpectralModel(nh=0.3)
        * xs.PowerLawSpectralModel(index=1.8, amplitude="1e-3 cm-2 s-1 keV-1", reference="1 keV"),
        "ebl": ebl * pl,
    }


@pytest.mark.parametrize("name", ["wabs", "ebl"])
def test_absorbed_kernels_rows_and_jacobian(ebl_table, name):
    """The pure kernels of absorbed models: rows of a parameter array equal the object at those
    values, no parameter is changed, and the Jacobian equals central differences of the kernel."""
    model = _absorbed_models(ebl_table)[name]
    edges = np.geomspace(3e-10, 9e-9, 25) if name == "wabs" else np.geomspace(0.1, 5.0, 25)  # TeV (0.3-9 keV for wabs)
    e_lo, e_hi = edges[:-1], edges[1:]
    theta0 = model.theta()
    rng = np.random.default_rng(3)
    theta = theta0 * rng.uniform(0.9, 1.1, (3, theta0.size))
    flux = model.integral_kernel(theta, e_lo, e_hi)
    np.testing.assert_array_equal(model.theta(), theta0)
    for row, f in zip(theta, flux, strict=True):
        for p, v in zip(model.parameters, row, strict=True):
            p.value = v / p._scale_to_canonical
        np.testing.assert_allclose(f, model._integral(e_lo, e_hi), rtol=1e-12, atol=0)
    jac = model.integral_jacobian(theta, e_lo, e_hi)
    for i in range(theta0.size):
        h = 1e-6 * np.abs(theta[:, i : i + 1])
        tp, tm = theta.copy(), theta.copy()
        tp[:, i : i + 1] += h
        tm[:, i : i + 1] -= h
        fd = (model.integral_kernel(tp, e_lo, e_hi) - model.integral_kernel(tm, e_lo, e_hi)) / (2 * h)
        np.testing.assert_allclose(jac[:, i], fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max(), err_msg=str(i))
