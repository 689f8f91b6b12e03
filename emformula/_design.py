"""The formula layer: the only module that talks to formulaic.

It turns a two-sided formula and a data frame into the arrays the model
needs (response, design, weights, offset, trials), remembers the formulaic
``ModelSpec`` so new data is encoded with the training levels and stateful
transforms, and maps everything back to the caller's row labels. It does no
arithmetic beyond taking the logarithm of an exposure.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic.errors import DataMismatchWarning, FormulaicError

__all__ = ["Design", "build_design", "new_design_matrix", "new_response", "as_frame",
           "resolve_vector", "resolve_labels"]


@dataclass(frozen=True)
class Design:
    """Arrays built from a formula, aligned to the rows that were kept.

    Attributes
    ----------
    endog : ndarray, (n,) or (n, 2)
        The response (two columns for binomial ``successes + failures ~``).
    exog : ndarray (n, p)
    endog_names : list of str
    exog_names : list of str
    weights, offset, exposure, trials : ndarray (n,) or None
    row_index : pandas.Index
        Labels of the kept rows in the caller's data.
    kept : ndarray of bool
        Which rows of the caller's data were kept (the rest had missing values).
    model_spec : formulaic ModelSpecs
        To rebuild the design for new data.
    column_args : dict
        The names of columns given for weights/offset/exposure/trials/groups/
        cov_groups, so ``predict`` can find them in new data.
    fixed, concomitant : ndarray (n, r), (n, q) or None
        Designs of the shared effects and of the mixing proportions.
    fixed_names, concomitant_names : list of str
    fixed_spec, concomitant_spec : formulaic ModelSpec or None
        To rebuild those designs for new data (``fixed_names`` selects the
        columns kept from ``fixed_spec``).
    groups, cov_groups : pandas Series or None
        Group and cluster labels of the kept rows.
    """

    endog: np.ndarray
    exog: np.ndarray
    endog_names: list
    exog_names: list
    weights: np.ndarray | None
    offset: np.ndarray | None
    exposure: np.ndarray | None
    trials: np.ndarray | None
    row_index: pd.Index
    kept: np.ndarray
    model_spec: object
    column_args: dict
    formula: str
    fixed: np.ndarray | None = None
    fixed_names: list | None = None
    fixed_spec: object = None
    concomitant: np.ndarray | None = None
    concomitant_names: list | None = None
    concomitant_spec: object = None
    groups: pd.Series | None = None
    cov_groups: pd.Series | None = None


def as_frame(data, name="data"):
    """Accept a DataFrame or a mapping of columns; reject anything else."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame(data)
    raise TypeError(f"{name} must be a pandas DataFrame (or a dict of columns), "
                    f"got {type(data).__name__}")


def resolve_vector(value, data, argument, n_rows):
    """A per-row argument given as a column name or an array, as floats.

    Returns ``None`` for ``None``; raises a ValueError naming the argument
    for a missing column or a wrong length.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if data is None or value not in data.columns:
            raise ValueError(f"{argument}={value!r}: no column {value!r} in the data")
        value = data[value]
    if isinstance(value, pd.Series | pd.DataFrame):
        value = value.to_numpy()
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{argument} must be numeric") from None
    if array.ndim == 0:
        array = np.full(n_rows, float(array))
    if array.ndim != 1 or array.shape[0] != n_rows:
        raise ValueError(f"{argument} has {array.shape[0] if array.ndim else 1} values "
                         f"but the data has {n_rows} rows")
    return array


def resolve_labels(value, data, argument, n_rows):
    """A per-row label argument (groups, clusters) as a column name or array.

    Returns a pandas Series of the labels (any type) or ``None``; a missing
    label is a ValueError naming the rows.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if data is None or value not in data.columns:
            raise ValueError(f"{argument}={value!r}: no column {value!r} in the data")
        labels = data[value].reset_index(drop=True)
    else:
        labels = pd.Series(np.asarray(value))
    if labels.shape != (n_rows,):
        raise ValueError(f"{argument} must have one label per row ({n_rows}), got "
                         f"{labels.shape[0] if labels.ndim else 1}")
    if labels.isna().any():
        rows = np.flatnonzero(labels.isna().to_numpy())
        raise ValueError(f"{argument} has {rows.size} missing label(s), first at row "
                         f"positions {rows[:5].tolist()}")
    return labels


