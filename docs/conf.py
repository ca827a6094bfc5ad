"""Sphinx configuration of the xspec_ds manual.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (``pip install -e ".[docs]"``).
The API reference comes from the numpydoc docstrings (autodoc + napoleon); the user guide is
the notebooks of ``notebooks/`` (a symlink here), rendered by myst-nb WITHOUT executing them:
they are executed by the test suite (tests/test_notebooks.py).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import xspec_ds  # noqa: E402

project = "xspec_ds"
author = "the xspec_ds developers"
copyright = "the xspec_ds developers, BSD-3-Clause"  # noqa: A001
release = version = xspec_ds.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]

# numpydoc-style docstrings, parsed by napoleon
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # signatures carry them; napoleon types come from the docstrings
autodoc_default_options = {"members": True, "show-inheritance": False}
autosummary_generate = False  # no generated stub files: the module pages use automodule
default_role = "py:obj"  # `name` in docstrings links when Sphinx knows it ...
nitpicky = False  # ... and stays plain text when it does not

# notebooks: shown as stored (no outputs), never executed here
nb_execution_mode = "off"
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "images"]

html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"xspec_ds {release}"
suppress_warnings = ["myst.header"]
