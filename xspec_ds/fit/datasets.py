"""`Datasets`: several datasets fitted jointly, sharing model parameters by identity."""

from __future__ import annotations

import numpy as np

from ..models import Models, Parameters

__all__ = ["Datasets"]


class Datasets:
    """An ordered collection of datasets with unique names (Gammapy's ``Datasets``).

    A parameter object used by models of several datasets is one free parameter of a joint fit.

    Parameters
    ----------
    datasets : dataset, list of datasets, or `Datasets`
    """

    def __init__(self, datasets=None):
        if datasets is None:
            datasets = []
        elif isinstance(datasets, Datasets):
            datasets = list(datasets)
        elif not isinstance(datasets, (list, tuple)):
            datasets = [datasets]
        names = [d.name for d in datasets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dataset names must be unique in Datasets, repeated: {dupes}")
        self._datasets = list(datasets)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self._datasets]

    @property
    def models(self) -> Models:
        """All models of all datasets (each once).

        Two model objects with the same name are the same model when they share their spectral
        model (e.g. ``SkyModel(pl, name="crab")`` made once per dataset); otherwise the names
        clash and a ValueError names the datasets involved.
        """
        by_name: dict[str, tuple] = {}
        items = []
        for d in self._datasets:
            for m in d.models:
                first = by_name.get(m.name)
                if first is None:
                    by_name[m.name] = (m, d.name)
                    items.append(m)
                elif first[0] is not m and first[0].spectral_model is not m.spectral_model:
                    raise ValueError(
                        f"two different models are named {m.name!r} (datasets {first[1]!r} and {d.name!r}); "
                        "give them distinct names, or use one model object to share parameters"
                    )
        return Models(items)

    @models.setter
    def models(self, models) -> None:
        for d in self._datasets:
            d.models = models

    @property
    def parameters(self) -> Parameters:
        return self.models.parameters

    def stat_sum(self) -> float:
        """Sum of the datasets' ``stat_sum``."""
        return float(sum(d.stat_sum() for d in self._datasets))

    def _stat_gradient(self, params) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros(len(params))
        cache: dict = {}  # model fluxes shared by datasets on one true-energy grid, for this call only
        for d in self._datasets:
            s, g = d._stat_gradient(params, cache=cache)
            total += s
            grad += g
        return total, grad

    def stack_reduce(self, name: str | None = None, **kwargs):
        """Stack all datasets into one (see `xspec_ds.ops.stack`)."""
        from ..ops.stack import stack

        return stack(self._datasets, name=name, **kwargs)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._datasets[key]
        for d in self._datasets:
            if d.name == key:
                return d
        raise KeyError(f"no dataset named {key!r}; datasets are {self.names}")

    def __iter__(self):
        return iter(self._datasets)

    def __len__(self) -> int:
        return len(self._datasets)

    def append(self, dataset) -> None:
        if dataset.name in self.names:
            raise ValueError(f"a dataset named {dataset.name!r} is already in Datasets")
        self._datasets.append(dataset)

    def copy(self) -> "Datasets":
        import copy

        return copy.deepcopy(self)

    def info_table(self, cumulative: bool = False):
        """One row of `info_dict` per dataset (astropy Table).

        With ``cumulative=True`` row ``k`` describes the stack of datasets ``0..k`` (named
        ``"stacked"``), as Gammapy's ``Datasets.info_table(cumulative=True)``; the stacks are
        built incrementally (`SpectrumDataset.stack`), the datasets are not changed.
        """
        from astropy.table import Table

        if not cumulative or not self._datasets:
            return Table(rows=[d.info_dict() for d in self._datasets])
        stacked = self._datasets[0].copy(name="stacked")
        stacked.models = None
        rows = [stacked.info_dict()]
        for d in self._datasets[1:]:
            stacked.stack(d)
            rows.append(stacked.info_dict())
        return Table(rows=rows)

    def __repr__(self):
        return f"Datasets({self.names})"