def _one_sided(formula, argument):
    """``"~ z"`` (or ``"z"``) as a one-sided formula string."""
    if not isinstance(formula, str):
        raise TypeError(f"{argument} must be a one-sided formula string such as '~ z', "
                        f"got {type(formula).__name__}")
    text = formula.strip()
    if not text.startswith("~"):
        if "~" in text:
            raise ValueError(f"{argument}={formula!r} must be one-sided (no response): "
                             "write '~ z'")
        text = "~ " + text
    return text


def _materialize(formula, frame, context, na_action):
    try:
        return Formula(formula).get_model_matrix(frame, context=context, na_action=na_action)
    except FormulaicError as exc:
        missing = _missing_name(exc)
        if missing is not None:
            raise ValueError(f"formula {formula!r} uses {missing!r}, which is neither a column "
                             "of the data nor a name in scope") from None
        raise ValueError(f"cannot build the design of formula {formula!r}: {exc}") from None
    except (NameError, KeyError) as exc:
        raise ValueError(f"formula {formula!r} names something the data does not have: "
                         f"{exc}") from None


def _missing_name(exc):
    """The name a formulaic evaluation error complains about, if any."""
    import re
    match = re.search(r"`([^`]+)` is not present in the dataset", str(exc))
    return match.group(1) if match else None


def _categorical_response(model_spec):
    """Names of left-hand side variables that formulaic encoded as categories."""
    try:
        state = model_spec.lhs.encoder_state
    except AttributeError:
        return []
    return [name for name, (kind, _) in state.items() if getattr(kind, "value", kind) != "numerical"]


