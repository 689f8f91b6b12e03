"""Choosing K: select_k, the bootstrap LR test, n_jobs and progress."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from emformula import bootstrap_lrt, datasets, emglm, select_k
from emformula.selection import simulate

FORMULA = "y ~ 0 + V1 + V2 + V3 + V4 + V5"


@pytest.mark.parametrize("name, expected", [("sim1", 1), ("sim2", 2)])
def test_select_k_on_the_bundled_data(name, expected):
    sim = getattr(datasets, f"load_{name}")()
    choice = select_k(FORMULA, sim.data, "poisson", K=range(1, 5), random_state=1)
    assert choice.best_k == expected
    assert list(choice.table.index) == [1, 2, 3, 4]
    assert list(choice.table.columns) == [
        "llf",
        "df",
        "aic",
        "bic",
        "icl",
        "converged",
        "n_iter",
        "n_best",
    ]
    assert all(1 <= choice.table.loc[k, "n_best"] == res.n_best for k, res in choice.fits.items())
    assert choice.table.df.tolist() == [5, 11, 17, 23]
    for k, res in choice.fits.items():
        row = choice.table.loc[k]
        assert row.bic == res.bic and row.llf == res.llf and row.icl == res.icl
    assert choice.best is choice.fits[expected]
    # Nested models fitted well: the log-likelihood grows (to rounding) up to K=3.
    llf = choice.table.llf.to_numpy()
    assert llf[1] >= llf[0] and llf[2] >= llf[1] - 1e-6 * abs(llf[1])


@pytest.mark.parametrize("name, expected", [("sim1", 1), ("sim2", 2)])
def test_select_k_on_the_r_package_data(name, expected, request):
    data = request.getfixturevalue(f"{name}_r")
    for criterion in ("bic", "icl"):
        choice = select_k(
            FORMULA, data, "poisson", K=[1, 2, 3], criterion=criterion, random_state=2
        )
        assert choice.best_k == expected, criterion


def test_select_k_plot_shows_the_table():
    sim2 = datasets.load_sim2()
    choice = select_k(FORMULA, sim2.data, "poisson", K=[1, 2], random_state=0)
    fig = choice.plot()
    lines = [line for line in fig.axes[0].lines if line.get_label() in ("AIC", "BIC", "ICL")]
    assert len(lines) == 3
    bic = next(line for line in lines if line.get_label() == "BIC")
    np.testing.assert_allclose(bic.get_ydata(), choice.table.bic.to_numpy())
    np.testing.assert_array_equal(bic.get_xdata(), [1, 2])


def test_bootstrap_rejects_one_component_on_sim2():
    sim2 = datasets.load_sim2()
    test = bootstrap_lrt(FORMULA, sim2.data, "poisson", 1, 2, n_boot=199, random_state=3, n_jobs=2)
    assert test.pvalue < 0.01
    assert test.pvalue == pytest.approx(1 / 200)
    assert test.statistic == pytest.approx(2 * (test.fit1.llf - test.fit0.llf))
    assert test.null_distribution.shape == (199,)
    # Under the null the statistic is of the order of a few degrees of freedom.
    assert 0 <= np.median(test.null_distribution) < 30
    assert test.statistic > 1000 * np.max(test.null_distribution)


def test_bootstrap_keeps_a_true_one_component_model():
    sim1 = datasets.load_sim1()
    data = sim1.data.iloc[:1500]
    test = bootstrap_lrt(FORMULA, data, "poisson", 1, 2, n_boot=39, random_state=4)
    assert test.pvalue > 0.05


def _small_problem():
    sim2 = datasets.load_sim2()
    return sim2.data.iloc[::10]


def test_results_are_identical_for_any_n_jobs():
    data = _small_problem()
    one = bootstrap_lrt(FORMULA, data, "poisson", 1, 2, n_boot=6, random_state=7, n_jobs=1)
    two = bootstrap_lrt(FORMULA, data, "poisson", 1, 2, n_boot=6, random_state=7, n_jobs=2)
    np.testing.assert_array_equal(one.null_distribution, two.null_distribution)
    assert one.statistic == two.statistic
    a = select_k(FORMULA, data, "poisson", K=[1, 2, 3], random_state=5, n_jobs=1)
    b = select_k(FORMULA, data, "poisson", K=[1, 2, 3], random_state=5, n_jobs=2)
    np.testing.assert_array_equal(a.table.llf.to_numpy(), b.table.llf.to_numpy())
    r1 = emglm(FORMULA, data, "poisson", K=2, random_state=5, n_jobs=1, n_init=4)
    r2 = emglm(FORMULA, data, "poisson", K=2, random_state=5, n_jobs=2, n_init=4)
    np.testing.assert_array_equal(r1.params.to_numpy(), r2.params.to_numpy())
    np.testing.assert_array_equal(r1.fit_options["start_llfs"], r2.fit_options["start_llfs"])


def test_progress_bar_only_when_asked(capsys):
    data = _small_problem()
    emglm(FORMULA, data, "poisson", K=2, random_state=1, n_init=3)
    assert capsys.readouterr().err == ""  # not a terminal: silent
    res = emglm(FORMULA, data, "poisson", K=2, random_state=1, n_init=3, progress=True)
    err = capsys.readouterr().err
    # The bar counts every full run (on small data every screened candidate).
    assert "EM starts (K=2)" in err and f"/{res.n_full_starts}" in err


def test_simulate_draws_from_the_fitted_mixture():
    sim2 = datasets.load_sim2()
    res = emglm(FORMULA, sim2.data, "poisson", K=2, random_state=1, n_init=2)
    draws = np.array([simulate(res, seed) for seed in range(40)])
    expected = res.fittedvalues.to_numpy()
    # The average of 40 draws of the mixture is close to the mixture mean
    # (in Pearson units of the mixture variance).
    resid = (draws.mean(axis=0) - expected) / np.sqrt(
        res.residuals("response").pow(2).mean() / 40 + expected / 40
    )
    assert abs(resid.mean()) < 0.1
    np.testing.assert_array_equal(simulate(res, 3), simulate(res, 3))
