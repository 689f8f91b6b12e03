"""Warnings name the user's line, whichever entry point leads to them."""

import warnings

import numpy as np
import pandas as pd
import pytest

from emformula import EMGLM, ConvergenceWarning, emglm


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n)})
    df["y"] = rng.poisson(np.exp(0.4 + 0.6 * df.x)).astype(float)
    return df


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


def test_input_warnings_point_at_the_callers_line(data):
    missing = data.copy()
    missing.loc[3, "x"] = np.nan
    fractional = data.assign(y=data.y + 0.5)
    for frame, message in ((missing, "dropped 1 of 300 rows"), (fractional, "non-integer values")):
        caught = _caught(lambda frame=frame: emglm("y ~ x", frame, "poisson", K=1))
        mine = [w for w in caught if message in str(w.message)]
        assert mine, [str(w.message) for w in caught]
        assert {w.filename for w in mine} == {__file__}


@pytest.mark.parametrize("route", ["emglm", "EMGLM.fit"])
def test_fit_warnings_point_at_the_callers_line(data, route):
    def call():
        if route == "emglm":
            return emglm("y ~ x", data, "poisson", K=2, max_iter=2, n_init=1, random_state=0)
        x = np.column_stack([np.ones(len(data)), data.x])
        return EMGLM(data.y.to_numpy(), x, "poisson", K=2).fit(max_iter=2, n_init=1, random_state=0)

    caught = _caught(call)
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert convergence
    assert {w.filename for w in caught} == {__file__}


def test_dask_warnings_point_at_the_callers_line(data):
    dd = pytest.importorskip("dask.dataframe")
    missing = data.copy()
    missing.loc[3, "x"] = np.nan
    caught = _caught(lambda: emglm("y ~ x", dd.from_pandas(missing, npartitions=2), "poisson", K=1))
    mine = [w for w in caught if "dropped 1 rows" in str(w.message)]
    assert mine and {w.filename for w in mine} == {__file__}
