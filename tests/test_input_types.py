"""Every pandas dtype a data frame can hold: fitted as numbers or factors, or
refused naming the column (README, "Data types and formulas")."""

import decimal
import io
import pickle
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from emformula import emglm

N = 90
FORMULA = "y ~ x + g + C(k)"


def numpy_frame(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N)
    return pd.DataFrame(
        {
            "y": rng.poisson(np.exp(0.4 + 0.5 * x)).astype(np.int64),
            "x": x,
            "g": rng.choice(["a", "b", "c"], size=N),
            "k": rng.integers(0, 3, size=N),
            "b": rng.random(N) > 0.5,
            "e": rng.uniform(1.0, 2.0, size=N),
            "w": rng.integers(1, 4, size=N).astype(float),
        }
    )


D = numpy_frame()


def fit(data, formula=FORMULA, **kwargs):
    kwargs.setdefault("K", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return emglm(formula, data, **kwargs)


REF = fit(D)


def via_csv(**kwargs):
    text = D.to_csv(index=False)
    return pd.read_csv(io.StringIO(text), **kwargs)


def via_parquet(frame, **kwargs):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    buffer.seek(0)
    return pd.read_parquet(buffer, **kwargs)


def decimals(values, places=None):
    return [decimal.Decimal(repr(float(v))) for v in values]


# (id, a frame holding the same values as D in another dtype)
SAME_VALUES = [
    ("read_csv pyarrow backend", lambda: via_csv(dtype_backend="pyarrow")),
    ("read_csv numpy_nullable", lambda: via_csv(dtype_backend="numpy_nullable")),
    ("read_csv pyarrow engine", lambda: via_csv(engine="pyarrow", dtype_backend="pyarrow")),
    ("read_parquet pyarrow", lambda: via_parquet(D, dtype_backend="pyarrow")),
    ("read_parquet nullable", lambda: via_parquet(D, dtype_backend="numpy_nullable")),
    (
        "parquet categorical, pyarrow",
        lambda: via_parquet(D.astype({"g": "category"}), dtype_backend="pyarrow"),
    ),
    ("convert_dtypes", lambda: D.convert_dtypes()),
    (
        "ArrowDtype",
        lambda: D.astype(
            {
                "y": pd.ArrowDtype(pa.int64()),
                "x": pd.ArrowDtype(pa.float64()),
                "g": pd.ArrowDtype(pa.string()),
                "k": pd.ArrowDtype(pa.int8()),
            }
        ),
    ),
    ("string python", lambda: D.astype({"g": "string[python]"})),
    ("string pyarrow", lambda: D.astype({"g": "string[pyarrow]"})),
    ("object strings", lambda: D.astype({"g": object})),
    (
        "categorical with unused levels",
        lambda: D.astype({"g": pd.CategoricalDtype(["a", "b", "c", "never"])}),
    ),
    (
        "categorical, unused level first",
        lambda: D.astype({"g": pd.CategoricalDtype(["aa", "a", "b", "c"])}),
    ),
    ("Decimal objects", lambda: D.assign(x=decimals(D.x))),
    (
        "pyarrow decimal",
        lambda: D.assign(x=pd.array(decimals(D.x), dtype=pd.ArrowDtype(pa.decimal128(38, 20)))),
    ),
    ("object numbers", lambda: D.astype({"x": object, "y": object})),
    ("Int64 and UInt8", lambda: D.astype({"y": "Int64", "k": "UInt8"})),
    ("response as Float64", lambda: D.astype({"y": "Float64"})),
    ("dict of lists", lambda: {c: D[c].tolist() for c in D.columns}),
    ("dict of arrays", lambda: {c: D[c].to_numpy() for c in D.columns}),
    ("pyarrow Table", lambda: pa.Table.from_pandas(D)),
]


@pytest.mark.parametrize("case, make", SAME_VALUES, ids=[c[0] for c in SAME_VALUES])
def test_same_values_in_another_dtype_give_the_same_fit(case, make):
    res = fit(make())
    assert list(res.params.index) == list(REF.params.index), case
    assert res.llf == pytest.approx(REF.llf, abs=1e-10, rel=0)
    np.testing.assert_allclose(res.params.to_numpy(), REF.params.to_numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.bse.to_numpy(), REF.bse.to_numpy(), rtol=1e-8)


def test_ordered_categorical_keeps_its_level_order():
    data = D.astype({"g": pd.CategoricalDtype(["c", "b", "a", "z"], ordered=True)})
    res = fit(data)
    # Reference "c" (the first level), treatment contrasts as statsmodels.
    assert list(res.params.index) == [
        "Intercept",
        "x",
        "g[T.b]",
        "g[T.a]",
        "C(k)[T.1]",
        "C(k)[T.2]",
    ]
    assert res.llf == pytest.approx(REF.llf, abs=1e-10, rel=0)


def test_bools_nullable_bools_and_object_bools_are_zero_one():
    ref = fit(D, "y ~ x + b")
    assert list(ref.params.index) == ["Intercept", "x", "b"]
    for data in (
        D.astype({"b": "boolean"}),
        D.astype({"b": "bool[pyarrow]"}),
        D.astype({"b": object}),
        D.assign(b=D.b.astype(float)),
    ):
        res = fit(data, "y ~ x + b")
        assert res.llf == pytest.approx(ref.llf, abs=1e-10, rel=0)
        np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), atol=1e-10)


