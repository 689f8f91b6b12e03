"""summary() and compare(): layout snapshot and the numbers in the tables."""

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.iolib.summary import Summary

from emformula import EstimationWarning, datasets, emglm
from emformula.report.summary import compare

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.fixture(scope="module")
def sim2():
    return datasets.load_sim2()


@pytest.fixture(scope="module")
def fit2(sim2):
    return emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)


def _normalise(text):
    text = re.sub(r"Date:\s+\w{3}, \d{2} \w{3} \d{4}", "Date: <date>", text)
    return re.sub(r"Time:\s+\d{2}:\d{2}:\d{2}", "Time: <time>", text)


def test_summary_snapshot(fit2):
    """The printed layout. Regenerate with EMFORMULA_UPDATE_SNAPSHOTS=1."""
    text = _normalise(fit2.summary().as_text())
    path = SNAPSHOTS / "summary_sim2_k2.txt"
    if os.environ.get("EMFORMULA_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert text == path.read_text()


def test_summary_numbers_are_the_results(fit2):
    smry = fit2.summary()
    assert isinstance(smry, Summary)
    text = smry.as_text()
    assert f"{fit2.llf:.2f}" in text and f"{fit2.bic:.2f}" in text
    assert f"{fit2.icl:.2f}" in text
    assert "Covariance Type:                 Louis" in text
    for k, name in enumerate(fit2.component_names):
        assert f"Component {k + 1} (prior {fit2.prior[name]:.4f})" in text
        for term in fit2.params.index:
            row = re.search(
                rf"^{term}\s+(\S+)\s+(\S+)\s+(\S+)", text.split(f"Component {k + 1} ")[1], re.M
            )
            assert float(row.group(1)) == pytest.approx(fit2.params.loc[term, name], abs=1e-4)
            assert float(row.group(2)) == pytest.approx(fit2.bse.loc[term, name], abs=1e-3)
    assert "<table" in smry.as_html()
    assert "\\begin{tabular}" in smry.as_latex()
    assert "Component 2 (prior" in str(fit2)
    assert "<table" in fit2._repr_html_()


def test_icl_is_bic_plus_twice_the_entropy(fit2):
    tau = fit2.posterior.to_numpy()
    entropy = -np.sum(np.where(tau > 0, tau * np.log(np.where(tau > 0, tau, 1)), 0))
    assert fit2.icl == pytest.approx(fit2.bic + 2 * entropy, rel=1e-12)
    assert fit2.bic == pytest.approx(-2 * fit2.llf + np.log(5000) * 11, rel=1e-12)


def test_compare_reproduces_statsmodels_for_the_glm_row(sim2, fit2):
    glm = sm.GLM.from_formula(
        "y ~ V1 + V2 + V3 + V4 + V5", sim2.data, family=sm.families.Poisson()
    ).fit()
    one = emglm("y ~ V1 + V2 + V3 + V4 + V5", sim2.data, "poisson", K=1)
    table = compare(glm, one, fit2, names=["GLM", "K=1", "K=2"])
    assert table.loc["llf", "GLM"] == glm.llf
    assert table.loc["aic", "GLM"] == glm.aic
    # The likelihood-based BIC (statsmodels' bic from 0.15; 0.14's bic was
    # deviance-based by default).
    assert table.loc["bic", "GLM"] == glm.bic_llf
    assert table.loc["df", "GLM"] == 6 and table.loc["df", "K=2"] == 11
    # A one-component fit and the GLM agree in the same table.
    for stat in ("llf", "aic", "bic", "deviance"):
        assert table.loc[stat, "K=1"] == pytest.approx(table.loc[stat, "GLM"], rel=1e-9)
    assert table.loc["aic", "K=2"] == fit2.aic
    assert np.isnan(table.loc["icl", "GLM"])
    text = table.as_text()
    assert f"{glm.aic:.3f}" in text and f"{fit2.bic:.3f}" in text
    assert "<table" in table.as_html() and "tabular" in table.as_latex()


def test_compare_counts_the_gaussian_dispersion():
    rng = np.random.default_rng(3)
    import pandas as pd

    data = pd.DataFrame({"x": rng.normal(size=200)})
    data["y"] = 1 + 2 * data.x + rng.normal(size=200)
    glm = sm.GLM.from_formula("y ~ x", data, family=sm.families.Gaussian()).fit()
    one = emglm("y ~ x", data, "gaussian", K=1)
    table = compare(glm, one)
    assert table.loc["df", "model 1"] == table.loc["df", "model 2"] == 3
    assert table.loc["aic", "model 1"] == pytest.approx(glm.aic + 2, rel=1e-12)
    assert table.loc["aic", "model 2"] == pytest.approx(table.loc["aic", "model 1"], rel=1e-9)


def test_compare_rejects_other_objects(fit2):
    with pytest.raises(TypeError, match="argument 2"):
        compare(fit2, "not a model")
    with pytest.raises(ValueError, match="names"):
        compare(fit2, names=["a", "b"])


def test_singular_information_warns_and_names_the_parameters(sim2, fit2):
    p = fit2.params.to_numpy()
    start = {
        "params": np.column_stack([p[:, 0], p[:, 1], p[:, 1]]),
        "prior": [fit2.prior.iloc[0], fit2.prior.iloc[1] / 2, fit2.prior.iloc[1] / 2],
    }
    # The warning comes with the fit, attributed to the caller's line.
    with pytest.warns(EstimationWarning, match="logit_prior:comp2, logit_prior:comp3") as rec:
        res = emglm(sim2.formula, sim2.data, "poisson", K=3, start=start)
    assert {w.filename for w in rec if issubclass(w.category, EstimationWarning)} == {__file__}
    cov = res.cov_params()
    # Only the split of the duplicated component's prior is unidentified.
    assert np.isnan(cov.loc["logit_prior:comp2", "logit_prior:comp2"])
    assert np.isnan(res.prior_bse).all()
    assert np.isfinite(res.bse.to_numpy()).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimationWarning)
        assert "nan" in res.summary().as_text()
