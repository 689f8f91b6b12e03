"""The bundled sim2 data and its fits, built once per test session."""

import functools

import statsmodels.api as sm
import statsmodels.formula.api as smf

from emformula import datasets, emglm

SIM2_RHS = "V1 + V2 + V3 + V4 + V5"


@functools.cache
def sim2():
    return datasets.load_sim2()


@functools.cache
def sim2_mixture():
    """The K = 2 Poisson mixture of the bundled sim2 (no intercept)."""
    s = sim2()
    return emglm(s.formula, s.data, "poisson", K=2, random_state=1)


@functools.cache
def sim2_glm():
    """The over-dispersed Poisson GLM of sim2, with an intercept."""
    return smf.glm(f"y ~ {SIM2_RHS}", sim2().data, family=sm.families.Poisson()).fit()
