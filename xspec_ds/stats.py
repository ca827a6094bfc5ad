"""Fit statistics: Cash, WSTAT, and the significance formulas built on them.

All functions are vectorised numpy and broadcast over any leading dimensions (e.g. ``obs``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

__all__ = [
    "TRUNCATION_VALUE",
    "cash",
    "cash_sum",
    "cash_gradient_weights",
    "wstat",
    "get_wstat_mu_bkg",
    "wstat_gradient_weights",
    "Statistic",
    "STATISTICS",
    "get_statistic",
    "wstat_gof_terms",
    "li_ma_significance",
    "cash_sqrt_ts",
]

TRUNCATION_VALUE = 1e-25
"""Predicted counts below this are replaced by it in ``log`` (Gammapy's ``cash`` truncation)."""


def cash(n_on, mu_on, truncation_value: float = TRUNCATION_VALUE):
    r"""Cash statistic per bin, ``C = 2 (mu - n ln mu)`` (Cash 1979, ApJ 228, 939).

    As in Gammapy's ``gammapy.stats.cash``, ``mu`` is replaced by ``truncation_value`` where it
    is at or below it, so empty predictions give a large but finite penalty.

    Parameters
    ----------
    n_on : array_like
        Observed counts.
    mu_on : array_like
        Predicted counts.

    Returns
    -------
    numpy.ndarray
        Per-bin statistic, broadcast shape of the inputs.

    Examples
    --------
    >>> float(cash(2.0, 2.0))  # 2 * (2 - 2 ln 2)
    1.2274112777602189
    """
    n_on = np.asarray(n_on, dtype=np.float64)
    mu_on = np.asarray(mu_on, dtype=np.float64)
    # np.maximum is np.where(mu_on <= t, t, mu_on) (NaN propagates in both), in one ufunc call
    mu = np.maximum(mu_on, truncation_value)
    return 2.0 * (mu - n_on * np.log(mu))


def cash_sum(n_on, mu_on, mask=None) -> float:
    """Sum of `cash` over bins where ``mask`` is True (all bins when ``mask`` is None)."""
    stat = cash(n_on, mu_on)
    if mask is None:
        return float(np.sum(stat))
    return float(np.sum(stat, where=mask))


def cash_gradient_weights(n_on, mu_on, truncation_value: float = TRUNCATION_VALUE):
    """``dC/dmu = 2 (1 - n / mu)`` per bin (0 where mu is truncated, where C is flat)."""
    mu = np.asarray(mu_on, dtype=np.float64)
    safe = mu > truncation_value
    return np.where(safe, 2.0 * (1.0 - np.asarray(n_on) / np.where(safe, mu, 1.0)), 0.0)


def get_wstat_mu_bkg(n_on, n_off, alpha, mu_sig):
    r"""Profile-likelihood background estimate of WSTAT (Arnaud, XSPEC manual, Appendix B).

    ``mu_bkg = (C + D) / (2 alpha (alpha + 1))`` with ``C = alpha (n_on + n_off) - (alpha + 1) mu_sig``
    and ``D = sqrt(C^2 + 4 alpha (alpha + 1) n_off mu_sig)`` (as Gammapy's ``get_wstat_mu_bkg``).
    This closed form covers the XSPEC manual's special cases: for ``n_off = 0`` it gives
    ``n_on/(1+alpha) - mu_sig/alpha`` when ``mu_sig < n_on alpha/(1+alpha)`` and 0 otherwise; for
    ``n_on = 0`` it gives ``n_off/(1+alpha)`` (independent of ``mu_sig``). It is never negative.
    """
    n_on, n_off, alpha, mu_sig = (np.asarray(x, dtype=np.float64) for x in (n_on, n_off, alpha, mu_sig))
    c = alpha * (n_on + n_off) - (alpha + 1) * mu_sig
    d = np.sqrt(c**2 + 4 * alpha * (alpha + 1) * n_off * mu_sig)
    return np.maximum((c + d) / (2 * alpha * (alpha + 1)), 0.0)


def wstat(n_on, n_off, alpha, mu_sig, mu_bkg=None, extra_terms: bool = True):
    r"""WSTAT per bin: Poisson on and off counts with the background profiled out.

    ``W = 2 [mu_sig + (1 + alpha) mu_bkg - n_on ln(mu_sig + alpha mu_bkg) - n_off ln(mu_bkg)]``
    with ``mu_bkg`` from `get_wstat_mu_bkg` (XSPEC manual, Appendix B; Gammapy's ``wstat``).
    The ``n_on ln`` term is dropped where ``n_on = 0`` and the ``n_off ln`` term where
    ``n_off = 0`` (the limits ``0 ln 0 = 0``), which is where the logs' arguments may vanish.

    With ``extra_terms`` (default, as Gammapy) the saturated-model terms
    ``2 (n_on ln n_on - n_on) + 2 (n_off ln n_off - n_off)`` are added, so that W is a deviance.

    Parameters
    ----------
    n_on, n_off : array_like
        On and off counts.
    alpha : array_like
        Exposure ratio on/off.
    mu_sig : array_like
        Predicted signal counts in the on region.

    Returns
    -------
    numpy.ndarray
    """
    n_on, n_off, alpha, mu_sig = (np.asarray(x, dtype=np.float64) for x in (n_on, n_off, alpha, mu_sig))
    if mu_bkg is None:
        mu_bkg = get_wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    mu_bkg = np.asarray(mu_bkg, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_on = np.log(mu_sig + alpha * mu_bkg)
        log_off = np.log(mu_bkg)
        stat = mu_sig + (1 + alpha) * mu_bkg
        stat = stat - np.where(n_on == 0, 0.0, n_on * log_on)
        stat = stat - np.where(n_off == 0, 0.0, n_off * log_off)
    stat = 2 * stat
    if extra_terms:
        stat = stat + wstat_gof_terms(n_on, n_off)
    return stat


def wstat_gradient_weights(n_on, n_off, alpha, mu_sig, mu_bkg=None) -> np.ndarray:
    r"""``dW/dmu_sig`` of the profiled WSTAT per bin: ``2 (1 - n_on / (mu_sig + alpha mu_bkg))``.

    With ``mu_on = mu_sig + alpha mu_bkg`` the profiled ``W_p(mu_sig) = W(mu_sig, mu_bkg*(mu_sig))``
    has, by the envelope theorem (``dW/dmu_bkg = 0`` at an interior optimum; on the boundary
    ``mu_bkg* = 0`` is locally constant), ``dW_p/dmu_sig = 2 (1 - n_on / mu_on)``.
    ``mu_bkg`` is the profiled off-region background (`get_wstat_mu_bkg`). Bins with
    ``n_on = 0`` get 2; bins where the predicted on counts vanish with ``n_on > 0`` (the
    statistic is infinite there) get 0.
    """
    n_on = np.asarray(n_on, dtype=np.float64)
    if mu_bkg is None:
        mu_bkg = get_wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    mu_on = np.asarray(mu_sig, dtype=np.float64) + np.asarray(alpha, dtype=np.float64) * np.asarray(mu_bkg, np.float64)
    ok = mu_on > 0
    ratio = np.divide(n_on, mu_on, out=np.zeros_like(mu_on), where=ok)
    w = 2.0 * (1.0 - ratio)
    return np.where((n_on > 0) & ~ok, 0.0, w)


def wstat_gof_terms(n_on, n_off):
    """``2 (n_on ln n_on - n_on) + 2 (n_off ln n_off - n_off)`` with ``0 ln 0 = 0``."""

    def t(n):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, n * np.log(n) - n, 0.0)

    return 2 * (t(np.asarray(n_on, dtype=np.float64)) + t(np.asarray(n_off, dtype=np.float64)))


def li_ma_significance(n_on, n_off, alpha):
    r"""Li & Ma (1983, ApJ 272, 317) eq. 17 significance, signed by the excess."""
    n_on, n_off, alpha = (np.asarray(x, dtype=np.float64) for x in (n_on, n_off, alpha))
    with np.errstate(divide="ignore", invalid="ignore"):
        tot = n_on + n_off
        t1 = np.where(n_on > 0, n_on * np.log((1 + alpha) / alpha * n_on / tot), 0.0)
        t2 = np.where(n_off > 0, n_off * np.log((1 + alpha) * n_off / tot), 0.0)
        ts = 2 * (t1 + t2)
    sign = np.sign(n_on - alpha * n_off)
    return sign * np.sqrt(np.clip(ts, 0, None))


def cash_sqrt_ts(n_on, mu_bkg):
    r"""Signed ``sqrt(TS)`` of counts over a known background with the Cash statistic,
    ``TS = C(mu = mu_bkg) - C(mu = n_on)`` (Gammapy's ``CashCountsStatistic.sqrt_ts``)."""
    n_on, mu_bkg = np.asarray(n_on, dtype=np.float64), np.asarray(mu_bkg, dtype=np.float64)
    ts = cash(n_on, mu_bkg) - cash(n_on, n_on)
    return np.sign(n_on - mu_bkg) * np.sqrt(np.clip(ts, 0, None))


# ------------------------------------------------------------------------------------------
# chi-square statistics (issue 13, x-ray helper). Appended: the functions above are unchanged.
# ------------------------------------------------------------------------------------------
def chi2_data_variance(n_on, n_off=None, alpha=None, background=None, kind: str = "datavar"):
    r"""Background-subtracted data and its variance for Sherpa's chi-square statistics.

    Sherpa (``sherpa.stats.Chi2DataVar`` / ``Chi2Gehrels`` with ``subtract()``; CIAO "Sherpa
    statistics" pages) computes the error of each (grouped) bin from its counts ``N``:

    - ``datavar``: ``sigma^2 = N``;
    - ``gehrels``: ``sigma = 1 + sqrt(N + 0.75)`` (Gehrels 1986, ApJ 303, 336, eq. 7, the
      84 % upper limit approximation).

    With an off measurement the data are ``d = n_on - alpha n_off`` and the variance is
    ``sigma_on^2 + alpha^2 sigma_off^2`` (Sherpa's ``DataPHA.get_staterror`` after
    ``subtract()``; ``alpha`` is the background scaling, BACKSCAL x EXPOSURE x AREASCAL ratio).
    With a known ``background`` array (no uncertainty) ``d = n_on - background`` and the variance
    is that of ``n_on``.

    Returns
    -------
    (data, variance) : tuple of numpy.ndarray
    """
    n_on = np.asarray(n_on, dtype=np.float64)

    def var(n):
        if kind == "datavar":
            return n
        if kind == "gehrels":
            return (1.0 + np.sqrt(n + 0.75)) ** 2
        raise ValueError(f"unknown chi2 variance {kind!r}; use 'datavar' or 'gehrels'")

    data, variance = n_on, var(n_on)
    if n_off is not None and alpha is not None:
        n_off = np.asarray(n_off, dtype=np.float64)
        alpha = np.asarray(alpha, dtype=np.float64)
        data = n_on - alpha * n_off
        variance = variance + alpha**2 * var(n_off)
    elif background is not None:
        data = n_on - np.asarray(background, dtype=np.float64)
    return data, variance


def chi2(data, variance, mu_sig):
    r"""Chi-square per bin ``(d - mu)^2 / sigma^2`` (Sherpa's ``Chi2``; NaN where sigma^2 <= 0)."""
    data, variance, mu_sig = (np.asarray(x, dtype=np.float64) for x in (data, variance, mu_sig))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, (data - mu_sig) ** 2 / variance, np.nan)


