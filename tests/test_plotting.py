"""Plots: the number of panels, and that what is drawn is the estimates."""

import matplotlib

matplotlib.use("Agg")

import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from scipy import stats
from sim2_fits import sim2, sim2_glm, sim2_mixture
from simulate import simulate_mixture

import emformula
from emformula import datasets, emglm, plotting, residuals

sim2_fit = sim2_mixture


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@functools.cache
def gaussian_fit():
    data, formula = simulate_mixture("gaussian", 400, 3, 2, separation=3.0)
    return emglm(formula, data, "gaussian", K=3, random_state=0)


def matched_truth():
    """sim2's true coefficients reordered to the fitted components."""
    res, truth = sim2_fit(), sim2().params
    direct = np.abs(res.params.to_numpy() - truth.to_numpy()).sum()
    swapped = np.abs(res.params.to_numpy() - truth.to_numpy()[:, ::-1]).sum()
    return truth if direct < swapped else truth.iloc[:, ::-1]


def errorbars(ax):
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def known_line(ax):
    lines = [line for line in ax.get_lines() if line.get_label() == "known"]
    assert len(lines) == 1
    return lines[0]


# ------------------------------------------------------------- plot_params
def test_plot_params_draws_estimates_and_intervals():
    res = sim2_fit()
    fig = emformula.plot_params(res, alpha=0.1)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    bars = errorbars(ax)
    assert [b.get_label() for b in bars] == ["comp1", "comp2"]
    ci = res.conf_int(0.1)
    xs = []
    for bar, name in zip(bars, res.component_names):
        data_line, _, (segments,) = bar.lines
        np.testing.assert_allclose(data_line.get_ydata(), res.params[name])
        seg = np.asarray(segments.get_segments())  # (p, 2 ends, xy)
        np.testing.assert_allclose(seg[:, 0, 1], ci[(name, "lower")])
        np.testing.assert_allclose(seg[:, 1, 1], ci[(name, "upper")])
        xs.append(np.asarray(data_line.get_xdata()))
    # Components are dodged around the term positions 0..p-1.
    assert np.all(xs[0] < xs[1])
    np.testing.assert_allclose((xs[0] + xs[1]) / 2, np.arange(5))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(res.params.index)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["comp1", "comp2"]
    # Distinct markers per component.
    assert bars[0].lines[0].get_marker() != bars[1].lines[0].get_marker()


def test_plot_params_default_alpha_is_95_percent():
    res = sim2_fit()
    ax = plt.subplots()[1]
    res.plot_params(ax=ax)
    (segments,) = errorbars(ax)[0].lines[2]
    seg = np.asarray(segments.get_segments())
    np.testing.assert_allclose(seg[:, 1, 1], res.conf_int()[("comp1", "upper")])


@pytest.mark.parametrize("form", ["frame", "array", "list", "renamed"])
def test_plot_params_known_values_in_every_form(form):
    res = sim2_fit()
    truth = matched_truth().set_axis(res.component_names, axis=1)
    known = {
        "frame": truth.iloc[::-1, ::-1],  # matched by names
        "array": truth.to_numpy(),
        "list": [truth[c].to_numpy() for c in truth.columns],
        "renamed": truth.set_axis(["a", "b"], axis=1).reset_index(drop=True),  # by position
    }[form]
    fig = plotting.plot_params(res, known=known)
    ax = fig.axes[0]
    line = known_line(ax)
    # Known values sit at the estimates' positions, term by term.
    xs = np.column_stack([b.lines[0].get_xdata() for b in errorbars(ax)])
    np.testing.assert_allclose(line.get_xdata(), xs.ravel())
    np.testing.assert_allclose(line.get_ydata(), truth.to_numpy().ravel())
    assert "known" in [t.get_text() for t in ax.get_legend().get_texts()]
    # The estimates are near the truth they are drawn against.
    assert np.abs(line.get_ydata() - res.params.to_numpy().ravel()).max() < 0.2


