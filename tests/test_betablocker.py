"""Grouped data with a shared effect: flexmix's betablocker example.

tests/reference/make_betablocker.R fits, with R's flexmix, the centres'
baseline risks as a K-component mixture with one treatment effect shared by
the classes (``cbind(Deaths, Total - Deaths) ~ 1 | Center``,
``FLXMRglmfix(fixed = ~ Treatment)``), K = 1, 2, 3.
"""

import numpy as np
import pandas as pd
import pytest
from flexmix_reference import HERE

from emformula import datasets, emglm


@pytest.fixture(scope="module")
def data():
    return datasets.load_betablocker().assign(Alive=lambda d: d.Total - d.Deaths)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_betablocker_matches_flexmix(data, K):
    ref = pd.read_csv(HERE / "betablocker_flexmix.csv")
    ref = ref[ref.K == K].sort_values("intercept")
    res = emglm(
        "Deaths + Alive ~ 1",
        data,
        "binomial",
        K=K,
        groups="Center",
        fixed="~ Treatment",
        random_state=0,
    )
    assert res.llf == pytest.approx(ref.loglik.iloc[0], abs=1e-7)
    order = np.argsort(res.params.loc["Intercept"].to_numpy())
    np.testing.assert_allclose(
        res.params.loc["Intercept"].to_numpy()[order], ref.intercept, atol=1e-6
    )
    np.testing.assert_allclose(res.prior.to_numpy()[order], ref.prior, atol=1e-6)
    assert res.fixed_params["Treatment[T.Treated]"] == pytest.approx(
        ref.treatment.iloc[0], abs=1e-6
    )
    # The same parameters counted; the BIC's n differs on purpose: flexmix
    # counts the 44 rows, emformula the 22 centres (the independent units).
    assert res.df_model == ref.df.iloc[0] and res.n_groups == 22
    assert ref.BIC.iloc[0] == pytest.approx(-2 * res.llf + res.df_model * np.log(44), rel=1e-9)
    assert res.bic == pytest.approx(-2 * res.llf + res.df_model * np.log(22), rel=1e-12)