def chi2_gradient_weights(data, variance, mu_sig):
    """``d chi2 / d mu = -2 (d - mu) / sigma^2`` per bin (0 where sigma^2 <= 0)."""
    data, variance, mu_sig = (np.asarray(x, dtype=np.float64) for x in (data, variance, mu_sig))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, -2.0 * (data - mu_sig) / variance, 0.0)


def _chi2_from_mapping(data, kind):
    n_off = data.get("counts_off")
    alpha = data.get("alpha")
    return chi2_data_variance(data["counts"], n_off, alpha, data.get("background"), kind=kind)


def chi2datavar(mu_sig, data):
    """Sherpa's ``chi2datavar`` per bin: variance = counts (on and scaled off), background subtracted."""
    d, v = _chi2_from_mapping(data, "datavar")
    return chi2(d, v, mu_sig)


def chi2gehrels(mu_sig, data):
    """Sherpa's ``chi2gehrels`` per bin: ``sigma = 1 + sqrt(N + 0.75)``, background subtracted."""
    d, v = _chi2_from_mapping(data, "gehrels")
    return chi2(d, v, mu_sig)


def _chi2_grad(mu_sig, data, kind):
    d, v = _chi2_from_mapping(data, kind)
    return chi2_gradient_weights(d, v, mu_sig)