def test_mixed_object_column_is_a_factor_of_its_text():
    data = D.assign(
        m=pd.Series([1 if k == 0 else "one" if k == 1 else 2.5 for k in D.k], dtype=object)
    )
    res = fit(data, "y ~ x + g + m")
    assert list(res.params.index) == ["Intercept", "x", "g[T.b]", "g[T.c]", "m[T.2.5]", "m[T.one]"]
    # The same partition of the rows as C(k): the same fit.
    assert res.llf == pytest.approx(REF.llf, abs=1e-10, rel=0)


# Missing values: one per column, in every missing-value representation.
def with_gaps(frame):
    frame = frame.copy()
    frame.loc[4, "x"] = None
    frame.loc[9, "g"] = None
    frame.loc[15, "k"] = None
    frame.loc[20, "y"] = None
    return frame


GAPS = [4, 9, 15, 20]
NUMPY_GAPS = with_gaps(D.astype({"k": float, "y": float}))
REF_GAPS = fit(NUMPY_GAPS.dropna())


@pytest.mark.parametrize(
    "case, frame",
    [
        ("numpy NaN", NUMPY_GAPS),
        ("nullable pd.NA", with_gaps(D.convert_dtypes())),
        ("pyarrow nulls", with_gaps(D.convert_dtypes(dtype_backend="pyarrow"))),
        ("string pd.NA", with_gaps(D.astype({"g": "string", "k": "Int64", "y": "Int64"}))),
        ("object None", with_gaps(D.astype(object))),
        (
            "Decimal NaN",
            with_gaps(D.astype({"k": float, "y": float})).assign(
                x=lambda f: [
                    decimal.Decimal("NaN") if np.isnan(v) else decimal.Decimal(repr(v)) for v in f.x
                ]
            ),
        ),
    ],
)
def test_missing_values_of_any_kind_drop_their_rows(case, frame):
    with pytest.warns(UserWarning, match="dropped 4 of 90 rows") as record:
        res = emglm(FORMULA, frame, K=1)
    assert "[4, 9, 15, 20]" in str(record[0].message)
    assert res.nobs == N - 4
    assert sorted(set(range(N)) - set(res.posterior.index)) == GAPS
    assert res.llf == pytest.approx(REF_GAPS.llf, abs=1e-10, rel=0)
    np.testing.assert_allclose(res.params.to_numpy(), REF_GAPS.params.to_numpy(), atol=1e-10)


def test_a_gap_is_missing_even_where_the_term_would_hide_it():
    data = D.assign(x=np.where(np.arange(N) == 6, np.nan, D.x))
    with pytest.warns(UserWarning, match="dropped 1 of 90 rows"):
        res = emglm("y ~ I(x > 0)", data, K=1)
    assert 6 not in res.posterior.index and res.nobs == N - 1


