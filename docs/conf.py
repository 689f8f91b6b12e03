"""Sphinx configuration of the emformula documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are
errors). The vignettes are rendered Markdown files in ``vignettes/`` (made
by ``python vignettes/render.py``); they are copied into ``docs/vignettes/``
at build time with their figures, so the site shows what the repository
shows.
"""

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import emformula  # noqa: E402

project = "emformula"
author = "The emformula developers"
copyright = "2026, The emformula developers"
version = release = emformula.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_heading_anchors = 3
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
intersphinx_mapping = {}
html_theme = "alabaster"
html_static_path = []
templates_path = ["_templates"]
suppress_warnings = ["myst.xref_missing"]


def _copy_vignettes():
    """The rendered vignettes and their figures, as the repository has them."""
    target = DOCS / "vignettes"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    for page in sorted((ROOT / "vignettes").glob("*.md")):
        shutil.copy(page, target / page.name)
    shutil.copytree(ROOT / "vignettes" / "figures", target / "figures")


_copy_vignettes()
