"""The formula layer for Dask data frames: one ModelSpec, many partitions.

A design built partition by partition must encode every partition the same
way. Categorical levels therefore have to be known before any partition is
encoded: a categorical column with known categories is used as it is; any
other non-numeric column of the formula is made categorical with the sorted
levels found in one pass over the data (the levels formulaic would find in
memory). Column dtypes are read as in memory (:mod:`emformula._columns`):
nullable, pyarrow and Decimal numbers are numbers, strings of any storage
are categories, dates are refused before any pass. The ``ModelSpec`` is
then built once, from the first rows, and applied to every partition.

Stateful transforms (``center(x)``, ``scale(x)``) learn their state from
those first rows only; standardise such columns before fitting on Dask.
Nothing here imports dask at module level except through the caller.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from formulaic.errors import FormulaicError

from .columns import CATEGORICAL, as_float, column_values, prepare_columns
from .design import family_has_intercept, parse_formula, spec_columns

__all__ = [
    "is_dask_collection",
    "DaskDesign",
    "build_dask_design",
    "partition_arrays",
    "formula_context",
]

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
        ``weights``/``offset``/``exposure``/``trials``/``groups``/``cov_groups``
        column names.
    formula : str
    fixed_spec, concomitant_spec : formulaic ModelSpec or None
        The designs of the shared effects and of the mixing proportions.
    fixed_names, concomitant_names : list of str
        Their columns (the shared effects without an intercept when the
        main formula has one, as in memory).
    """

    def __init__(
        self,
        frame,
        model_spec,
        endog_names,
        exog_names,
        column_args,
        formula,
        fixed_spec=None,
        fixed_names=(),
        concomitant_spec=None,
        concomitant_names=None,
    ):
        self.frame = frame
        self.model_spec = model_spec
        self.endog_names = endog_names
        self.exog_names = exog_names
        self.column_args = column_args
        self.formula = formula
        self.fixed_spec = fixed_spec
        self.fixed_names = list(fixed_names)
        self.concomitant_spec = concomitant_spec
        self.concomitant_names = concomitant_names

    def partitions(self):
        """Delayed pandas partitions."""
        return self.frame.to_delayed()

    @property
    def term_columns(self):
        """``[(term, column positions)]`` of the design (a factor's columns together)."""
        try:
            indices = self.model_spec.rhs.term_indices
        except AttributeError:
            indices = None
        if not indices:
            return [(name, [j]) for j, name in enumerate(self.exog_names)]
        return [(str(term), list(columns)) for term, columns in indices.items()]


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


def build_dask_design(formula, frame, spec):
    """Prepare a dask DataFrame for fitting (see the module docstring).

    ``spec`` is the :class:`~emformula.specification.MixtureSpec`: its
    ``context``, the column keywords (column names only: a dask frame has
    no positions to align arrays with) and the one-sided formulas
    ``fixed`` and ``concomitant``.
    """
    context = spec.context
    column_args = {}
    for name, value in spec.column_arguments().items():
        if not isinstance(value, str):
            raise TypeError(f"with dask data, {name} must be a column name")
        if value not in frame.columns:
            raise ValueError(f"{name}={value!r}: no column {value!r} in the data")
        column_args[name] = value
    columns = list(frame.columns)
    roles = set(column_args.values())
    available = [c for c in columns if c not in roles]
    parsed = parse_formula(formula, columns, context=context, available=available)
    side = {
        name: parse_formula(
            one_sided,
            columns,
            argument=name,
            two_sided=False,
            context=context,
            available=[c for c in available if c not in parsed.lhs],
        )
        for name, one_sided in (("fixed", spec.fixed), ("concomitant", spec.concomitant))
        if one_sided is not None
    }
    try:
        needed = set(parsed.formula.required_variables)
        for one in side.values():
            needed |= set(one.formula.required_variables)
    except FormulaicError as exc:
        raise ValueError(f"cannot parse formula {formula!r}: {exc}") from None
    missing = [name for name in needed if name not in frame.columns and name not in (context or {})]
    if missing:
        raise ValueError(f"formula {formula!r} uses {missing}, not columns of the data")
    used = sorted(set().union(parsed.lhs, parsed.rhs, *(one.rhs for one in side.values())), key=str)
    # Which columns are categories, from the first rows (dates and other
    # unusable columns are refused here, before any pass).
    head = frame[used].head(SPEC_ROWS, npartitions=-1) if used else None
    factors = [name for name in used if column_values(head[name], name)[1] == CATEGORICAL]
    if factors:
        frame = _with_levels(frame, factors)
    sample = frame.head(SPEC_ROWS, npartitions=-1)
    sample = prepare_columns(sample, used)[0]
    try:
        matrices = parsed.formula.get_model_matrix(sample, context=context, na_action="drop")
        sides = {
            name: one.formula.get_model_matrix(sample, context=context, na_action="drop")
            for name, one in side.items()
        }
    except FormulaicError as exc:
        raise ValueError(f"cannot build the design of formula {formula!r}: {exc}") from None
    exog_names = [str(c) for c in matrices.rhs.columns]
    if "Intercept" in exog_names and not family_has_intercept(spec):
        exog_names.remove("Intercept")  # ordinal: the cut points take its place
    extra = {}
    for name, matrix in sides.items():
        names = [str(c) for c in matrix.columns]
        if name == "fixed" and "Intercept" in names and "Intercept" in exog_names:
            names.remove("Intercept")  # every component has its own intercept already
        extra[f"{name}_spec"], extra[f"{name}_names"] = matrix.model_spec, names
    return DaskDesign(
        frame,
        matrices.model_spec,
        [str(c) for c in matrices.lhs.columns],
        exog_names,
        column_args,
        formula,
        **extra,
    )


