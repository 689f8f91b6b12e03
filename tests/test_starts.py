"""The start strategy: the best maximum by default, and a record of the starts.

Reference values: tests/reference/biochemists_flexmix.csv (R flexmix, best of
many tight runs; tests/reference/make_biochemists.R) and
the best log-likelihood known on the simulated 60-level data of
tests/many_levels.py (MANY_BEST_OURS below).
"""

import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from many_levels import FORMULA as MANY_FORMULA
from many_levels import make_many_levels

from emformula import EMGLM, LocalMaximumWarning, emglm, select_k
from emformula.cli import main
from emformula.engine.starts import count_replicates, replication_tolerance

REF = Path(__file__).parent / "reference"
BIO_FORMULA = "art ~ fem + mar + kid5 + phd + ment"


@pytest.fixture(scope="module")
def bio():
    return pd.read_csv(REF / "biochemists.csv")


@pytest.fixture(scope="module")
def bio_best():
    ref = pd.read_csv(REF / "biochemists_flexmix.csv")
    row = ref[(ref.model == "flexmix_k2") & (ref.term == "llf")]
    return float(row.value.iloc[0])


@pytest.fixture(scope="module")
def bio_maxima():
    return pd.read_csv(REF / "biochemists_local_maxima.csv")


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalMaximumWarning)
        return emglm(*args, **kwargs)


def test_reference_has_several_maxima(bio_best, bio_maxima):
    # The case is hard: flexmix's single starts mostly miss the best maximum.
    assert bio_best == pytest.approx(-1561.0709, abs=1e-3)
    best = bio_maxima.loc[bio_maxima.llf.idxmax()]
    assert best["count"] < bio_maxima["count"].sum() / 2


@pytest.mark.parametrize("seed", range(10))
def test_emglm_defaults_reach_best_biochemists(bio, bio_best, seed):
    res = _quiet_fit(BIO_FORMULA, bio, family="poisson", K=2, random_state=seed)
    assert res.llf == pytest.approx(bio_best, abs=1e-3)
    assert res.converged
    # The fem effects of the best maximum (flexmix): -0.14 and -0.30.
    assert np.sort(res.params.loc["fem"].to_numpy()) == pytest.approx([-0.3018, -0.1398], abs=2e-3)


@pytest.mark.parametrize("seed", range(5))
def test_warmup_reaches_best_biochemists(bio, bio_best, seed):
    res = _quiet_fit(BIO_FORMULA, bio, family="poisson", K=2, start="warmup", random_state=seed)
    assert res.llf == pytest.approx(bio_best, abs=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_cli_defaults_reach_best_biochemists(bio_best, seed):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(
            [
                "fit",
                str(REF / "biochemists.csv"),
                BIO_FORMULA,
                "--family",
                "poisson",
                "-K",
                "2",
                "--seed",
                str(seed),
                "--format",
                "json",
            ]
        )
    assert status == 0
    fitted = json.loads(out.getvalue())
    assert fitted["llf"] == pytest.approx(bio_best, abs=1e-3)
    assert 1 <= fitted["n_best"] <= fitted["n_starts"]
    assert (
        f"best llf replicated: {fitted['n_best']} of {fitted['n_starts']} starts" in err.getvalue()
    )


@pytest.mark.parametrize("seed", range(3))
def test_select_k_reaches_best_biochemists(bio, bio_best, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalMaximumWarning)
        choice = select_k(BIO_FORMULA, bio, "poisson", K=[2], random_state=seed)
    assert choice.table.loc[2, "llf"] == pytest.approx(bio_best, abs=1e-3)


def test_select_k_never_below_smaller_k(bio):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalMaximumWarning)
        choice = select_k(BIO_FORMULA, bio, "poisson", K=[1, 2, 3], n_init=3, random_state=0)
    llf = choice.table["llf"].to_numpy()
    assert np.all(np.diff(llf) >= -1e-6)


# -------------------------------------------------------------- many levels
@pytest.fixture(scope="module")
def many():
    return make_many_levels()