def build_design(formula, data, *, context=None, weights=None, offset=None,
                 exposure=None, trials=None, na_action="drop", fixed=None,
                 concomitant=None, groups=None, cov_groups=None):
    """Build the arrays of a fit from a two-sided formula.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + C(g)"``; the left side may be two columns
        ``"successes + failures ~ x"`` for binomial counts.
    data : pandas.DataFrame
        Never modified.
    context : mapping, optional
        Names for the formula's functions (the caller's namespace).
    weights, offset, exposure, trials : str or array_like, optional
        Column names of ``data`` or arrays with one value per row of ``data``.
    na_action : {"drop", "raise"}
        Rows with a missing value in any variable used are dropped with a
        warning, or reported by a ValueError.
    fixed, concomitant : str, optional
        One-sided formulas (``"~ x2"``) of the shared effects and of the
        mixing proportions. The intercept of ``fixed`` is dropped when the
        main formula has one (each component has its own).
    groups, cov_groups : str or array_like, optional
        Column names or per-row labels of the groups and of the clusters.

    Returns
    -------
    Design
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string, got {type(formula).__name__}")
    if "~" not in formula:
        raise ValueError(f"formula {formula!r} has no left-hand side: write 'y ~ x'")
    if na_action not in ("drop", "raise"):
        raise ValueError(f"na_action must be 'drop' or 'raise', got {na_action!r}")
    data = as_frame(data)
    if len(data) == 0:
        raise ValueError("data has no rows")
    n_rows = len(data)
    # Work on positions: the caller's index may be non-unique or unsorted.
    frame = data.reset_index(drop=True)
    extras = {
        name: resolve_vector(value, frame, name, n_rows)
        for name, value in (("weights", weights), ("offset", offset),
                            ("exposure", exposure), ("trials", trials))
    }
    labels = {name: resolve_labels(value, frame, name, n_rows)
              for name, value in (("groups", groups), ("cov_groups", cov_groups))}
    matrices = _materialize(formula, frame, context, "drop")
    lhs, rhs = matrices.lhs, matrices.rhs
    categorical = _categorical_response(matrices.model_spec)
    if categorical:
        raise TypeError(f"the response {', '.join(map(repr, categorical))} is not numeric; "
                        "code it as numbers (for example 0/1 for a binomial response)")
    kept = np.zeros(n_rows, dtype=bool)
    kept[np.asarray(rhs.index, dtype=int)] = True
    # The designs of the shared effects and of the mixing proportions: a row
    # missing one of their variables is dropped like any other.
    side = {}
    for name, one_sided in (("fixed", fixed), ("concomitant", concomitant)):
        if one_sided is None:
            continue
        text = _one_sided(one_sided, name)
        matrix = _materialize(text, frame, context, "drop")
        present = np.zeros(n_rows, dtype=bool)
        present[np.asarray(matrix.index, dtype=int)] = True
        kept &= present
        side[name] = (text, matrix)
    # Weights, offsets, exposures and trials describe the rows rather than
    # measure them: a missing one is an error, never a reason to drop the row.
    for name, array in extras.items():
        if array is not None and not np.all(np.isfinite(array)):
            bad = ~np.isfinite(array)
            raise ValueError(f"{name} has {bad.sum()} missing or infinite value(s), first at "
                             f"rows {data.index[bad][:5].tolist()}")
    n_dropped = n_rows - int(kept.sum())
    if n_dropped:
        dropped = data.index[~kept]
        if na_action == "raise":
            raise ValueError(f"{n_dropped} row(s) have missing values in the variables of "
                             f"{formula!r}, first at rows {dropped[:5].tolist()}; "
                             "use na_action='drop' to drop them")
        if kept.sum() == 0:
            raise ValueError(f"every row has a missing value in the variables of {formula!r}")
        warnings.warn(f"dropped {n_dropped} of {n_rows} rows with missing values "
                      f"(first at rows {dropped[:5].tolist()})", UserWarning, stacklevel=3)
    positions = np.flatnonzero(kept)
    endog = _numeric(lhs.loc[positions], "response")
    exog = _numeric(rhs.loc[positions], "design")
    if endog.shape[1] == 1:
        endog = endog[:, 0]
    elif endog.shape[1] != 2:
        raise ValueError(f"the left side of {formula!r} gives {endog.shape[1]} columns; "
                         "use one response or two (successes + failures)")
    column_args = {name: value for name, value in (("weights", weights), ("offset", offset),
                                                   ("exposure", exposure), ("trials", trials),
                                                   ("groups", groups),
                                                   ("cov_groups", cov_groups))
                   if isinstance(value, str)}
    exog_names = [str(c) for c in rhs.columns]
    extra_designs = {}
    for name, (text, matrix) in side.items():
        names = [str(c) for c in matrix.columns]
        if name == "fixed" and "Intercept" in names and "Intercept" in exog_names:
            # Every component has its own intercept already.
            names.remove("Intercept")
        values = _numeric(matrix.loc[positions, names], f"{name} design")
        extra_designs[name] = values if values.shape[1] else None
        extra_designs[f"{name}_names"] = names
        extra_designs[f"{name}_spec"] = matrix.model_spec
    return Design(
        endog=endog, exog=exog,
        endog_names=[str(c) for c in lhs.columns], exog_names=exog_names,
        **{name: (None if array is None else array[positions]) for name, array in extras.items()},
        row_index=data.index[positions], kept=kept, model_spec=matrices.model_spec,
        column_args=column_args, formula=formula, **extra_designs,
        **{name: (None if values is None else values.iloc[positions].reset_index(drop=True))
           for name, values in labels.items()},
    )


def _numeric(frame, what):
    try:
        return frame.to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        raise TypeError(f"the {what} column(s) {bad} are not numeric") from None


def new_design_matrix(model_spec, data, context=None, columns=None):
    """Encode new data with the training ``ModelSpec``.

    ``model_spec`` is the ModelSpecs of a two-sided formula (its right-hand
    side is used) or the ModelSpec of a one-sided one; ``columns`` selects
    columns by name (those the training design kept). Rows with missing
    values are kept (as NaN). A categorical level that was not seen in
    training is a ValueError naming it, instead of formulaic's warning and
    silent recoding to the reference level.
    """
    spec = getattr(model_spec, "rhs", model_spec)
    matrix = _new_matrix(spec, data, context, "design")
    if columns is not None:
        matrix = matrix.loc[:, list(columns)]
    return _numeric(matrix, "design")


def new_response(model_spec, data, context=None):
    """The response of new data, from the left-hand side of the training spec.

    Returns an ``(n,)`` or ``(n, 2)`` array (NaN where missing); a ValueError
    names the response when the data lack it.
    """
    matrix = _new_matrix(model_spec.lhs, data, context, "response")
    values = _numeric(matrix, "response")
    return values[:, 0] if values.shape[1] == 1 else values


def _new_matrix(spec, data, context, what):
    data = as_frame(data)
    frame = data.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataMismatchWarning)
        try:
            matrix = spec.get_model_matrix(frame, context=context, na_action="ignore")
        except DataMismatchWarning as exc:
            raise ValueError(f"new data does not match the training data: {exc}") from None
        except FormulaicError as exc:
            raise ValueError(f"cannot build the design for new data: {exc}") from None
        except (NameError, KeyError) as exc:
            raise ValueError(f"new data lacks a variable of the formula ({what}): "
                             f"{exc}") from None
    return matrix.reindex(range(len(frame)))
