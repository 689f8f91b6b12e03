"""save, load and remove_data: results that travel without their rows."""

import pickle
import re

import numpy as np
import pandas as pd
import pytest

import emformula
from emformula import emglm


def _data(n=3000, seed=2):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    first = rng.random(n) < 1 / (1 + np.exp(-(0.3 + 0.8 * df.z)))
    df["y"] = rng.poisson(np.exp(np.where(first, 0.4 + 0.7 * df.x, 2.0 - 0.3 * df.x)))
    return df


def _same_inference(a, b):
    assert a.llf == b.llf and a.nobs == b.nobs and a.df_resid == b.df_resid
    for name in ("aic", "bic", "icl", "llnull"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.info_criteria("icl", kind="classification") == b.info_criteria(
        "icl", kind="classification"
    )
    pd.testing.assert_frame_equal(a.params, b.params)
    pd.testing.assert_frame_equal(a.bse, b.bse)
    pd.testing.assert_frame_equal(a.cov_params(), b.cov_params())
    pd.testing.assert_series_equal(a.prior_bse, b.prior_bse)
    assert a.pseudo_rsquared("mcf") == b.pseudo_rsquared("mcf")
    assert float(a.t_test("comp1:x = comp2:x").pvalue) == float(
        b.t_test("comp1:x = comp2:x").pvalue
    )
    assert _summary_text(a) == _summary_text(b)


def _summary_text(res):
    """The summary without the clock (its Date and Time lines)."""
    return re.sub(r"(Date|Time):\s+\S.*?\s{3}", "", res.summary().as_text())


@pytest.mark.parametrize("cov_type", ["louis", "robust"])
def test_remove_data_keeps_the_inference_and_drops_the_rows(cov_type):
    data = _data()
    res = emglm("y ~ x", data, "poisson", K=2, concomitant="~ z", random_state=0, cov_type=cov_type)
    full = emglm(
        "y ~ x", data, "poisson", K=2, concomitant="~ z", random_state=0, cov_type=cov_type
    )
    size = len(pickle.dumps(res))
    res.remove_data()
    assert len(pickle.dumps(res)) < size / 10
    # Nothing of the rows is left: four times the rows, the same size.
    bigger = emglm(
        "y ~ x",
        pd.concat([data] * 4, ignore_index=True),
        "poisson",
        K=2,
        concomitant="~ z",
        random_state=0,
        n_init=2,
    )
    bigger.remove_data()
    assert abs(len(pickle.dumps(bigger)) - len(pickle.dumps(res))) < 2000
    _same_inference(res, full)
    text = res.summary().as_text()
    assert "Log-Likelihood" in text and cov_type.capitalize() in text
    # Predictions on new data need only the formula and the estimates.
    new = data.iloc[:20]
    pd.testing.assert_series_equal(res.predict(new), full.predict(new))
    pd.testing.assert_frame_equal(res.predict(new, type="prior"), full.predict(new, type="prior"))
    # Everything per row says why it cannot be done.
    for call in (
        lambda r: r.posterior,
        lambda r: r.fittedvalues,
        lambda r: r.predict(),
        lambda r: r.resid_response,
        lambda r: r.get_margeff(),
        lambda r: r.residuals(),
        lambda r: r.bootstrap(5),
        lambda r: r.relabel(order=[2, 1]),
        lambda r: r.clusters(),
        lambda r: r.with_cov_type("cluster", np.zeros(len(data))),
    ):
        with pytest.raises(NotImplementedError, match="remove_data"):
            call(res)
    # Louis' covariance and the one in use stay available.
    assert res.with_cov_type("louis").cov_type == "louis"
    assert res.with_cov_type(cov_type).cov_type == cov_type
    res.remove_data()  # twice is harmless


def test_save_and_load_round_trip(tmp_path):
    data = _data(800, 5)
    res = emglm("y ~ x", data, "poisson", K=2, random_state=0)
    path = tmp_path / "fit.pickle"
    res.save(path)
    again = emformula.load(path)
    _same_inference(again, res)
    pd.testing.assert_frame_equal(again.posterior, res.posterior)
    slim = tmp_path / "slim.pickle"
    res.save(slim, remove_data=True)
    assert slim.stat().st_size < path.stat().st_size / 5
    _same_inference(emformula.load(slim), again)
    other = tmp_path / "other.pickle"
    other.write_bytes(pickle.dumps({"not": "results"}))
    with pytest.raises(TypeError, match="not emformula results"):
        emformula.load(other)


def test_remove_data_of_an_array_model():
    data = _data(500, 7)
    res = emglm("y ~ x", data, "poisson", K=2, random_state=0)
    arrays = emformula.EMGLM(
        data["y"].to_numpy(), np.column_stack([np.ones(500), data.x]), "poisson", K=2
    ).fit(random_state=0)
    bse = arrays.bse.to_numpy().copy()
    arrays.remove_data()
    np.testing.assert_array_equal(arrays.bse.to_numpy(), bse)
    assert arrays.llf == pytest.approx(res.llf, rel=1e-12) and arrays.nobs == 500
