# %% [markdown]
# # Too many classes: what K = 2 does to data with one component
#
# `sim1` is a single Poisson regression (5000 rows, five covariates, no
# intercept). Fitting two components to it cannot find two processes that
# are not there: the components come out with almost the same coefficients,
# and the information criteria say K = 1.

# %%
import numpy as np

from emformula import compare, datasets, emglm, select_k

sim1 = datasets.load_sim1()
formula = sim1.formula
one = emglm(formula, sim1.data, family="poisson", K=1)
two = emglm(formula, sim1.data, family="poisson", K=2, random_state=1)
print(two.params.round(3).to_string())
print(two.prior.round(3).to_string())

# %% [markdown]
# The two coefficient vectors agree with each other and with the truth to
# within their standard errors: K = 2 has collapsed onto one set of
# parameters. The extra component buys almost nothing in log-likelihood.

# %%
gap = (two.params["comp1"] - two.params["comp2"]).abs()
se = np.sqrt(two.bse["comp1"] ** 2 + two.bse["comp2"] ** 2)
print("largest |difference| / SE between the components:", round(float((gap / se).max()), 2))
print("log-likelihood gain of K = 2 over K = 1:", round(two.llf - one.llf, 3))
print(compare(one, two, names=["K=1", "K=2"]).as_text())

# %% [markdown]
# The posterior probabilities show the collapse as well: no row belongs
# clearly to either component (a well-separated mixture would pile them up
# at 0 and 1).

# %%
fig = two.plot_posterior()

# %% [markdown]
# ## Choosing K
#
# `select_k` fits K = 1..4 from warm-up starts. BIC and ICL (BIC plus twice
# the entropy of the posterior, which penalises components that cannot be
# told apart) both choose K = 1; AIC, with its lighter penalty, would too
# here.

# %%
choice = select_k(formula, sim1.data, family="poisson", K=range(1, 5), random_state=1)
print(choice.table[["llf", "df", "aic", "bic", "icl"]].round(3).to_string())
print("chosen by BIC: K =", choice.best_k)
fig = choice.plot()

# %% [markdown]
# The over-dispersed `sim2`, by contrast, needs its second component: there
# the criteria fall from K = 1 to K = 2 by tens of thousands.

# %%
sim2 = datasets.load_sim2()
choice2 = select_k(sim2.formula, sim2.data, family="poisson", K=range(1, 4), random_state=1)
print(choice2.table[["llf", "df", "aic", "bic", "icl"]].round(3).to_string())
print("chosen by BIC: K =", choice2.best_k)
