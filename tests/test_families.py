"""The component families against their own definitions.

Every family (with a few links each) is checked against its log-density:
the declared derivatives in eta and in the family parameters against
central finite differences, the density against a total mass of 1, the
parameters' M-step against a direct numerical maximisation, and the summed
statistics of two halves of the data against the whole. Then the registry:
names, statsmodels instances and pickles round trip, with the error
messages users see.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import integrate, optimize

from emformula.families import (
    DISPERSION,
    FAMILY_CLASSES,
    Binomial,
    FamilyParameter,
    Gamma,
    Gaussian,
    InverseGaussian,
    MixtureFamily,
    NegativeBinomial,
    Poisson,
    as_family,
)

L = sm.families.links

#: label -> a family; every family with its canonical link and at least one other.
FAMILIES = {
    "poisson": lambda: as_family("poisson"),
    "poisson_sqrt": lambda: as_family("poisson", link="sqrt"),
    "binomial": lambda: as_family("binomial"),
    "binomial_probit": lambda: as_family("binomial", link="probit"),
    "binomial_cloglog": lambda: as_family("binomial", link="cloglog"),
    "gaussian": lambda: as_family("gaussian"),
    "gaussian_log": lambda: as_family("gaussian", link="log"),
    "gamma": lambda: as_family("gamma"),
    "gamma_log": lambda: as_family("gamma", link="log"),
    "inverse_gaussian": lambda: as_family("inverse_gaussian"),
    "inverse_gaussian_log": lambda: as_family("inverse_gaussian", link="log"),
    "negative_binomial": lambda: as_family(sm.families.NegativeBinomial(alpha=0.7)),
    "negative_binomial_sqrt": lambda: as_family(sm.families.NegativeBinomial(L.Sqrt(), alpha=0.3)),
}
WITH_SCALE = [label for label, make in FAMILIES.items() if make().parameters]


def _data(family, n=40, seed=0):
    """``(y, mu, trials, params)``: responses drawn from the family at
    varied means, so that derivatives are checked away from ``y = mu``."""
    rng = np.random.default_rng(seed)
    trials = np.ones(n)
    if isinstance(family, Binomial):
        trials = rng.integers(1, 7, n).astype(float)
        mu = rng.uniform(0.1, 0.9, n)
    elif isinstance(family, Gaussian):
        mu = rng.uniform(0.5, 3.0, n)  # positive: also the log link's range
    else:
        mu = rng.uniform(0.5, 4.0, n)
    params = (0.6,) if family.parameters else ()
    y = family.simulate(mu, params[0] if params else 1.0, trials, rng)
    if family.parameters:
        y = np.maximum(y, 0.05)  # keep densities smooth for finite differences
    return y, mu, trials, params


def _eta(family, mu):
    return np.asarray(family.link(mu), dtype=float)


def _log_density_at_eta(family, y, eta, params, trials):
    return family.log_density(y, family.link.inverse(eta), params, trials)


# ----------------------------------------------------- derivatives in eta
@pytest.mark.parametrize("label", list(FAMILIES))
def test_eta_score_and_information_equal_finite_differences(label):
    family = FAMILIES[label]()
    y, mu, trials, params = _data(family)
    scale = params[0] if params else 1.0
    eta = _eta(family, mu)
    h = 1e-6 * np.maximum(1.0, np.abs(eta))

    def ll(e):
        return _log_density_at_eta(family, y, e, params, trials)

    def analytic_score(e):
        m = family.link.inverse(e)
        return np.broadcast_to(family.eta_derivatives(y, m, trials)[0], y.shape) / scale

    score, info, irls_weight, link_deriv = family.eta_derivatives(y, mu, trials, observed=True)
    # The score against the log-density, the information against the score.
    numeric_score = (ll(eta + h) - ll(eta - h)) / (2 * h)
    numeric_info = -(analytic_score(eta + h) - analytic_score(eta - h)) / (2 * h)
    np.testing.assert_allclose(
        np.broadcast_to(score, y.shape) / scale, numeric_score, rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        np.broadcast_to(info, y.shape) / scale, numeric_info, rtol=1e-6, atol=1e-8
    )
    # g'(mu) is 1 / (d mu / d eta).
    dmu = (family.link.inverse(eta + h) - family.link.inverse(eta - h)) / (2 * h)
    np.testing.assert_allclose(np.broadcast_to(link_deriv, y.shape), 1.0 / dmu, rtol=1e-6)
    # The expected information is the IRLS weight a / (V g'^2).
    expected = family.eta_derivatives(y, mu, trials, observed=False)[1]
    np.testing.assert_allclose(
        np.broadcast_to(expected, y.shape), np.broadcast_to(irls_weight, y.shape), rtol=1e-12
    )
    np.testing.assert_allclose(
        np.broadcast_to(irls_weight, y.shape),
        trials / (family.variance(mu) * link_deriv**2),
        rtol=1e-10,
    )


# ----------------------------------------- derivatives in the parameters
@pytest.mark.parametrize("label", WITH_SCALE)
def test_parameter_derivatives_equal_finite_differences(label):
    family = FAMILIES[label]()
    y, mu, trials, params = _data(family, seed=1)
    (parameter,) = family.parameters
    theta = float(parameter.to_unconstrained(params[0]))
    eta = _eta(family, mu)
    h, k = 1e-6, 1e-6 * np.maximum(1.0, np.abs(eta))

    def natural(t):
        return (float(parameter.from_unconstrained(t)),)

    def ll(t):
        return _log_density_at_eta(family, y, eta, natural(t), trials)

    def score_at(t, e=eta):
        m = family.link.inverse(e)
        return family.parameter_derivatives(y, m, natural(t), trials).score[0]

    def eta_score_at(t):
        return family.eta_derivatives(y, mu, trials)[0] / natural(t)[0]

    got = family.parameter_derivatives(y, mu, params, trials)
    assert got.score.shape == (1,) + y.shape and got.info.shape == (1, 1) + y.shape
    np.testing.assert_allclose(
        got.score[0], (ll(theta + h) - ll(theta - h)) / (2 * h), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        got.info[0, 0], -(score_at(theta + h) - score_at(theta - h)) / (2 * h), rtol=1e-6, atol=1e-8
    )
    # The cross term both ways: the parameter score in eta, the eta score in theta.
    np.testing.assert_allclose(
        got.cross_eta[0],
        -(score_at(theta, eta + k) - score_at(theta, eta - k)) / (2 * k),
        rtol=1e-6,
        atol=1e-8,
    )
    np.testing.assert_allclose(
        got.cross_eta[0],
        -(eta_score_at(theta + h) - eta_score_at(theta - h)) / (2 * h),
        rtol=1e-6,
        atol=1e-8,
    )
    # The engine's view of the same numbers.
    score, info = family.logscale_derivatives(y, mu, params[0])
    np.testing.assert_allclose(score, got.score[0], rtol=1e-14)
    np.testing.assert_allclose(info, got.info[0, 0], rtol=1e-14)


@pytest.mark.parametrize("label", [label for label in FAMILIES if label not in WITH_SCALE])
def test_a_family_without_parameters_declares_none(label):
    family = FAMILIES[label]()
    y, mu, trials, params = _data(family)
    assert family.parameters == () and not family.estimates_scale
    got = family.parameter_derivatives(y, mu, (), trials)
    assert got.score.shape == (0,) + y.shape and got.info.shape == (0, 0) + y.shape
    assert family.mle_parameters(y, mu, np.ones_like(y), ()).shape == (0,)
    assert family.mle_scale(y, mu, np.ones_like(y)) == 1.0
    with pytest.raises(ValueError, match="has 0 parameter"):
        family.log_density(y, mu, (1.0,), trials)


# ---------------------------------------------------------- total mass
@pytest.mark.parametrize("label", list(FAMILIES))
def test_the_density_has_total_mass_one(label):
    family = FAMILIES[label]()
    for mu in (0.3, 0.8) if isinstance(family, Binomial) else (0.3, 2.5):
        if isinstance(family, Binomial):
            trials = 7.0
            y = np.arange(8.0) / trials
            total = np.exp(family.loglike(y, mu, 1.0, trials)).sum()
        elif family.is_discrete:
            y = np.arange(400.0)
            total = np.exp(family.loglike(y, mu)).sum()
        else:
            scale = 0.4

            def density(v, mu=mu, scale=scale):
                return float(np.exp(family.loglike(np.array([v]), np.array([mu]), scale))[0])

            lower = -np.inf if isinstance(family, Gaussian) else 0.0
            total = integrate.quad(density, lower, np.inf, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
        assert total == pytest.approx(1.0, abs=1e-9), (label, mu)


@pytest.mark.parametrize("label", list(FAMILIES))
def test_the_distribution_has_the_family_mean_and_variance(label):
    family = FAMILIES[label]()
    mu, scale, trials = np.array([0.3, 0.8]), 0.4 if family.parameters else 1.0, 4.0
    dist = family.distribution(mu, scale, trials)
    if isinstance(family, Binomial):  # the distribution of the count a y
        np.testing.assert_allclose(dist.mean(), trials * mu, rtol=1e-12)
        np.testing.assert_allclose(dist.var(), trials**2 * family.variance(mu) / trials, rtol=1e-12)
    else:
        np.testing.assert_allclose(dist.mean(), mu, rtol=1e-12)
        np.testing.assert_allclose(dist.var(), scale * family.variance(mu), rtol=1e-12)


# ------------------------------------------------------------- M-step
def _direct_mle(family, y, mu, weight, trials):
    """The parameter maximising the weighted log-likelihood, by scipy."""
    (parameter,) = family.parameters

    def objective(theta):
        value = (float(parameter.from_unconstrained(theta)),)
        return -weight @ family.log_density(y, mu, value, trials)

    found = optimize.minimize_scalar(objective, bracket=(-3.0, 1.0), options={"xtol": 1e-12})
    return float(parameter.from_unconstrained(found.x))


@pytest.mark.parametrize("label", WITH_SCALE)
def test_the_m_step_is_the_maximum_of_the_weighted_likelihood(label):
    family = FAMILIES[label]()
    y, mu, trials, params = _data(family, n=200, seed=2)
    weight = np.random.default_rng(3).uniform(0.0, 1.0, y.size)
    weight[:5] = 0.0  # rows a component does not explain
    direct = _direct_mle(family, y, mu, weight, trials)
    closed = family.mle_parameters(y, mu, weight, params, trials)
    assert closed.shape == (1,)
    assert closed[0] == pytest.approx(direct, rel=1e-7)
    assert family.mle_scale(y, mu, weight) == closed[0]
    # The base class's general Newton M-step reaches the same maximum.
    general = MixtureFamily.mle_parameters(family, y, mu, weight, (3.0,), trials)
    assert general[0] == pytest.approx(direct, rel=1e-7)


@pytest.mark.parametrize("label", WITH_SCALE)
def test_statistics_of_two_halves_give_the_m_step_of_the_whole(label):
    family = FAMILIES[label]()
    y, mu, trials, params = _data(family, n=101, seed=4)
    weight = np.random.default_rng(5).uniform(0.0, 2.0, y.size)
    halves = (slice(None, 37), slice(37, None))

    def statistics(part, function=None):
        # The family's own statistics, or another class's (the general ones).
        function = type(family).parameter_statistics if function is None else function
        return function(family, y[part], mu[part], weight[part], params, trials[part])

    summed = statistics(halves[0]) + statistics(halves[1])
    whole = family.mle_parameters(y, mu, weight, params, trials)
    np.testing.assert_allclose(family.parameters_from_statistics(summed, params), whole, rtol=1e-12)
    # The engine's dispersion statistic adds the same way.
    pieces = sum(family.scale_statistic(y[part], mu[part], weight[part]) for part in halves)
    assert family.scale_from_statistic(pieces / weight.sum()) == pytest.approx(whole[0], rel=1e-12)
    # The general statistics (score and information) add too, and the Newton
    # step taken from their sum is the one taken from all rows at once.
    general = MixtureFamily.parameter_statistics
    np.testing.assert_allclose(
        statistics(halves[0], general) + statistics(halves[1], general),
        statistics(slice(None), general),
        rtol=1e-12,
    )
    step = MixtureFamily.parameters_from_statistics(
        family, statistics(halves[0], general) + statistics(halves[1], general), params
    )
    np.testing.assert_allclose(
        step,
        MixtureFamily.parameters_from_statistics(family, statistics(slice(None), general), params),
        rtol=1e-12,
    )


# ------------------------------------------------------------- registry
@pytest.mark.filterwarnings("ignore:Negative binomial dispersion parameter alpha not set")
@pytest.mark.parametrize(
    "name, cls",
    [
        ("poisson", Poisson),
        ("binomial", Binomial),
        ("gaussian", Gaussian),
        ("normal", Gaussian),
        ("gamma", Gamma),
        ("Inverse-Gaussian", InverseGaussian),
        ("negative_binomial", NegativeBinomial),
    ],
)
def test_as_family_from_a_name(name, cls):
    family = as_family(name)
    assert type(family) is cls
    assert family.name == cls.name and family.canonical == (cls is not NegativeBinomial)
    assert as_family(family) is family
    assert as_family(family.name) == family


#: A link other than each family's default.
OTHER_LINK = {
    Poisson: L.Sqrt,
    Binomial: L.Probit,
    Gaussian: L.Log,
    Gamma: L.Log,
    InverseGaussian: L.Log,
    NegativeBinomial: L.Identity,
}


@pytest.mark.filterwarnings("ignore:Negative binomial dispersion parameter alpha not set")
@pytest.mark.parametrize("cls", FAMILY_CLASSES)
def test_as_family_round_trips_statsmodels_instances_and_pickles(cls):
    link = OTHER_LINK[cls]()
    sm_family = cls.statsmodels_class(link)
    family = as_family(sm_family)
    assert type(family) is cls and family.link_name == type(link).__name__
    assert family.family_name == cls.statsmodels_class.__name__
    assert family.sm_family is not sm_family  # the caller's instance is not shared
    assert as_family(family.sm_family) == family
    by_name = as_family(family.name, link=family.link_name.lower())
    assert by_name.link_name == family.link_name
    # By name a negative binomial estimates alpha; its statsmodels instance fixes it.
    assert (by_name == family) == (cls is not NegativeBinomial)
    clone = pickle.loads(pickle.dumps(family))
    assert type(clone) is cls and clone == family
    assert family != as_family(family.name)  # another link


def test_negative_binomial_alpha_is_part_of_the_family():
    a = as_family(sm.families.NegativeBinomial(alpha=0.5))
    assert a.alpha == 0.5
    assert a == as_family(sm.families.NegativeBinomial(alpha=0.5))
    assert a != as_family(sm.families.NegativeBinomial(alpha=0.25))


def test_a_binomial_family_forgets_the_trials_of_a_statsmodels_fit():
    sm_family = sm.families.Binomial()
    sm_family.n = np.array([3.0, 4.0])
    assert as_family(sm_family).sm_family.n == 1
    assert np.all(sm_family.n == [3.0, 4.0])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: as_family("poison"),
            ValueError,
            "unknown family 'poison'; choose one of binomial, gamma, gaussian, inverse_gaussian, "
            "negative_binomial, poisson",
        ),
        (lambda: as_family("poisson", link="lgo"), ValueError, "unknown link 'lgo'; choose one of"),
        (
            lambda: as_family("poisson", link="logit"),
            ValueError,
            "link 'logit' is not allowed for family 'poisson'; statsmodels allows",
        ),
        (
            lambda: as_family(sm.families.Tweedie()),
            TypeError,
            "family Tweedie is not supported: its density is needed for the mixture likelihood; "
            "use one of Poisson, Binomial, Gaussian, Gamma, InverseGaussian, NegativeBinomial",
        ),
        (
            lambda: as_family(sm.families.Poisson(), link="log"),
            ValueError,
            "link= is only accepted together with a family name; give the link",
        ),
        (
            lambda: as_family(as_family("poisson"), link="log"),
            ValueError,
            "link= is only accepted together with a family name",
        ),
        (lambda: as_family(3), TypeError, "family must be a name or a statsmodels family instance"),
        (lambda: as_family("poisson", link=3), TypeError, "link must be a name or a statsmodels"),
        (lambda: Poisson(sm.families.Gamma()), TypeError, "Poisson wraps a statsmodels Poisson"),
    ],
)
def test_as_family_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value).startswith(message)


def test_a_family_pickled_as_the_former_single_class_gets_its_class():
    # Before one class per distribution, a family pickled as a MixtureFamily
    # holding its statsmodels family and the attributes it derived from it.
    sm_family = sm.families.Gamma(L.Log())
    old = MixtureFamily.__new__(MixtureFamily)
    old.__setstate__(
        {
            "sm_family": sm_family,
            "name": "gamma",
            "link": sm_family.link,
            "variance": sm_family.variance,
            "estimates_scale": True,
            "alpha": np.nan,
            "canonical": False,
        }
    )
    assert type(old) is Gamma and old == as_family("gamma", link="log")
    assert (
        old.estimates_scale
        and old.mle_scale(np.array([1.0, 3.0]), np.array([2.0, 2.0]), np.ones(2)) > 0
    )


# ---------------------------------------------------- parameter records
def test_family_parameter_declarations():
    assert DISPERSION.name == "scale" and DISPERSION.transform == "log"
    assert float(DISPERSION.from_unconstrained(np.log(2.5))) == pytest.approx(2.5)
    cut = FamilyParameter("cut1")
    assert float(cut.to_unconstrained(-1.5)) == -1.5
    bounded = FamilyParameter("p", lower=0.0, upper=1.0)
    assert float(bounded.from_unconstrained(1.5)) == 1.0
    with pytest.raises(ValueError, match="transform of parameter 'x'"):
        FamilyParameter("x", transform="logit")
    with pytest.raises(ValueError, match="lower < upper"):
        FamilyParameter("x", lower=1.0, upper=1.0)
    with pytest.raises(ValueError, match="log-transformed"):
        FamilyParameter("x", transform="log", lower=-1.0)
    with pytest.raises(Exception):
        DISPERSION.name = "alpha"  # frozen


@pytest.mark.parametrize("label", list(FAMILIES))
def test_discreteness_and_counts_are_declared(label):
    family = FAMILIES[label]()
    assert family.is_discrete == isinstance(family, (Poisson, Binomial, NegativeBinomial))
    assert family.is_count == isinstance(family, (Poisson, NegativeBinomial))
    assert family.has_coefficients


def test_what_the_engine_diagnoses_is_the_family_s_to_say():
    binomial, poisson = as_family("binomial"), as_family("poisson")
    assert binomial.takes_trials and not poisson.takes_trials
    mu = np.array([0.0, 1e-11, 0.5, 1.0 - 1e-11, 1.0])
    np.testing.assert_array_equal(binomial.mean_on_boundary(mu), [1, 1, 0, 1, 1])
    assert not poisson.mean_on_boundary(mu).any()
    eta = np.array([-701.0, -699.0, 0.0, 700.0])
    np.testing.assert_array_equal(poisson.eta_clipped(eta), [1, 0, 0, 1])
    np.testing.assert_array_equal(as_family("gamma", link="log").eta_clipped(eta), [1, 0, 0, 1])
    assert not as_family("poisson", link="sqrt").eta_clipped(eta).any()
    assert not binomial.eta_clipped(eta).any()


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).poisson(4.0, size=5000).astype(float),  # the table
        np.array([0.0, 1.0, 170.0, 171.0, 1e5] * 40),  # large whole numbers
        np.arange(200.0) + 0.5,  # fractions
        np.r_[np.arange(199.0), np.nan],  # a NaN
        np.r_[np.arange(199.0), 2e6],  # beyond the table
    ],
)
def test_log_factorial_is_gammaln_to_the_last_bit(values):
    # The Poisson and negative binomial constants read log y! from a table
    # of the distinct counts: the numbers must be scipy's, bit for bit.
    from scipy import special

    from emformula.families._numeric import log_factorial

    np.testing.assert_array_equal(log_factorial(values), special.gammaln(values + 1.0))
