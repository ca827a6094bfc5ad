"""Forward folding: model -> predicted counts.

For true-energy bin ``i`` with edges ``[E_i, E_i+1]`` and reco bin ``j``:

- ``F_i = integral dN/dE dE`` over the bin (analytic for power laws, otherwise
  log-space Gauss-Legendre quadrature, see `xspec_ds.models.quadrature`),
- ``mu_true_i = F_i * exposure_i``,
- ``npred_signal_j = sum_i mu_true_i * edisp_ij`` (edisp rows are the probabilities of true
  bin ``i`` landing in reco bin ``j``, never renormalised; as Gammapy's ``EDispKernel``),
- ``npred = max(npred_signal + npred_background, 0)``.

All functions take plain float arrays in canonical units (TeV, cm2 s, cm-2 s-1) and broadcast
over leading dimensions, e.g. an ``obs`` dimension of many spectra.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .models.quadrature import QuadratureNodes, quadrature_nodes

__all__ = [
    "SparseKernel",
    "BandedKernel",
    "kernel_fingerprint",
    "row_bands",
    "prepare_kernel",
    "fold",
    "backproject",
    "integrate_flux",
    "npred_signal",
    "npred_total",
    "nodes_for",
]


def nodes_for(model, energy_min: np.ndarray, energy_max: np.ndarray) -> QuadratureNodes | None:
    """Quadrature nodes for ``model`` on these bins, or None if its integral is closed-form."""
    if model.has_analytic_integral:
        return None
    return quadrature_nodes(energy_min, energy_max)


def integrate_flux(model, energy_min: np.ndarray, energy_max: np.ndarray, nodes=None) -> np.ndarray:
    """Integral flux of a spectral model in each bin, ``cm-2 s-1`` (edges in TeV)."""
    return model._integral(energy_min, energy_max, nodes)


SPARSE_MIN_SIZE = 40_000
"""Kernels with at least this many elements are considered for banded or sparse storage."""
SPARSE_MAX_DENSITY = 0.15
"""... stored sparse (CSR) when at most this fraction of their elements is non-zero (OGIP RMFs)."""
TAIL_RTOL = 1e-12
"""Each row of a banded kernel leaves out at most this fraction of the row's sum (both tails)."""
BAND_MAX_WORK = 0.6
"""A banded kernel is used when its blocks cover at most this fraction of the matrix."""
BAND_BLOCK_ROWS = 64
"""True-energy rows per block of a banded kernel (one BLAS product per block)."""


def kernel_fingerprint(matrix: np.ndarray) -> np.ndarray:
    """Per row, the sum of the row weighted by fixed irregular weights in [0.5, 1.5].

    A change of any element changes its row's value (unless several changes in one row cancel
    exactly), so a derived kernel (a sparse copy, bands) can tell whether the matrix it was built
    from was edited in place since: one matrix-vector product.
    """
    n_reco = matrix.shape[-1]
    weights = 1.0 + 0.5 * np.sin(np.arange(1, n_reco + 1) * 0.7548776662466927)  # irregular, never zero
    return matrix @ weights


class SparseKernel:
    """A dispersion matrix kept as the CSR matrix of its transpose, for fast folding.

    Real responses (e.g. OGIP RMFs, stored compressed) are mostly exact zeros: folding only the
    non-zero elements gives the same sums as the dense product (the zeros add nothing) at a
    fraction of the cost.
    """

    __slots__ = ("transposed", "shape", "source", "fingerprint")

    def __init__(self, matrix: np.ndarray):
        self.transposed = scipy.sparse.csr_matrix(matrix.T)
        self.shape = matrix.shape
        self.source = matrix  # the dense array it was copied from (a view: no extra memory)
        self.fingerprint = kernel_fingerprint(matrix)

    def is_current(self) -> bool:
        """False if ``source`` was edited in place since the copy (`kernel_fingerprint`)."""
        return bool(np.array_equal(kernel_fingerprint(self.source), self.fingerprint))

    @property
    def ndim(self) -> int:
        return 2

    def rfold(self, mu_true: np.ndarray) -> np.ndarray:
        if mu_true.ndim == 1:
            return self.transposed @ mu_true
        flat = mu_true.reshape(-1, self.shape[0])
        if flat.shape[0] <= 8:  # a few vectors (value + parameter derivatives): matvecs beat one matmat
            out = np.stack([self.transposed @ row for row in flat])
        else:
            out = (self.transposed @ np.ascontiguousarray(flat.T)).T
        return out.reshape(mu_true.shape[:-1] + (self.shape[1],))

    def backproject(self, weights: np.ndarray) -> np.ndarray:
        return self.transposed.T @ weights if weights.ndim == 1 else (self.transposed.T @ weights.T).T


