"""Mutation testing of the core modules with mutmut (issue 14); not part of CI.

For each requested module the repository is copied to a work folder, a ``[tool.mutmut]`` section
restricting mutation to that module and the test run to the test files that exercise it is added
to the copy's ``pyproject.toml``, and ``mutmut run`` is started there (mutmut 3 then runs, for each
mutant, only the tests that reach the mutated function). The worktree itself is never touched.
The summary (killed / survived / timeout / ... and the kill rate) and the diff of every surviving
mutant are printed and written to ``scripts/mutation_results/<module>.txt``.

Usage (from the repository root; ``pip install -e ".[dev]"`` provides mutmut)::

    python scripts/mutation_test.py stats forward          # the modules measured in issue 14
    python scripts/mutation_test.py spectral stack --max-children 2
    python scripts/mutation_test.py stats --keep             # keep the work folder (mutmut browse)

Equivalent mutants (changes that cannot alter any result) are listed, with the reason, in
``EQUIVALENT`` below; they are excluded from the kill rate.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "scripts" / "mutation_results"

# module -> (file to mutate, test files that exercise it)
MODULES = {
    "stats": (
        "xspec_ds/stats.py",
        [
            "tests/test_stats.py",
            "tests/test_stats_edges.py",
            "tests/test_stats_chi2.py",
            "tests/test_likelihood.py",
            "tests/test_onoff.py",
            "tests/test_square_kernels.py",
        ],
    ),
    "forward": (
        "xspec_ds/forward.py",
        [
            "tests/test_forward.py",
            "tests/test_dataset.py",
            "tests/test_square_kernels.py",
            "tests/fit/test_fisher.py",
            "tests/fit/test_norm_skip.py",
        ],
    ),
    "likelihood": (
        "xspec_ds/likelihood.py",
        [
            "tests/test_likelihood.py",
            "tests/test_dataset.py",
            "tests/fit/test_batch.py",
            "tests/fit/test_joint.py",
            "tests/fit/test_scoring.py",
            "tests/fit/test_norm_skip.py",
        ],
    ),
    "batch": ("xspec_ds/batch.py", ["tests/test_batch.py", "tests/fit/test_batch.py"]),
    "spectral": ("xspec_ds/models/spectral.py", ["tests/models"]),
    "stack": (
        "xspec_ds/ops/stack.py",
        [
            "tests/ops/test_stack.py",
            "tests/ops/test_stack_reference.py",
            "tests/ops/test_stack_rules.py",
            "tests/ops/test_stack_lazy.py",
            "tests/ops/test_stack_meta.py",
            "tests/ops/test_stack_inputs.py",
            "tests/io/test_lazy.py::test_open_mfdataset_stack_equals_in_memory",  # the open_mfdataset graph
        ],
    ),
}

# modules whose tests compute dask graphs: mutmut workers must not fork from a process that ran them
FORK_SERVER = {"stack"}

# mutant name -> why no test can kill it (reviewed by hand; see `mutmut show <name>`)
_ONE_OF_TWO = (
    "only one of the two inputs keeps its dtype: the other is float64, so n_on - mu_bkg is computed in "
    "float64 (no unsigned wrap-around, no float32 rounding) and cash() converts its inputs itself; "
    "converting neither is killed by test_cash_sqrt_ts_unsigned_integer_counts"
)
EQUIVALENT: dict[str, str] = {
    **{
        f"xspec_ds.forward.x_kernel_fingerprint__mutmut_{k}": "other constants in the fingerprint weights: any fixed "
        "irregular weights without zeros change with an edit of any one element (tested: a swap within a row, one "
        "element far from the rest); shape[+1] is shape[-1] for the 2-D kernels"
        for k in (2, 5, 6, 7, 8, 10, 18)
    },
    "xspec_ds.likelihood.x__fold_rows__mutmut_2": (
        "for a 2-D ndarray kernel np.matmul(mu_true, edisp) is the product forward.fold computes (mu_true @ edisp)"
    ),
    "xspec_ds.stats.x_cash__mutmut_3": "n_on (any dtype) only multiplies the float64 log(mu): promotion to float64 is exact",
    "xspec_ds.stats.x_cash__mutmut_5": "same as x_cash__mutmut_3 (np.asarray without dtype)",
    "xspec_ds.stats.x_cash_gradient_weights__mutmut_26": "placeholder divisor in the branch np.where discards",
    "xspec_ds.stats.x_cash_sqrt_ts__mutmut_3": _ONE_OF_TWO,
    "xspec_ds.stats.x_cash_sqrt_ts__mutmut_5": _ONE_OF_TWO,
    "xspec_ds.stats.x_cash_sqrt_ts__mutmut_7": _ONE_OF_TWO,
    "xspec_ds.stats.x_cash_sqrt_ts__mutmut_9": _ONE_OF_TWO,
    **{
        f"xspec_ds.stats.x_chi2_data_variance__mutmut_{k}": "alpha or the background without float64 conversion: "
        "they only meet float64 arrays (n_on, n_off, var(n_off) are converted), so promotion is exact"
        for k in (34, 36, 50, 52)
    },
    **{
        f"xspec_ds.stats.x__chi2_errors__mutmut_{k}": "counts or background without float64 conversion: the other "
        "operand is a float64 array (NumPy 2: 0-d arrays are not weak scalars), so the difference is exact"
        for k in (4, 6, 10, 12)
    },
    "xspec_ds.stats.x__chi2_errors_fisher__mutmut_3": "w / ones instead of w * ones: identical values",
    "xspec_ds.stats.x__chi2_errors_fisher__mutmut_22": "placeholder divisor in the np.where branch that is discarded",
    **{
        f"xspec_ds.stats.x__chi2_errors_fisher__mutmut_{k}": "np.ones_like without the float dtype: integer ones "
        "times a float64 weight are the same float64 values"
        for k in (26, 28)
    },
    "xspec_ds.stats.x__chi2_fisher__mutmut_6": "w / ones instead of w * ones: identical values",
    "xspec_ds.stats.x__chi2_fisher__mutmut_25": "placeholder divisor in the np.where branch that is discarded",
    **{
        f"xspec_ds.stats.x__chi2_fisher__mutmut_{k}": "np.ones_like without the float dtype: integer ones times a "
        "float64 weight are the same float64 values"
        for k in (29, 31)
    },
    **{
        f"xspec_ds.stats.x_wstat_gradient_weights__mutmut_{k}": "one of the three operands of mu_on unconverted: "
        "the other two are float64, so mu_on is computed in float64 (converting only mu_sig, as before, is killed "
        "by test_wstat_gradient_weights_float32_inputs_in_float64)"
        for k in (19, 21, 24, 26, 28, 30)
    },
    "xspec_ds.stats.x__wstat_grad__mutmut_7": "n_off is not used by wstat_gradient_weights when mu_bkg is given",
    "xspec_ds.stats.x__wstat_value_and_grad__mutmut_25": "same as x__wstat_grad__mutmut_7",
    **{
        f"xspec_ds.stats.x__wstat_fisher__mutmut_{k}": "mu_sig without float64 conversion: added to a float64 array, "
        "exact promotion"
        for k in (16, 18)
    },
    **{
        f"xspec_ds.stats.x_wstat_gradient_weights__mutmut_{k}": "n_on without float64 conversion: only compared with "
        "0 and divided into a float64 output by a float64 mu_on (exact promotion)"
        for k in (3, 5)
    },
    "xspec_ds.forward.x_integrate_flux__mutmut_3": "nodes=None: the model builds the same quadrature nodes itself",
    "xspec_ds.forward.x_integrate_flux__mutmut_6": "same as x_integrate_flux__mutmut_3 (argument dropped)",
    "xspec_ds.forward.xǁSparseKernelǁrfold__mutmut_9": "reshape(-2, n): numpy 2 treats any negative size as -1",
    "xspec_ds.forward.xǁSparseKernelǁrfold__mutmut_11": "choice between matvecs and one matmat: same sums",
    "xspec_ds.forward.xǁSparseKernelǁrfold__mutmut_12": "boundary of the matvec/matmat choice: same sums",
    "xspec_ds.forward.xǁSparseKernelǁrfold__mutmut_13": "boundary of the matvec/matmat choice: same sums",
    "xspec_ds.forward.xǁSparseKernelǁbackproject__mutmut_1": "1-D weights through the 2-D branch: w.T is w, same "
    "product",
    "xspec_ds.forward.xǁBandedKernelǁbackproject__mutmut_8": "c1 >= c0: an empty column range gives the product "
    "of empty arrays, zeros, as the else branch",
    "xspec_ds.forward.x_row_bands__mutmut_4": "the row sums recomputed although given: the caller gives m.sum(axis=1)",
    "xspec_ds.forward.xǁBandedKernelǁ_build__mutmut_8": "same as x_row_bands__mutmut_4 (total not passed)",
    "xspec_ds.forward.x_row_bands__mutmut_17": "max(n_reco, 2): differs only for n_reco = 1, where the only element "
    "is the row sum, above either threshold",
    **{
        f"xspec_ds.forward.x_row_bands__mutmut_{k}": "rows per block of the band search (memory only): any block "
        "size gives the same bands"
        for k in (33, 35, 36, 37, 42, 48)
    },
    "xspec_ds.forward.xǁBandedKernelǁ_build__mutmut_11": "same as x_row_bands__mutmut_4 (total not passed)",
    **{
        f"xspec_ds.forward.xǁBandedKernelǁ_build__mutmut_{k}": "zip without strict=True: the four arrays have one length"
        for k in (53, 58, 59)
    },
    "xspec_ds.forward.xǁBandedKernelǁ_build__mutmut_60": "b >= a: a block has b > a or (no mass) b = 0 < a = n_reco",
    "xspec_ds.likelihood.x_stat_grad__mutmut_15": "np.zeros(()) instead of np.zeros(counts.shape): the 0-d zero "
    "signal broadcasts against the data to the same values and shapes",
}
_B = "xspec_ds.batch."
EQUIVALENT.update(
    {
        _B + "x__values__mutmut_7": "bool masks also converted to float64: the caller converts them back with "
        "np.asarray(vals, dtype=bool)",
        _B + "x__values__mutmut_17": "same as x__values__mutmut_7 (shared variables)",
        _B + "x__check_finite__mutmut_49": "per or ndim == 3 for edisp: a per-spectrum kernel is the 3-D one",
        **{
            f"{_B}x_batch_from_xarray__mutmut_{k}": "neginf of nan_to_num: acceptances are checked non-negative "
            "before, so acc / acc_off is never -inf"
            for k in (127, 131, 135)
        },
        _B + "x_batch_from_xarray__mutmut_129": "nan=0.0 dropped: 0.0 is nan_to_num's default",
        _B + "x__first_bad__mutmut_11": "reshape(k, -2): numpy 2 treats any negative size as -1",
        _B
        + "x_batch_from_datasets__mutmut_67": "{not x for x}: a set of booleans has as many elements as its negation",
        _B + "x_batch_from_datasets__mutmut_152": "the name of the stacked arrays' reco dimension is internal: "
        "batch_from_xarray reads the values by position",
        _B + "x_batch_from_datasets__mutmut_153": "same as x_batch_from_datasets__mutmut_152",
        _B + "x_batch_from_datasets__mutmut_163": "dss[1] instead of dss[0]: responses are present in all datasets "
        "or none (checked before), and one dataset always takes the shared branch",
        _B
        + "x_batch_from_datasets__mutmut_215": "dims of dss[1]'s response instead of dss[0]'s: one binning (checked)",
        _B + "x_batch_from_datasets__mutmut_224": "< instead of <= for the coordinates' dimensions: no coordinate "
        "spans both energy dimensions",
        _B + "x_batch_from_datasets__mutmut_232": "the label coordinate on another dimension name: batch_from_xarray "
        "reads the labels from the coordinate's values",
        _B + "x_batch_from_datasets__mutmut_233": "same as x_batch_from_datasets__mutmut_232",
        _B + "x_batch_from_datasets__mutmut_235": "labels as a numpy str array instead of object: the same strings "
        "(messages use .item())",
        _B + "x_batch_from_datasets__mutmut_237": "same as x_batch_from_datasets__mutmut_235",
    }
)
_S = "xspec_ds.models.spectral."
_SPECTRAL_EQUIVALENT = {
    "< vs <= (or a threshold moved up) at the switch between two exact forms of the same integral or "
    "derivative (plain difference / expm1 form / series): all accurate there, rounding only": [
        *(f"x__pl_integral__mutmut_{k}" for k in (7, 8, 13, 45, 46, 57, 91, 146)),
        *(f"x__pl_unit_and_dindex__mutmut_{k}" for k in (9, 10)),
        *(f"x__pl_integral_dindex__mutmut_{k}" for k in (17, 92, 125)),
    ],
    "batch shortcut skipped (edge powers, row split, closed-form pair): the per-bin or "
    "element-by-element branch evaluates the same formulas on the same values": [
        *(f"x__pl_integral__mutmut_{k}" for k in (16, 19, 20, 47, 50)),
        *(f"x__split_rows__mutmut_{k}" for k in (1, 3, 6, 7, 8, 9, 10)),
        *(f"x__contiguous__mutmut_{k}" for k in (2, 4, 5, 6, 7, 8, 9, 12, 13, 14, 17, 18, 19)),
        *(f"x__edge_powers__mutmut_{k}" for k in (4, 5, 9, 12, 13)),
        *(f"x__pl_unit_and_dindex__mutmut_{k}" for k in (1, 11, 14, 15)),
        *(f"x__pl_integral_dindex__mutmut_{k}" for k in (10, 13, 14, 46, 49, 55)),
        *(f"xǁPowerLawSpectralModelǁ_integral_and_jac_t__mutmut_{k}" for k in (2, 5, 6)),
    ],
    "_combine_rows is called only for batches with both kinds of rows": ["x__combine_rows__mutmut_6"],
    "errstate in _pl_integral: with positive edges there is no division by zero or invalid value": [
        f"x__pl_integral__mutmut_{k}" for k in (130, 131, 132, 133)
    ],
    "placeholder divisor in the np.where branch that is discarded (or divides by g = 1)": [
        f"x__pl_integral__mutmut_{k}" for k in (155, 162, 163)
    ],
    "np.broadcast(l1, l2) -> one of them: prim starts as zeros and broadcasts in the first sum": [
        f"x__pl_integral_dindex__mutmut_{k}" for k in (129, 130, 131, 132)
    ],
    "13 instead of 12 series terms: the 13th is below 1e-30 relative for |1 - index| < 1e-3": [
        "x__pl_integral_dindex__mutmut_136",
        "x__pl_integral_dindex_series__mutmut_6",
    ],
    "dtype=float64 dropped where the input is already float64 (expanded parameter rows, Python floats)": [
        "x__expand__mutmut_5",
        "x__expand__mutmut_7",
        "x__split_rows__mutmut_19",
        "x__split_rows__mutmut_21",
        "x__central_differences__mutmut_3",
        "x__central_differences__mutmut_5",
        "xǁSpectralModelǁtheta__mutmut_2",
        "xǁSpectralModelǁtheta__mutmut_4",
    ],
    "dtype=float64 dropped on theta or energies: _expand converts the parameter rows to float64, and "
    "every formula with parameters combines the energies with them first (float64 arithmetic)": [
        *(f"xǁSpectralModelǁdnde_kernel__mutmut_{k}" for k in (3, 5)),
        *(f"xǁSpectralModelǁdnde_jacobian__mutmut_{k}" for k in (3, 5, 27, 29)),
        *(f"xǁSpectralModelǁintegral_and_jacobian__mutmut_{k}" for k in (3, 5)),
        *(f"xǁSpectralModelǁintegral_kernel__mutmut_{k}" for k in (3, 5)),
        *(f"xǁSpectralModelǁintegral_jacobian__mutmut_{k}" for k in (3, 5)),
    ],
    "nodes dropped in the power law's fallback: its integrals are analytic and ignore them": [
        "xǁPowerLawSpectralModelǁ_integral_and_jac_t__mutmut_16",
        "xǁPowerLawSpectralModelǁ_integral_and_jac_t__mutmut_21",
    ],
    "errstate(invalid) in the ECPL Jacobian: no invalid operation for lambda >= 0 (0 ** negative is "
    "a division by zero, ignored); log_le: at lambda E = 0 both branches give log(1) = 0": [
        *(f"xǁExpCutoffPowerLawSpectralModelǁ_dnde_jac_t__mutmut_{k}" for k in (21, 23, 35, 44, 46)),
    ],
    "d/dalpha of the ECPL at lambda E = 0: the factor (lambda E)^alpha is 0 for alpha > 0, so the "
    "value put in place of log(lambda E) there does not matter": [
        "xǁExpCutoffPowerLawSpectralModelǁ_dnde_jac_t__mutmut_47",
    ],
    "finite-difference step floor 1e-12 -> ~1 (step 1e-6 for small values): still accurate to ~1e-9": [
        "x__central_differences__mutmut_15"
    ],
    "divides by (x * 0 + 1) = 1, or by ones, instead of multiplying: identical for finite values": [
        "xǁPowerLawSpectralModelǁ_dnde_jac_t__mutmut_8",
        "xǁPowerLawSpectralModelǁ_integral_and_jac_t__mutmut_26",
        "xǁPowerLawSpectralModelǁ_integral_jac_t__mutmut_24",
        "xǁLogParabolaSpectralModelǁ_dnde_jac_t__mutmut_6",
        "xǁExpCutoffPowerLawSpectralModelǁ_dnde_jac_t__mutmut_7",
        "xǁPowerLawNormSpectralModelǁ_dnde_jac_t__mutmut_3",
        "xǁConstantSpectralModelǁ_dnde_t__mutmut_2",
        "xǁConstantSpectralModelǁ_dnde_jac_t__mutmut_2",
        "xǁConstantSpectralModelǁ_integral_jac_t__mutmut_2",
        "xǁPowerLawNormSpectralModelǁ__call____mutmut_1",
    ],
    "shape of the constant's unit derivative: a scalar 1 that dnde_jacobian broadcasts": [
        "xǁConstantSpectralModelǁ_dnde_jac_t__mutmut_4"
    ],
    "< vs <= at the break energy: both power laws equal A there, and a zero-width part integrates to 0": [
        "xǁBrokenPowerLawSpectralModelǁ_dnde_t__mutmut_9",
        "xǁBrokenPowerLawSpectralModelǁ_integral_t__mutmut_19",
        "xǁBrokenPowerLawSpectralModelǁ_integral_t__mutmut_42",
        "xǁTemplateSpectralModelǁ_integral_t__mutmut_35",
    ],
    "placeholder edges of template segments outside the bin (masked by np.where)": [
        "xǁTemplateSpectralModelǁ_integral_t__mutmut_55",
        "xǁTemplateSpectralModelǁ_integral_t__mutmut_62",
    ],
    "to_dict(full_output=...) default: the argument is accepted for Gammapy compatibility and ignored": [
        f"xǁ{c}ǁto_dict__mutmut_1" for c in ("SpectralModel", "TemplateSpectralModel", "ScaleSpectralModel")
    ]
    + ["xǁCompoundSpectralModelǁto_dict__mutmut_1"],
    "registry lookup instead of cls for a class's own tag: the registry maps each tag to the class declaring it": [
        "xǁSpectralModelǁfrom_dict__mutmut_15",
        "xǁSpectralModelǁfrom_dict__mutmut_18",
    ],
    "base _integral_jac_t: no model with an analytic integral and analytic dnde derivatives uses it": [
        "xǁSpectralModelǁ_integral_jac_t__mutmut_1"
    ],
}
EQUIVALENT.update({_S + name: why for why, names in _SPECTRAL_EQUIVALENT.items() for name in names})

_K = "xspec_ds.ops.stack."
_STACK_EQUIVALENT = {
    "einsum subscripts in upper case: the same labels, the same contraction": ["x__edisp_numerator__mutmut_16"],
    "bool.astype(None) is float64, numpy's default": ["x__edisp_numerator__mutmut_21"],
    "zip(..., strict=) changed or dropped: both sequences are built from the same names": [
        *(f"x__block_partials__mutmut_{k}" for k in (5, 8, 9)),
        *(f"x__common_source__mutmut_{k}" for k in (4, 7, 8)),
    ],
    "_common_source only chooses between two graphs computing the same partial sums (scheduling "
    "only), and with the installed dask (2026.8: graph tasks are Task objects, not tuples) it never "
    "matches and returns None, as these mutants do": [
        f"x__common_source__mutmut_{k}"
        for k in (1, 9, 10, 11, 12, 13, 14, 15, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31)
    ],
    "_dict_partials is reached only when _common_source matches, never with the installed dask": [
        f"x__dict_partials__mutmut_{k}" for k in (1, 2, 3)
    ],
    "placeholder divisor of a row that np.where discards": ["x__finalize_partials__mutmut_30"],
    "index of the first dataset in _check_axes' reference edges: it only labels an error that cannot "
    "occur there (the first dataset's edges were read already)": ["x__check_axes__mutmut_126"],
    "fill arrays of a missing variable in float64 instead of its dtype: masks are reduced with any() "
    "and used through np.where / astype(float64), sums are float64 anyway": [
        "x__gather__mutmut_125",
        "x__gather__mutmut_127",
    ],
    "compute() of an in-memory coordinate returns an equal Variable": ["x__gather__mutmut_48"],
    "a copy of the first dataset's empty model list instead of None: the stacked dataset has no models either way": [
        "x_stack__mutmut_37"
    ],
    "shape of the empty template array of an obs-dim input: only its dims and attrs are used": [
        "x__obs_arrays__mutmut_33"
    ],
    "aggregation-tree task keys numbered i / 8 instead of i // 8: still distinct keys, same graph": [
        "x__reduce_lazy__mutmut_65"
    ],
    "k <= len(lines) in _split_ecsv: an ECSV text always has its column-name line after the '#' header, "
    "so the loop stops before the end": ["x__split_ecsv__mutmut_7"],
    "guard of _reduce_lazy: every array has the obs axis first with the same length (built so), "
    "so neither 'or' nor 'and' ever returns None": ["x__reduce_lazy__mutmut_9"],
    "name dropped in stack_in_place: stack_xarray keeps the first dataset's attrs, whose name is the dataset's name": [
        "x_stack_in_place__mutmut_3",
        "x_stack_in_place__mutmut_5",
    ],
    "the GTI pair is not deleted before the update: xarray replaces both variables (new length) in one update": [
        "x_replace_contents__mutmut_4"
    ],
}
EQUIVALENT.update({_K + name: why for why, names in _STACK_EQUIVALENT.items() for name in names})

COPY_ITEMS = ("xspec_ds", "tests", "setup.cfg", "pyproject.toml", "README.md")


def prepare(workdir: Path, module: str) -> Path:
    target, tests = MODULES[module]
    dest = workdir / module
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for item in COPY_ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / item)
    config = [
        "",
        "[tool.mutmut]",
        'source_paths = ["xspec_ds"]',
        f'only_mutate = ["{target}"]',
        f"pytest_add_cli_args_test_selection = {tests!r}".replace("'", '"'),
        # tests that start a dask.distributed cluster hang in mutmut's forked children (the parent's
        # event-loop thread is gone there); the computations they check are also run in memory
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not slow", "-x", "-q", '
        '"-k", "not local_cluster and not on_cluster"]',
        # FORK_SERVER modules: workers fork from a server that has only collected the tests. Forked
        # from mutmut's main process (which ran them), a worker inherits dask's thread pool without
        # its threads and deadlocks on any compute(), so surviving mutants of dask-tested code were
        # counted as timeouts (= killed). Plain fork is faster where the tests compute no dask graph.
        f'process_isolation = "{"forkserver" if module in FORK_SERVER else "fork"}"',
        "",
    ]
    with open(dest / "pyproject.toml", "a") as f:
        f.write("\n".join(config))
    return dest


def run(dest: Path, max_children: int) -> None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    # mutmut forks each mutant's test run from a process whose dask thread pool already exists: the
    # forked child has no pool threads, and a dask.compute there waits forever (counted as a
    # "timeout", i.e. as killed). The synchronous scheduler computes the same graphs without threads.
    env.setdefault("DASK_SCHEDULER", "synchronous")
    env.pop("PYTHONPATH", None)
    shared = REPO.parent / "shared" / "data"
    if shared.is_dir() and "XSPEC_DS_SHARED_DATA" not in env:  # the real-data tests use the repository's data
        env["XSPEC_DS_SHARED_DATA"] = str(shared.resolve())
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    subprocess.run(cmd, cwd=dest, env=env, check=False, stdout=subprocess.DEVNULL)


def results(dest: Path) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=dest,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(re.findall(r"^\s+(\S+): (.+)$", out, flags=re.M))


def show(dest: Path, name: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=dest, capture_output=True, text=True, check=False
    ).stdout


def report(module: str, dest: Path, status: dict[str, str], seconds: float) -> str:
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    equivalent = [n for n, s in status.items() if s == "survived" and n in EQUIVALENT]
    survivors = [n for n, s in status.items() if s == "survived" and n not in EQUIVALENT]
    killed = counts.get("killed", 0) + counts.get("timeout", 0) + counts.get("segfault", 0)
    not_covered = [n for n, s in status.items() if s == "no tests" and n not in EQUIVALENT]
    considered = killed + len(survivors) + len(not_covered)
    rate = killed / considered if considered else float("nan")
    lines = [
        f"mutation testing of {MODULES[module][0]} with tests {' '.join(MODULES[module][1])}",
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s)",
        "statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        f"kill rate {killed}/{considered} = {100 * rate:.1f} % "
        f"(killed + timeout, over all but {len(equivalent)} equivalent mutants; 'no tests' mutants count as survivors)",
        "",
    ]
    if equivalent:
        lines.append("equivalent mutants (excluded):")
        lines += [f"  {n}: {EQUIVALENT[n]}" for n in equivalent]
        lines.append("")
    survivors += not_covered
    lines.append(f"surviving mutants ({len(survivors)}):")
    for n in survivors:
        lines.append(show(dest, n).rstrip())
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", choices=sorted(MODULES))
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="xspec_ds_mutation_"))
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        for module in args.modules:
            dest = prepare(workdir, module)
            t0 = time.perf_counter()
            run(dest, args.max_children)
            text = report(module, dest, results(dest), time.perf_counter() - t0)
            (OUT / f"{module}.txt").write_text(text + "\n")
            print(text, flush=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print(f"work folder kept: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