def _partition_levels(part, names):
    """The levels present in one partition, per column."""
    return {name: list(column_values(part[name], name)[0].categories) for name in names}


def _with_levels(frame, names):
    """``frame`` with the columns ``names`` categorical, with the levels found
    in one pass over the data (in the order of a categorical's own levels,
    sorted otherwise), so every partition encodes alike."""
    import dask

    found = dask.compute(
        *[dask.delayed(_partition_levels)(part, names) for part in frame[names].to_delayed()]
    )
    dtypes = {}
    for name in names:
        present = set().union(*(levels[name] for levels in found))
        own = frame[name].dtype
        if isinstance(own, pd.CategoricalDtype) and own.categories is not None:
            levels = [level for level in own.categories if level in present]
        else:
            try:
                levels = sorted(present)
            except TypeError:
                levels = sorted(present, key=str)
        dtypes[name] = pd.CategoricalDtype(levels, ordered=bool(getattr(own, "ordered", False)))
    meta = frame._meta.copy()
    for name, dtype in dtypes.items():
        meta[name] = pd.Series(pd.Categorical([], dtype=dtype), index=meta.index)
    return frame.map_partitions(_categorize, dtypes, meta=meta)


def _categorize(part, dtypes):
    part = part.copy(deep=False)
    for name, dtype in dtypes.items():
        values = column_values(part[name], name)[0]
        part[name] = pd.Categorical(np.asarray(values, dtype=object), dtype=dtype)
    return part


def _model_rows(matrix, kept, columns=None):
    """``matrix.loc[kept, columns]`` of a model matrix as a C-ordered float array.

    Every pass over dask data builds each partition's arrays again, so this
    is paid per partition and pass. Where no row was dropped (the usual
    case) the columns are copied into the array one by one: a third of the
    time of pandas' row selection and block interleaving, which cost about
    a fifth of an out-of-core pass.
    """
    columns = list(matrix.columns) if columns is None else list(columns)
    # ``kept`` (ascending labels of the matrix's rows) is all of a matrix
    # labelled 0..m-1 exactly when it has m labels.
    if not (len(matrix) == kept.size and matrix.index.equals(pd.RangeIndex(kept.size))):
        return np.ascontiguousarray(matrix.loc[kept, columns].to_numpy(dtype=float))
    out = np.empty((kept.size, len(columns)))
    for j, column in enumerate(columns):
        out[:, j] = matrix[column].to_numpy(dtype=float)
    return out


def partition_arrays(part, design, context=None, columns=None):
    """Arrays of one partition: endog, exog, fixed, concomitant, weights,
    offset, exposure, trials, and the labels ``groups`` and ``cov_groups``
    (as they are).

    Rows with a missing value in any variable of the formulas are dropped;
    the count is returned so the caller can report it. A missing group or
    cluster label is an error, as in memory. ``columns`` (default
    ``design.column_args``) names the columns of the keywords to read.
    """
    column_args = design.column_args if columns is None else columns
    frame = part.reset_index(drop=True)
    specs = {
        "main": design.model_spec,
        "fixed": design.fixed_spec,
        "concomitant": design.concomitant_spec,
    }
    specs = {name: spec for name, spec in specs.items() if spec is not None}
    names = sorted(
        set().union(*(spec_columns(spec, frame.columns, context) for spec in specs.values())),
        key=str,
    )
    frame = prepare_columns(frame, names)[0]
    matrices = {
        name: spec.get_model_matrix(frame, context=context, na_action="drop")
        for name, spec in specs.items()
    }
    main = matrices.pop("main")
    kept = np.asarray(main.rhs.index, dtype=int)
    for matrix in matrices.values():
        kept = kept[np.isin(kept, np.asarray(matrix.index, dtype=int))]
    if names:
        observed = ~frame[names].isna().any(axis=1).to_numpy()
        kept = kept[observed[kept]]
    arrays = {
        "endog": _model_rows(main.lhs, kept),
        "exog": _model_rows(main.rhs, kept, design.exog_names),
        "fixed": None,
        "concomitant": None,
    }
    for name, matrix in matrices.items():
        wanted = design.fixed_names if name == "fixed" else design.concomitant_names
        if wanted:
            arrays[name] = _model_rows(matrix, kept, wanted)
    if arrays["endog"].shape[1] == 1:
        arrays["endog"] = arrays["endog"][:, 0]
    for name in ("weights", "offset", "exposure", "trials"):
        column = column_args.get(name)
        arrays[name] = None if column is None else as_float(part[column], name, column)[kept]
    for name in ("groups", "cov_groups"):
        column = column_args.get(name)
        arrays[name] = None
        if column is not None:
            labels = part[column].to_numpy()
            # Checked on every row, dropped or not, as in memory.
            if pd.isna(labels).any():
                raise ValueError(f"{name}: column {column!r} has missing labels")
            arrays[name] = labels[kept]
    arrays["dropped"] = len(part) - kept.size
    arrays["index"] = part.index[kept]
    return arrays
