"""The formula layer for Dask data frames: one ModelSpec, many partitions.

A design built partition by partition must encode every partition the same
way. Categorical levels therefore have to be known before any partition is
encoded: a categorical column with known categories is used as it is; any
other non-numeric column of the formula is made categorical with the sorted
levels found in one pass over the data (the levels formulaic would find in
memory). The ``ModelSpec`` is then built once, from the first rows, and
applied to every partition.

Stateful transforms (``center(x)``, ``scale(x)``) learn their state from
those first rows only; standardise such columns before fitting on Dask.
Nothing here imports dask at module level except through the caller.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic.errors import FormulaicError

__all__ = ["is_dask_collection", "DaskDesign", "build_dask_design", "partition_arrays",
           "formula_context"]

#: Rows used to build the ModelSpec (and the sample for random starts).
SPEC_ROWS = 2000


def is_dask_collection(data):
    """True for a dask DataFrame (without importing dask when it is absent)."""
    module = type(data).__module__
    return module.startswith("dask") and hasattr(data, "npartitions")


class DaskDesign:
    """How to turn each partition of a dask DataFrame into model arrays.

    Attributes
    ----------
    frame : dask DataFrame
        The caller's frame with non-numeric formula columns made categorical.
    model_spec : formulaic ModelSpecs
    endog_names, exog_names : list of str
    column_args : dict
        ``weights``/``offset``/``exposure``/``trials`` column names.
    formula : str
    """

    def __init__(self, frame, model_spec, endog_names, exog_names, column_args, formula):
        self.frame = frame
        self.model_spec = model_spec
        self.endog_names = endog_names
        self.exog_names = exog_names
        self.column_args = column_args
        self.formula = formula

    def partitions(self):
        """Delayed pandas partitions."""
        return self.frame.to_delayed()


def formula_context(formula, context):
    """Only the names of ``context`` that the formula mentions.

    The caller's whole namespace may hold generators, open files and other
    things that cannot travel to a distributed worker; the formula needs
    only the functions and values it names.
    """
    if not context:
        return None
    import re

    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", formula))
    return {name: context[name] for name in words if name in context}


def build_dask_design(formula, frame, *, context=None, weights=None, offset=None,
                      exposure=None, trials=None, cov_groups=None):
    """Prepare a dask DataFrame for fitting (see the module docstring)."""
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a two-sided string like 'y ~ x', got {formula!r}")
    column_args = {}
    for name, value in (("weights", weights), ("offset", offset), ("exposure", exposure),
                        ("trials", trials), ("cov_groups", cov_groups)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"with dask data, {name} must be a column name")
        if value not in frame.columns:
            raise ValueError(f"{name}={value!r}: no column {value!r} in the data")
        column_args[name] = value
    try:
        needed = Formula(formula).required_variables
    except FormulaicError as exc:
        raise ValueError(f"cannot parse formula {formula!r}: {exc}") from None
    missing = [name for name in needed if name not in frame.columns and name not in
               (context or {})]
    if missing:
        raise ValueError(f"formula {formula!r} uses {missing}, not columns of the data")
    levels = {}
    for name in sorted(set(needed) & set(frame.columns)):
        dtype = frame[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            if frame[name].cat.known:
                continue
            levels[name] = None
        elif not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            levels[name] = None
    if levels:
        # One pass over the categorical columns for their levels.
        import dask

        found = dask.compute(*[frame[name].dropna().unique() for name in levels])
        frame = frame.astype({name: pd.CategoricalDtype(sorted(values.tolist()))
                              for name, values in zip(levels, found)})
    sample = frame.head(SPEC_ROWS, npartitions=-1)
    try:
        matrices = Formula(formula).get_model_matrix(sample, context=context, na_action="drop")
    except FormulaicError as exc:
        raise ValueError(f"cannot build the design of formula {formula!r}: {exc}") from None
    return DaskDesign(frame, matrices.model_spec, [str(c) for c in matrices.lhs.columns],
                      [str(c) for c in matrices.rhs.columns], column_args, formula)


def partition_arrays(part, model_spec, column_args, context=None):
    """Arrays of one partition: endog, exog, weights, offset, exposure,
    trials, and the cluster labels ``cov_groups`` (as they are).

    Rows with a missing value in any variable of the formula are dropped; the
    count is returned so the caller can report it. A missing cluster label
    is an error, as in memory.
    """
    matrices = model_spec.get_model_matrix(part.reset_index(drop=True), context=context,
                                           na_action="drop")
    kept = np.asarray(matrices.rhs.index, dtype=int)
    arrays = {
        "endog": matrices.lhs.to_numpy(dtype=float),
        "exog": np.ascontiguousarray(matrices.rhs.to_numpy(dtype=float)),
    }
    if arrays["endog"].shape[1] == 1:
        arrays["endog"] = arrays["endog"][:, 0]
    for name in ("weights", "offset", "exposure", "trials"):
        column = column_args.get(name)
        arrays[name] = (None if column is None
                        else part[column].to_numpy(dtype=float)[kept])
    column = column_args.get("cov_groups")
    arrays["cov_groups"] = None
    if column is not None:
        labels = part[column].to_numpy()
        # Checked on every row, dropped or not, as in memory.
        if pd.isna(labels).any():
            raise ValueError(f"cov_groups: column {column!r} has missing labels")
        arrays["cov_groups"] = labels[kept]
    arrays["dropped"] = len(part) - kept.size
    arrays["index"] = part.index[kept]
    return arrays