def test_rows_a_term_makes_nan_are_dropped_and_said_so():
    data = D.assign(z=np.where(np.arange(N) == 3, -1.0, D.e))
    with pytest.warns(UserWarning, match="a term is NaN there") as record:
        res = emglm("y ~ np.log(z)", data, K=1)
    message = next(str(w.message) for w in record if "dropped" in str(w.message))
    assert "dropped 1 of 90 rows" in message and "first at rows [3]" in message
    assert res.nobs == N - 1


@pytest.mark.parametrize(
    "case, column, words",
    [
        ("datetime", pd.date_range("2020-01-01", periods=N), ["'t'", "dates", "days since"]),
        ("datetime tz", pd.date_range("2020-01-01", periods=N, tz="UTC"), ["'t'", "dates"]),
        ("timedelta", pd.to_timedelta(np.arange(N), "D"), ["'t'", "durations", "total_seconds"]),
        ("period", pd.period_range("2020-01", periods=N, freq="M"), ["'t'", "periods"]),
        ("interval", pd.interval_range(0, N), ["'t'", "intervals", "mid"]),
        ("complex", np.arange(N) * (1 + 1j), ["'t'", "complex"]),
        (
            "object dates",
            list(pd.date_range("2020-01-01", periods=N).to_pydatetime()),
            ["'t'", "dates"],
        ),
        (
            "pyarrow timestamps",
            pd.array(
                pd.date_range("2020-01-01", periods=N), dtype=pd.ArrowDtype(pa.timestamp("ns"))
            ),
            ["'t'", "dates"],
        ),
        ("lists", [[1]] * N, ["'t'", "list"]),
        ("bytes", [b"a", b"b"] * (N // 2), ["'t'", "bytes"]),
    ],
)
def test_unusable_dtypes_are_refused_naming_the_column(case, column, words):
    data = D.assign(t=column)
    with pytest.raises(TypeError) as info:
        fit(data, "y ~ x + t")
    for word in words:
        assert word in str(info.value), (case, str(info.value))
    # An unused column of such a dtype is no problem.
    assert fit(data, "y ~ x + g + C(k)").llf == pytest.approx(REF.llf, abs=1e-10, rel=0)


@pytest.mark.parametrize(
    "convert",
    [
        lambda s: s.astype("Float64"),
        lambda s: s.astype("float64[pyarrow]"),
        lambda s: pd.Series(decimals(s)),
        lambda s: s.astype(object),
    ],
    ids=["Float64", "pyarrow", "Decimal", "object"],
)
def test_weights_offset_exposure_of_any_numeric_dtype(convert):
    ref = fit(D, "y ~ x", weights="w", exposure="e")
    res = fit(D.assign(w=convert(D.w), e=convert(D.e)), "y ~ x", weights="w", exposure="e")
    assert res.llf == pytest.approx(ref.llf, abs=1e-10, rel=0)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), atol=1e-10)
    ref = fit(D, "y ~ x", offset="e")
    res = fit(D.assign(e=convert(D.e)), "y ~ x", offset="e")
    assert res.llf == pytest.approx(ref.llf, abs=1e-10, rel=0)


@pytest.mark.parametrize(
    "value, kind, words",
    [
        (D.g, TypeError, ["weights", "'ww'", "numeric", "text"]),
        (pd.date_range("2020", periods=N), TypeError, ["weights", "dates"]),
        (
            pd.array([1.0, None] + [1.0] * (N - 2), dtype="Float64"),
            ValueError,
            ["weights", "missing"],
        ),
    ],
)
def test_bad_weights_are_named(value, kind, words):
    data = D.assign(ww=value)
    with pytest.raises(kind) as info:
        fit(data, "y ~ x", weights="ww")
    for word in words:
        assert word in str(info.value), str(info.value)


def test_groups_of_pyarrow_strings_and_categoricals():
    data = D.assign(id=[f"i{i // 3}" for i in range(N)])
    ref = fit(data, "y ~ x", K=2, groups="id", random_state=0, n_init=2)
    for labels in (
        data.id.astype("string[pyarrow]"),
        data.id.astype(pd.CategoricalDtype(sorted(set(data.id)) + ["unused"])),
    ):
        res = fit(data.assign(id=labels), "y ~ x", K=2, groups="id", random_state=0, n_init=2)
        assert res.llf == pytest.approx(ref.llf, abs=1e-10, rel=0)


