"""Predictions with delta-method intervals (emformula.postestimation.prediction).

K = 1: the mixture mean and the component mean equal statsmodels' GLM
``get_prediction().summary_frame()`` on the fit's rows and on new data (the
dispersion fixed at our ML value). K = 2: every standard error equals a
finite-difference delta method computed here from theta, and the intervals
are the documented transformations of the link-scale (or logit-scale) ones.
"""

import numpy as np
import pandas as pd
import pytest
from postestimation_fits import (
    K1_FAMILIES,
    component_means,
    fd_delta_se,
    k1_data,
    k1_fit,
    k2_gaussian_fixed,
    k2_poisson_concomitant,
    mixture_mean,
    theta_of,
    unpacked,
)
from scipy import stats

from emformula.postestimation.prediction import get_prediction

pytestmark = pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.DomainWarning")

COLUMNS = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]


def _new_design(df):
    """The design of ``x1 + x2 + d + C(g)`` written out by hand."""
    return np.column_stack(
        [np.ones(len(df)), df.x1, df.x2, df.d, (df.g == "b"), (df.g == "c")]
    ).astype(float)


def _statsmodels_frame(sm_res, exog=None, alpha=0.05):
    """statsmodels' prediction of the mean, in the columns of its classic
    ``summary_frame``, the bounds in order.

    ``which="mean"`` is statsmodels' generic route to the same numbers
    (intervals on the linear predictor mapped back); its classic route fails
    with a fixed scale on the prediction of new observations, which the
    mean's frame does not show. statsmodels leaves the bounds of the
    decreasing inverse link reversed.
    """
    frame = sm_res.get_prediction(exog, which="mean").summary_frame(alpha=alpha)
    bounds = np.sort(frame[["ci_lower", "ci_upper"]].to_numpy(), axis=1)
    return pd.DataFrame(
        np.column_stack([frame["predicted"], frame["se"], bounds]),
        columns=COLUMNS,
        index=frame.index,
    )


@pytest.mark.parametrize("family", list(K1_FAMILIES))
@pytest.mark.parametrize("type", ["mean", "component"])
def test_k1_equals_statsmodels_get_prediction(family, type):
    res, sm_res = k1_fit(family)
    frame = get_prediction(res, type=type).summary_frame(alpha=0.1)
    if type == "component":
        frame = frame["comp1"]
    theirs = _statsmodels_frame(sm_res, alpha=0.1)
    assert list(frame.columns) == COLUMNS
    np.testing.assert_allclose(frame.to_numpy(), theirs.to_numpy(), rtol=1e-6)
    # New data: rebuilt through the formula, against the hand-made design.
    new = k1_data().iloc[[3, 1, 4]].assign(x1=[0.5, -1.0, 2.0])
    frame = get_prediction(res, new, type=type).summary_frame()
    if type == "component":
        frame = frame["comp1"]
    theirs = _statsmodels_frame(sm_res, _new_design(new))
    np.testing.assert_allclose(frame.to_numpy(), theirs.to_numpy(), rtol=1e-6)
    assert list(frame.index) == list(new.index)


def test_k1_prior_is_one_without_uncertainty():
    res, _ = k1_fit("poisson")
    frame = get_prediction(res, type="prior").summary_frame()["comp1"]
    assert np.all(frame["mean"] == 1.0) and np.all(frame["mean_se"] == 0.0)
    # statsmodels' logit clips a probability of 1 to 1 - eps.
    np.testing.assert_allclose(frame[["mean_ci_lower", "mean_ci_upper"]], 1.0, rtol=1e-15)


def _rows(n=12):
    return np.arange(n)


@pytest.mark.parametrize("fit", [k2_poisson_concomitant, k2_gaussian_fixed])
def test_k2_standard_errors_equal_a_finite_difference_delta_method(fit):
    res, _ = fit()
    theta = theta_of(res)
    rows = _rows()
    pred = get_prediction(res)
    np.testing.assert_allclose(pred.predicted.to_numpy(), mixture_mean(res, theta), rtol=1e-12)
    np.testing.assert_allclose(pred.predicted, res.predict(), rtol=1e-12)
    np.testing.assert_allclose(
        pred.se.to_numpy()[rows], fd_delta_se(res, lambda t: mixture_mean(res, t)[rows]), rtol=1e-6
    )
    comp = get_prediction(res, type="component")
    np.testing.assert_allclose(comp.predicted, res.predict(type="component"), rtol=1e-12)
    for k in range(2):
        expected = fd_delta_se(res, lambda t, k=k: component_means(res, t)[rows, k])
        np.testing.assert_allclose(comp.se.iloc[rows, k], expected, rtol=1e-6)
    prior = get_prediction(res, type="prior")
    np.testing.assert_allclose(prior.predicted, res.predict(type="prior"), rtol=1e-12)
    for k in range(2):
        expected = fd_delta_se(res, lambda t, k=k: unpacked(res, t)[2][rows, k])
        np.testing.assert_allclose(prior.se.iloc[rows, k], expected, rtol=1e-6)


def test_k2_intervals_are_formed_on_the_link_and_logit_scales():
    res, df = k2_poisson_concomitant()
    z = stats.norm.ppf(0.95)
    new = df.iloc[:5]
    # Mixture mean, log link: exp(log m -+ z se / m).
    pred = get_prediction(res, new)
    m, se = pred.predicted.to_numpy(), pred.se.to_numpy()
    ci = pred.conf_int(alpha=0.1)
    np.testing.assert_allclose(ci["lower"], m * np.exp(-z * se / m), rtol=1e-12)
    np.testing.assert_allclose(ci["upper"], m * np.exp(z * se / m), rtol=1e-12)
    frame = pred.summary_frame(alpha=0.1)
    np.testing.assert_allclose(frame[["mean_ci_lower", "mean_ci_upper"]], ci, rtol=1e-12)
    # Components: exp(eta -+ z se(eta)) with se(eta) = se(mu) / mu.
    comp = get_prediction(res, new, type="component")
    mu, se = comp.predicted.to_numpy(), comp.se.to_numpy()
    ci = comp.conf_int(alpha=0.1)
    np.testing.assert_allclose(
        ci.xs("lower", axis=1, level=1), mu * np.exp(-z * se / mu), rtol=1e-12
    )
    # Proportions: expit(logit p -+ z se / (p (1 - p))).
    prior = get_prediction(res, new, type="prior")
    p, se = prior.predicted.to_numpy(), prior.se.to_numpy()
    logit = np.log(p / (1 - p))
    ci = prior.conf_int(alpha=0.1)
    np.testing.assert_allclose(
        ci.xs("upper", axis=1, level=1),
        1 / (1 + np.exp(-(logit + z * se / (p * (1 - p))))),
        rtol=1e-12,
    )
    assert np.all((ci.to_numpy() > 0) & (ci.to_numpy() < 1))
    np.testing.assert_allclose(prior.se.sum(axis=1), 2 * prior.se["comp1"], rtol=1e-12)


def test_new_data_index_and_errors():
    res, df = k2_gaussian_fixed()
    new = pd.DataFrame({"x": [0.0, 1.0], "s": [0.5, -0.5]}, index=["a", "b"])
    pred = get_prediction(res, new)
    assert list(pred.predicted.index) == ["a", "b"]
    np.testing.assert_allclose(pred.predicted, res.predict(new), rtol=1e-12)
    with pytest.raises(ValueError, match="type must be"):
        get_prediction(res, type="linear")