def test_plot_params_known_frame_with_a_missing_term():
    res = sim2_fit()
    truth = matched_truth().set_axis(res.component_names, axis=1).drop(index="V3")
    line = known_line(plotting.plot_params(res, known=truth).axes[0])
    y = np.asarray(line.get_ydata()).reshape(5, 2)
    assert np.all(np.isnan(y[2])) and np.all(np.isfinite(np.delete(y, 2, axis=0)))


@pytest.mark.parametrize(
    "bad", [np.zeros((5, 3)), np.zeros((4, 2)), [np.zeros(5)], pd.DataFrame(np.zeros((5, 3)))]
)
def test_plot_params_refuses_misshapen_known(bad):
    with pytest.raises(ValueError, match="known"):
        plotting.plot_params(sim2_fit(), known=bad)


def test_plot_params_draws_into_given_axes_and_takes_a_glm():
    fig, (left, right) = plt.subplots(1, 2)
    assert sim2_fit().plot_params(ax=left) is fig
    assert plotting.plot_params(sim2_glm(), ax=right) is fig
    assert len(fig.axes) == 2
    (bar,) = errorbars(right)
    np.testing.assert_allclose(bar.lines[0].get_ydata(), sim2_glm().params)
    seg = np.asarray(bar.lines[2][0].get_segments())
    np.testing.assert_allclose(seg[:, :, 1], sim2_glm().conf_int().to_numpy())


def test_plot_params_three_components():
    res = gaussian_fit()
    ax = res.plot_params().axes[0]
    bars = errorbars(ax)
    assert len(bars) == 3
    assert len({b.lines[0].get_marker() for b in bars}) == 3
    assert len({b.lines[0].get_color() for b in bars}) == 3


# ------------------------------------------------------------------ plot_qq
def test_plot_qq_points_are_the_residuals():
    res = sim2_fit()
    fig = emformula.plot_qq(res, random_state=4)
    assert len(fig.axes) == 1
    points, reference = fig.axes[0].get_lines()
    expected = np.sort(residuals(res, "quantile", random_state=4))
    np.testing.assert_allclose(points.get_ydata(), expected)
    # Theoretical quantiles at R's ppoints, reference y = x for quantile residuals.
    n = expected.size
    np.testing.assert_allclose(points.get_xdata(), stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n))
    x, y = reference.get_data()
    np.testing.assert_allclose(y, x)


def test_plot_qq_quartile_line_for_other_types_and_a_glm():
    glm = sim2_glm()
    fig, ax = plt.subplots()
    assert plotting.plot_qq(glm, type="deviance", ax=ax) is fig
    points, reference = ax.get_lines()
    resid = np.sort(glm.resid_deviance)
    np.testing.assert_allclose(points.get_ydata(), resid)
    x, y = reference.get_data()
    slope = (y[1] - y[0]) / (x[1] - x[0])
    q = np.quantile(resid, [0.25, 0.75])
    assert slope == pytest.approx((q[1] - q[0]) / (2 * stats.norm.ppf(0.75)))


def test_results_method_plot_qq_same_seed_same_points():
    res = sim2_fit()
    a = res.plot_qq(random_state=9).axes[0].get_lines()[0].get_ydata()
    b = res.plot_qq(random_state=9).axes[0].get_lines()[0].get_ydata()
    c = res.plot_qq(random_state=10).axes[0].get_lines()[0].get_ydata()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --------------------------------------------------------- plot_diagnostics