def test_the_callers_frame_is_never_modified():
    data = with_gaps(D.astype({"g": "string", "k": "Int64", "y": "Int64", "x": "float64[pyarrow]"}))
    data["d"] = decimals(D.e)
    data["c"] = pd.Categorical(D.g, categories=["a", "b", "c", "never"])
    before = data.copy(deep=True)
    dtypes = data.dtypes.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = emglm("y ~ x + c + C(k) + d", data, K=1, weights="w")
        res.predict(data)
        res.predict(data, type="posterior")
    pd.testing.assert_frame_equal(data, before)
    assert (data.dtypes == dtypes).all()


# ------------------------------------------------------------ new data
NEW = D.iloc[:8].copy()
NEW.index = [f"r{i}" for i in range(8)]
NEW_GAPS = NEW.astype({"k": float, "y": float})
NEW_GAPS.loc["r1", "x"] = np.nan
NEW_GAPS.loc["r4", "g"] = None
NEW_GAPS.loc["r6", "k"] = np.nan


@pytest.mark.parametrize(
    "case, make",
    [
        ("numpy", lambda f: f),
        ("pyarrow", lambda f: f.convert_dtypes(dtype_backend="pyarrow")),
        ("nullable", lambda f: f.convert_dtypes()),
        ("string g", lambda f: f.astype({"g": "string"})),
        (
            "categorical g, other levels",
            lambda f: f.astype({"g": pd.CategoricalDtype(["c", "a", "b", "zz"])}),
        ),
        ("object", lambda f: f.astype(object)),
    ],
)
@pytest.mark.parametrize("kind", ["mean", "component", "linear", "prior", "posterior"])
def test_predict_new_data_of_any_dtype_nan_rows_exactly(case, make, kind):
    full = REF.predict(NEW, type=kind)
    got = REF.predict(make(NEW_GAPS), type=kind)
    assert list(got.index) == list(NEW.index)
    values = np.asarray(got, dtype=float).reshape(8, -1)
    missing = [1, 4, 6] if kind != "prior" else []
    assert [i for i in range(8) if np.isnan(values[i]).all()] == missing
    keep = [i for i in range(8) if i not in missing]
    np.testing.assert_allclose(
        values[keep], np.asarray(full, dtype=float).reshape(8, -1)[keep], rtol=1e-12
    )


def test_predict_takes_a_dict_and_an_empty_frame():
    got = REF.predict({c: NEW_GAPS[c].tolist() for c in NEW_GAPS.columns})
    assert list(got.index) == list(range(8))
    assert got.isna().tolist() == [False, True, False, False, True, False, True, False]
    np.testing.assert_allclose(
        got.to_numpy()[[0, 2]], REF.predict(NEW).to_numpy()[[0, 2]], rtol=1e-12
    )
    empty = REF.predict(NEW.iloc[:0])
    assert empty.shape == (0,)
    all_missing = REF.predict(NEW_GAPS.assign(x=np.nan))
    assert all_missing.isna().all() and list(all_missing.index) == list(NEW.index)


def test_posterior_of_new_data_with_a_missing_response():
    res = fit(D, "y ~ x", K=2, random_state=0, n_init=2)
    new = NEW.astype({"y": "Int64"})
    new.loc["r3", "y"] = pd.NA
    post = res.predict(new, type="posterior")
    ref = res.predict(NEW, type="posterior")
    assert post.isna().all(axis=1).tolist() == [i == 3 for i in range(8)]
    np.testing.assert_allclose(post.drop("r3").to_numpy(), ref.drop("r3").to_numpy(), rtol=1e-12)


def test_new_data_errors_name_the_column():
    with pytest.raises(TypeError, match="'x' of the new data holds text"):
        REF.predict(NEW.assign(x=["1.5"] * 8))
    with pytest.raises(TypeError, match="'x' of the new data holds dates"):
        REF.predict(NEW.assign(x=pd.date_range("2020", periods=8)))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['x'\]"):
        REF.predict(NEW.drop(columns="x"))
    with pytest.raises(ValueError, match=r"\{'zz'\}"):
        REF.predict(NEW.assign(g="zz"))
    with pytest.raises(TypeError, match="Series is one column"):
        REF.predict(NEW.iloc[0])


