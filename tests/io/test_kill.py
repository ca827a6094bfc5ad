"""Writes killed at random moments never leave a file set that reads back as neither version.

For each format (an OGIP set of PHA, ARF, RMF and background PHA; one netCDF file), each trial
starts with version A on disk and forks a child process that rewrites the files in a loop
(B, A, B, ... with ``overwrite=True``); the parent kills it with SIGKILL after a seeded random
delay of up to a few write durations, then reads the files. The read must raise an error (a
set mixing two writes is refused by its ``WRITEID``) or return exactly A or B. The child is a
fork of the test process (started in ~10 ms, with the package already imported), so 50 trials
per format take seconds.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings

import numpy as np
import pytest

import xspec_ds as xs
from xspec_ds.io.ogip import write_ogip

from .._requirements import missing
from ._datasets import random_dataset

N_TRIALS = 50

if sys.platform == "win32" or not hasattr(os, "fork"):
    missing("the kill test needs os.fork and SIGKILL (POSIX)", allow_module_level=True)


def _onoff(seed: int) -> xs.SpectrumDatasetOnOff:
    ds = random_dataset(seed, n=30, n_true=60, name="kill", exposure_unit="cm2 s")
    rng = np.random.default_rng(seed)
    like = ds.data["counts"] * 0
    return xs.SpectrumDatasetOnOff(
        counts=ds.data["counts"].round(),
        counts_off=like + rng.poisson(20, 30).astype(float),
        acceptance=like + 1.0,
        acceptance_off=like + float(rng.uniform(2, 9)),
        exposure=ds.data["exposure"],
        edisp=ds.data["edisp"],
        mask_safe=ds.data["mask_safe"],
        name="kill",
        gti=ds.gti,
        livetime=ds.livetime,
    )


FORMATS = {
    "ogip": {
        "make": _onoff,
        "write": lambda ds, path: write_ogip(ds, path, overwrite=True),
        "read": lambda path: xs.SpectrumDatasetOnOff.read(path),
        "name": "pha_kill.fits",
        "max_delay": 2.5,  # in write durations
    },
    "netcdf": {
        "make": lambda seed: random_dataset(seed, n=100, n_true=200, models=True, meta=True),
        "write": lambda ds, path: ds.write(path, overwrite=True),
        "read": lambda path: xs.SpectrumDataset.read(path),
        "name": "kill.nc",
        "max_delay": 6.0,  # the fork costs about one (short) write
    },
}


def _child_loop(fmt, versions, path) -> None:
    """Runs in the forked child: rewrite the files forever (until killed)."""
    try:
        i = 1
        while True:
            fmt["write"](versions[i % 2], path)
            i += 1
    finally:
        os._exit(0)


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_killed_writes_leave_old_new_or_error(kind, tmp_path):
    fmt = FORMATS[kind]
    versions = [fmt["make"](1), fmt["make"](2)]
    path0 = tmp_path / "probe" / fmt["name"]
    path0.parent.mkdir()
    fmt["write"](versions[0], path0)  # warm-up (imports, caches)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fmt["write"](versions[0], path0)
        times.append(time.perf_counter() - t0)
    t_write = float(np.median(times))
    expected = [fmt["read"](path0)]
    fmt["write"](versions[1], path0)
    expected.append(fmt["read"](path0))
    assert not expected[0].data.identical(expected[1].data)

    rng = np.random.default_rng({"ogip": 5, "netcdf": 6}[kind])
    outcomes = {"A": 0, "B": 0, "error": 0}
    bad = []
    for trial in range(N_TRIALS):
        folder = tmp_path / f"t{trial}"
        folder.mkdir()
        path = folder / fmt["name"]
        fmt["write"](versions[0], path)
        delay = float(rng.uniform(0.0, fmt["max_delay"] * t_write))
        pid = os.fork()
        if pid == 0:  # child
            _child_loop(fmt, versions, path)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"trial {trial}: the writer ended on its own"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                back = fmt["read"](path)
        except (ValueError, OSError) as exc:
            outcomes["error"] += 1
            assert str(folder) in str(exc), f"trial {trial}: error does not name the file: {exc}"
            continue
        if back.data.identical(expected[0].data):
            outcomes["A"] += 1
        elif back.data.identical(expected[1].data):
            outcomes["B"] += 1
        else:
            bad.append(f"trial {trial} (killed after {delay * 1e3:.1f} ms): neither the old nor the new data")
    print(f"{kind}: {N_TRIALS} kills, t_write {t_write * 1e3:.1f} ms, outcomes {outcomes}")
    assert not bad, "\n".join(bad)
    assert sum(outcomes.values()) == N_TRIALS
    # the kills fell at different moments: both versions were seen on disk
    assert outcomes["A"] > 0 and outcomes["B"] > 0, outcomes