@pytest.mark.parametrize("kind", ["deviance", "pearson", "quantile", "response"])
def test_plot_diagnostics_has_four_panels_of_the_residuals(kind):
    res = sim2_fit()
    fig = res.plot_diagnostics(type=kind, random_state=2)
    assert len(fig.axes) == 4
    resid = residuals(res, kind, random_state=2).to_numpy()
    ax_fit, ax_qq, ax_sl, ax_hist = fig.axes
    offsets = ax_fit.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], res.fittedvalues)
    np.testing.assert_allclose(offsets[:, 1], resid)
    np.testing.assert_allclose(ax_qq.get_lines()[0].get_ydata(), np.sort(resid))
    standardised = resid if kind != "response" else resid / resid.std(ddof=1)
    np.testing.assert_allclose(
        ax_sl.collections[0].get_offsets()[:, 1], np.sqrt(np.abs(standardised))
    )
    heights = np.array([p.get_height() for p in ax_hist.patches])
    counts, edges = np.histogram(resid, bins="auto", density=True)
    np.testing.assert_allclose(heights, counts)
    assert ax_fit.get_xscale() == "log"  # Poisson means over decades


def test_plot_diagnostics_of_a_statsmodels_glm():
    glm = sim2_glm()
    fig = plotting.plot_diagnostics(glm)
    assert len(fig.axes) == 4
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], glm.mu)
    np.testing.assert_allclose(offsets[:, 1], glm.resid_deviance)


def test_plot_diagnostics_of_a_gaussian_mixture_keeps_a_linear_axis():
    fig = gaussian_fit().plot_diagnostics("pearson")
    assert len(fig.axes) == 4
    assert fig.axes[0].get_xscale() == "linear"


# ----------------------------------------------------------- plot_posterior
@pytest.mark.parametrize("bins", [10, 20])
def test_plot_posterior_heights_are_root_counts(bins):
    res = sim2_fit()
    fig = res.plot_posterior(bins=bins)
    assert len(fig.axes) == 2
    for ax, name in zip(fig.axes, res.component_names):
        tau = res.posterior[name].to_numpy()
        counts, edges = np.histogram(tau[tau >= 1e-4], bins=bins, range=(0, 1))
        heights = np.array([p.get_height() for p in ax.patches])
        lefts = np.array([p.get_x() for p in ax.patches])
        np.testing.assert_allclose(heights, np.sqrt(counts))
        np.testing.assert_allclose(lefts, edges[:-1])
        assert name in ax.get_title()
    assert fig.axes[0].get_ylabel() == "sqrt(count)"


def test_plot_posterior_raw_counts_and_three_components():
    res = gaussian_fit()
    fig = plotting.plot_posterior(res, bins=5, eps=0.0, root=False)
    assert len(fig.axes) == 3
    for ax, name in zip(fig.axes, res.component_names):
        counts, _ = np.histogram(res.posterior[name], bins=5, range=(0, 1))
        np.testing.assert_allclose([p.get_height() for p in ax.patches], counts)
        # Without the cut every row is counted once per component.
        assert sum(p.get_height() for p in ax.patches) == res.nobs


def test_plot_posterior_refuses_a_glm():
    with pytest.raises(TypeError):
        plotting.plot_posterior(sim2_glm())


def test_lazy_top_level_names_are_the_plotting_functions():
    for name in ("plot_params", "plot_diagnostics", "plot_qq", "plot_posterior"):
        assert getattr(emformula, name) is getattr(plotting, name)


def test_plot_params_matches_known_components_through_label_switching():
    import matplotlib.pyplot as plt

    from emformula import emglm

    sim2 = datasets.load_sim2()
    res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1, n_init=2)
    swapped = sim2.params[["comp2", "comp1"]].set_axis(["comp1", "comp2"], axis=1)
    for known in (sim2.params, swapped):
        fig = res.plot_params(known=known)
        line = next(l for l in fig.axes[0].lines if l.get_label() == "known")
        drawn = np.asarray(line.get_ydata()).reshape(res.params.shape)
        # Each known value is drawn at the estimate of its own component.
        assert np.abs(drawn - res.params.to_numpy()).max() < 0.05
        plt.close(fig)
    fig = res.plot_params(known=swapped, match=False)
    line = next(l for l in fig.axes[0].lines if l.get_label() == "known")
    np.testing.assert_array_equal(
        np.asarray(line.get_ydata()).reshape(res.params.shape), swapped.to_numpy()
    )
    plt.close(fig)
