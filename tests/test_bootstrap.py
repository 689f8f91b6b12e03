"""The bootstrap of a fit: replicates, standard errors, label switching, cov_type."""

import warnings

import numpy as np
import pandas as pd
import pytest

from emformula import emglm
from emformula.postestimation.bootstrap import _resampled_weights, match_components


def _poisson_mixture(n, seed, intercepts=(0.3, 2.0), slopes=(0.8, -0.4), prior=0.4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    second = rng.random(n) > prior
    eta = np.where(second, intercepts[1] + slopes[1] * x, intercepts[0] + slopes[0] * x)
    return pd.DataFrame(
        {"x": x, "y": rng.poisson(np.exp(eta)), "g": np.repeat(np.arange(n // 4), 4)[:n]}
    )


@pytest.fixture(scope="module")
def separated():
    return emglm("y ~ x", _poisson_mixture(3000, 1), "poisson", K=2, random_state=0)


@pytest.mark.parametrize("kind", ["nonparametric", "parametric"])
def test_bootstrap_errors_agree_with_louis_within_monte_carlo_error(separated, kind):
    boot = separated.bootstrap(200, kind=kind, random_state=3)
    assert boot.n_failed == 0 and len(boot.replicates) == 200
    ratio = boot.bse.to_numpy() / separated.theta_bse.to_numpy()
    # The standard deviation of 200 draws has a relative error of about
    # 1 / sqrt(2 * 199) = 5%: each ratio within 4 of those, their mean within 2.
    assert np.all(np.abs(ratio - 1) < 0.2), ratio
    assert abs(ratio.mean() - 1) < 0.1, ratio
    # Centred on the estimates: the bias is small against the error.
    frame = boot.summary_frame()
    assert np.all(np.abs(frame["bias"]) < 0.5 * frame["bse"])
    ci = boot.conf_int(0.1)
    assert np.all((ci["lower"] < separated.theta) & (separated.theta < ci["upper"]))


def test_cov_type_bootstrap_is_the_covariance_of_the_replicates(separated):
    boot = separated.bootstrap(40, random_state=5)
    res = separated.with_cov_type("bootstrap", bootstrap=boot)
    assert res.cov_type == "bootstrap" and res.bootstrap_results is boot
    np.testing.assert_allclose(
        res.cov_params().to_numpy(), np.cov(boot.replicates.to_numpy(), rowvar=False), rtol=1e-12
    )
    np.testing.assert_allclose(res.theta_bse.to_numpy(), boot.bse.to_numpy(), rtol=1e-12)
    assert res.llf == separated.llf
    assert "Bootstrap" in res.summary().as_text()
    # The fit's own cov_type="bootstrap" is seeded by its random_state.
    data = _poisson_mixture(600, 2)
    a, b = (
        emglm("y ~ x", data, "poisson", K=2, random_state=7, cov_type="bootstrap") for _ in range(2)
    )
    assert a.bootstrap_results.n_boot == 199
    np.testing.assert_array_equal(a.bse.to_numpy(), b.bse.to_numpy())
    assert not np.allclose(a.bse.to_numpy(), a.with_cov_type("louis").bse.to_numpy())


def test_replicates_do_not_depend_on_the_processes(separated):
    one = separated.bootstrap(6, random_state=9, n_jobs=1)
    two = separated.bootstrap(6, random_state=9, n_jobs=2)
    np.testing.assert_array_equal(one.replicates.to_numpy(), two.replicates.to_numpy())


def test_a_label_switching_prone_fit_gives_no_swapped_replicates():
    # Close components with nearly equal priors: a replicate refitted from
    # scratch would come out in either order (decreasing prior).
    data = _poisson_mixture(800, 4, intercepts=(1.0, 1.6), slopes=(0.5, 0.2), prior=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = emglm("y ~ x", data, "poisson", K=2, random_state=0)
        boot = res.bootstrap(60, random_state=2)
    gap = abs(res.params.loc["Intercept", "comp1"] - res.params.loc["Intercept", "comp2"])
    # Prone indeed: in a large share of the replicates component 2 has the
    # larger prior, so ordering each replicate by its prior (as a fit does)
    # would swap them.
    assert (boot.replicates["logit_prior:comp2"] > 0).mean() > 0.2
    for k in (1, 2):
        column = boot.replicates[f"comp{k}:Intercept"]
        other = res.params.loc["Intercept", f"comp{3 - k}"]
        own = res.params.loc["Intercept", f"comp{k}"]
        # Every replicate's component k is nearer its own full-data value.
        assert np.all(np.abs(column - own) < np.abs(column - other)), (k, gap)


def test_components_are_matched_by_their_standardised_coefficients():
    ref = np.array([[0.0, 1.0, 5.0], [1.0, -1.0, 0.0]])
    scale = np.array([1.0, 0.1])
    assert match_components(ref, ref[:, [2, 0, 1]], scale) == [1, 2, 0]
    noisy = ref[:, [1, 0, 2]] + 0.05
    assert match_components(ref, noisy, scale) == [1, 0, 2]


def test_nonparametric_resampling_draws_whole_units():
    data = _poisson_mixture(400, 6)
    res = emglm("y ~ x", data, "poisson", K=2, groups="g", random_state=0)
    rng = np.random.default_rng(0)
    weights = _resampled_weights(res.model.data, rng)
    codes = res.model.data.groups
    per_group = pd.Series(weights).groupby(codes).nunique()
    assert (per_group == 1).all()  # a group is drawn as a whole
    assert weights[res.model.data.unit_rows].sum() == res.model.data.n_units
    # Whole-number frequency weights: the individuals they count are drawn.
    counted = emglm("y ~ x", data.assign(w=2.0), "poisson", K=2, weights="w", random_state=0)
    draws = _resampled_weights(counted.model.data, rng)
    assert draws.sum() == 2 * len(data) and np.all(draws == np.round(draws))


def test_bootstrap_refusals(separated):
    with pytest.raises(ValueError, match="kind"):
        separated.bootstrap(10, kind="wild")
    with pytest.raises(ValueError, match="n_boot"):
        separated.bootstrap(1)
    with pytest.raises(TypeError, match="either"):
        separated.with_cov_type(
            "bootstrap", bootstrap=separated.bootstrap(3, random_state=0), n_boot=5
        )
    with pytest.raises(TypeError, match="do not apply"):
        separated.with_cov_type("robust", n_boot=5)


def test_relabel_carries_the_bootstrap_replicates_along(separated):
    boot = separated.bootstrap(30, random_state=8)
    res = separated.with_cov_type("bootstrap", bootstrap=boot)
    swapped = res.relabel(order=[2, 1])
    assert swapped.cov_type == "bootstrap"
    np.testing.assert_allclose(swapped.bse.to_numpy(), res.bse.to_numpy()[:, ::-1], rtol=1e-10)
    # The mixing log-odds change sign; their bootstrap error does not.
    np.testing.assert_allclose(
        swapped.bootstrap_results.replicates["logit_prior:comp2"],
        -boot.replicates["logit_prior:comp2"],
        rtol=1e-10,
    )
    # Replicates of the old labels are refused for the relabelled fit.
    with pytest.raises(ValueError, match="another fit"):
        separated.relabel(order=[2, 1]).with_cov_type("bootstrap", bootstrap=boot)


def test_the_fit_time_bootstrap_is_the_seeded_method():
    data = _poisson_mixture(500, 12)
    res = emglm("y ~ x", data, "poisson", K=2, random_state=4, cov_type="bootstrap")
    again = res.with_cov_type("louis").bootstrap(199, random_state=4)
    np.testing.assert_array_equal(
        res.bootstrap_results.replicates.to_numpy(), again.replicates.to_numpy()
    )


def test_a_parametric_bootstrap_with_frequency_weights_is_refused():
    data = _poisson_mixture(400, 3).assign(w=2.0)
    res = emglm("y ~ x", data, "poisson", K=2, weights="w", random_state=0)
    with pytest.raises(ValueError, match="unit weights"):
        res.bootstrap(5, kind="parametric")
    assert res.bootstrap(5, random_state=0).n_failed == 0  # nonparametric is fine


def test_dask_refuses_the_bootstrap_at_fit_time():
    dd = pytest.importorskip("dask.dataframe")
    data = _poisson_mixture(300, 3)
    with pytest.raises(NotImplementedError, match="bootstrap"):
        emglm("y ~ x", dd.from_pandas(data, npartitions=2), "poisson", K=2, cov_type="bootstrap")


def test_the_bootstrap_lrt_refuses_frequency_weights_before_fitting():
    from emformula import bootstrap_lrt

    data = _poisson_mixture(200, 3).assign(w=2.0)
    with pytest.raises(ValueError, match="one row per observation"):
        bootstrap_lrt("y ~ x", data, "poisson", 1, 2, n_boot=3, weights="w")


def test_select_k_with_cov_type_bootstrap_does_not_bootstrap_every_k():
    from emformula import select_k

    data = _poisson_mixture(300, 5)
    choice = select_k("y ~ x", data, "poisson", K=range(1, 3), random_state=0, cov_type="bootstrap")
    assert all(fit.bootstrap_results is None for fit in choice.fits.values())
