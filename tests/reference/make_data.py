"""Simulate the data sets that tests/reference/flexmix_fits.R fits with R flexmix.

Run from the project root:

    python tests/reference/make_data.py
    Rscript tests/reference/flexmix_fits.R

Writes, next to this file, one CSV per data set and ``truth.csv`` (the values
used to simulate them, long format: model, component, parameter, value).
Parameter names follow flexmix's naming (see README.md): "(Intercept)", the
covariate name, "sigma", "prior", and "concomitant:<term>" for the
multinomial-logit coefficients of the mixing proportions, component 1 being
the reference (its concomitant coefficients are 0); for constant mixing
proportions "concomitant:alpha" = log(prior_k / prior_1). For the concomitant
model "prior" is the mean over the data set's z of the true P(component k | z).

Everything is seeded; the output is identical on every run with the same
numpy version (numpy.random.Generator / PCG64 streams are stable).
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20240611


def expit(t):
    return 1.0 / (1.0 + np.exp(-t))


def concomitant_poisson(rng, truth):
    """Two Poisson regressions; P(component 2 | z) = expit(-0.5 + 1.2 z)."""
    n = 1500
    beta = {1: (1.0, 0.8), 2: (2.5, -0.6)}
    gamma = (-0.5, 1.2)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    comp = np.where(rng.random(n) < expit(gamma[0] + gamma[1] * z), 2, 1)
    b0 = np.array([beta[c][0] for c in comp])
    b1 = np.array([beta[c][1] for c in comp])
    y = rng.poisson(np.exp(b0 + b1 * x))
    for k, (a, b) in beta.items():
        truth += [("concomitant_poisson", k, "(Intercept)", a), ("concomitant_poisson", k, "x", b)]
    p2 = expit(gamma[0] + gamma[1] * z).mean()  # mean true P(component 2) over this z
    truth += [
        ("concomitant_poisson", 1, "prior", 1.0 - p2),
        ("concomitant_poisson", 2, "prior", p2),
    ]
    truth += [
        ("concomitant_poisson", 1, "concomitant:(Intercept)", 0.0),
        ("concomitant_poisson", 1, "concomitant:z", 0.0),
        ("concomitant_poisson", 2, "concomitant:(Intercept)", gamma[0]),
        ("concomitant_poisson", 2, "concomitant:z", gamma[1]),
    ]
    return pd.DataFrame({"x": x, "z": z, "y": y})


def fixed_gaussian(rng, truth):
    """Two Gaussian regressions: own intercept and x1 slope, common x2 slope and sd."""
    n = 1200
    prior = {1: 0.4, 2: 0.6}
    beta = {1: (0.0, 1.5), 2: (3.0, -1.0)}
    gamma_x2, sd = 0.7, 1.0
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    comp = np.where(rng.random(n) < prior[1], 1, 2)
    b0 = np.array([beta[c][0] for c in comp])
    b1 = np.array([beta[c][1] for c in comp])
    y = b0 + b1 * x1 + gamma_x2 * x2 + rng.normal(scale=sd, size=n)
    for k in (1, 2):
        truth += [
            ("fixed_gaussian", k, "prior", prior[k]),
            ("fixed_gaussian", k, "(Intercept)", beta[k][0]),
            ("fixed_gaussian", k, "x1", beta[k][1]),
            ("fixed_gaussian", k, "x2", gamma_x2),
            ("fixed_gaussian", k, "sigma", sd),
        ]
    return pd.DataFrame({"x1": x1, "x2": x2, "y": y})


def grouped_poisson(rng, truth):
    """300 groups of 5 rows; one component per group (priors 0.5/0.5)."""
    groups, size = 300, 5
    beta = {1: (0.5, 0.5), 2: (2.0, -0.4)}
    comp_g = np.where(rng.random(groups) < 0.5, 1, 2)
    ids = np.repeat(np.arange(1, groups + 1), size)
    comp = np.repeat(comp_g, size)
    x = rng.normal(size=groups * size)
    b0 = np.array([beta[c][0] for c in comp])
    b1 = np.array([beta[c][1] for c in comp])
    y = rng.poisson(np.exp(b0 + b1 * x))
    for k, (a, b) in beta.items():
        truth += [
            ("grouped_poisson", k, "prior", 0.5),
            ("grouped_poisson", k, "(Intercept)", a),
            ("grouped_poisson", k, "x", b),
        ]
    return pd.DataFrame({"id": ids, "x": x, "y": y})


def binomial_counts(rng, truth):
    """Two logistic regressions on 10 trials per row; priors 0.35/0.65."""
    n, trials = 1000, 10
    prior = {1: 0.35, 2: 0.65}
    beta = {1: (-1.0, 1.0), 2: (1.5, -0.5)}
    x = rng.normal(size=n)
    comp = np.where(rng.random(n) < prior[1], 1, 2)
    b0 = np.array([beta[c][0] for c in comp])
    b1 = np.array([beta[c][1] for c in comp])
    succ = rng.binomial(trials, expit(b0 + b1 * x))
    for k in (1, 2):
        truth += [
            ("binomial_counts", k, "prior", prior[k]),
            ("binomial_counts", k, "(Intercept)", beta[k][0]),
            ("binomial_counts", k, "x", beta[k][1]),
        ]
    return pd.DataFrame({"x": x, "succ": succ, "fail": trials - succ})


def gaussian_k3(rng, truth):
    """Three Gaussian regressions with different sds; priors 0.3/0.3/0.4."""
    n = 900
    prior = np.array([0.3, 0.3, 0.4])
    beta = {1: (0.0, 1.0), 2: (4.0, -1.0), 3: (8.0, 0.5)}
    sd = {1: 0.5, 2: 1.0, 3: 1.5}
    x = rng.normal(size=n)
    comp = rng.choice([1, 2, 3], size=n, p=prior)
    b0 = np.array([beta[c][0] for c in comp])
    b1 = np.array([beta[c][1] for c in comp])
    s = np.array([sd[c] for c in comp])
    y = b0 + b1 * x + s * rng.normal(size=n)
    for k in (1, 2, 3):
        truth += [
            ("gaussian_k3", k, "prior", prior[k - 1]),
            ("gaussian_k3", k, "(Intercept)", beta[k][0]),
            ("gaussian_k3", k, "x", beta[k][1]),
            ("gaussian_k3", k, "sigma", sd[k]),
        ]
    return pd.DataFrame({"x": x, "y": y})


def main():
    truth = []
    makers = [concomitant_poisson, fixed_gaussian, grouped_poisson, binomial_counts, gaussian_k3]
    for i, make in enumerate(makers):
        rng = np.random.default_rng([SEED, i])  # one independent stream per data set
        data = make(rng, truth)
        data.to_csv(HERE / f"{make.__name__}.csv", index=False, float_format="%.10g")
    truth = pd.DataFrame(truth, columns=["model", "component", "parameter", "value"])
    # constant mixing proportions as flexmix's concomitant parameter:
    # alpha_k = log(prior_k / prior_1)
    alpha = []
    for model, sub in truth[truth.parameter == "prior"].groupby("model", sort=False):
        if model == "concomitant_poisson":
            continue
        p1 = sub.value.iloc[0]
        alpha += [
            (model, k, "concomitant:alpha", float(np.log(p / p1)))
            for k, p in zip(sub.component, sub.value)
        ]
    truth = pd.concat([truth, pd.DataFrame(alpha, columns=truth.columns)], ignore_index=True)
    truth.to_csv(HERE / "truth.csv", index=False, float_format="%.10g")


if __name__ == "__main__":
    main()
