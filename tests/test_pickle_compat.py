"""Results pickled by emformula 0.1.0 (before the layered packages) still load,
with every number, and work (tests/reference/make_v0_1_0_pickle.py made them)."""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REFERENCE = Path(__file__).resolve().parent / "reference"

# The reference pickle was written with numpy 2, whose arrays pickle by
# numpy._core; numpy 1.x cannot read them (a numpy limit, not emformula's).
pytestmark = pytest.mark.skipif(
    int(np.__version__.split(".")[0]) < 2,
    reason="the 0.1.0 reference pickle needs numpy >= 2 to load",
)


@pytest.fixture(scope="module")
def old():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. sklearn-style version notes of dependencies
        res = pickle.loads((REFERENCE / "results_v0_1_0.pickle").read_bytes())
    values = pd.read_csv(REFERENCE / "results_v0_1_0.csv", index_col="name")["value"]
    return res, values


def test_every_number_survives(old):
    res, values = old
    assert res.llf == values["llf"] and res.aic == pytest.approx(values["aic"], rel=1e-12)
    assert res.bic == pytest.approx(values["bic"], rel=1e-12)
    for name, value in values.items():
        kind, *rest = name.split(":")
        if kind == "params":
            assert res.params.loc[rest[1], rest[0]] == pytest.approx(value, rel=1e-12)
        elif kind == "bse":  # recomputed from the pickled fit by the new code
            assert res.bse.loc[rest[1], rest[0]] == pytest.approx(value, rel=1e-8)
        elif kind == "prior":
            assert res.prior[rest[0]] == pytest.approx(value, rel=1e-12)
        elif kind == "posterior":
            assert res.posterior.iloc[int(rest[0]), 0] == pytest.approx(value, rel=1e-10)


def test_an_old_fit_still_works(old):
    res, _ = old
    data = pd.read_csv(REFERENCE / "results_v0_1_0_data.csv")
    assert "Poisson" in res.summary().as_text()
    np.testing.assert_allclose(res.predict(data.iloc[:5]), res.fittedvalues[:5], rtol=1e-12)
    assert res.t_test("comp1:x = comp2:x").pvalue < 0.05
    refit = res.model.with_k(2).fit(start=res)
    assert refit.llf == pytest.approx(res.llf, rel=1e-10)