def row_bands(matrix: np.ndarray, rtol: float = TAIL_RTOL, total: np.ndarray | None = None):
    """Per row ``i``, a column range ``[lo_i, hi_i)`` outside which the row's two tails hold at
    most ``rtol / 2`` of its sum each (non-negative rows).

    The range runs from the first to the last element above ``t_i = rtol / 2 * sum_j D_ij / n_reco``:
    each tail then has fewer than ``n_reco`` elements, all ``<= t_i``, so it sums to at most
    ``rtol / 2`` of the row. (Slightly wider than the narrowest such range, but found with one
    comparison per element instead of cumulative sums: for a Gaussian kernel the elements fall by
    orders of magnitude per bin in the far tails, so the difference is a bin or two.) Computed a
    block of rows at a time so that the temporaries stay in cache. Rows that sum to zero get an
    empty range. ``total``: the row sums, if already known.
    """
    n_true, n_reco = matrix.shape
    total = matrix.sum(axis=1) if total is None else total
    threshold = 0.5 * rtol * total / max(n_reco, 1)
    lo = np.empty(n_true, dtype=np.intp)
    hi = np.empty(n_true, dtype=np.intp)
    step = max(1, 2**18 // max(n_reco, 1))  # about 256 kB of booleans per block
    for r0 in range(0, n_true, step):  # blocks of rows (not bins): each block is vectorised
        above = matrix[r0 : r0 + step] > threshold[r0 : r0 + step, None]
        lo[r0 : r0 + step] = np.argmax(above, axis=1)
        hi[r0 : r0 + step] = n_reco - np.argmax(above[:, ::-1], axis=1)
    empty = total <= 0  # (a row with a positive sum has an element above its threshold)
    lo[empty], hi[empty] = 0, 0
    return lo, np.maximum(hi, lo)


class BandedKernel:
    """A dense dispersion matrix folded only inside the band where its rows have their mass.

    Elements are left out by *magnitude*: in each row ``i`` leading and trailing columns that
    sum to at most ``rtol / 2`` of the row sum each (`row_bands`, ``rtol`` = `TAIL_RTOL` = 1e-12). Rows are grouped in blocks of `BAND_BLOCK_ROWS`; each block is one BLAS
    product with the union of its rows' bands, taken as a *view* of the original matrix (no copy).

    Bound (for any true-bin counts ``mu >= 0``): with ``r_i <= rtol * sum_j D_ij`` the mass left
    out of row ``i``, ``0 <= npred_j(dense) - npred_j(banded) = sum_i mu_i (left out)_ij`` and the
    sum over ``j`` of these differences is ``sum_i mu_i r_i <= rtol * sum_j npred_j(dense)``. So
    each reco bin changes by at most 1e-12 of the total folded counts: relatively by at most 1e-9
    in every bin that holds at least 1e-3 of them (for a Gaussian kernel the left-out elements lie
    beyond ~7 sigma, and the change measured in ``tests/test_forward.py`` is below 1e-12 in every
    bin). Folds of several vectors (value and derivatives) run block by block, so a block of the
    matrix is read once for all of them (one small BLAS-3 product instead of a product with the
    whole matrix, which OpenBLAS packs first).

    In-place edits: values inside the bands are read from the original array at every fold, so
    edits there are seen. The bands themselves come from the magnitudes at construction; `check`
    compares the elements just outside every band (O(rows)) with the tolerance and, if an edit put
    mass there (e.g. a wider kernel written in place), the bands are recomputed from the current
    values. An edit elsewhere in a tail needs `SpectrumDataset.reset_data_cache` (or assigning
    ``ds.edisp``), as for any other derived cache.
    """

    __slots__ = (
        "matrix",
        "shape",
        "rtol",
        "lo",
        "hi",
        "blocks",
        "_probe",
        "_limit",
        "work",
        "fingerprint",
    )

    def __init__(self, matrix: np.ndarray, rtol: float = TAIL_RTOL, block_rows: int = BAND_BLOCK_ROWS):
        self.matrix = matrix  # the original array (a view: in-place edits inside the bands are seen)
        self.shape = matrix.shape
        self.rtol = rtol
        self._build(block_rows)

    def is_current(self) -> bool:
        """False if the matrix was edited in place since the bands were found (`kernel_fingerprint`);
        edits inside the bands are read at every fold, but an edit far out in a tail is seen only
        here."""
        return bool(np.array_equal(kernel_fingerprint(self.matrix), self.fingerprint))

    def _build(self, block_rows: int = BAND_BLOCK_ROWS) -> None:
        m = self.matrix
        total = m.sum(axis=1)
        lo, hi = row_bands(m, self.rtol, total)
        n_true, n_reco = m.shape
        starts = np.arange(0, n_true, block_rows)
        ends = np.minimum(starts + block_rows, n_true)
        c0 = np.minimum.reduceat(np.where(hi > lo, lo, n_reco), starts)
        c1 = np.maximum.reduceat(hi, starts)
        self.blocks = [
            (int(r0), int(r1), int(a), int(b)) for r0, r1, a, b in zip(starts, ends, c0, c1, strict=True) if b > a
        ]
        self.lo, self.hi = lo, hi
        self.work = sum((r1 - r0) * (b - a) for r0, r1, a, b in self.blocks) / max(m.size, 1)
        # the elements just outside each row's band (clipped to the matrix), and their tolerance
        rows = np.arange(n_true)
        has_left, has_right = lo > 0, hi < n_reco
        self._probe = (
            np.concatenate([rows[has_left], rows[has_right]]),
            np.concatenate([lo[has_left] - 1, hi[has_right]]),
        )
        cut = 0.5 * self.rtol * total
        self._limit = np.concatenate([cut[has_left], cut[has_right]])
        self.fingerprint = kernel_fingerprint(m)

    @property
    def ndim(self) -> int:
        return 2

    def check(self) -> bool:
        """Notice in-place edits next to the bands: recompute them if mass appeared there.

        Returns True if the bands were recomputed. Costs two gathers of ``n_true`` elements.
        """
        if not np.any(self.matrix[self._probe] > self._limit):
            return False
        self._build()
        return True

    def rfold(self, mu_true: np.ndarray) -> np.ndarray:
        self.check()
        m = self.matrix
        out = np.zeros(mu_true.shape[:-1] + (self.shape[1],))
        for r0, r1, c0, c1 in self.blocks:
            out[..., c0:c1] += mu_true[..., r0:r1] @ m[r0:r1, c0:c1]
        return out

    def backproject(self, weights: np.ndarray) -> np.ndarray:
        # no check(): the adjoint follows the fold of the same evaluation (`likelihood.stat_grad`)
        m = self.matrix
        out = np.empty(weights.shape[:-1] + (self.shape[0],))
        for r0, r1, c0, c1 in self._all_blocks():
            if c1 > c0:
                out[..., r0:r1] = weights[..., c0:c1] @ m[r0:r1, c0:c1].T
            else:
                out[..., r0:r1] = 0.0
        return out

    def _all_blocks(self):
        """Every row block (empty column ranges included), for the adjoint."""
        done = 0
        for r0, r1, c0, c1 in self.blocks:
            if r0 > done:
                yield done, r0, 0, 0
            yield r0, r1, c0, c1
            done = r1
        if done < self.shape[0]:
            yield done, self.shape[0], 0, 0


def prepare_kernel(edisp: np.ndarray | None):
    """The kernel to use on hot paths.

    - a `SparseKernel` (CSR copy) for a large matrix that is mostly exact zeros (OGIP RMFs);
    - a `BandedKernel` (views of ``edisp``) for a large matrix whose rows have their mass in a
      band (Gaussian kernels: about a quarter of the matrix holds all but 1e-12 of each row);
    - else the array itself (a view: in-place edits stay visible).

    A sparse copy does not see later in-place edits of the matrix (`SpectrumDataset.reset_data_cache`
    rebuilds it); a banded kernel sees edits inside its bands and notices mass appearing next to
    them (`BandedKernel.check`).
    """
    if edisp is None or edisp.ndim != 2 or edisp.size < SPARSE_MIN_SIZE:
        return edisp
    if np.count_nonzero(edisp) <= SPARSE_MAX_DENSITY * edisp.size:
        return SparseKernel(edisp)
    if not (np.all(edisp >= 0) and np.all(np.isfinite(edisp))):
        return edisp
    banded = BandedKernel(edisp)
    return banded if banded.work <= BAND_MAX_WORK else edisp


def fold(mu_true: np.ndarray, edisp: np.ndarray | None) -> np.ndarray:
    """Fold true-energy counts with the dispersion matrix: ``sum_i mu_true[..., i] edisp[..., i, j]``.

    Parameters
    ----------
    mu_true : numpy.ndarray, shape (..., n_true)
    edisp : numpy.ndarray, shape (..., n_true, n_reco), or None (identity)
    """
    if edisp is None:
        return mu_true
    if isinstance(edisp, SparseKernel | BandedKernel):
        return edisp.rfold(mu_true)
    if edisp.ndim == 2:
        # (..., n_true) @ (n_true, n_reco): one BLAS call for any leading shape (einsum does not use BLAS)
        return mu_true @ edisp
    # a matrix per leading index: batched (..., 1, n_true) @ (..., n_true, n_reco), broadcast like einsum "...i,...ij->...j"
    return np.matmul(mu_true[..., None, :], edisp)[..., 0, :]


def backproject(weights: np.ndarray, edisp) -> np.ndarray:
    """The adjoint of `fold`: ``sum_j edisp[..., i, j] weights[..., j]`` (reco -> true energy).

    With ``w_j = dC/dmu_j`` this gives the gradient of a statistic with respect to the true-bin
    counts, ``dC/dmu_true_i``, so the gradient with respect to every model parameter costs one
    pass over the dispersion matrix whatever their number (``dC/dp = sum_i dmu_true_i/dp v_i``).
    """
    if edisp is None:
        return weights
    if isinstance(edisp, SparseKernel | BandedKernel):
        return edisp.backproject(weights)
    if edisp.ndim == 2:
        return weights @ edisp.T
    return np.matmul(edisp, weights[..., :, None])[..., 0]


def npred_signal(flux: np.ndarray, exposure: np.ndarray, edisp: np.ndarray | None) -> np.ndarray:
    """Predicted signal counts in reco bins from true-bin fluxes and exposure (canonical units)."""
    return fold(flux * exposure, edisp)


def npred_total(signal: np.ndarray | None, background: np.ndarray | None) -> np.ndarray:
    """``max(signal + background, 0)`` (Gammapy clips the total prediction at zero)."""
    if signal is None and background is None:
        raise ValueError("nothing to predict: the dataset has neither models nor background")
    total = background if signal is None else (signal if background is None else signal + background)
    return np.maximum(total, 0.0)  # same as np.clip(total, 0, None), NaN included, and faster