def _chi2_fisher(mu_sig, data, kind):
    _, v = _chi2_from_mapping(data, kind)
    return np.where(v > 0, 2.0 / np.where(v > 0, v, 1.0), 0.0) * np.ones_like(np.asarray(mu_sig, float))


def _chi2_errors(data):
    d = np.asarray(data["counts"], dtype=np.float64) - np.asarray(data.get("background", 0.0), dtype=np.float64)
    return d, np.asarray(data["stat_err"], dtype=np.float64) ** 2


def chi2_errors(mu_sig, data):
    """Chi-square with the data's own errors ``data["stat_err"]`` (Sherpa's ``Chi2`` with
    ``use_errors=True``; NET spectra such as Swift BAT's)."""
    d, v = _chi2_errors(data)
    return chi2(d, v, mu_sig)


def _chi2_errors_grad(mu_sig, data):
    d, v = _chi2_errors(data)
    return chi2_gradient_weights(d, v, mu_sig)


def _chi2_errors_fisher(mu_sig, data):
    _, v = _chi2_errors(data)
    return np.where(v > 0, 2.0 / np.where(v > 0, v, 1.0), 0.0) * np.ones_like(np.asarray(mu_sig, float))


CHI2_STATISTICS = {
    "chi2datavar": (chi2datavar, partial(_chi2_grad, kind="datavar"), partial(_chi2_fisher, kind="datavar")),
    "chi2gehrels": (chi2gehrels, partial(_chi2_grad, kind="gehrels"), partial(_chi2_fisher, kind="gehrels")),
    "chi2": (chi2_errors, _chi2_errors_grad, _chi2_errors_fisher),
}
"""Chi-square statistics as ``name -> (value, grad, fisher)``, each ``f(mu_sig, data)`` with
``data`` a mapping holding ``counts`` and optionally ``counts_off`` + ``alpha`` or
``background`` (and ``stat_err`` for ``chi2``) (the shared statistic-record interface: the engine's ``Statistic`` registry
takes these three callables unchanged)."""


