"""Fuzzed reads: every damaged file either reads back equal to the original or raises naming the file.

Synthetic files written by the package (so the test runs anywhere): an OGIP set (PHA, ARF, RMF,
background PHA), Gammapy's FITS layout and netCDF. Each reader gets ``N_MUTANTS`` seeded mutants:
byte flips, truncation, zeroed blocks, header keyword / attribute edits and HDU / column /
variable renames. A mutant passes if the read raises an error (``ValueError`` or ``OSError``,
the library's ``DatasetFileError``/``OGIPError``/``FileNotFoundError``) whose message names the
damaged file, or returns a dataset identical to the original (damage in padding, or a change
the reader ignores). Any other outcome -- a different dataset, an error that does not name the
file, another exception type -- fails, with the seed and the mutation in the message.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xspec_ds as xs

from ._datasets import random_dataset

N_MUTANTS = 200
#: shift every reader's seed (explore other mutants locally: XSPEC_DS_FUZZ_SEED=1 pytest ...)
SEED_SHIFT = int(os.environ.get("XSPEC_DS_FUZZ_SEED", "0"))
BLOCK = 2880
# FITS keywords whose values the "keyword" mutation edits (and EXTNAME/TTYPE for "rename")
KEYWORDS = (
    "EXPOSURE",
    "BACKSCAL",
    "AREASCAL",
    "LIVETIME",
    "NAXIS1",
    "NAXIS2",
    "TFORM",
    "TUNIT",
    "TDIM",
    "TLMIN",
    "DETCHANS",
    "ANCRFILE",
    "RESPFILE",
    "BACKFILE",
    "NEXTEND",
    "DSVARS",
    "AXCOLS",
    "LO_THRES",
    "HI_THRES",
    "WRITEID",
    "MJDREFI",
    "HDUCLAS1",
    "QUALITY",
    "NAME",
)
NEW_VALUES = ("0", "-1", "1E300", "'TeV'", "'none'", "'X'", "T", "2", "'m2 s'", "' '", "1.5")


def onoff_dataset(seed: int = 1, n: int = 6, n_true: int = 8) -> xs.SpectrumDatasetOnOff:
    ds = random_dataset(seed, n=n, n_true=n_true, name="fz", exposure_unit="cm2 s")
    rng = np.random.default_rng(seed)
    data = ds.data
    like = data["counts"] * 0
    return xs.SpectrumDatasetOnOff(
        counts=data["counts"].round(),
        counts_off=like + rng.poisson(20, n).astype(float),
        acceptance=like + 1.0,
        acceptance_off=like + 5.0,
        exposure=data["exposure"],
        edisp=data["edisp"],
        mask_safe=data["mask_safe"],
        name="fz",
        gti=ds.gti,
        livetime=ds.livetime,
    )


# ------------------------------------------------------------------------------------------
# mutations
# ------------------------------------------------------------------------------------------
def _fits_cards(data: bytes):
    """(offset, keyword) of every header card of a FITS file (header blocks found by parsing)."""
    cards = []
    pos = 0
    while pos + BLOCK <= len(data):
        block_start = pos
        end = False
        while pos + 80 <= len(data):
            card = data[pos : pos + 80]
            key = card[:8].decode("ascii", "replace").strip()
            cards.append((pos, key))
            pos += 80
            if key == "END":
                end = True
                break
        if not end:
            break
        pos = block_start + -(-(pos - block_start) // BLOCK) * BLOCK
        # skip the data unit: find the next header by scanning block starts for XTENSION
        nxt = data.find(b"XTENSION=", pos)
        while nxt != -1 and nxt % BLOCK:
            nxt = data.find(b"XTENSION=", nxt + 1)
        if nxt == -1:
            break
        pos = nxt
    return cards


def _edit_card(data: bytearray, offset: int, rng) -> str:
    card = bytes(data[offset : offset + 80]).decode("ascii", "replace")
    value = NEW_VALUES[rng.integers(len(NEW_VALUES))]
    new = (card[:10] + f"{value:>20}").ljust(80)[:80]
    data[offset : offset + 80] = new.encode("ascii")
    return f"{card[:8].strip()} = {value}"


def _rename_card(data: bytearray, offset: int, rng) -> str:
    card = bytes(data[offset : offset + 80]).decode("ascii", "replace")
    m = re.search(r"'([^']+)'", card)
    if not m:
        return "rename: no string value"
    name = m.group(1)
    i = int(rng.integers(len(name.rstrip()) or 1))
    new_name = name[:i] + chr(ord("A") + int(rng.integers(26))) + name[i + 1 :]
    start = m.start(1)
    data[offset + start : offset + start + len(name)] = new_name.encode("ascii")
    return f"rename {card[:8].strip()} {name.strip()!r} -> {new_name.strip()!r}"


def _nc_tokens(data: bytes):
    """Offsets of names and short text attributes in a netCDF-3 header (printable runs)."""
    header_end = min(len(data), 4096)
    return [(m.start(), m.group()) for m in re.finditer(rb"[A-Za-z_][A-Za-z0-9_ .-]{1,40}", data[:header_end])]


def mutate(data: bytes, rng, fmt: str) -> tuple[bytes, str]:
    """One seeded mutation of ``data``; returns (new bytes, description)."""
    kind = ["flip", "flip", "truncate", "zero", "keyword", "rename"][int(rng.integers(6))]
    out = bytearray(data)
    n = len(data)
    if kind == "flip":
        k = int(rng.integers(1, 4))
        where = rng.integers(0, n, k)
        for w in where:
            out[w] ^= int(rng.integers(1, 256))
        return bytes(out), f"flip bytes {sorted(int(w) for w in where)}"
    if kind == "truncate":
        if rng.uniform() < 0.4 and fmt == "fits":
            cut = int(rng.integers(1, n // BLOCK)) * BLOCK  # at an HDU-aligned boundary
        else:
            cut = int(rng.integers(0, n))
        return bytes(out[:cut]), f"truncate at {cut} of {n}"
    if kind == "zero":
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, 2048))
        out[start : start + length] = bytes(len(out[start : start + length]))
        return bytes(out), f"zero {length} bytes at {start}"
    if fmt == "fits":
        cards = _fits_cards(data)
        if kind == "keyword":
            pool = [c for c in cards if c[1].rstrip("0123456789") in KEYWORDS]
            off, _ = pool[int(rng.integers(len(pool)))]
            return bytes(out), "keyword " + _edit_card(out, off, rng)
        pool = [c for c in cards if c[1] == "EXTNAME" or c[1].startswith("TTYPE")]
        off, _ = pool[int(rng.integers(len(pool)))]
        return bytes(out), _rename_card(out, off, rng)
    # netCDF: edit a name or a text attribute in the header, keeping its length
    tokens = _nc_tokens(data)
    off, text = tokens[int(rng.integers(len(tokens)))]
    i = int(rng.integers(len(text)))
    repl = b"Q" if kind == "rename" else bytes([text[i] ^ 0x20]) if chr(text[i]).isalpha() else b"7"
    out[off + i : off + i + 1] = repl
    return bytes(out), f"{kind}: {text!r}[{i}] -> {repl!r}"


# ------------------------------------------------------------------------------------------
# the originals
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_originals")
    out = {}
    from xspec_ds.io.ogip import write_ogip

    paths = write_ogip(onoff_dataset(), root / "pha_fz.fits")
    out["ogip"] = (dict(paths), xs.SpectrumDatasetOnOff.read(root / "pha_fz.fits"))
    g = random_dataset(2, n=6, n_true=8, meta=True)
    g.write(root / "g.fits")
    out["gammapy"] = ({"file": root / "g.fits"}, xs.SpectrumDataset.read(root / "g.fits"))
    nc = random_dataset(3, n=6, n_true=8, meta=True, models=True)
    nc.write(root / "n.nc")
    out["netcdf"] = ({"file": root / "n.nc"}, xs.SpectrumDataset.read(root / "n.nc"))
    return out


def _read(reader: str, files: dict):
    if reader == "ogip":
        return xs.SpectrumDatasetOnOff.read(files["pha"])
    return xs.SpectrumDataset.read(files["file"])


def _same(a, b) -> bool:
    if not a.data.identical(b.data):
        return False
    ma, mb = getattr(a, "models", None), getattr(b, "models", None)
    if (ma is None) != (mb is None):
        return False
    return ma is None or ma.to_dict() == mb.to_dict()


@pytest.mark.parametrize("reader", ["ogip", "gammapy", "netcdf"])
def test_fuzzed_reads(reader, originals, tmp_path):
    files, original = originals[reader]
    rng = np.random.default_rng({"ogip": 11, "gammapy": 22, "netcdf": 33}[reader] + 1000 * SEED_SHIFT)
    fmt = "netcdf" if reader == "netcdf" else "fits"
    failures = []
    outcomes = {"equal": 0, "error": 0}
    for i in range(N_MUTANTS):
        case = tmp_path / f"m{i}"
        case.mkdir()
        copies = {}
        for key, src in files.items():
            copies[key] = case / Path(src).name
            copies[key].write_bytes(Path(src).read_bytes())
        target_key = list(files)[int(rng.integers(len(files)))]
        target = copies[target_key]
        data, what = mutate(target.read_bytes(), rng, fmt)
        target.write_bytes(data)
        label = f"mutant {i} ({target.name}: {what})"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                back = _read(reader, copies)
        except (ValueError, OSError) as exc:
            if str(target) not in str(exc):
                failures.append(f"{label}: {type(exc).__name__} does not name the file: {exc}")
            else:
                outcomes["error"] += 1
        except Exception as exc:  # noqa: BLE001  (recorded as a failure)
            failures.append(f"{label}: unexpected {type(exc).__name__}: {exc}")
        else:
            if _same(back, original):
                outcomes["equal"] += 1
            else:
                failures.append(f"{label}: read back WITHOUT error but different from the original")
    assert not failures, f"{len(failures)} of {N_MUTANTS} mutants:\n" + "\n".join(failures[:25])
    assert outcomes["error"] > N_MUTANTS // 2  # the mutations do damage most files
    assert sum(outcomes.values()) == N_MUTANTS


def test_mutations_cover_every_kind():
    """The generator produces each mutation kind (a fuzz test that only flips bytes proves little)."""
    rng = np.random.default_rng(0)
    ds = random_dataset(2, n=6, n_true=8)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.fits"
        ds.write(p)
        data = p.read_bytes()
    kinds = {mutate(data, rng, "fits")[1].split()[0] for _ in range(200)}
    assert kinds >= {"flip", "truncate", "zero", "keyword", "rename"}


def test_identical_copy_reads_equal(originals, tmp_path):
    """Control: an undamaged copy is read back equal (so `_same` is not trivially false)."""
    for reader, (files, original) in originals.items():
        copies = {}
        for key, src in files.items():
            copies[key] = tmp_path / f"{reader}_{Path(src).name}"
        # OGIP: keep the names the PHA header links to
        if reader == "ogip":
            sub = tmp_path / "ogip"
            sub.mkdir()
            copies = {k: sub / Path(v).name for k, v in files.items()}
        for key, src in files.items():
            copies[key].write_bytes(Path(src).read_bytes())
        assert _same(_read(reader, copies), original), reader
        xr.testing.assert_identical(_read(reader, copies).data, original.data)
