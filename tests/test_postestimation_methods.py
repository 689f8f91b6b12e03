"""The results' postestimation methods: the functions of emformula.postestimation,
on every backend where the numbers they need are there, refused by name where not."""

import numpy as np
import pandas as pd
import pytest

from emformula import emglm
from emformula.postestimation import classes, hypothesis, margins, prediction


@pytest.fixture(scope="module")
def fit():
    rng = np.random.default_rng(5)
    n = 600
    x = rng.normal(size=n)
    z = rng.integers(0, 2, size=n)
    y = rng.poisson(np.exp(np.where(z == 0, 0.3 + 0.8 * x, 2.0 - 0.5 * x)))
    data = pd.DataFrame({"y": y, "x": x, "z": z})
    return emglm("y ~ x", data, "poisson", 2, random_state=0), data


def test_methods_are_the_functions(fit):
    res, data = fit
    name = res.param_names[1]
    assert res.t_test(f"{name} = 0").pvalue == pytest.approx(
        hypothesis.t_test(res, f"{name} = 0").pvalue, rel=1e-12
    )
    assert float(res.wald_test("comp1:x = comp2:x").statistic) == pytest.approx(
        float(hypothesis.wald_test(res, "comp1:x = comp2:x").statistic), rel=1e-12
    )
    pd.testing.assert_frame_equal(
        res.lincom("comp1:x - comp2:x"), hypothesis.lincom(res, "comp1:x - comp2:x")
    )
    pd.testing.assert_frame_equal(
        res.get_prediction(data.iloc[:5]).summary_frame(),
        prediction.get_prediction(res, data.iloc[:5]).summary_frame(),
    )
    pd.testing.assert_frame_equal(
        res.get_margeff().summary_frame(), margins.get_margeff(res).summary_frame()
    )
    pd.testing.assert_frame_equal(res.class_sizes(), classes.class_sizes(res))
    np.testing.assert_array_equal(res.clusters(), classes.clusters(res))
    assert res.entropy_r2() == classes.entropy_r2(res)
    # The two classes differ in their slope, with a test to say so.
    assert res.wald_test("comp1:x = comp2:x").pvalue < 1e-6


def test_dask_results_test_and_refuse_by_name(fit):
    dd = pytest.importorskip("dask.dataframe")
    res, data = fit
    start = {"params": res.params.to_numpy(), "prior": res.prior.to_numpy()}
    lazy = emglm("y ~ x", dd.from_pandas(data, npartitions=2), "poisson", 2, start=start)
    memory = emglm("y ~ x", data, "poisson", 2, start=start)
    assert lazy.t_test("comp1:x = comp2:x").pvalue == pytest.approx(
        memory.t_test("comp1:x = comp2:x").pvalue, rel=1e-6
    )
    pd.testing.assert_frame_equal(lazy.class_sizes(), memory.class_sizes(), rtol=1e-6)
    for method in ("get_prediction", "get_margeff", "clusters", "entropy_r2", "bootstrap"):
        with pytest.raises(NotImplementedError, match=method):
            getattr(lazy, method)()
    with pytest.raises(NotImplementedError, match="relabel"):
        lazy.relabel(order=[2, 1])
    with pytest.raises(NotImplementedError, match="bootstrap"):
        lazy.with_cov_type("bootstrap")
    # The numbers that need no rows are there: both ICL kinds, df_resid.
    for kind in ("entropy", "classification"):
        assert lazy.info_criteria("icl", kind=kind) == pytest.approx(
            memory.info_criteria("icl", kind=kind), rel=1e-8
        )
    assert lazy.df_resid == memory.df_resid