# statistic records ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statistic:
    """A fit statistic as three per-bin functions of the predicted signal counts.

    ``mu_sig`` is the predicted *signal* counts per reco bin (already folded) and ``data`` a
    mapping of arrays broadcastable to ``(..., N)``: ``"counts"`` and, depending on the
    statistic, ``"background"`` (known background counts), ``"counts_off"`` and ``"alpha"``.
    The formulas themselves live in the functions above (`cash`, `wstat`, ...); a record only
    wires them to this common signature, which `xspec_ds.likelihood` folds and sums.

    Attributes
    ----------
    name : str
        ``"cash"``, ``"wstat"``, ``"chi2datavar"``, ``"chi2gehrels"``.
    value : callable
        ``value(mu_sig, data)`` -> per-bin statistic, shape ``(..., N)``.
    grad : callable
        ``grad(mu_sig, data)`` -> ``d value / d mu_sig`` per bin.
    fisher : callable
        ``fisher(mu_sig, data)`` -> per-bin weight ``W >= 0`` such that the Hessian of
        ``sum(value)`` with respect to parameters is approximated by ``J^T diag(W) J`` with
        ``J = d mu_sig / d theta`` (the expected information of ``-2 ln L``).
    value_and_grad : callable, optional
        ``value_and_grad(mu_sig, data) -> (value, grad)`` sharing intermediate results (e.g. the
        profiled WSTAT background); `xspec_ds.likelihood` uses it when given.
    """

    name: str
    value: Callable
    grad: Callable
    fisher: Callable
    value_and_grad: Callable | None = None


