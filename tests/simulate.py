"""Small simulated mixtures of every family, for tests."""

import numpy as np
import pandas as pd
import statsmodels.api as sm

L = sm.families.links

#: name -> (family factory, needs positive response)
FAMILIES = {
    "poisson": lambda: sm.families.Poisson(),
    "binomial": lambda: sm.families.Binomial(),
    "binomial_counts": lambda: sm.families.Binomial(),
    "binomial_probit": lambda: sm.families.Binomial(L.Probit()),
    "gaussian": lambda: sm.families.Gaussian(),
    "gamma_log": lambda: sm.families.Gamma(L.Log()),
    "gamma": lambda: sm.families.Gamma(),
    "inverse_gaussian_log": lambda: sm.families.InverseGaussian(L.Log()),
    "negative_binomial": lambda: sm.families.NegativeBinomial(alpha=0.5),
    "poisson_sqrt": lambda: sm.families.Poisson(L.Sqrt()),
}


def simulate_mixture(kind, n, K, seed, p=2, separation=1.5):
    """A data frame (x1.., y or succ/fail) from a K-component mixture of ``kind``.

    Returns (data, formula). Component k has intercept ``separation * k``
    (scaled to the family's mean range) and random slopes.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    z = rng.integers(0, K, size=n)
    intercept = separation * (z - (K - 1) / 2)
    slopes = rng.normal(scale=0.5, size=(K, p))
    lin = intercept + np.einsum("ij,ij->i", x, slopes[z])
    data = {f"x{j + 1}": x[:, j] for j in range(p)}
    rhs = " + ".join(data)
    if kind in ("poisson", "negative_binomial"):
        mu = np.exp(0.5 + 0.5 * lin)
        if kind == "poisson":
            y = rng.poisson(mu)
        else:
            y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    elif kind == "poisson_sqrt":
        y = rng.poisson((1.5 + 0.5 * np.abs(lin)) ** 2)
    elif kind == "binomial":
        y = rng.binomial(1, 1 / (1 + np.exp(-lin)))
    elif kind in ("binomial_counts", "binomial_probit"):
        # A mixture of Bernoulli regressions is not identified from 0/1
        # responses alone; counts with several trials are.
        trials = rng.integers(1, 12, size=n)
        succ = rng.binomial(trials, 1 / (1 + np.exp(-lin)))
        data["succ"], data["fail"] = succ.astype(float), (trials - succ).astype(float)
        return pd.DataFrame(data), f"succ + fail ~ {rhs}"
    elif kind == "gaussian":
        y = 2.0 * lin + rng.normal(scale=1.0 + z, size=n)
    elif kind in ("gamma_log", "gamma"):
        mu = np.exp(0.5 * lin) if kind == "gamma_log" else 1.0 / (1.0 + 0.2 * np.abs(lin))
        shape = 3.0
        y = rng.gamma(shape, mu / shape)
    elif kind == "inverse_gaussian_log":
        y = rng.wald(np.exp(0.3 * lin), 4.0)
    else:
        raise ValueError(kind)
    data["y"] = np.asarray(y, dtype=float)
    return pd.DataFrame(data), f"y ~ {rhs}"
