"""Files are whole or rejected: targeted damage to Gammapy-layout FITS and OGIP sets.

Each case edits a file written by the package (with astropy, checksums removed where the edit
is structural, so that the structural check itself is exercised) and asserts the exception
type and the words of its message (the file, and the HDU / column / keyword at fault), or,
where the damage is harmless by the format's rules (rows in another order, with their
``CHANNEL``), that the data read back are identical.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import xspec_ds as xs
from xspec_ds.io import DatasetFileError
from xspec_ds.io.fits import FitsLayoutError, open_fits
from xspec_ds.io.ogip import OGIPError, write_ogip

from ._datasets import random_dataset
from .test_fuzz import onoff_dataset


def _rewrite(path, edit, keep_marker: bool = True):
    """Apply ``edit(hdul)`` to a FITS file and write it back without checksums."""
    tmp = path.with_name(path.name + ".tmp")
    with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
        for h in hdul:
            _ = h.data  # load (variable-length arrays included) before editing
            for key in ("CHECKSUM", "DATASUM"):
                h.header.pop(key, None)
            if not keep_marker:
                for key in ("CREATOR", "DSVARS", "NEXTEND", "WRITEID"):
                    h.header.pop(key, None)
        out = edit(hdul)
        (out if out is not None else hdul).writeto(tmp, overwrite=True)
    tmp.replace(path)


# ------------------------------------------------------------------------------------------
# Gammapy layout
# ------------------------------------------------------------------------------------------
@pytest.fixture
def gfile(tmp_path):
    ds = random_dataset(4, n=8, n_true=10, meta=True)
    path = tmp_path / "g.fits"
    ds.write(path)
    return xs.SpectrumDataset.read(path), path


def test_written_with_checksums_and_manifest(gfile):
    _, path = gfile
    with fits.open(path) as hdul:
        assert hdul[0].header["NEXTEND"] == len(hdul) - 1
        assert hdul[0].header["DSVARS"].split(",") == [
            "counts",
            "exposure",
            "background",
            "edisp",
            "mask_safe",
            "mask_fit",
        ]
        assert all("CHECKSUM" in h.header and "DATASUM" in h.header for h in hdul)


@pytest.mark.parametrize("cut", ["hdu_boundary", "mid_hdu", "mid_header"])
def test_truncated_never_loads(gfile, cut):
    _, path = gfile
    data = path.read_bytes()
    n = len(data) // 2880
    at = {"hdu_boundary": None, "mid_hdu": (n // 2) * 2880 + 1000, "mid_header": 2880 * 3 + 80 * 5}[cut]
    if at is None:
        with fits.open(path) as hdul:
            at = hdul[5]._header_offset  # noqa: SLF001  (cut just before HDU 5)
    path.write_bytes(data[:at])
    with pytest.raises(DatasetFileError, match=str(path)) as info:
        xs.SpectrumDataset.read(path)
    assert any(w in str(info.value) for w in ("NEXTEND", "truncated", "size"))


@pytest.mark.parametrize("offset", [2880 * 2 + 17, -20])
def test_flipped_data_byte_detected(gfile, offset):
    _, path = gfile
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetFileError, match=rf"{path}: HDU \d+ \(\w+\) fails its (DATASUM|CHECKSUM)"):
        xs.SpectrumDataset.read(path)


@pytest.mark.parametrize("hdu", ["EXPOSURE", "EDISP", "BACKGROUND", "MASK_SAFE"])
def test_missing_declared_hdu(gfile, hdu):
    _, path = gfile

    def drop(hdul):
        out = fits.HDUList([h for h in hdul if h.name not in (hdu, f"{hdu}_BANDS")])
        out[0].header["NEXTEND"] = len(out) - 1  # a consistent file that lacks the HDU
        return out

    _rewrite(path, drop)
    with pytest.raises(FitsLayoutError, match=rf"{path}: HDU {hdu} is missing .* declared by the primary DSVARS"):
        xs.SpectrumDataset.read(path)


@pytest.mark.parametrize("hdu", ["EXPOSURE", "EDISP_BANDS", "BACKGROUND", "MASK_SAFE_BANDS"])
def test_renamed_hdu(gfile, hdu):
    _, path = gfile

    def rename(hdul):
        hdul[hdu].name = hdu[:-1] + "X"

    _rewrite(path, rename, keep_marker=False)  # a Gammapy-like file: no DSVARS to rely on
    with pytest.raises(FitsLayoutError, match=rf"{path}: HDU \w+ without its \w+ HDU"):
        xs.SpectrumDataset.read(path)


def test_unknown_hdu_in_our_file(gfile):
    _, path = gfile

    def rename(hdul):
        hdul["GTI"].name = "GTX"

    _rewrite(path, rename)
    with pytest.raises(FitsLayoutError, match=r"unexpected HDU name\(s\) \['GTX'\]"):
        xs.SpectrumDataset.read(path)


def test_gammapy_file_optional_arrays_by_layout(gfile):
    """Without DSVARS (Gammapy's files) arrays other than COUNTS are optional, as in Gammapy."""
    ds, path = gfile

    def drop(hdul):
        return fits.HDUList([h for h in hdul if h.name not in ("MASK_FIT", "MASK_FIT_BANDS")])

    _rewrite(path, drop, keep_marker=False)
    back = xs.SpectrumDataset.read(path)
    assert "mask_fit" not in back.data
    xr.testing.assert_identical(back.data["counts"], ds.data["counts"])


def test_gammapy_file_without_counts(gfile):
    _, path = gfile

    def drop(hdul):
        return fits.HDUList([h for h in hdul if h.name not in ("COUNTS", "COUNTS_BANDS")])

    _rewrite(path, drop, keep_marker=False)
    with pytest.raises(FitsLayoutError, match=rf"{path}: HDU COUNTS is missing"):
        xs.SpectrumDataset.read(path)


@pytest.mark.parametrize("hdu", ["COUNTS", "EDISP", "MASK_SAFE", "EXPOSURE"])
def test_reversed_rows_follow_channel(gfile, hdu):
    ds, path = gfile

    def reverse(hdul):
        h = hdul[hdu]
        h.data = h.data[::-1].copy()

    _rewrite(path, reverse)
    with fits.open(path) as hdul:
        assert hdul[hdu].data["CHANNEL"][0] == len(hdul[hdu].data) - 1
    back = xs.SpectrumDataset.read(path)
    xr.testing.assert_identical(back.data, ds.data)


@pytest.mark.parametrize(("channels", "words"), [("dup", "duplicate channel"), ("gap", "not 0..n-1")])
def test_channel_gaps_and_duplicates(gfile, channels, words):
    _, path = gfile

    def edit(hdul):
        ch = hdul["COUNTS"].data["CHANNEL"]
        if channels == "dup":
            ch[1] = ch[0]
        else:
            ch[-1] += 5

    _rewrite(path, edit)
    with pytest.raises(FitsLayoutError, match=rf"{path}, HDU COUNTS: CHANNEL column .*{words}"):
        xs.SpectrumDataset.read(path)


@pytest.mark.parametrize("value", [-1.0, "abc"])
def test_bad_livetime_keyword(gfile, value):
    _, path = gfile

    def edit(hdul):
        hdul.pop(hdul.index_of("LIVETIME"))
        hdul[0].header["NEXTEND"] = len(hdul) - 1
        hdul[0].header["LIVETIME"] = value

    _rewrite(path, edit)
    with pytest.raises(FitsLayoutError, match=rf"{path}: primary keyword LIVETIME = .* not a finite value >= 0"):
        xs.SpectrumDataset.read(path)


@pytest.mark.parametrize("value", [-5.0, np.inf])
def test_bad_livetime_hdu(gfile, value):
    _, path = gfile

    def edit(hdul):
        hdul["LIVETIME"].data["LIVETIME"][0] = value
        hdul[0].header.pop("LIVETIME")

    _rewrite(path, edit)
    with pytest.raises(FitsLayoutError, match=rf"{path}: HDU LIVETIME, column LIVETIME = .* not finite and >= 0"):
        xs.SpectrumDataset.read(path)


def test_livetime_keyword_and_hdu_disagree(gfile):
    _, path = gfile

    def edit(hdul):
        hdul[0].header["LIVETIME"] = hdul[0].header["LIVETIME"] * 2

    _rewrite(path, edit)
    with pytest.raises(FitsLayoutError, match="primary keyword LIVETIME = .* disagrees with HDU LIVETIME"):
        xs.SpectrumDataset.read(path)


def test_bad_unit_names_hdu_and_column(gfile):
    _, path = gfile

    def edit(hdul):
        hdul["EXPOSURE"].columns["DATA"].unit = "m2 blah"

    _rewrite(path, edit)
    with pytest.raises(FitsLayoutError, match=rf"{path}, HDU EXPOSURE column DATA: unit 'm2 blah' is not a valid"):
        xs.SpectrumDataset.read(path)


def test_float_mask_refused(gfile):
    _, path = gfile

    def edit(hdul):
        h = hdul["MASK_SAFE"]
        cols = fits.ColDefs([h.columns["CHANNEL"], fits.Column("DATA", "D", array=h.data["DATA"].astype(float))])
        new = fits.BinTableHDU.from_columns(cols, header=h.header, name="MASK_SAFE")
        hdul[hdul.index_of("MASK_SAFE")] = new

    _rewrite(path, edit)
    with pytest.raises(FitsLayoutError, match="HDU MASK_SAFE column DATA is float64, expected logical"):
        xs.SpectrumDataset.read(path)


def test_checksum_failure_in_foreign_file_warns(gfile):
    """Other software's files with stale checksums (common) are read, with a warning."""
    ds, path = gfile
    _rewrite(path, lambda hdul: None, keep_marker=False)
    with fits.open(path, mode="update") as hdul:
        hdul[1].header["CHECKSUM"] = "0000000000000000"
        hdul[1].header["DATASUM"] = "1"
    with pytest.warns(UserWarning, match="fails its DATASUM.*other software: read anyway"):
        back = xs.SpectrumDataset.read(path)
    np.testing.assert_array_equal(back.counts.values, ds.counts.values)


@pytest.mark.filterwarnings("ignore:Unexpected extra padding")
def test_open_fits_rejects_trailing_bytes(gfile):
    _, path = gfile
    path.write_bytes(path.read_bytes() + b"\0" * 2880)
    with pytest.raises(DatasetFileError, match=str(path)):
        open_fits(path)


# ------------------------------------------------------------------------------------------
# OGIP
# ------------------------------------------------------------------------------------------
@pytest.fixture
def ogip_set(tmp_path):
    ds = onoff_dataset(seed=7, n=8, n_true=10)
    paths = write_ogip(ds, tmp_path / "pha_x.fits")
    return xs.SpectrumDatasetOnOff.read(paths["pha"]), paths


def test_write_id_shared_by_the_set(ogip_set):
    _, paths = ogip_set
    ids = {fits.getheader(p, 0)["WRITEID"] for p in paths.values()}
    assert len(ids) == 1 and len(ids.pop()) == 32


@pytest.mark.parametrize("part", ["arf", "rmf", "bkg"])
def test_mixed_writes_refused(ogip_set, tmp_path, part):
    _, paths = ogip_set
    other = onoff_dataset(seed=7, n=8, n_true=10)  # same binning, other values: a later write
    other.data["exposure"] *= 2.0
    other.data["edisp"] *= 0.9
    other.data["counts_off"] += 1.0
    other_paths = write_ogip(other, tmp_path / "b" / "pha_x.fits")
    shutil.copy(other_paths[part], paths[part])  # a write stopped after this file
    key = {"arf": "ANCRFILE", "rmf": "RESPFILE", "bkg": "BACKFILE"}[part]
    with pytest.raises(OGIPError, match=rf"{paths[part]}: WRITEID = .* differs .* PHA {paths['pha']} .*\({key}\)"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


def test_files_without_write_id_still_read(ogip_set):
    ds, paths = ogip_set
    for p in paths.values():
        _rewrite(p, lambda hdul: None, keep_marker=False)
    back = xs.SpectrumDatasetOnOff.read(paths["pha"])
    xr.testing.assert_identical(back.data, ds.data)


def test_foreign_pha_with_our_arf(ogip_set):
    """Only two differing ids are a mismatch: a PHA of other software may link our ARF."""
    ds, paths = ogip_set
    _rewrite(paths["pha"], lambda hdul: None, keep_marker=False)
    back = xs.SpectrumDatasetOnOff.read(paths["pha"])
    xr.testing.assert_identical(back.data, ds.data)


@pytest.mark.parametrize("part", ["pha", "arf", "rmf", "bkg"])
def test_damaged_byte_names_the_file(ogip_set, part):
    _, paths = ogip_set
    data = bytearray(paths[part].read_bytes())
    data[2880 * 2 + 3] ^= 0x40  # first data block of the first extension
    paths[part].write_bytes(bytes(data))
    with pytest.raises(DatasetFileError, match=rf"{paths[part]}: HDU 1 \(\w+\) (fails its|has lost its)"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


@pytest.mark.parametrize("part", ["pha", "bkg"])
def test_reversed_spectrum_rows_follow_channel(ogip_set, part):
    ds, paths = ogip_set

    def reverse(hdul):
        hdul["SPECTRUM"].data = hdul["SPECTRUM"].data[::-1].copy()

    _rewrite(paths[part], reverse)
    back = xs.SpectrumDatasetOnOff.read(paths["pha"])
    xr.testing.assert_identical(back.data, ds.data)


@pytest.mark.parametrize("part", ["pha", "rmf"])
def test_reversed_ebounds_rows_follow_channel(ogip_set, part):
    ds, paths = ogip_set

    def reverse(hdul):
        hdul["EBOUNDS"].data = hdul["EBOUNDS"].data[::-1].copy()

    _rewrite(paths[part], reverse)
    back = xs.SpectrumDatasetOnOff.read(paths["pha"])
    xr.testing.assert_identical(back.data, ds.data)


@pytest.mark.parametrize(("hdu", "words"), [("SPECTRUM", "CHANNEL values are not"), ("EBOUNDS", "EBOUNDS CHANNEL")])
def test_duplicate_channels(ogip_set, hdu, words):
    _, paths = ogip_set

    def edit(hdul):
        hdul[hdu].data["CHANNEL"][2] = hdul[hdu].data["CHANNEL"][1]

    _rewrite(paths["pha"], edit)
    with pytest.raises(OGIPError, match=rf"{paths['pha']}: .*{words}"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


@pytest.mark.parametrize("value", [0.0, -3.0, "missing"])
def test_bad_exposure_keyword(ogip_set, value):
    _, paths = ogip_set

    def edit(hdul):
        if value == "missing":
            del hdul["SPECTRUM"].header["EXPOSURE"]
        else:
            hdul["SPECTRUM"].header["EXPOSURE"] = value

    _rewrite(paths["pha"], edit)
    with pytest.raises(OGIPError, match=rf"{paths['pha']}: .*EXPOSURE"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


@pytest.mark.parametrize("part", ["pha", "bkg"])
@pytest.mark.parametrize("value", [0.0, -1.0, np.nan])
def test_bad_backscal(ogip_set, part, value):
    ds, paths = ogip_set
    good = int(np.flatnonzero(ds.mask_safe.values)[0])

    def edit(hdul):
        hdul["SPECTRUM"].data["BACKSCAL"][good] = value

    _rewrite(paths[part], edit)
    with pytest.raises(OGIPError, match=rf"{paths[part]}: BACKSCAL = .* in channel {good} .*finite and > 0"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


def test_rmf_nan_names_the_rmf(ogip_set):
    _, paths = ogip_set

    def edit(hdul):
        hdul["MATRIX"].data["MATRIX"][3][0] = np.nan

    _rewrite(paths["rmf"], edit)
    with pytest.raises(OGIPError, match=rf"{paths['rmf']}: RMF MATRIX column has negative or non-finite values"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


@pytest.mark.parametrize(("part", "hdu", "column"), [("rmf", "EBOUNDS", "E_MIN"), ("arf", "SPECRESP", "ENERG_HI")])
def test_missing_column_names_file_and_column(ogip_set, part, hdu, column):
    _, paths = ogip_set

    def edit(hdul):
        h = hdul[hdu]
        cols = fits.ColDefs([c for c in h.columns if c.name != column])
        hdul[hdul.index_of(hdu)] = fits.BinTableHDU.from_columns(cols, header=h.header, name=hdu)

    _rewrite(paths[part], edit)
    with pytest.raises(OGIPError, match=rf"{paths[part]}: .*{hdu if part == 'rmf' else 'ARF'}.*{column}"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


def test_bad_unit_names_the_file(ogip_set):
    _, paths = ogip_set

    def edit(hdul):
        hdul["SPECRESP"].columns["ENERG_LO"].unit = "keV**)"

    _rewrite(paths["arf"], edit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(OGIPError, match=rf"{paths['arf']}: cannot read: .*keV"):
            xs.SpectrumDatasetOnOff.read(paths["pha"])


def test_truncated_ogip_file(ogip_set):
    _, paths = ogip_set
    data = paths["pha"].read_bytes()
    with fits.open(paths["pha"]) as hdul:
        cut = hdul[2]._header_offset  # noqa: SLF001  (EBOUNDS and GTI lost)
    paths["pha"].write_bytes(data[:cut])
    with pytest.raises(DatasetFileError, match=rf"{paths['pha']}: primary NEXTEND = \d+ but the file has 1 extensions"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


def test_ogip_error_is_a_dataset_file_error():
    assert issubclass(OGIPError, DatasetFileError) and issubclass(OGIPError, ValueError)


def test_dataset_check_failure_names_the_pha(ogip_set):
    """A value the dataset checks refuse (negative counts) is reported with the PHA's name."""
    _, paths = ogip_set

    def edit(hdul):
        hdul["SPECTRUM"].data["COUNTS"][3] = -4

    _rewrite(paths["pha"], edit)
    with pytest.raises(DatasetFileError, match=rf"{paths['pha']}: .*counts"):
        xs.SpectrumDatasetOnOff.read(paths["pha"])


def test_gzipped_fits_reads_and_is_verified(gfile, tmp_path):
    import gzip

    ds, path = gfile
    gz = tmp_path / "g.fits.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    xr.testing.assert_identical(xs.SpectrumDataset.read(gz).data, ds.data)
    data = bytearray(path.read_bytes())
    data[2880 * 2 + 9] ^= 0x04
    gz.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DatasetFileError, match=rf"{gz}: HDU 1 \(COUNTS\) fails its"):
        xs.SpectrumDataset.read(gz)
