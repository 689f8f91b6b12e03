# %% [markdown]
# # Starts and local maxima
#
# The mixture log-likelihood has several local maxima (K! copies of each by
# relabelling, and genuinely different ones when components overlap). EM
# climbs to whichever maximum is nearest its start, so where it starts
# decides the answer. This vignette shows the problem on real data, what
# emformula's default start strategy does about it, and how to read the
# record of the starts that every fit carries.
#
# ## Real data with several maxima
#
# bioChemists (Long 1990; R's pscl and flexmix ship it): articles published
# by 915 PhD students. A two-component Poisson mixture of
# `art ~ fem + mar + kid5 + phd + ment`, run from single random partitions:

# %%
import warnings

import numpy as np
import pandas as pd

from emformula import EMGLM, LocalMaximumWarning, datasets, emglm, select_best, small_em

bio = datasets.load_biochemists()
formula = "art ~ fem + mar + kid5 + phd + ment"
model = EMGLM.from_formula(formula, bio, family="poisson", K=2)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    single = [model.fit(start="random", n_init=1, random_state=seed) for seed in range(40)]
maxima = (pd.DataFrame({"llf": [r.llf for r in single],
                        "fem (comp1, comp2)": [tuple(r.params.loc["fem"].round(2))
                                               for r in single]})
          .round({"llf": 3}).groupby("llf").agg(starts=("llf", "size"),
                                                fem=("fem (comp1, comp2)", "first"))
          .sort_index(ascending=False))
print(maxima.to_string())

import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.hist([r.llf for r in single], bins=60, color="grey")
ax.set_xlabel("log-likelihood at convergence")
ax.set_ylabel("single random starts")
ax.set_title("bioChemists, Poisson K = 2: where 40 starts end")
fig.tight_layout()

# %% [markdown]
# The best maximum (-1561.071, the one R's flexmix finds with many starts)
# is reached by a minority of single starts. At -1562.158, one
# log-likelihood unit lower, the effect of `fem` is +0.67 in one class and
# -2.02 in the other, where the best fit says -0.14 and -0.30: a different
# substantive conclusion. (flexmix's own single starts, in
# tests/reference/biochemists_local_maxima.csv, reach the best in 4 of 50.)
#
# ## The default start strategy
#
# `emglm` (and `EMGLM.fit`, `emformula fit`, `select_k` and
# `bootstrap_lrt`) start the same way by default (`start="auto"`):
#
# 1. candidates of several kinds: random partitions of the rows, random
#    regression lines (each component fitted to its own small random subset,
#    as mixtools does), and splits of the K-1 fit (each of its components
#    divided in two by the sign of its residuals);
# 2. each candidate runs five EM iterations (on a 20 000-row subsample when
#    the data are large); the best split, the best of each kind, then in
#    turn the best of the rest and one of the rest at random, `n_init` (10)
#    in all, run to convergence. On small data (rows x coefficients x K up
#    to 200 000, as here) every candidate runs to convergence: it costs
#    little, and where the likelihood is flat the leaders after five
#    iterations are often the starts drawn fastest into a lesser maximum;
# 3. the nested models, with the component-specific effects shared by all
#    components (all but the intercept, and each large term on its own), are
#    fitted too, and EM also runs from their maxima. Started there, EM begins
#    at the nested log-likelihood and never goes down: the fit cannot end
#    below its nested model.
#
# Every start is recorded in `res.starts`, and `res.n_best` counts the full
# runs that reached the best log-likelihood (to `max(1e-6 |llf|, 1e-4)`):

# %%
res = emglm(formula, bio, family="poisson", K=2, random_state=1)
print(res.starts.round(3).to_string())
print(f"\nllf {res.llf:.3f}, best replicated by {res.n_best} of {res.n_full_starts} starts")

# %% [markdown]
# The summary's header carries the same count (`Best llf replicated`). When
# the best log-likelihood rests on one start only, the fit warns
# (`LocalMaximumWarning`), as Latent GOLD and Mplus users expect: run it
# again with more starts, or other seeds, before trusting it. Over ten seeds
# the default reaches the best maximum every time:

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", LocalMaximumWarning)
    fits = [emglm(formula, bio, family="poisson", K=2, random_state=seed) for seed in range(10)]
print("llf per seed:", np.round([f.llf for f in fits], 3).tolist())
print("replicated by:", [f"{f.n_best}/{f.n_full_starts}" for f in fits])

# %% [markdown]
# ## The warm-up of the original package
#
# `small_em` runs short trials (random partitions and random lines in turn)
# and `select_best` keeps the one that leads after a few iterations. One
# trial continued to convergence is cheap, but the leader after five
# iterations is not always the trial that ends highest:

# %%
ends = []
for seed in range(10):
    warm = small_em(formula, bio, family="poisson", K=2, repeats=20, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ends.append(emglm(formula, bio, family="poisson", K=2,
                          start=select_best(warm)).llf)
print("small_em + select_best, ten seeds:", np.round(ends, 3).tolist())

# %% [markdown]
# So when the fit matters, keep the default, which continues several
# screened trials of several kinds; `start="warmup"` is now the same as the
# default.
#
# ## Many levels: why the nested starts matter
#
# A factor with many levels makes random starts fragile: with `y ~ x + C(g)`
# and 60 levels, each component has 61 coefficients, most estimated from
# about 50 rows that two components share. tests/many_levels.py simulates
# such data (3000 rows, two Poisson regressions, level effects common to
# both). Ten random partitions run in full (the default before this
# strategy) end below the model that shares the factor across components,
# which is nested in the full model and so can never be above its maximum:

# %%
import sys
from pathlib import Path

sys.path.insert(0, str(Path("tests").resolve()))
from many_levels import make_many_levels  # noqa: E402

many = make_many_levels()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    old = emglm("y ~ x + C(g)", many, K=2, start="random", n_init=10, random_state=1)
    nested = emglm("y ~ x", many, K=2, fixed="~ C(g)", random_state=1)
    new = emglm("y ~ x + C(g)", many, K=2, random_state=1)
print(f"10 random starts:          {old.llf:.3f}")
print(f"nested, C(g) shared:       {nested.llf:.3f}")
print(f"default start strategy:    {new.llf:.3f}")
print(new.starts.loc[new.starts.stage == "full", ["kind", "llf", "n_iter"]].round(3)
      .to_string())

# %% [markdown]
# The default fit is above both nested models (the one with every effect but
# the intercept shared, and the one with `C(g)` shared), and above 50 random
# starts run in full (-4199.209, benchmarks/starts.py). Here the best
# maximum may be reached by one start only: the warning then says so, and a
# refit with more starts or other seeds is the check (ten seeds of the
# default all end at -4198.679).
#
# ## Choosing K
#
# `select_k` fits K = 1, 2, ... in turn and also starts each K from splits of
# the previous K's components, so a larger K never ends below a smaller one;
# see the vignette on too many classes for what a too-large K looks like.
