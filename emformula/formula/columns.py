"""Data columns as the formula layer wants them: numbers or categories.

pandas offers many dtypes for one kind of value (numpy, nullable, pyarrow;
``object``, ``str``, ``string``). formulaic understands only some of them
and guesses on ``object`` columns (a column of ``decimal.Decimal`` becomes a
factor with one level per value). Every column a formula uses is therefore
turned into one of two things first, as R and statsmodels users expect:

* numbers: numpy ints, floats and bools; nullable ``Int64``, ``Float64``,
  ``boolean``; pyarrow integers, floats, bools and decimals; ``object``
  columns of Python numbers or ``Decimal`` values. Missing values
  (``pd.NA``, ``None``, ``NaN``) become NaN (a missing row, handled by
  ``na_action``); integers and bools without missing values stay integers
  and bools.
* categories (factors): strings of every storage (``object``, ``str``,
  ``string``, pyarrow strings and dictionaries), categoricals (their levels
  in their order; levels that do not occur are dropped, as R's
  ``model.frame(drop.unused.levels = TRUE)``), and ``object`` columns of
  mixed strings and numbers (as R: every value as its text).

Dates, times, durations, periods, intervals, complex numbers, bytes and other
objects are refused with a ValueError/TypeError naming the column and saying
how to convert it: a formula needs numbers, and which number a date is (days
since what?) is the user's choice. Nothing here modifies the caller's data.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

__all__ = ["NUMERIC", "CATEGORICAL", "prepare_columns", "column_values", "as_float"]

NUMERIC = "numeric"
CATEGORICAL = "categorical"

_DATE_HINT = {
    "datetime": "dates/times",
    "timedelta": "durations",
    "period": "periods",
    "date": "dates",
    "time": "times of day",
}


def _refuse_dates(name, kind, dtype, where):
    """The error for a column of dates, times or durations (of the ``where``)."""
    if kind == "timedelta":
        how = f"e.g. days: df[{name!r}].dt.total_seconds() / 86400"
    elif kind == "time":
        how = "e.g. hours since midnight"
    else:
        how = (
            f"e.g. days since the first one: (df[{name!r}] - df[{name!r}].min()).dt.days, "
            "or the year as a number"
        )
    return TypeError(
        f"column {name!r} of the {where} holds {_DATE_HINT[kind]} ({dtype}), "
        f"which a formula cannot use as they are: convert it to a number, {how}"
    )


def _as_category(values, name, categories=None, ordered=False):
    """A pandas Categorical of the non-missing values (sorted levels unless given)."""
    try:
        result = pd.Categorical(values, categories=categories, ordered=ordered)
    except TypeError:
        result = pd.Categorical(
            np.asarray(values, dtype=object), categories=categories, ordered=ordered
        )
    return result.remove_unused_categories()


def _masked_numbers(series, is_bool=False):
    """Nullable or pyarrow numbers: exact integers/bools when complete, floats with NaN else."""
    if not series.isna().any():
        if is_bool:
            return series.to_numpy(dtype=bool)
        kind = getattr(series.dtype, "kind", "f")
        if kind in "iu":
            return series.to_numpy(dtype=np.int64 if kind == "i" else np.uint64)
    return series.to_numpy(dtype=float, na_value=np.nan)


def _arrow_values(series, name, where):
    import pyarrow as pa

    pa_type = series.dtype.pyarrow_dtype
    if pa.types.is_dictionary(pa_type):
        pa_type = pa_type.value_type
        if not (
            pa.types.is_string(pa_type)
            or pa.types.is_large_string(pa_type)
            or pa.types.is_integer(pa_type)
        ):
            raise TypeError(
                f"column {name!r} has the pyarrow type {series.dtype}; convert it "
                "to strings or numbers"
            )
        return _as_category(series.to_numpy(dtype=object, na_value=None), name), CATEGORICAL
    if pa.types.is_boolean(pa_type):
        return _masked_numbers(series, is_bool=True), NUMERIC
    if (
        pa.types.is_integer(pa_type)
        or pa.types.is_floating(pa_type)
        or pa.types.is_decimal(pa_type)
    ):
        if pa.types.is_integer(pa_type) and not series.isna().any():
            return series.to_numpy(dtype=np.int64), NUMERIC
        return series.to_numpy(dtype=float, na_value=np.nan), NUMERIC
    if pa.types.is_null(pa_type):
        return np.full(len(series), np.nan), NUMERIC
    if (
        pa.types.is_string(pa_type)
        or pa.types.is_large_string(pa_type)
        or getattr(pa.types, "is_string_view", lambda t: False)(pa_type)
    ):
        return _as_category(series.to_numpy(dtype=object, na_value=None), name), CATEGORICAL
    if pa.types.is_timestamp(pa_type) or pa.types.is_date(pa_type):
        raise _refuse_dates(name, "datetime", series.dtype, where)
    if pa.types.is_duration(pa_type):
        raise _refuse_dates(name, "timedelta", series.dtype, where)
    if pa.types.is_time(pa_type):
        raise _refuse_dates(name, "time", series.dtype, where)
    raise TypeError(
        f"column {name!r} has the pyarrow type {series.dtype}, which a formula "
        "cannot use: convert it to numbers or strings"
    )


def _object_values(series, name, where):
    """An ``object`` column: numbers, strings, or refused."""
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "empty":
        return np.full(len(series), np.nan), NUMERIC
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        return _numbers_of(series, name), NUMERIC
    if inferred == "string":
        return _as_category(series.to_numpy(dtype=object), name), CATEGORICAL
    for kind in ("datetime", "timedelta", "period", "date", "time"):
        if inferred.startswith(kind):
            raise _refuse_dates(name, kind, "object", where)
    if inferred in ("mixed", "mixed-integer"):
        present = series[series.notna()]
        if all(isinstance(v, numbers.Number) and not isinstance(v, complex) for v in present):
            return _numbers_of(series, name), NUMERIC
        if all(isinstance(v, str | numbers.Number) and not isinstance(v, complex) for v in present):
            # As R's c(1, "a"): every value by its text.
            text = [None if pd.isna(v) else str(v) for v in series]
            return _as_category(text, name), CATEGORICAL
        odd = next(
            v for v in present if not isinstance(v, str | numbers.Number) or isinstance(v, complex)
        )
        raise TypeError(
            f"column {name!r} holds {type(odd).__name__} values (such as "
            f"{odd!r:.40}), which a formula cannot use: convert them to numbers "
            "or strings"
        )
    raise TypeError(
        f"column {name!r} holds {inferred} values, which a formula cannot use: "
        "convert them to numbers or strings"
    )


def _numbers_of(series, name):
    """Floats (NaN where missing) of an object column of Python numbers."""
    try:
        return series.astype(float).to_numpy()
    except (TypeError, ValueError):
        return np.array([np.nan if pd.isna(v) else float(v) for v in series], dtype=float)


def column_values(series, name, where="data"):
    """``(values, kind)`` of one column: ``kind`` is ``NUMERIC`` (values an
    ndarray) or ``CATEGORICAL`` (a pandas Categorical); see the module docstring."""
    dtype = series.dtype
    if isinstance(dtype, pd.SparseDtype):
        series = series.sparse.to_dense()
        dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        if not (categories.dtype == object or pd.api.types.is_numeric_dtype(categories.dtype)):
            categories = list(categories)
        values = series.to_numpy(dtype=object) if isinstance(categories, list) else series
        return (
            _as_category(values, name, categories=categories, ordered=dtype.ordered),
            CATEGORICAL,
        )
    if isinstance(dtype, pd.ArrowDtype):
        return _arrow_values(series, name, where)
    if isinstance(dtype, pd.StringDtype):
        return _as_category(series.to_numpy(dtype=object, na_value=None), name), CATEGORICAL
    if isinstance(dtype, pd.BooleanDtype):
        return _masked_numbers(series, is_bool=True), NUMERIC
    if (
        isinstance(dtype, pd.api.extensions.ExtensionDtype)
        and pd.api.types.is_numeric_dtype(dtype)
        and hasattr(series.array, "_mask")
    ):
        return _masked_numbers(series), NUMERIC
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        raise _refuse_dates(name, "datetime", dtype, where)
    if pd.api.types.is_timedelta64_dtype(dtype):
        raise _refuse_dates(name, "timedelta", dtype, where)
    if isinstance(dtype, pd.PeriodDtype):
        raise _refuse_dates(name, "period", dtype, where)
    if isinstance(dtype, pd.IntervalDtype):
        raise TypeError(
            f"column {name!r} holds intervals ({dtype}); use their midpoints "
            f"(df[{name!r}].array.mid) or their labels as strings"
        )
    if pd.api.types.is_complex_dtype(dtype):
        raise TypeError(
            f"column {name!r} holds complex numbers; use the real part, the "
            "modulus or both as separate columns"
        )
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(), NUMERIC
    if dtype == np.dtype(object):
        return _object_values(series, name, where)
    raise TypeError(
        f"column {name!r} has the dtype {dtype}, which a formula cannot use: "
        "convert it to numbers or strings"
    )


def prepare_columns(frame, names, where="data", kinds=None):
    """A copy of ``frame`` whose columns ``names`` are numbers or categories.

    Returns ``(frame, kinds)``, ``kinds`` mapping each name to ``NUMERIC`` or
    ``CATEGORICAL``. With the ``kinds`` of the training data, a column that
    was numeric there but holds text here is a TypeError naming it.
    ``frame`` is never modified.
    """
    names = [name for name in names if name in frame.columns]
    repeated = set(frame.columns[frame.columns.duplicated()])
    duplicated = sorted(str(name) for name in names if name in repeated)
    if duplicated:
        raise ValueError(
            f"the {where} have several columns named {duplicated}; a formula "
            "needs one column per name"
        )
    converted, found = {}, {}
    for name in names:
        values, kind = column_values(frame[name], name, where)
        if kinds is not None and kinds.get(name) == NUMERIC and kind == CATEGORICAL:
            raise TypeError(
                f"column {name!r} of the {where} holds text ({frame[name].dtype}) "
                "but was numeric in the fit; convert it to numbers"
            )
        converted[name] = values
        found[name] = kind
    if not converted:
        return frame, found
    out = frame.copy(deep=False)
    for name, values in converted.items():
        out[name] = values
    return out, found


def as_float(values, argument, column=None):
    """Per-row numbers (weights, offsets, ...) as a float array, NaN where missing.

    ``values`` is a Series, array or sequence; text, dates and other
    non-numbers are a TypeError naming ``argument`` (and ``column``).
    """
    label = f"{argument} (column {column!r})" if column is not None else argument
    if isinstance(values, pd.DataFrame):
        raise TypeError(f"{label} must be one column, got a DataFrame")
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(float)
    series = values if isinstance(values, pd.Series) else None
    if series is None:
        array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
        if array.ndim != 1:
            try:
                return np.asarray(values, dtype=float)
            except (TypeError, ValueError):
                raise TypeError(f"{label} must be numeric") from None
        series = pd.Series(array)
    try:
        result, kind = column_values(series, column if column is not None else argument)
    except TypeError as exc:
        raise TypeError(f"{label} must be numeric: {exc}") from None
    if kind != NUMERIC:
        raise TypeError(
            f"{label} must be numeric, got text ({series.dtype}) such as "
            f"{series.dropna().iloc[0]!r:.40}"
        )
    return np.asarray(result, dtype=float)
