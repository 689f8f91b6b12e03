"""Warnings name the user's line, whichever entry point leads to them."""

import os
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


def test_a_warning_from_a_dask_task_names_the_package_not_dask(data):
    # The check of the response runs in dask's worker threads, where the
    # user's line is not on the stack: the package's line is named.
    dd = pytest.importorskip("dask.dataframe")
    fractional = data.assign(y=data.y + 0.5)
    caught = _caught(
        lambda: emglm("y ~ x", dd.from_pandas(fractional, npartitions=2), "poisson", K=1)
    )
    mine = [w for w in caught if "non-integer" in str(w.message)]
    assert mine
    import emformula

    package = os.path.dirname(emformula.__file__)
    # The in-memory start (main thread) names this line; the tasks the package's.
    assert {w.filename for w in mine} <= {__file__} | {
        w.filename for w in mine if w.filename.startswith(package)
    }
    assert any(w.filename.startswith(package) for w in mine)


def test_switching_the_covariance_does_not_repeat_the_fits_warnings():
    from emformula import EstimationWarning, datasets

    sim2 = datasets.load_sim2()
    fit2 = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=0, n_init=2)
    p = fit2.params.to_numpy()
    start = {
        "params": np.column_stack([p[:, 0], p[:, 1], p[:, 1]]),
        "prior": [fit2.prior.iloc[0], fit2.prior.iloc[1] / 2, fit2.prior.iloc[1] / 2],
    }
    with pytest.warns(EstimationWarning, match="singular"):
        res = emglm(sim2.formula, sim2.data, "poisson", K=3, start=start)
    later = _caught(lambda: (res.with_cov_type("louis").bse, res.relabel(order=[1, 3, 2]).bse))
    assert not [w for w in later if "singular" in str(w.message)]
