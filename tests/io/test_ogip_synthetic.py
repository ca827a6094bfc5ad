"""OGIP reader on synthetic files written here with astropy.io.fits (issue 14).

The files exercise what the shared real files may not (or what is unavailable without
``../shared``): ``TLMIN = 1`` channel numbering, RMF rows with several channel groups
(variable-length ``F_CHAN``/``N_CHAN``/``MATRIX``), a ``RATE`` column instead of ``COUNTS``,
``BACKSCAL`` as a per-channel column, different source/background ``EXPOSURE`` and a header
``AREASCAL``. The dataset is compared channel by channel with the numbers put into the files;
bad-input tests modify these files, so they need no real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import xspec_ds as xs
from xspec_ds.io.ogip import OGIPError, read_pha, read_rmf

from .._asserts import assert_close

N_CHAN, N_TRUE = 8, 10
T_SRC, T_BKG, AREASCAL = 1200.0, 3600.0, 0.5
E_TRUE = np.geomspace(0.5, 12.0, N_TRUE + 1)  # keV
E_RECO = np.geomspace(0.6, 10.0, N_CHAN + 1)


def dense_matrix() -> np.ndarray:
    """Rows with two separate groups of channels (a main peak and an escape-like peak), some empty."""
    m = np.zeros((N_TRUE, N_CHAN))
    for i in range(1, N_TRUE):  # row 0 stays empty (N_GRP = 0)
        c = min(i * N_CHAN // N_TRUE, N_CHAN - 1)
        for shift, p in ((-1, 0.2), (0, 0.5), (1, 0.2)):
            if 0 <= c + shift < N_CHAN:
                m[i, c + shift] = p
        if c >= 4:
            m[i, c - 4] = 0.05  # a second group, separated by zeros
    return m


def _groups(row: np.ndarray, first: int):
    """Contiguous runs of non-zero channels of one row: (F_CHAN list, N_CHAN list, values)."""
    f, n, vals = [], [], []
    j = 0
    while j < row.size:
        if row[j] != 0:
            k = j
            while k < row.size and row[k] != 0:
                k += 1
            f.append(j + first)
            n.append(k - j)
            vals.extend(row[j:k])
            j = k
        else:
            j += 1
    return f, n, vals


def write_rmf(path: Path, m: np.ndarray, first: int = 1, detchans: int | None = None, n_chan_extra: int = 0):
    f_rows, n_rows, v_rows = zip(*(_groups(r, first) for r in m))
    n_rows = [list(n) for n in n_rows]
    if n_chan_extra:
        for n in n_rows:
            if n:
                n[0] += n_chan_extra
                break
    mat = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", unit="keV", array=E_TRUE[:-1]),
            fits.Column("ENERG_HI", "E", unit="keV", array=E_TRUE[1:]),
            fits.Column("N_GRP", "I", array=[len(f) for f in f_rows]),
            fits.Column("F_CHAN", "PI()", array=np.array([np.array(f, np.int16) for f in f_rows], dtype=object)),
            fits.Column("N_CHAN", "PI()", array=np.array([np.array(n, np.int16) for n in n_rows], dtype=object)),
            fits.Column("MATRIX", "PE()", array=np.array([np.array(v, np.float32) for v in v_rows], dtype=object)),
        ],
        name="MATRIX",
    )
    mat.header["TLMIN4"] = first
    mat.header["DETCHANS"] = N_CHAN if detchans is None else detchans
    mat.header["HDUCLAS1"] = "RESPONSE"
    mat.header["HDUCLAS2"] = "RSP_MATRIX"
    eb = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=np.arange(N_CHAN) + first),
            fits.Column("E_MIN", "E", unit="keV", array=E_RECO[:-1]),
            fits.Column("E_MAX", "E", unit="keV", array=E_RECO[1:]),
        ],
        name="EBOUNDS",
    )
    eb.header["TLMIN1"] = first
    fits.HDUList([fits.PrimaryHDU(), mat, eb]).writeto(path, overwrite=True)


def write_arf(path: Path, area_cm2: np.ndarray):
    arf = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", unit="keV", array=E_TRUE[:-1]),
            fits.Column("ENERG_HI", "E", unit="keV", array=E_TRUE[1:]),
            fits.Column("SPECRESP", "E", unit="cm2", array=area_cm2),
        ],
        name="SPECRESP",
    )
    fits.HDUList([fits.PrimaryHDU(), arf]).writeto(path, overwrite=True)


def write_pha(path: Path, values, exposure, backscal, kind="RATE", quality=None, links=None, first=1, channel=None):
    cols = [fits.Column("CHANNEL", "J", array=np.arange(N_CHAN) + first if channel is None else channel)]
    cols.append(fits.Column(kind, "E" if kind == "RATE" else "J", array=values))
    if quality is not None:
        cols.append(fits.Column("QUALITY", "I", array=quality))
    cols.append(fits.Column("BACKSCAL", "E", array=backscal))
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header["TLMIN1"] = first
    hdu.header["TLMAX1"] = first + N_CHAN - 1
    hdu.header["EXPOSURE"] = exposure
    hdu.header["AREASCAL"] = AREASCAL
    hdu.header["HDUCLAS1"] = "SPECTRUM"
    hdu.header["DETCHANS"] = N_CHAN
    for key, value in (links or {}).items():
        hdu.header[key] = value
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


# the numbers put into the files (float32-exact where stored as E)
COUNTS = np.array([3, 0, 14, 27, 9, 5, 1, 2], float)
COUNTS_OFF = np.array([30, 12, 40, 61, 25, 10, 0, 4], float)
BACKSCAL_SRC = np.array([1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25])
BACKSCAL_BKG = np.array([4.0, 4.0, 4.0, 2.0, 2.0, 2.0, 1.0, 1.0])
QUALITY = np.array([1, 0, 0, 0, 0, 0, 0, 5])
AREA = np.geomspace(50.0, 400.0, N_TRUE).astype(np.float32).astype(float)


@pytest.fixture
def synthetic(tmp_path) -> Path:
    m = dense_matrix().astype(np.float32)
    write_rmf(tmp_path / "src.rmf", m)
    write_arf(tmp_path / "src.arf", AREA)
    links = {"ANCRFILE": "src.arf", "RESPFILE": "src.rmf", "BACKFILE": "bkg.pha"}
    write_pha(tmp_path / "src.pha", COUNTS / T_SRC, T_SRC, BACKSCAL_SRC, quality=QUALITY, links=links)
    write_pha(tmp_path / "bkg.pha", COUNTS_OFF / T_BKG, T_BKG, BACKSCAL_BKG)
    return tmp_path / "src.pha"


def test_synthetic_rmf_has_multi_group_rows(synthetic):
    with fits.open(synthetic.parent / "src.rmf") as h:
        n_grp = h["MATRIX"].data["N_GRP"]
    assert n_grp.max() == 2 and n_grp.min() == 0  # what the test is about


def test_synthetic_files_channel_by_channel(synthetic):
    ds = read_pha(synthetic)
    assert isinstance(ds, xs.SpectrumDatasetOnOff)
    # RATE x EXPOSURE recovers the integer counts (float32 rates)
    np.testing.assert_array_equal(ds.counts.values, COUNTS)
    np.testing.assert_array_equal(ds.counts_off.values, COUNTS_OFF)
    # BACKSCAL columns; XSPEC's scaling of the background: BACKSCAL_b x (t_b / t_s) x (AREASCAL_b / AREASCAL_s)
    assert_close(ds.data["acceptance"].values, BACKSCAL_SRC, rtol=0)
    assert_close(ds.data["acceptance_off"].values, BACKSCAL_BKG * (T_BKG / T_SRC) * 1.0, rtol=1e-15)
    assert_close(ds.alpha.values, BACKSCAL_SRC / (BACKSCAL_BKG * 3.0), rtol=1e-15)
    # exposure = ARF x EXPOSURE x AREASCAL, in cm2 s
    assert_close(ds.exposure.values * _to_cm2s(ds), AREA * T_SRC * AREASCAL, rtol=1e-15)
    # TLMIN = 1: channel 1 is the first reco bin; the dense matrix is the one written
    np.testing.assert_array_equal(ds.edisp.values, dense_matrix().astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(ds.mask_safe.values, QUALITY == 0)
    assert_close(ds.data["energy_min"].values, E_RECO[:-1].astype(np.float32), rtol=0)
    assert_close(ds.data["energy_true_max"].values, E_TRUE[1:].astype(np.float32), rtol=0)
    assert ds.livetime.to_value("s") == T_SRC


def _to_cm2s(ds) -> float:
    import astropy.units as u

    return u.Unit(ds.exposure.attrs["units"]).to("cm2 s")


def test_read_rmf_tlmin_one_equals_tlmin_zero(tmp_path):
    m = dense_matrix().astype(np.float32)
    write_rmf(tmp_path / "one.rmf", m, first=1)
    write_rmf(tmp_path / "zero.rmf", m, first=0)
    a, b = read_rmf(tmp_path / "one.rmf")[2], read_rmf(tmp_path / "zero.rmf")[2]
    np.testing.assert_array_equal(a, m.astype(np.float64))
    np.testing.assert_array_equal(b, a)


def test_counts_column_and_unsorted_channels(synthetic):
    """A COUNTS column with the rows in reverse channel order: the reader sorts by CHANNEL."""
    links = {"ANCRFILE": "src.arf", "RESPFILE": "src.rmf", "BACKFILE": "bkg.pha"}
    write_pha(synthetic, COUNTS[::-1].astype(int), T_SRC, BACKSCAL_SRC[::-1], kind="COUNTS", quality=QUALITY[::-1],
              links=links, channel=np.arange(N_CHAN)[::-1] + 1)  # fmt: skip
    ds = read_pha(synthetic)
    np.testing.assert_array_equal(ds.counts.values, COUNTS)
    np.testing.assert_array_equal(ds.mask_safe.values, QUALITY == 0)
    assert_close(ds.data["acceptance"].values, BACKSCAL_SRC, rtol=0)


def test_cash_dataset_without_backfile(synthetic):
    write_pha(synthetic, COUNTS / T_SRC, T_SRC, BACKSCAL_SRC, quality=QUALITY,
              links={"ANCRFILE": "src.arf", "RESPFILE": "src.rmf", "BACKFILE": "none"})  # fmt: skip
    ds = read_pha(synthetic)
    assert type(ds) is xs.SpectrumDataset
    np.testing.assert_array_equal(ds.counts.values, COUNTS)


# bad input on synthetic files --------------------------------------------------------------------
@pytest.mark.parametrize("kind, name", [("BACKFILE", "bkg.pha"), ("ANCRFILE", "src.arf"), ("RESPFILE", "src.rmf")])
def test_missing_linked_file(synthetic, kind, name):
    (synthetic.parent / name).unlink()
    with pytest.raises(FileNotFoundError, match=rf"src.pha.*{kind}.*{name}"):
        read_pha(synthetic)


def test_rmf_channel_mismatch(synthetic):
    m = np.zeros((N_TRUE, N_CHAN + 2), np.float32)
    m[:, 0] = 0.5
    path = synthetic.parent / "src.rmf"
    write_rmf(path, m, detchans=N_CHAN + 2)
    with fits.open(path, mode="update") as h:  # EBOUNDS with 10 channels too
        h["EBOUNDS"] = fits.BinTableHDU.from_columns(
            [
                fits.Column("CHANNEL", "J", array=np.arange(N_CHAN + 2) + 1),
                fits.Column("E_MIN", "E", unit="keV", array=np.geomspace(0.6, 10, N_CHAN + 3)[:-1]),
                fits.Column("E_MAX", "E", unit="keV", array=np.geomspace(0.6, 10, N_CHAN + 3)[1:]),
            ],
            name="EBOUNDS",
        )
    with pytest.raises(OGIPError, match=rf"src.rmf.*{N_CHAN + 2} channels.*{N_CHAN}"):
        read_pha(synthetic)


def test_rmf_groups_inconsistent_with_matrix(synthetic):
    write_rmf(synthetic.parent / "src.rmf", dense_matrix().astype(np.float32), n_chan_extra=1)
    with pytest.raises(OGIPError, match=r"src.rmf.*N_CHAN"):
        read_pha(synthetic)


def test_zero_backscal_in_safe_channel(synthetic):
    bad = BACKSCAL_BKG.copy()
    bad[3] = 0.0  # channel 4, safe
    write_pha(synthetic.parent / "bkg.pha", COUNTS_OFF / T_BKG, T_BKG, bad)
    with pytest.raises(OGIPError, match=r"bkg.pha: BACKSCAL = 0.0 in channel 4 .*must be finite and > 0"):
        read_pha(synthetic)


def test_zero_backscal_in_unsafe_channel_is_accepted(synthetic):
    """BACKSCAL = 0 is refused in the file's own good-quality channels only: here the background
    file flags channel 1 as bad (as the source does)."""
    bad = BACKSCAL_BKG.copy()
    bad[0] = 0.0  # channel 1 has QUALITY = 1
    write_pha(synthetic.parent / "bkg.pha", COUNTS_OFF / T_BKG, T_BKG, bad, quality=QUALITY)
    ds = read_pha(synthetic)
    assert ds.data["acceptance_off"].values[0] == 0.0 and not ds.mask_safe.values[0]


def test_rate_with_zero_exposure(synthetic):
    write_pha(synthetic.parent / "bkg.pha", COUNTS_OFF, 0.0, BACKSCAL_BKG)
    with pytest.raises(OGIPError, match=r"bkg.pha: keyword EXPOSURE = 0.0 is not a finite positive time"):
        read_pha(synthetic)


def test_non_contiguous_channels(synthetic):
    links = {"ANCRFILE": "src.arf", "RESPFILE": "src.rmf", "BACKFILE": "bkg.pha"}
    channel = np.arange(N_CHAN) + 1
    channel[-1] += 3  # a gap
    write_pha(synthetic, COUNTS / T_SRC, T_SRC, BACKSCAL_SRC, links=links, channel=channel)
    with pytest.raises(OGIPError, match=r"src.pha.*CHANNEL.*contiguous"):
        read_pha(synthetic)


def test_truncated_file(synthetic):
    data = synthetic.read_bytes()
    synthetic.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises((OGIPError, OSError), match="src.pha"):
        read_pha(synthetic)


def test_not_a_pha(synthetic):
    with pytest.raises(OGIPError, match=r"src.arf.*no SPECTRUM"):
        read_pha(synthetic.parent / "src.arf")


@pytest.mark.parametrize("dtype", ["E", "D"])
def test_rate_column_recovers_large_integer_counts(tmp_path, dtype):
    """Integer counts stored as float32 (or float64) rates come back as the integers, up to 1e6
    counts per channel (float32 keeps ~7 digits: 27 counts / 1200 s is not exact)."""
    counts = np.array([17, 27, 61, 999, 12345, 54321, 777777, 1000000], float)
    t = 1234.5
    hdu = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=np.arange(N_CHAN) + 1),
            fits.Column("RATE", dtype, array=counts / t),
        ],
        name="SPECTRUM",
    )
    hdu.header["TLMIN1"] = 1
    hdu.header["EXPOSURE"] = t
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "r.pha")
    from xspec_ds.io.ogip import read_pha_table

    np.testing.assert_array_equal(read_pha_table(tmp_path / "r.pha")["counts"], counts)