def double(values):
    return 2.0 * values


def test_predict_context_for_the_formulas_own_functions():
    res = fit(D, "y ~ double(x)")
    ref = fit(D.assign(x2=2 * D.x), "y ~ x2")
    assert res.llf == pytest.approx(ref.llf, abs=1e-10, rel=0)
    expected = ref.predict(NEW.assign(x2=2 * NEW.x))
    np.testing.assert_allclose(res.predict(NEW), expected, rtol=1e-12)
    # Pickling drops the caller's namespace: context= gives it back.
    loaded = pickle.loads(pickle.dumps(res))
    with pytest.raises(ValueError, match=r"double\(\).*context="):
        loaded.predict(NEW)
    np.testing.assert_allclose(
        loaded.predict(NEW, context={"double": double}), expected, rtol=1e-12
    )


def test_new_offset_and_exposure_columns_of_nullable_dtype():
    res = fit(D, "y ~ x", exposure="e")
    new = NEW.assign(e=pd.array([1.5, None, 2.0, 1.0, 1.0, 1.2, 1.3, 1.9], dtype="Float64"))
    got = res.predict(new)
    assert got.isna().tolist() == [i == 1 for i in range(8)]
    expected = res.predict(new.astype({"e": float}).fillna({"e": 1.0}))
    np.testing.assert_allclose(got.drop("r1"), expected.drop("r1"), rtol=1e-12)


def test_residuals_of_a_pyarrow_fit_equal_the_numpy_ones():
    res = fit(via_csv(dtype_backend="pyarrow"))
    for kind in ("deviance", "pearson", "response"):
        np.testing.assert_allclose(res.residuals(kind), REF.residuals(kind), rtol=1e-10)


def test_dask_frames_of_pyarrow_and_nullable_dtypes():
    dd = pytest.importorskip("dask.dataframe")
    ref = fit(D, "y ~ x + g")
    for frame in (
        D.convert_dtypes(dtype_backend="pyarrow"),
        D.convert_dtypes(),
        D.assign(x=pd.array(decimals(D.x), dtype=pd.ArrowDtype(pa.decimal128(38, 20)))),
        D.astype({"g": pd.CategoricalDtype(["a", "b", "c", "never"])}),
    ):
        res = fit(dd.from_pandas(frame, npartitions=3), "y ~ x + g")
        assert list(res.params.index) == list(ref.params.index)
        assert res.llf == pytest.approx(ref.llf, rel=1e-9)
    with pytest.raises(TypeError, match="'t' of the data holds dates"):
        fit(
            dd.from_pandas(D.assign(t=pd.date_range("2020", periods=N)), npartitions=2), "y ~ x + t"
        )


@pytest.mark.parametrize("kind", ["deviance", "pearson", "response", "quantile"])
def test_residuals_of_new_data_of_any_dtype(kind):
    res = fit(D, "y ~ x + g", K=2, random_state=0, n_init=2)
    ref = res.residuals(kind, random_state=3)
    # The fitted rows given as new data: the fit's own residuals.
    np.testing.assert_allclose(res.residuals(kind, random_state=3, data=D), ref, rtol=1e-10)
    new = D.iloc[:8].convert_dtypes(dtype_backend="pyarrow")
    new.index = NEW.index
    new.loc["r2", "x"] = None
    new.loc["r5", "y"] = None
    got = res.residuals(kind, random_state=3, data=new)
    assert list(got.index) == list(NEW.index)
    assert got.isna().tolist() == [i in (2, 5) for i in range(8)]
    if kind != "quantile":  # the same uniform draws only for the same rows
        np.testing.assert_allclose(
            got.drop(["r2", "r5"]).to_numpy(), ref.iloc[[0, 1, 3, 4, 6, 7]].to_numpy(), rtol=1e-10
        )
    component = res.residuals(kind, component=2, random_state=3, data=new)
    assert component.name == f"resid_{kind}_comp2" and component.isna().sum() == 2
