"""The information criteria: AIC, BIC and both kinds of ICL.

flexmix's ICL (tests/reference/make_flexmix_icl.R, flexmix_icl.csv) is the
hard-classification kind, ``-2 clogLik + df log(n)``; ours by default is the
entropy kind. Both are checked against flexmix's numbers and against their
definitions computed here from the posterior.
"""

import numpy as np
import pandas as pd
import pytest
from flexmix_reference import HERE, load_data

from emformula import emglm

FITS = {
    "poisson": lambda: emglm(
        "y ~ x", load_data("concomitant_poisson"), "poisson", K=2, random_state=1
    ),
    "binomial_counts": lambda: emglm(
        "succ + fail ~ x", load_data("binomial_counts"), "binomial", K=2, random_state=1
    ),
}


@pytest.fixture(scope="module", params=sorted(FITS))
def case(request):
    ref = pd.read_csv(HERE / "flexmix_icl.csv").set_index("data").loc[request.param]
    return FITS[request.param](), ref


def test_the_classification_icl_is_flexmix_icl(case):
    res, ref = case
    # The same maximum first: log-likelihood and mixing proportions.
    assert res.llf == pytest.approx(ref.loglik, abs=1e-6)
    np.testing.assert_allclose(np.sort(res.prior), [ref.prior_small, ref.prior_large], atol=1e-6)
    assert res.df_model == ref.df and res.nobs == ref.nobs
    assert res.bic == pytest.approx(ref.BIC, abs=1e-5)
    # flexmix's ICL is from the posterior of its last E-step, ICL_final from
    # the posterior at its final parameters; they differ by 3e-7.
    assert res.info_criteria("icl", kind="classification") == pytest.approx(ref.ICL_final, abs=2e-5)
    assert ref.ICL == pytest.approx(ref.ICL_final, abs=1e-6)
    # The entropy kind is larger: -sum tau log tau >= -log max tau per row.
    assert res.icl > ref.ICL + 1.0


def test_both_icl_kinds_follow_their_definitions(case):
    res, _ = case
    tau = res.posterior.to_numpy()
    entropy = -np.sum(np.where(tau > 0, tau * np.log(tau), 0.0))
    hard = -np.sum(np.log(tau.max(axis=1)))
    assert res.icl == pytest.approx(res.bic + 2 * entropy, rel=1e-12)
    assert res.info_criteria("icl") == res.icl
    assert res.info_criteria("icl", kind="classification") == pytest.approx(
        res.bic + 2 * hard, rel=1e-12
    )
    assert res.info_criteria("AIC") == res.aic and res.info_criteria("bic") == res.bic


def test_info_criteria_refuses_unknown_names():
    res = FITS["binomial_counts"]()
    with pytest.raises(ValueError, match="crit must be"):
        res.info_criteria("hqic")
    with pytest.raises(ValueError, match="kind must be"):
        res.info_criteria("icl", kind="hard")


def test_the_classification_icl_of_a_concomitant_model():
    # The unit's own prior enters its posterior; the definition still holds.
    res = emglm(
        "y ~ x", load_data("concomitant_poisson"), "poisson", K=2, concomitant="~ z", random_state=1
    )
    tau = res.posterior.to_numpy()
    assert res.info_criteria("icl", kind="classification") == pytest.approx(
        res.bic - 2 * np.sum(np.log(tau.max(axis=1))), rel=1e-12
    )


def test_the_summary_says_which_icl_it_shows():
    text = FITS["binomial_counts"]().summary().as_text()
    assert "ICL (entropy):" in text
