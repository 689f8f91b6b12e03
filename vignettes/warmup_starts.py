# %% [markdown]
# # Warm-up starts and local maxima
#
# The mixture log-likelihood has several local maxima (at least K! copies
# of each by relabelling, and genuinely different ones when components
# overlap). EM climbs to whichever maximum is nearest its start, so a fit
# should start from several places. The original package's workflow does it
# cheaply: `small_em` runs many short EM trials, `select_best` keeps the
# best, and `emglm` continues from it.

# %%
import numpy as np
import pandas as pd

from emformula import EMGLM, datasets, emglm, select_best, small_em

sim2 = datasets.load_sim2()
formula = sim2.formula
warm = small_em(formula, sim2.data, family="poisson", K=3, repeats=12, max_iter=5,
                random_state=3)
print(warm.table[["llf", "n_iter", "prior_comp1", "prior_comp2", "prior_comp3"]]
      .round(3).to_string())

# %% [markdown]
# After five iterations the trials are spread over thousands of
# log-likelihood units. Running each of them to convergence shows where they
# end up: not all at the same place.

# %%
model = EMGLM.from_formula(formula, sim2.data, family="poisson", K=3)
finals = [model.fit(start=start).llf for start in warm.starts]
print(np.round(np.sort(finals)[::-1], 3))
print("distinct maxima (to 0.01):", len(np.unique(np.round(finals, 2))))

import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(warm.table["llf"], finals)
ax.set_xlabel("log-likelihood after 5 iterations")
ax.set_ylabel("log-likelihood at convergence")
ax.set_title("Twelve warm-up trials of K = 3 on sim2")
fig.tight_layout()

# %% [markdown]
# `select_best` continues only the trial that leads after five iterations.
# That is one full fit instead of twelve, but the leader after five
# iterations need not be the one that ends highest: with a third component
# that the data do not need (sim2 has two), the maxima lie close together
# and the order of the trials changes as they converge.

# %%
best = emglm(formula, sim2.data, family="poisson", K=3, start=select_best(warm))
print(f"from select_best: {best.llf:.3f}   best of all full fits: {max(finals):.3f}")
# Ranks of the trials (ties, to 0.01, share a rank: they reach one maximum).
print("trial ranks after 5 iterations:", warm.table["llf"].round(2)
      .rank(ascending=False, method="min").astype(int).tolist())
print("trial ranks at convergence:    ", pd.Series(finals).round(2)
      .rank(ascending=False, method="min").astype(int).tolist())

# %% [markdown]
# So when the fit matters, continue several trials, not one: `start="warmup"`
# runs 20 short trials and then full EM from the `n_init` best of them.

# %%
several = emglm(formula, sim2.data, family="poisson", K=3, start="warmup", n_init=5,
                random_state=3)
print(f"start='warmup', n_init=5: {several.llf:.3f}")

# %% [markdown]
# The default, `start="random"`, runs `n_init` random starts to convergence
# and keeps the best log-likelihood. For large data, `sample_size=` runs each
# warm-up trial on its own random subsample and scores it on all rows, so
# trials stay comparable. With the two components sim2 really has, every
# route finds the same maximum.

# %%
sub = small_em(formula, sim2.data, family="poisson", K=2, repeats=10, sample_size=1000,
               random_state=4)
auto = emglm(formula, sim2.data, family="poisson", K=2, start="warmup", n_init=2,
             random_state=4)
chosen = emglm(formula, sim2.data, family="poisson", K=2, start=select_best(sub))
print(f"subsampled warm-up: {chosen.llf:.3f}   start='warmup': {auto.llf:.3f}")