def _cash_mu(mu_sig, data: Mapping):
    """Total predicted counts ``max(mu_sig + background, 0)`` (Gammapy clips at 0)."""
    bkg = data.get("background")
    mu = mu_sig if bkg is None else mu_sig + bkg
    return np.maximum(mu, 0.0)


def _cash_value(mu_sig, data):
    return cash(data["counts"], _cash_mu(mu_sig, data))


def _cash_grad(mu_sig, data):
    """``dC/dmu_sig``: 0 where the (clipped) total prediction is 0 (`cash_gradient_weights`)."""
    return cash_gradient_weights(data["counts"], _cash_mu(mu_sig, data))


def _cash_value_and_grad(mu_sig, data):
    mu = _cash_mu(mu_sig, data)
    n = data["counts"]
    return cash(n, mu), cash_gradient_weights(n, mu)


def _cash_fisher(mu_sig, data):
    """Expected information of ``C = 2 (mu - n ln mu)``: ``E[d2C/dmu2] = E[2 n / mu^2] = 2 / mu``."""
    mu = np.maximum(_cash_mu(mu_sig, data), TRUNCATION_VALUE)
    return 2.0 / mu


def _wstat_mu_bkg(mu_sig, data):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(get_wstat_mu_bkg(data["counts"], data["counts_off"], data["alpha"], mu_sig))


def _wstat_value(mu_sig, data):
    mu_bkg = _wstat_mu_bkg(mu_sig, data)
    return wstat(data["counts"], data["counts_off"], data["alpha"], mu_sig, mu_bkg=mu_bkg)


def _wstat_grad(mu_sig, data):
    mu_bkg = _wstat_mu_bkg(mu_sig, data)
    return wstat_gradient_weights(data["counts"], data["counts_off"], data["alpha"], mu_sig, mu_bkg)


def _wstat_value_and_grad(mu_sig, data):
    mu_bkg = _wstat_mu_bkg(mu_sig, data)
    n_on, n_off, alpha = data["counts"], data["counts_off"], data["alpha"]
    value = wstat(n_on, n_off, alpha, mu_sig, mu_bkg=mu_bkg)
    return value, wstat_gradient_weights(n_on, n_off, alpha, mu_sig, mu_bkg)


def _wstat_fisher(mu_sig, data):
    r"""Expected information of the profiled WSTAT in ``mu_sig``.

    For Poisson on counts (mean ``mu_sig + alpha b``) and off counts (mean ``b``), the
    information matrix of ``-2 ln L`` is ``2 [[1/mu_on, alpha/mu_on], [alpha/mu_on,
    alpha^2/mu_on + 1/b]]``; profiling ``b`` out (Schur complement) leaves
    ``2 / (mu_sig + alpha (1 + alpha) b)`` at ``b = mu_bkg``.
    """
    mu_bkg = _wstat_mu_bkg(mu_sig, data)
    alpha = np.asarray(data["alpha"], dtype=np.float64)
    denom = np.asarray(mu_sig, dtype=np.float64) + alpha * (1.0 + alpha) * mu_bkg
    return 2.0 / np.maximum(denom, TRUNCATION_VALUE)


STATISTICS: dict[str, Statistic] = {
    "cash": Statistic("cash", _cash_value, _cash_grad, _cash_fisher, _cash_value_and_grad),
    "wstat": Statistic("wstat", _wstat_value, _wstat_grad, _wstat_fisher, _wstat_value_and_grad),
}
"""Registry of statistic records by name (`get_statistic`)."""
STATISTICS.update({name: Statistic(name, *fns) for name, fns in CHI2_STATISTICS.items()})


def get_statistic(name) -> Statistic:
    """The `Statistic` record called ``name`` (a record is returned as is).

    Raises
    ------
    ValueError
        Naming the unknown statistic and the known ones.
    """
    if isinstance(name, Statistic):
        return name
    try:
        return STATISTICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown statistic {name!r}; known statistics: {sorted(STATISTICS)}") from None
