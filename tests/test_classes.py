"""Class sizes, class means, assignments and separation diagnostics
(emformula.postestimation.classes)."""

import numpy as np
import pandas as pd
import pytest
from postestimation_fits import (
    component_means,
    fd_delta_se,
    k2_gaussian_fixed,
    k2_poisson_concomitant,
)

from emformula import emglm
from emformula.postestimation.classes import (
    average_posterior,
    class_means,
    class_sizes,
    classification_table,
    clusters,
    entropy_r2,
    kl_divergence,
)


@pytest.mark.parametrize("fit", [k2_poisson_concomitant, k2_gaussian_fixed])
def test_class_sizes_are_the_priors_with_their_standard_errors(fit):
    res, _ = fit()
    table = class_sizes(res)
    np.testing.assert_allclose(table["proportion"], res.prior, rtol=1e-12)
    np.testing.assert_allclose(table["std err"], res.prior_bse, rtol=1e-12)
    assert np.all(
        (table["ci_lower"] < table["proportion"]) & (table["proportion"] < table["ci_upper"])
    )


@pytest.mark.parametrize("fit", [k2_poisson_concomitant, k2_gaussian_fixed])
def test_class_means_and_their_delta_method_standard_errors(fit):
    res, _ = fit()
    table = class_means(res)
    weights = res.model.data.weights
    np.testing.assert_allclose(
        table["mean"], weights @ res.predict(type="component") / weights.sum(), rtol=1e-12
    )
    se = fd_delta_se(res, lambda t: weights @ component_means(res, t) / weights.sum())
    np.testing.assert_allclose(table["std err"], se, rtol=1e-6)


@pytest.fixture(scope="module")
def separated():
    """Two Gaussian classes 40 standard deviations apart: every posterior is
    0 or 1 to rounding."""
    rng = np.random.default_rng(9)
    n = 300
    truth = rng.integers(0, 2, size=n)
    df = pd.DataFrame({"x": rng.normal(size=n)})
    df["y"] = np.where(truth == 1, 40.0, 0.0) + 0.5 * df.x + rng.normal(size=n)
    df["truth"] = np.where(truth == 1, "high", "low")
    return emglm("y ~ x", df, family="gaussian", K=2, random_state=0), df


def test_perfect_separation(separated):
    res, df = separated
    assert entropy_r2(res) == pytest.approx(1.0, abs=1e-12)
    table = classification_table(res, df["truth"])
    # Each known class falls entirely in one component.
    assert sorted(table.to_numpy().max(axis=1).tolist()) == sorted(
        df["truth"].value_counts().tolist()
    )
    assert (table.to_numpy() > 0).sum() == 2
    np.testing.assert_allclose(np.diag(average_posterior(res)), 1.0, atol=1e-12)


def test_well_separated_classification_against_the_truth():
    res, df = k2_poisson_concomitant()
    table = classification_table(res, df["truth"])
    assert list(table.columns) == [1, 2] and table.to_numpy().sum() == len(df)
    # comp1 is the larger class; match it to the truth by the diagonal.
    correct = max(np.trace(table.to_numpy()), np.trace(table.to_numpy()[::-1]))
    assert correct / len(df) > 0.85
    by_array = classification_table(res, df["truth"].to_numpy())
    pd.testing.assert_frame_equal(table, by_array)


def test_clusters_entropy_and_average_posterior():
    res, _ = k2_poisson_concomitant()
    labels = clusters(res)
    tau = res.posterior.to_numpy()
    np.testing.assert_array_equal(labels.to_numpy(), tau.argmax(axis=1) + 1)
    assert set(labels.unique()) <= {1, 2}
    r2 = entropy_r2(res)
    entropy = -np.sum(tau * np.log(tau))
    assert 0.0 <= r2 <= 1.0
    np.testing.assert_allclose(r2, 1.0 - entropy / (len(tau) * np.log(2)), rtol=1e-10)
    table = average_posterior(res)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-12)
    for k in (1, 2):
        np.testing.assert_allclose(
            table.loc[k], tau[labels.to_numpy() == k].mean(axis=0), rtol=1e-12
        )
    assert np.all(np.diag(table) > 0.8)


def test_kl_divergence_is_flexmix_definition():
    res, df = k2_poisson_concomitant()
    from scipy import stats

    mu = res.predict(type="component").to_numpy()
    u = stats.poisson.pmf(df["y"].to_numpy()[:, None], mu) * res.predict(type="prior").to_numpy()
    expected = np.zeros((2, 2))
    for k, l in ((0, 1), (1, 0)):
        ok = (u[:, k] > 1e-4) & (u[:, l] > 1e-4)
        expected[k, l] = np.sum(u[ok, k] * np.log(u[ok, k] / u[ok, l])) / u[:, k].sum()
    np.testing.assert_allclose(kl_divergence(res).to_numpy(), expected, rtol=1e-8)
    assert np.all(expected[[0, 1], [1, 0]] > 0)
