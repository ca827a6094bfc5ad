"""Cost of the trust checks (`xspec_ds.validation`) on the hot paths, measured in one run.

For the datasets of `bench_core.py` (N = 30, 100, 1000 reco bins, 2N true bins, dense edisp):

1. ``stat_sum`` after an index change, with the cheap input check (as shipped) and with the
   check replaced by a no-op, interleaved in the same run, and the numpy floor of bench_core;
2. one full `validate` (what every ``Fit.run`` calls first) against the time of ``Fit.run``.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_validation.py [--output benchmarks/results/bench_validation.txt]
"""

from __future__ import annotations

import argparse
import io
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_core as bc  # noqa: E402

import xspec_ds as xs  # noqa: E402
import xspec_ds.validation as validation  # noqa: E402


def _best(fn, number, repeat=7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def run(sizes, out) -> None:
    print("xspec_ds validation overhead (benchmarks/bench_validation.py); times are min over repeats", file=out)
    print("\n1. stat_sum after an index change: with the input check / without / numpy floor", file=out)
    print(
        f"{'N':>6} {'checked':>10} {'no check':>10} {'floor':>10} {'check alone':>12} {'checked/floor':>14}"
        f" {'no check/floor':>15}",
        file=out,
    )
    real_check = validation.check_stat_inputs
    rows2 = []
    for n in sizes:
        a = bc.make_arrays(n)
        ds = bc.make_xspec(a)
        floor = bc.NumpyFloor(a) if hasattr(bc, "NumpyFloor") else None
        p = ds.models.parameters["index"]
        state = {"i": 0}

        def call():
            state["i"] += 1
            p.value = 2.6 + 1e-3 * (state["i"] % 2)
            return ds.stat_sum()

        number = 2000 if n <= 100 else 100
        t_on, t_off = [], []
        for _ in range(5):  # interleave: the machine's load hits both alike
            t_on.append(_best(call, number, 3))
            validation.check_stat_inputs = lambda *args: None  # stat_sum imports it at call time
            try:
                t_off.append(_best(call, number, 3))
            finally:
                validation.check_stat_inputs = real_check
        t_floor = float("nan")
        if floor is not None:
            t_floor = _best(lambda: floor.stat_sum(2.6, 1e-8), number)
        on, off = min(t_on), min(t_off)
        hot = ds._hot()
        t_check = _best(lambda: real_check(ds, hot, hot.mask), 2000)
        print(
            f"{n:>6} {on * 1e6:>8.1f}us {off * 1e6:>8.1f}us {t_floor * 1e6:>8.1f}us {t_check * 1e6:>10.1f}us"
            f" {on / t_floor:>13.2f}x {off / t_floor:>14.2f}x",
            file=out,
        )
        t_val = _best(lambda: validation.validate(ds), 20 if n >= 1000 else 200)
        fit_number = 3 if n >= 1000 else 10

        def fit():
            for k, v in bc.START.items():
                ds.models.parameters[k].value = v
            xs.Fit().run(ds)

        t_fit = _best(fit, fit_number, 3)
        rows2.append((n, t_val, t_fit))
    print("\n2. validate (run at the start of every Fit.run) vs the whole Fit.run", file=out)
    print(f"{'N':>6} {'validate':>10} {'Fit.run':>10} {'share':>7}", file=out)
    for n, t_val, t_fit in rows2:
        print(f"{n:>6} {t_val * 1e6:>8.1f}us {t_fit * 1e3:>8.2f}ms {t_val / t_fit:>6.1%}", file=out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 1000])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    buf = io.StringIO()
    run(args.sizes, buf)
    print(buf.getvalue(), end="")
    if args.output:
        args.output.write_text(buf.getvalue())


if __name__ == "__main__":
    main()
