"""Bad input: each case raises or warns with a message naming the culprit.

The table below is the list in README's "Bad input" section.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import DomainWarning

from emformula import EMGLM, EstimationWarning, emglm, select_best, small_em


def frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": rng.poisson(np.exp(0.5 + 0.3 * x)).astype(float),
            "x": x,
            "g": rng.choice(["a", "b"], size=n),
            "w": rng.uniform(0.5, 2, size=n),
            "t": rng.integers(1, 5, size=n).astype(float),
            "pos": rng.gamma(2.0, size=n),
            "p01": rng.integers(0, 2, size=n).astype(float),
        }
    )


D = frame()
N = len(D)


def fit(formula="y ~ x", data=None, **kwargs):
    kwargs.setdefault("K", 2)
    kwargs.setdefault("n_init", 1)
    kwargs.setdefault("random_state", 0)
    return emglm(formula, D if data is None else data, **kwargs)


def with_nan(column, row=3):
    data = D.copy()
    data.loc[row, column] = np.nan
    return data


# (id, callable, exception or warning class, words the message must contain)
CASES = [
    ("missing column", lambda: fit("y ~ x + nothere"), ValueError, ["nothere"]),
    ("missing response", lambda: fit("yy ~ x"), ValueError, ["yy"]),
    ("non-numeric response", lambda: fit("g ~ x"), TypeError, ["'g'", "not numeric"]),
    ("formula without ~", lambda: fit("x"), ValueError, ["left-hand side"]),
    ("formula not a string", lambda: fit(3), TypeError, ["formula"]),
    ("data not a frame", lambda: emglm("y ~ x", [1, 2, 3]), TypeError, ["data", "DataFrame"]),
    ("empty data", lambda: fit(data=D.iloc[:0]), ValueError, ["no rows"]),
    (
        "negative poisson counts",
        lambda: fit(data=D.assign(y=-D.y - 1)),
        ValueError,
        ["y", "negative counts", "poisson"],
    ),
    (
        "negative nb counts",
        lambda: fit(data=D.assign(y=-D.y - 1), family="negative_binomial"),
        ValueError,
        ["negative counts", "negative_binomial"],
    ),
    ("non-integer counts", lambda: fit(data=D.assign(y=D.y + 0.5)), UserWarning, ["non-integer"]),
    (
        "binomial outside [0, 1]",
        lambda: fit("y ~ x", family="binomial"),
        ValueError,
        ["y", "outside [0, 1]"],
    ),
    (
        "successes above trials",
        lambda: fit("y ~ x", data=D.assign(y=D.t + 1), family="binomial", trials=np.ones(N)),
        ValueError,
        ["outside [0, 1]"],
    ),
    (
        "negative two-column counts",
        lambda: fit("y + t ~ x", data=D.assign(t=-D.t), family="binomial"),
        ValueError,
        ["non-negative"],
    ),
    ("two columns, not binomial", lambda: fit("y + t ~ x"), ValueError, ["two-column", "poisson"]),
    ("trials for poisson", lambda: fit(trials="t"), ValueError, ["trials", "binomial"]),
    (
        "gamma non-positive",
        lambda: fit("x ~ pos", family="gamma"),
        ValueError,
        ["x", "non-positive", "gamma"],
    ),
    (
        "inverse gaussian non-positive",
        lambda: fit("x ~ pos", family="inverse_gaussian"),
        ValueError,
        ["non-positive", "inverse_gaussian"],
    ),
    ("negative weights", lambda: fit(weights=-D.w), ValueError, ["weights", "negative"]),
    ("NaN weights", lambda: fit(weights=with_nan("w").w), ValueError, ["weights", "missing"]),
    ("zero weights", lambda: fit(weights=np.zeros(N)), ValueError, ["weights", "zero"]),
    (
        "weights wrong length",
        lambda: fit(weights=np.ones(N - 1)),
        ValueError,
        ["weights", f"{N - 1}", f"{N}"],
    ),
    ("weights column absent", lambda: fit(weights="ww"), ValueError, ["weights", "'ww'"]),
    ("offset wrong length", lambda: fit(offset=np.zeros(N + 2)), ValueError, ["offset"]),
    (
        "offset NaN",
        lambda: fit(data=with_nan("x", 5), offset="x", formula="y ~ pos"),
        ValueError,
        ["offset", "missing"],
    ),
    (
        "exposure non-positive",
        lambda: fit(exposure=np.r_[0.0, np.ones(N - 1)]),
        ValueError,
        ["exposure", "positive"],
    ),
    ("exposure wrong length", lambda: fit(exposure=np.ones(3)), ValueError, ["exposure"]),
    ("K zero", lambda: fit(K=0), ValueError, ["K", "at least 1"]),
    ("K not whole", lambda: fit(K=2.5), TypeError, ["K", "whole"]),
    ("K too large", lambda: fit(K=25), ValueError, ["K=25", "too large"]),
    ("unknown family", lambda: fit(family="poison"), ValueError, ["'poison'", "unknown family"]),
    ("family wrong type", lambda: fit(family=3), TypeError, ["family"]),
    (
        "unsupported family",
        lambda: fit(family=sm.families.Tweedie()),
        TypeError,
        ["Tweedie", "not supported"],
    ),
    (
        "link not allowed",
        lambda: fit(family="poisson", link="logit"),
        ValueError,
        ["'logit'", "poisson"],
    ),
    ("unknown link", lambda: fit(family="poisson", link="lgo"), ValueError, ["'lgo'"]),
    (
        "domain warning link",
        lambda: fit("p01 ~ x", family=sm.families.Binomial(sm.families.links.Log()), K=1),
        DomainWarning,
        ["Log"],
    ),
    (
        "collinear columns",
        lambda: fit("y ~ x + I(2 * x)"),
        ValueError,
        ["rank deficient", "I(2 * x)", "x"],
    ),
    (
        "start wrong shape",
        lambda: fit(start={"params": np.zeros((3, 2)), "prior": [0.5, 0.5]}),
        ValueError,
        ["start params", "(3, 2)", "(2, 2)"],
    ),
    (
        "start prior not summing to 1",
        lambda: fit(start={"params": np.zeros((2, 2)), "prior": [0.5, 0.7]}),
        ValueError,
        ["prior"],
    ),
    ("start unknown string", lambda: fit(start="kmeans"), ValueError, ["'kmeans'"]),
    ("n_init zero", lambda: fit(n_init=0), ValueError, ["n_init"]),
    ("tol negative", lambda: fit(tol=-1.0), ValueError, ["tol"]),
    ("na_action unknown", lambda: fit(na_action="omit"), ValueError, ["na_action"]),
    (
        "na_action raise",
        lambda: fit(data=with_nan("x", 7), na_action="raise"),
        ValueError,
        ["missing values", "7"],
    ),
    (
        "missing values dropped",
        lambda: fit(data=with_nan("x", 7)),
        UserWarning,
        ["dropped 1 of 60 rows", "7"],
    ),
    (
        "infinite covariate",
        lambda: fit(data=D.assign(x=np.r_[np.inf, D.x[1:]])),
        ValueError,
        ["exog", "infinite", "x"],
    ),
    (
        "unseen level in predict",
        lambda: fit("y ~ C(g)", K=1).predict(D.assign(g="z")),
        ValueError,
        ["z"],
    ),
    ("predict bad type", lambda: fit(K=1).predict(type="prob"), ValueError, ["'prob'"]),
    (
        "small_em sample_size",
        lambda: small_em("y ~ x", D, K=2, sample_size=10_000),
        ValueError,
        ["sample_size"],
    ),
    ("select_best wrong object", lambda: select_best({"a": 1}), TypeError, ["small_em"]),
    (
        "array exog wrong rows",
        lambda: EMGLM(np.ones(5), np.ones((4, 2))),
        ValueError,
        ["endog", "5", "4"],
    ),
    # Formulas that would silently mean something else, and malformed ones
    # (more in test_formula_checks.py), column dtypes (test_input_types.py).
    (
        "column named Intercept",
        lambda: fit("y ~ Intercept + x", data=D.assign(Intercept=D.x)),
        ValueError,
        ["'Intercept'", "rename"],
    ),
    ("xor for a power", lambda: fit("y ~ I(t^2)"), ValueError, ["exclusive or", "t ** 2"]),
    ("no terms", lambda: fit("y ~ 0"), ValueError, ["'y ~ 0'", "no terms"]),
    ("no response", lambda: fit("~ x"), ValueError, ["'~ x'", "left-hand side"]),
    ("Python syntax error", lambda: fit("y ~ I(x +)"), ValueError, ["I(x +)", "syntax"]),
    ("response on the right", lambda: fit("y ~ y + x"), ValueError, ["response", "'y'"]),
    (
        "date column",
        lambda: fit("y ~ d", data=D.assign(d=pd.date_range("2020", periods=N))),
        TypeError,
        ["'d'", "dates", "convert it to a number"],
    ),
    (
        "data a dict of unequal columns",
        lambda: emglm("y ~ x", {"y": [1, 2], "x": [1]}),
        ValueError,
        ["data", "same length"],
    ),
    (
        "text in new data",
        lambda: fit(K=1).predict(D.assign(x="1")),
        TypeError,
        ["'x'", "new data", "text"],
    ),
    (
        "weights two columns",
        lambda: fit(weights=np.ones((N, 2))),
        ValueError,
        ["weights", "1-d", "(60, 2)"],
    ),
    ("context not a mapping", lambda: fit(context=5), TypeError, ["context", "mapping"]),
    (
        "column missing everywhere",
        lambda: fit("y ~ x + z", data=D.assign(z=np.nan)),
        ValueError,
        ["every row", "'z'"],
    ),
]


@pytest.mark.parametrize("case, call, kind, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(case, call, kind, words):
    if issubclass(kind, Warning):
        with pytest.warns(kind) as record:
            try:
                call()
            except Exception:
                pass
        message = " ".join(str(w.message) for w in record if issubclass(w.category, kind))
    else:
        with pytest.raises(kind) as info:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
        message = str(info.value)
    for word in words:
        assert word in message, (case, message)


def test_there_are_at_least_thirty_distinct_cases():
    assert len({c[0] for c in CASES}) >= 30


def test_dropped_rows_keep_the_index_aligned():
    data = D.copy()
    data.index = np.arange(N) * 10 + 5
    data.loc[data.index[[2, 9]], "x"] = np.nan
    with pytest.warns(UserWarning, match="dropped 2 of 60 rows"):
        res = emglm("y ~ x", data, K=2, random_state=0, n_init=2)
    assert res.nobs == N - 2
    full = res.posterior.reindex(data.index)
    assert full.isna().all(axis=1).sum() == 2
    assert list(full.index[full.isna().all(axis=1)]) == [25, 95]
    # Same fit as on the rows without missing values.
    clean = emglm("y ~ x", data.dropna(), K=2, random_state=0, n_init=2)
    assert clean.llf == res.llf
    # New data with a missing value predicts NaN for that row only.
    pred = res.predict(data.iloc[:4])
    assert pred.isna().tolist() == [False, False, True, False]


def test_gaussian_collapse_is_floored_and_reported():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": np.r_[rng.normal(size=60), np.full(4, 3.0)]})
    with pytest.warns(EstimationWarning, match="component 2 has its dispersion at the floor"):
        res = emglm("y ~ 1", data, "gaussian", K=2, random_state=0, n_init=20)
    floor = res.fit_options["scale_floor"]
    assert floor == pytest.approx(1e-8 * np.var(data.y))
    assert res.scale.iloc[1] == pytest.approx(floor)
    assert np.isfinite(res.llf) and res.prior.iloc[1] == pytest.approx(4 / 64, abs=1e-6)
    assert len(res.problems) == 1


def test_separation_in_a_binomial_component_is_reported():
    x = np.linspace(-1, 1, 40)
    data = pd.DataFrame({"x": x, "y": (x > 0).astype(float)})
    with pytest.warns(EstimationWarning, match="perfect separation"):
        res = emglm("y ~ x", data, "binomial", K=1)
    assert np.all(np.isfinite(res.params.to_numpy()))
    assert res.params.loc["x", "comp1"] > 50  # diverging, but finite
    assert any("separation" in p for p in res.problems)


def test_collapsed_component_is_reported():
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"x": rng.normal(size=200)})
    data["y"] = rng.poisson(np.exp(1 + 0.5 * data.x))
    start = {
        "params": np.array([[1.0, 1.0], [0.5, 0.5]]) + [[0, 3.0], [0, 0]],
        "prior": [1 - 1e-12, 1e-12],
    }
    with pytest.warns(EstimationWarning, match="component 2 has collapsed"):
        res = emglm("y ~ x", data, K=2, start=start)
    assert res.prior.iloc[1] < 1e-8