@pytest.fixture(scope="module")
def many_nested(many):
    """The nested model with the factor shared across components."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalMaximumWarning)
        return emglm("y ~ x", many, K=2, fixed="~ C(g)", random_state=0)


def test_many_levels_data_match_reference_file(many):
    stored = pd.read_csv(REF / "many_levels.csv")
    pd.testing.assert_frame_equal(stored, many, check_dtype=False)


def test_random_starts_fall_below_nested_model(many, many_nested):
    # Why the case is in the suite: ten random partitions run in full (the
    # old default) end below the nested model, a bound no maximum can be under.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = emglm(MANY_FORMULA, many, K=2, start="random", random_state=1)
    assert res.llf < many_nested.llf - 10


@pytest.mark.parametrize("seed", range(2))
def test_many_levels_defaults_reach_best(many, many_nested, seed):
    res = _quiet_fit(MANY_FORMULA, many, K=2, random_state=seed)
    assert res.llf >= many_nested.llf
    assert res.llf == pytest.approx(MANY_BEST_OURS, abs=1e-3)
    # The nested starts are recorded, and the bound they give is kept.
    kinds = set(res.starts["kind"])
    assert {"nested: shared effects", "nested: shared C(g)"} <= kinds
    assert res.fit_options["start_bounds"]["nested"] == pytest.approx(many_nested.llf, abs=1e-6)


# ------------------------------------------------------- the record of starts
@pytest.fixture(scope="module")
def two_maxima(bio):
    """The best bioChemists fit and one at the known worse maximum -1562.158."""
    model = EMGLM.from_formula(BIO_FORMULA, bio, "poisson", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = [model.fit(start="random", n_init=1, random_state=s) for s in range(40)]
    best = max(runs, key=lambda r: r.llf)
    worse = next(r for r in runs if abs(r.llf + 1562.158238) < 1e-3)
    return model, best, worse


def test_starts_record_half_at_worse_maximum(two_maxima):
    model, best, worse = two_maxima
    with warnings.catch_warnings():
        warnings.simplefilter("error", LocalMaximumWarning)
        res = model.fit(start=[best, worse, best, worse])
    starts = res.starts
    assert len(starts) == 4 and res.n_full_starts == 4
    assert res.n_best == 2
    assert starts["best"].tolist() == [True, False, True, False]
    assert starts["llf"].to_numpy() == pytest.approx(
        [best.llf, worse.llf, best.llf, worse.llf], abs=1e-6
    )
    assert starts["converged"].all() and (starts["stage"] == "full").all()
    assert "Best llf replicated:" in res.summary().as_text()
    assert "2 of 4 starts" in res.summary().as_text()


def test_warning_when_best_found_once(two_maxima):
    model, best, worse = two_maxima
    with pytest.warns(LocalMaximumWarning, match="only 1 of 3 starts"):
        res = model.fit(start=[worse, best, worse])
    assert res.n_best == 1
    assert res.llf == pytest.approx(best.llf, abs=1e-8)


def test_no_warning_when_best_replicated(two_maxima):
    model, best, _ = two_maxima
    with warnings.catch_warnings():
        warnings.simplefilter("error", LocalMaximumWarning)
        res = model.fit(start=[best, best])
    assert res.n_best == 2


def test_auto_start_record(bio):
    res = _quiet_fit(BIO_FORMULA, bio, family="poisson", K=2, n_init=4, random_state=3)
    starts = res.starts
    full = starts[starts.stage == "full"]
    # Small data: all nine screened candidates (4 partitions, 4 lines, one
    # split of the K=1 fit) run in full, and the nested start.
    assert len(full) == 10 and len(starts) == 10
    assert full.kind.value_counts().to_dict() == {
        "random partition": 4,
        "regression lines": 4,
        "nested: shared effects": 1,
        "split of K-1 component 1": 1,
    }
    assert res.n_best == count_replicates(full.llf)
    assert res.llf == pytest.approx(full.llf.max(), abs=1e-6)
    assert res.llf >= res.fit_options["start_bounds"]["K-1"]


def test_large_problem_screens_and_runs_n_init_in_full(many):
    res = _quiet_fit(MANY_FORMULA, many, K=2, n_init=4, random_state=0)
    starts = res.starts
    # 3000 rows x 61 coefficients x 2: screened; 4 in full plus two nested.
    assert (starts.stage == "full").sum() == 6
    assert (starts.stage == "screen").sum() == 5
    assert starts.loc[starts.stage == "screen", "llf"].isna().all()
    assert "split of K-1 component 1" in set(starts.loc[starts.stage == "full", "kind"])


def test_replication_tolerance():
    assert replication_tolerance(-1561.0) == pytest.approx(1.561e-3)
    assert replication_tolerance(-10.0) == 1e-4
    assert count_replicates([-100.0, -100.00005, -100.0002, np.nan]) == 2


def test_converged_means_strict_local_maximum(bio):
    res = _quiet_fit(BIO_FORMULA, bio, family="poisson", K=2, random_state=0)
    assert res.converged and res.em_converged
    # Converged: the observed score is numerically zero at the estimates.
    from emformula.engine.louis import observed_score

    est = res.estimates
    data = res.model.data
    from emformula.engine import em as _em

    estep = _em.e_step(data, est)
    score = observed_score(data, est, estep.posterior, estep.mu)
    assert np.max(np.abs(score * np.sqrt(np.diag(res._covariance)))) < 1e-6


# ------------------------------------- many levels, every entry point (slow)
#: The best log-likelihood known on the many-level data: the default strategy
#: over seeds 0..9, 30 and 50 random starts, and EM from the nested fits all
#: end at or below it (benchmarks/starts.py, the slow tests below).
MANY_BEST_OURS = -4198.679


def _many_best_known():
    """The best known log-likelihood; where R flexmix's reference fits
    (tests/reference/make_many_levels_flexmix.R) are present, the better of
    the two."""
    path = REF / "many_levels_flexmix.csv"
    if not path.exists():
        return MANY_BEST_OURS
    ref = pd.read_csv(path)
    return max(float(ref.loc[ref.fit == "full_best", "llf"].iloc[0]), MANY_BEST_OURS)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_many_levels_emglm_defaults_ten_seeds(many, seed):
    res = _quiet_fit(MANY_FORMULA, many, K=2, random_state=seed)
    assert res.llf == pytest.approx(_many_best_known(), abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_many_levels_warmup_five_seeds(many, seed):
    res = _quiet_fit(MANY_FORMULA, many, K=2, start="warmup", random_state=100 + seed)
    assert res.llf == pytest.approx(_many_best_known(), abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_many_levels_cli_defaults_five_seeds(tmp_path, many, seed):
    path = tmp_path / "many.csv"
    many.to_csv(path, index=False)
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert (
            main(
                [
                    "fit",
                    str(path),
                    MANY_FORMULA,
                    "-K",
                    "2",
                    "--seed",
                    str(200 + seed),
                    "--format",
                    "json",
                ]
            )
            == 0
        )
    assert json.loads(out.getvalue())["llf"] == pytest.approx(_many_best_known(), abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_many_levels_select_k_three_seeds(many, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalMaximumWarning)
        choice = select_k(MANY_FORMULA, many, "poisson", K=[2], random_state=300 + seed)
    assert choice.table.loc[2, "llf"] == pytest.approx(_many_best_known(), abs=1e-3)


def test_duplicated_component_saddle_is_not_converged(bio):
    # Two copies of the K=1 fit: a stationary point of EM where no Newton
    # step gains anything, but a saddle (the information is indefinite).
    one = _quiet_fit(BIO_FORMULA, bio, family="poisson", K=1)
    model = EMGLM.from_formula(BIO_FORMULA, bio, "poisson", 2)
    p = one.params.to_numpy()
    with pytest.warns(Warning, match="could not confirm a local maximum"):
        res = model.fit(start=dict(params=np.hstack([p, p]), prior=[0.5, 0.5]))
    assert res.em_converged and not res.converged
    assert res.llf == pytest.approx(one.llf, abs=1e-6)


def test_a_list_of_starts_holds_fits_not_names(two_maxima):
    model, best, _ = two_maxima
    with pytest.raises(ValueError, match="list of starts holds results objects or dicts"):
        model.fit(start=[best, "random"])


def test_never_below_the_k_minus_1_fit(bio, monkeypatch):
    # Were every run to end below the K-1 fit, EM from the K-1 fit with a
    # component duplicated keeps the K-1 log-likelihood.
    from emformula.engine import em as _em
    from emformula.engine import starts as _starts

    one = _quiet_fit(BIO_FORMULA, bio, family="poisson", K=1)
    real = _starts._full_task

    def poor(shared, est):  # every ordinary full run ends at a poor point
        data, _, tol, floor = shared
        flat = _em.Estimates(np.zeros_like(est.coef), est.params, est.prior)
        return real((data, 1, tol, floor), flat)

    monkeypatch.setattr(_starts, "_full_task", poor)
    search = _starts.search_starts(
        EMGLM.from_formula(BIO_FORMULA, bio, "poisson", 2).data,
        2,
        _starts.StartPlan(n_full=2, n_random=2, n_lines=2, nested=False),
        np.random.SeedSequence(0),
        0.0,
        max_iter=5000,
        tol=1e-10,
        previous=one.estimates,
    )
    monkeypatch.setattr(_starts, "_full_task", real)
    llfs = [run.llf for run in search.runs]
    assert search.bounds["K-1"] == pytest.approx(one.llf, abs=1e-8)
    assert max(llfs[:-1]) < one.llf - 10  # the patched runs are poor
    assert search.records[len(search.runs) - 1].kind == "K-1 fit, a component duplicated"
    assert llfs[-1] >= one.llf - 1e-8
