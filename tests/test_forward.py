"""Forward folding: identity / diagonal kernels, batching over a leading obs dimension, sparse and
banded kernels against the dense product (including after in-place edits)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xspec_ds as xs
from xspec_ds import forward

from ._asserts import assert_close
from .conftest import edges_geom, pl_integral_ref, skew_kernel


def test_fold_identity_and_none():
    mu = np.array([1.0, 2.5, 0.0, 7.0])
    np.testing.assert_array_equal(forward.fold(mu, np.eye(4)), mu)
    np.testing.assert_array_equal(forward.fold(mu, None), mu)


def test_fold_diagonal_sums_true_bins_into_reco():
    mu = np.arange(1.0, 7.0)  # 6 true bins
    m = np.zeros((6, 3))
    m[np.arange(6), np.arange(6) // 2] = 1.0
    np.testing.assert_array_equal(forward.fold(mu, m), [1 + 2, 3 + 4, 5 + 6])


def test_fold_general_matrix_vs_explicit_sum():
    rng = np.random.default_rng(0)
    mu = rng.uniform(0, 10, 8)
    m = rng.uniform(0, 1, (8, 5))
    m /= m.sum(axis=1, keepdims=True) * 1.2
    expected = [sum(mu[i] * m[i, j] for i in range(8)) for j in range(5)]
    np.testing.assert_allclose(forward.fold(mu, m), expected, rtol=1e-13)


@pytest.mark.parametrize("shared_edisp", [True, False])
def test_batched_fold_equals_loop(shared_edisp):
    rng = np.random.default_rng(1)
    n_obs, nt, nr = 6, 10, 5
    mu = rng.uniform(0, 10, (n_obs, nt))
    m = rng.uniform(0, 0.2, (nt, nr) if shared_edisp else (n_obs, nt, nr))
    out = forward.fold(mu, m)
    assert out.shape == (n_obs, nr)
    for k in range(n_obs):
        np.testing.assert_allclose(out[k], forward.fold(mu[k], m if shared_edisp else m[k]), rtol=1e-13)


def test_batched_npred_signal_and_integral_equal_loop():
    """Flux, exposure and edisp with an obs dimension: one call equals a loop over observations."""
    rng = np.random.default_rng(2)
    n_obs, nt, nr = 4, 12, 6
    et = edges_geom(0.1, 100, nt)
    model = xs.PowerLawSpectralModel(index=2.1, amplitude="1e-11 cm-2 s-1 TeV-1")
    # observations with different true-energy edges (shifted) to exercise leading dims in integration
    shifts = rng.uniform(0.9, 1.1, n_obs)[:, None]
    emin, emax = et[:-1] * shifts, et[1:] * shifts
    flux = forward.integrate_flux(model, emin, emax)
    exposure = rng.uniform(1e8, 1e10, (n_obs, nt))
    edisp = rng.uniform(0, 1.0 / nr, (n_obs, nt, nr))
    batched = forward.npred_signal(flux, exposure, edisp)
    for k in range(n_obs):
        flux_k = pl_integral_ref(1e-11, 2.1, 1.0, emin[k], emax[k])
        np.testing.assert_allclose(flux[k], flux_k, rtol=1e-12)
        np.testing.assert_allclose(batched[k], forward.npred_signal(flux_k, exposure[k], edisp[k]), rtol=1e-12)


def test_batched_quadrature_integral_equals_loop():
    model = xs.LogParabolaSpectralModel(alpha=2.0, beta=0.3, reference="1 TeV")
    rng = np.random.default_rng(3)
    emin = rng.uniform(0.1, 1, (3, 5))
    emax = emin * rng.uniform(1.5, 20, (3, 5))
    nodes = forward.nodes_for(model, emin, emax)
    batched = forward.integrate_flux(model, emin, emax, nodes)
    for k in range(3):
        np.testing.assert_allclose(batched[k], model._integral(emin[k], emax[k]), rtol=1e-12)


def test_nodes_for_analytic_model_is_none():
    assert forward.nodes_for(xs.PowerLawSpectralModel(), np.array([1.0]), np.array([2.0])) is None
    assert forward.nodes_for(xs.LogParabolaSpectralModel(), np.array([1.0]), np.array([2.0])) is not None


def test_npred_total_clips_and_errors():
    np.testing.assert_array_equal(forward.npred_total(np.array([1.0, -5.0]), np.array([1.0, 2.0])), [2.0, 0.0])
    np.testing.assert_array_equal(forward.npred_total(None, np.array([3.0])), [3.0])
    with pytest.raises(ValueError, match="neither models nor background"):
        forward.npred_total(None, None)


# --- sparse kernels --------------------------------------------------------------------------
@pytest.mark.parametrize("leading", [(), (3,), (2, 12)])
def test_sparse_kernel_fold_equals_dense(leading):
    from xspec_ds.forward import SparseKernel, prepare_kernel

    rng = np.random.default_rng(5)
    n_true, n_reco = 400, 300
    matrix = np.zeros((n_true, n_reco))
    # a banded, response-like matrix: 5 % non-zero
    for shift in range(-7, 8):
        idx = np.arange(n_true)
        cols = (idx * n_reco) // n_true + shift
        ok = (cols >= 0) & (cols < n_reco)
        matrix[idx[ok], cols[ok]] = rng.uniform(0, 0.06, ok.sum())
    kernel = prepare_kernel(matrix)
    assert isinstance(kernel, SparseKernel)
    mu = rng.uniform(0, 10, leading + (n_true,))
    np.testing.assert_allclose(forward.fold(mu, kernel), forward.fold(mu, matrix), rtol=1e-12, atol=0)


def test_prepare_kernel_keeps_small_or_dense_matrices():
    from xspec_ds.forward import prepare_kernel

    small = np.eye(50)
    assert prepare_kernel(small) is small
    dense = np.full((300, 300), 1 / 300)
    assert prepare_kernel(dense) is dense
    assert prepare_kernel(None) is None


# --- banded kernels (elements left out by magnitude) ------------------------------------------
def gaussian_kernel(n_reco: int, sigma_scale: float = 1.0):
    """The benchmark's kernel: Gaussian in ln E, 10-20 % resolution, rows summing to <= 1,
    2 n_reco true bins from 0.05 to 200 TeV on reco 0.1-100 TeV; plus true-bin edges."""
    from scipy.special import ndtr

    e_reco = np.geomspace(0.1, 100.0, n_reco + 1)
    e_true = np.geomspace(0.05, 200.0, 2 * n_reco + 1)
    centre = np.sqrt(e_true[:-1] * e_true[1:])
    sigma = (0.10 + 0.10 / (1.0 + centre)) * sigma_scale
    z = (np.log(e_reco)[None, :] - np.log(centre)[:, None] - 0.02) / sigma[:, None]
    return np.diff(ndtr(z), axis=1), e_true


def true_counts(e_true, index=2.5, beta=0.0):
    """Log-parabola (power law for beta = 0) bin integrals x an exposure with a threshold."""
    lo, hi = e_true[:-1], e_true[1:]
    centre = np.sqrt(lo * hi)
    flux = 1e-11 * centre ** (-index - beta * np.log(centre)) * (hi - lo)
    exposure = 1.0e10 * (1.0 - np.exp(-((centre / 0.15) ** 1.5)))
    return flux * exposure


@pytest.mark.parametrize("n_reco", [150, 400])
@pytest.mark.parametrize(("index", "beta"), [(2.5, 0.0), (1.6, 0.0), (3.5, 0.0), (2.3, 0.2)])
def test_banded_fold_equals_dense_in_every_bin(n_reco, index, beta):
    matrix, e_true = gaussian_kernel(n_reco)
    kernel = forward.prepare_kernel(matrix)
    assert isinstance(kernel, forward.BandedKernel)
    assert kernel.work < 0.5  # about a quarter of the matrix is read
    mu = true_counts(e_true, index, beta)
    dense, banded = mu @ matrix, forward.fold(mu, kernel)
    # every bin, including the faintest (the documented bound allows 1e-9 in bins >= 1e-3 of the total)
    np.testing.assert_allclose(banded, dense, rtol=1e-9, atol=0)
    left_out = dense - banded
    assert np.all(left_out >= -1e-12 * dense)  # only non-negative elements are left out (up to rounding)
    assert left_out.sum() <= forward.TAIL_RTOL * dense.sum()


@pytest.mark.parametrize("leading", [(), (3,), (2, 5)])
def test_banded_fold_and_adjoint_of_several_vectors(leading):
    matrix, e_true = gaussian_kernel(200)
    kernel = forward.BandedKernel(matrix)
    rng = np.random.default_rng(3)
    mu = true_counts(e_true) * rng.uniform(0.5, 1.5, leading + (e_true.size - 1,))
    np.testing.assert_allclose(forward.fold(mu, kernel), mu @ matrix, rtol=1e-9, atol=0)
    # the adjoint with the same left-out elements: exactly <fold(mu), w> = <mu, backproject(w)>
    w = rng.uniform(-1, 1, leading + (200,))
    lhs = np.sum(forward.fold(mu, kernel) * w, axis=-1)
    rhs = np.sum(mu * forward.backproject(w, kernel), axis=-1)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        forward.backproject(w, kernel), w @ matrix.T, rtol=0, atol=1e-12 * np.abs(w @ matrix.T).max()
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), n_true=st.integers(1, 30), n_reco=st.integers(1, 30), zeros=st.floats(0, 0.9))
def test_row_bands_leave_out_at_most_the_tolerance(seed, n_true, n_reco, zeros):
    rng = np.random.default_rng(seed)
    m = rng.lognormal(0, 8, (n_true, n_reco)) * (rng.uniform(size=(n_true, n_reco)) >= zeros)
    rtol = 1e-6
    lo, hi = forward.row_bands(m, rtol)
    total = m.sum(axis=1)
    for i in range(n_true):  # a loop on purpose: an independent check of the vectorised cumsums
        left, right = m[i, : lo[i]].sum(), m[i, hi[i] :].sum()
        if total[i] == 0:
            assert lo[i] == hi[i]
            continue
        assert left <= rtol / 2 * total[i] and right <= rtol / 2 * total[i]
        assert lo[i] < hi[i]
        assert m[i, lo[i]] > 0 and m[i, hi[i] - 1] > 0  # the band starts and ends on non-zero elements
        # every element that alone exceeds the tolerance is inside the band
        big = np.flatnonzero(m[i] > rtol / 2 * total[i])
        assert big.size == 0 or (lo[i] <= big[0] and big[-1] < hi[i])


def test_banded_kernel_sees_in_place_edits_inside_and_next_to_the_bands():
    matrix, e_true = gaussian_kernel(200)
    kernel = forward.prepare_kernel(matrix)
    mu = true_counts(e_true)
    matrix *= 0.5  # inside the bands: read at every fold
    np.testing.assert_allclose(forward.fold(mu, kernel), mu @ matrix, rtol=1e-9, atol=0)
    wider, _ = gaussian_kernel(200, sigma_scale=2.0)
    matrix[:] = wider  # a wider kernel written in place: mass appears next to the old bands
    old_work = kernel.work
    np.testing.assert_allclose(forward.fold(mu, kernel), mu @ matrix, rtol=1e-9, atol=0)
    assert kernel.work > old_work  # the bands were recomputed
    np.testing.assert_allclose(forward.backproject(np.ones(200), kernel), matrix.sum(axis=1), rtol=1e-9, atol=0)


def test_dataset_npred_with_banded_kernel_after_in_place_edits():
    n = 200
    matrix, e_true = gaussian_kernel(n)
    e = xs.MapAxis.from_energy_bounds(0.1, 100, n, unit="TeV")
    et = xs.MapAxis.from_energy_edges(e_true, unit="TeV", name="energy_true")
    ds = xs.SpectrumDataset.create(e, et, name="banded")
    ds.data["edisp"].values[:] = matrix
    ds.data["exposure"].values[:] = 1e6  # m2 s
    ds.models = xs.PowerLawSpectralModel(index=2.5, amplitude="1e-11 cm-2 s-1 TeV-1")

    def dense_npred():
        flux = ds.models[0].spectral_model.integral(et.edges[:-1], et.edges[1:]).to_value("cm-2 s-1")
        return (flux * ds.data["exposure"].values * 1e4) @ ds.data["edisp"].values

    np.testing.assert_allclose(ds.npred().values, dense_npred(), rtol=1e-9, atol=0)
    assert isinstance(ds._hot().edisp, forward.BandedKernel)
    ds.data["edisp"].values[:, : n // 2] *= 0.7  # in place, inside the bands
    np.testing.assert_allclose(ds.npred().values, dense_npred(), rtol=1e-9, atol=0)
    ds.data["edisp"].values[:] = gaussian_kernel(n, sigma_scale=1.8)[0]  # in place, wider
    np.testing.assert_allclose(ds.npred().values, dense_npred(), rtol=1e-9, atol=0)


def test_prepare_kernel_choices():
    gauss, _ = gaussian_kernel(150)
    assert isinstance(forward.prepare_kernel(gauss), forward.BandedKernel)
    flat = np.random.default_rng(0).uniform(0, 1, (300, 150))
    assert forward.prepare_kernel(flat) is flat  # no band: dense BLAS
    mostly_zero = np.where(gauss > 0.01, gauss, 0.0)
    assert isinstance(forward.prepare_kernel(mostly_zero), forward.SparseKernel)


# --- square, non-symmetric kernels: a transposed fold must fail -----------------------------------
def _explicit_fold(mu, m):
    """``sum_i mu_i m_ij`` as a double loop (rows of m: true bins, columns: reco bins)."""
    n_true, n_reco = m.shape
    return np.array([sum(mu[i] * m[i, j] for i in range(n_true)) for j in range(n_reco)])


def _explicit_backproject(w, m):
    """``sum_j m_ij w_j`` as a double loop."""
    n_true, n_reco = m.shape
    return np.array([sum(m[i, j] * w[j] for j in range(n_reco)) for i in range(n_true)])


def test_fold_square_nonsymmetric_kernel_literal():
    # true bin 0 -> reco 0 (0.6), 1 (0.25), 2 (0.1); bin 1 -> reco 1, 2; bin 2 -> reco 2
    m = skew_kernel(3)
    mu = np.array([10.0, 20.0, 40.0])
    expected = [0.6 * 10, 0.25 * 10 + 0.6 * 20, 0.1 * 10 + 0.25 * 20 + 0.6 * 40]
    assert_close(forward.fold(mu, m), expected, rtol=1e-15)
    assert_close(forward.backproject(np.array([1.0, 2.0, 4.0]), m), [0.6 + 0.5 + 0.4, 1.2 + 1.0, 2.4], rtol=1e-15)


@pytest.mark.parametrize("sparse", [False, True])
def test_fold_and_backproject_square_nonsymmetric_vs_explicit(sparse):
    from xspec_ds.forward import SparseKernel

    rng = np.random.default_rng(11)
    n = 9
    m = np.triu(rng.uniform(0.05, 0.3, (n, n)))  # upper triangular: clearly not symmetric
    assert not np.allclose(m, m.T, rtol=0, atol=0.01)
    kernel = SparseKernel(m) if sparse else m
    mu = rng.uniform(0, 10, n)
    w = rng.uniform(-1, 1, n)
    assert_close(forward.fold(mu, kernel), _explicit_fold(mu, m), rtol=1e-13)
    assert_close(forward.backproject(w, kernel), _explicit_backproject(w, m), rtol=1e-13)
    # adjoint: <fold(mu), w> == <mu, backproject(w)>
    assert_close(forward.fold(mu, kernel) @ w, mu @ forward.backproject(w, kernel), rtol=1e-12)
    # batched over a leading obs dimension, with one kernel or a kernel per observation
    mus = rng.uniform(0, 10, (4, n))
    ws = rng.uniform(-1, 1, (4, n))
    for k in range(4):
        assert_close(forward.fold(mus, kernel)[k], _explicit_fold(mus[k], m), rtol=1e-13)
        assert_close(forward.backproject(ws, kernel)[k], _explicit_backproject(ws[k], m), rtol=1e-13)
    if not sparse:
        stack = np.stack([m, m.T, 2 * m, np.tril(m)])
        for k in range(4):
            assert_close(forward.fold(mus, stack)[k], _explicit_fold(mus[k], stack[k]), rtol=1e-13)
            assert_close(forward.backproject(ws, stack)[k], _explicit_backproject(ws[k], stack[k]), rtol=1e-13)


def test_npred_signal_square_nonsymmetric_kernel():
    et = edges_geom(0.1, 100, 6)
    model = xs.PowerLawSpectralModel(index=2.1, amplitude="1e-11 cm-2 s-1 TeV-1")
    flux = forward.integrate_flux(model, et[:-1], et[1:])
    exposure = np.geomspace(1e9, 1e11, 6)
    m = skew_kernel(6)
    expected = _explicit_fold(pl_integral_ref(1e-11, 2.1, 1.0, et[:-1], et[1:]) * exposure, m)
    assert_close(forward.npred_signal(flux, exposure, m), expected, rtol=1e-12)


def test_prepare_kernel_thresholds_are_inclusive():
    """Documented: kernels with *at least* SPARSE_MIN_SIZE elements and *at most* SPARSE_MAX_DENSITY
    non-zero are stored sparse; the exact boundary case (200 x 200, 15 % non-zero) is sparse."""
    from xspec_ds.forward import SPARSE_MAX_DENSITY, SPARSE_MIN_SIZE, SparseKernel, prepare_kernel

    n = 200
    assert n * n == SPARSE_MIN_SIZE
    m = np.zeros((n, n))
    k = int(round(SPARSE_MAX_DENSITY * m.size))
    assert k == SPARSE_MAX_DENSITY * m.size  # exactly at the density limit
    m.flat[np.random.default_rng(0).choice(m.size, k, replace=False)] = 0.01
    kernel = prepare_kernel(m)
    assert isinstance(kernel, SparseKernel)
    mu = np.linspace(1.0, 2.0, n)
    assert_close(forward.fold(mu, kernel), mu @ m, rtol=1e-12)
    m.flat[np.flatnonzero(m == 0)[0]] = 0.01  # one more non-zero: dense
    assert prepare_kernel(m) is m
    small = np.zeros((n, n - 1))  # one column short of SPARSE_MIN_SIZE elements: dense, even if empty
    assert prepare_kernel(small) is small


def test_npred_total_error_message():
    with pytest.raises(ValueError, match=r"^nothing to predict: the dataset has neither models nor background$"):
        forward.npred_total(None, None)


@pytest.mark.parametrize("kind", ["sparse", "banded"])
def test_derived_kernels_notice_any_in_place_edit(kind):
    """`is_current` (one product with fixed weights) is False after an edit of any one element,
    also one that swaps two values of a row (same row sum), and True again after a rebuild."""
    from xspec_ds import forward

    rng = np.random.default_rng(5)
    nt, nr = 300, 200
    if kind == "sparse":
        m = rng.uniform(size=(nt, nr)) * (rng.uniform(size=(nt, nr)) < 0.05)
    else:
        i = np.arange(nt)[:, None] * nr / nt
        m = np.exp(-0.5 * ((np.arange(nr)[None, :] - i) / 3.0) ** 2)
    m = 0.9 * m / np.maximum(m.sum(axis=1, keepdims=True), 1e-300)
    kernel = forward.prepare_kernel(m)
    assert type(kernel).__name__ == {"sparse": "SparseKernel", "banded": "BandedKernel"}[kind]
    assert kernel.is_current()
    j0, j1 = np.flatnonzero(m[7])[:2]
    m[7, j0], m[7, j1] = m[7, j1], m[7, j0]  # a swap inside one row: the row sum is unchanged
    assert not kernel.is_current()
    m[7, j0], m[7, j1] = m[7, j1], m[7, j0]
    assert kernel.is_current()
    m[150, 0] += 1e-9  # one element, far from everything
    assert not kernel.is_current()
    assert forward.prepare_kernel(m).is_current()


def test_banded_kernel_with_blocks_of_rows_without_mass():
    """Row blocks whose rows all sum to zero are skipped by the fold and give exact zeros in
    the adjoint; `_all_blocks` covers every row once, in order."""
    matrix, e_true = gaussian_kernel(200)  # 400 true x 200 reco, blocks of 64 rows
    empty = np.r_[0:70, 192:260, 330:400]
    matrix[empty] = 0.0
    kernel = forward.BandedKernel(matrix)
    assert [b[:2] for b in kernel.blocks] == [(64, 128), (128, 192), (256, 320), (320, 384)]
    expected = [(0, 64, 0, 0), *kernel.blocks[:2], (192, 256, 0, 0), *kernel.blocks[2:], (384, 400, 0, 0)]
    assert list(kernel._all_blocks()) == expected
    full = forward.BandedKernel(gaussian_kernel(200)[0])  # every block has mass: the blocks themselves
    assert len(full.blocks) == 7 and list(full._all_blocks()) == full.blocks
    rng = np.random.default_rng(4)
    w = rng.uniform(-1, 1, (3, 200))
    back = forward.backproject(w, kernel)
    assert np.all(back[:, empty] == 0.0)
    np.testing.assert_allclose(back, w @ matrix.T, rtol=0, atol=1e-12 * np.abs(w @ matrix.T).max())
    mu = true_counts(e_true)
    dense = mu @ matrix  # the documented bound: each bin within 1e-12 of the total folded counts
    np.testing.assert_allclose(forward.fold(mu, kernel), dense, rtol=0, atol=forward.TAIL_RTOL * dense.sum())


def test_banded_kernel_check_reports_recomputed_bands():
    """`check` probes the element just left and right of every band against ``rtol / 2`` of the
    row sum, and returns whether the bands were recomputed."""
    matrix, _ = gaussian_kernel(200)
    matrix[:70] = 0.0  # rows without mass: probed at column 0 against a zero limit
    matrix[300] = 1.0 / 200  # a full row (band = all columns): nothing to probe
    matrix[250] = 0.0
    matrix[250, 1:5] = 0.125  # band [1, 5) of a row summing to 0.5: limit 0.25e-12 at columns 0 and 5
    kernel = forward.BandedKernel(matrix)
    assert (kernel.lo[250], kernel.hi[250], kernel.lo[300], kernel.hi[300]) == (1, 5, 0, 200)
    assert kernel.check() is False  # nothing edited: nothing recomputed
    hi = kernel.hi.copy()
    matrix[200, hi[200]] = 0.01  # mass just outside the band of row 200
    assert kernel.check() is True
    assert kernel.hi[200] == hi[200] + 1
    assert kernel.check() is False
    matrix[250, 0] = 5e-13  # twice the limit, just left of the band
    assert kernel.check() is True
    assert kernel.lo[250] == 0
    assert kernel.check() is False


def test_banded_kernel_work_is_the_fraction_read():
    assert forward.BandedKernel(np.ones((1, 1))).work == 1.0
    m = np.zeros((128, 10))
    m[:64, 2:4] = 0.5  # block 0 reads 64 x 2, block 1 (no mass) nothing
    assert forward.BandedKernel(m).work == 64 * 2 / m.size
    m[0] = 0.0  # a row without mass does not widen its block's column range
    assert forward.BandedKernel(m).work == 64 * 2 / m.size


def test_prepare_kernel_bands_only_finite_non_negative_kernels_up_to_the_work_limit():
    m = np.zeros((256, 200))
    m[:, 40:160] = 1.0 / 120  # every row: a band of 120 of 200 columns, work = 0.6 = BAND_MAX_WORK
    kernel = forward.prepare_kernel(m)
    assert isinstance(kernel, forward.BandedKernel) and kernel.work == forward.BAND_MAX_WORK
    m[:, 39] = 1e-3  # wider than the limit: dense
    assert forward.prepare_kernel(m) is m
    m[:, 39] = 0.0
    for bad in (-1e-3, np.inf, np.nan):  # dense: NaN and inf must propagate, the tail bound needs rows >= 0
        m[7, 3] = bad
        assert forward.prepare_kernel(m) is m


def test_row_bands_threshold_is_exclusive():
    """Elements at or below ``t = rtol / 2 * row sum / n_reco`` at the ends of a row are left out."""
    m = np.array([[0.5, 3.5, 3.5, 0.5], [0.6, 3.4, 3.4, 0.6], [0.0, 0.0, 0.0, 0.0]])  # row sums 8
    lo, hi = forward.row_bands(m, rtol=0.5)  # t = 0.5 exactly
    np.testing.assert_array_equal(lo, [1, 0, 0])
    np.testing.assert_array_equal(hi, [3, 4, 0])


def test_row_bands_of_very_wide_rows_cover_every_row():
    """2**17 reco bins: the band search runs two rows at a time; every row gets its band."""
    m = np.zeros((5, 2**17))
    for i in range(5):
        m[i, 1000 * i + 10 : 1000 * i + 20] = 0.1
    lo, hi = forward.row_bands(m)
    np.testing.assert_array_equal(lo, 1000 * np.arange(5) + 10)
    np.testing.assert_array_equal(hi, 1000 * np.arange(5) + 20)
