"""Folding with large responses: dense, banded (by magnitude) and sparse kernels (issue 12).

For N = 1,000 and 3,000 reco bins (2N true bins, the Gaussian-in-ln(E) kernel of
``bench_core.py``: 10-20 % resolution, rows summing to <= 1) it times, in one run (minimum over
repeats, ``OPENBLAS_NUM_THREADS=1`` recommended):

- ``mu @ edisp`` (dense, one BLAS matrix-vector product);
- ``forward.fold`` with the `BandedKernel` chosen by `forward.prepare_kernel` (row tails holding
  at most 1e-12 of the row sum left out; BLAS per block of 64 rows on views of the matrix);
- the same elements as a CSR matrix (``scipy.sparse``), for comparison;
- three vectors at once (value + two parameter derivatives): ``M @ edisp`` (one BLAS-3 product,
  the "multi-vector slowdown" of the issue), three separate matrix-vector products, and the banded
  kernel (block by block);
- the adjoint ``w @ edisp.T`` and ``forward.backproject`` with the banded kernel;
- building the banded kernel (once per cache);

and the largest relative difference of the banded fold from the dense one over all bins, for a
power law (index 2.5) times the benchmark exposure.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fold.py [--output benchmarks/results/bench_fold.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import timeit
from pathlib import Path

import numpy as np
import scipy.sparse

sys.path.insert(0, str(Path(__file__).parent))
from bench_core import make_arrays  # noqa: E402

from xspec_ds import forward  # noqa: E402


def best_ms(func, number: int, repeat: int = 7) -> float:
    func()
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    lines = [
        "# bench_fold: folding true-bin counts with the dispersion matrix (times in ms, min over repeats)",
        f"# python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"{platform.machine()}, load average {os.getloadavg()[0]:.1f}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}",
        "",
    ]
    for n in args.sizes:
        a = make_arrays(n)
        matrix = a["edisp"]
        e = a["e_true"]
        g = 1.0 - 2.5
        mu = 1e-11 / g * (e[1:] ** g - e[:-1] ** g) * a["exposure"]
        rng = np.random.default_rng(0)
        three = mu * rng.uniform(0.5, 1.5, (3, mu.size))
        w = rng.uniform(-1, 1, n)
        number = max(1, 2000 // n)
        t_build = best_ms(lambda m=matrix: forward.BandedKernel(m), 1, 3)
        kernel = forward.prepare_kernel(matrix)
        assert isinstance(kernel, forward.BandedKernel)
        kept = np.zeros_like(matrix)
        for i in range(matrix.shape[0]):  # the banded kernel's elements, for the CSR comparison
            kept[i, kernel.lo[i] : kernel.hi[i]] = matrix[i, kernel.lo[i] : kernel.hi[i]]
        csr_t = scipy.sparse.csr_matrix(kept.T)
        dense = mu @ matrix
        rel = float(np.max(np.abs(forward.fold(mu, kernel) - dense) / dense))
        rows = [
            ("dense mu @ edisp", best_ms(lambda: mu @ matrix, number)),
            ("banded fold", best_ms(lambda: forward.fold(mu, kernel), number)),
            ("CSR (same elements)", best_ms(lambda: csr_t @ mu, number)),
            ("3 vectors: dense M @ edisp (one gemm)", best_ms(lambda: three @ matrix, number)),
            ("3 vectors: dense, 3 x mu @ edisp", best_ms(lambda: [v @ matrix for v in three], number)),
            ("3 vectors: banded fold", best_ms(lambda: forward.fold(three, kernel), number)),
            ("adjoint: dense w @ edisp.T", best_ms(lambda: w @ matrix.T, number)),
            ("adjoint: banded backproject", best_ms(lambda: forward.backproject(w, kernel), number)),
        ]
        t_dense = rows[0][1]
        lines += [
            f"## N = {n} reco x {2 * n} true bins: non-zero elements {np.count_nonzero(matrix) / matrix.size:.0%}, "
            f"banded kernel reads {kernel.work:.0%} of the matrix ({len(kernel.blocks)} blocks), built in "
            f"{t_build:.1f} ms; max relative difference banded vs dense over all bins: {rel:.1e}",
            f"{'':<42}{'ms':>9}{'x dense mv':>12}",
        ]
        lines += [f"{name:<42}{t:>9.3f}{t / t_dense:>12.2f}" for name, t in rows]
        lines.append("")
    lines.append(
        "(x dense mv: time / one dense matrix-vector product of the same N; targets: banded == dense to 1e-9, "
        "3 vectors no longer 8-9x one mat-vec)"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
