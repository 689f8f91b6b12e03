# %% [markdown]
# # Reporting a mixture: effects by class, tests, predictions, margins, classes
#
# A finite mixture is fitted; now it has to be written up. This vignette
# goes through what a results section needs, on a real data set:
# bioChemists (Long 1990), the articles published in the last three years
# of the PhD by 915 biochemists, with their sex (`fem`, 1 = woman), marital
# status (`mar`, 1 = married), children under six (`kid5`), the prestige of
# their department (`phd`) and their mentor's articles (`ment`). A Poisson
# GLM underfits these counts (variance 3.7 against a mean of 1.7); two
# latent classes of Poisson regressions is the model reported here
# (count_models compares it with the negative binomial and zero-inflated
# alternatives).

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf

from emformula import compare, datasets, emglm, select_k

pd.set_option("display.width", 100)
bio = datasets.load_biochemists()
formula = "art ~ fem + mar + kid5 + phd + ment"
glm = smf.glm(formula, bio, family=sm.families.Poisson()).fit()
res = emglm(formula, bio, "poisson", K=2, random_state=1)
print(compare(glm, res))

# %% [markdown]
# The mixture gains 90 log-likelihood units for 7 more parameters; AIC and
# BIC prefer it clearly. The ICL above is the entropy kind (BIC plus twice
# the posterior's entropy); flexmix and mclust report the hard
# classification kind, which `info_criteria` also gives:

# %%
print(f"ICL, entropy kind:        {res.info_criteria('icl'):.2f}")
print(f"ICL, classification kind: {res.info_criteria('icl', kind='classification'):.2f}")

# %% [markdown]
# ## Choosing the model
#
# How many classes, and which parts of the model differ between them?
# `select_k` fits K = 1..3; then two variants of K = 2: mixing proportions
# that depend on the mentor's articles (a concomitant model), and all
# effects but the intercept and `ment` shared by the classes (`fixed=`).

# %%
choice = select_k(formula, bio, "poisson", K=range(1, 4), random_state=1)
print(choice.table[["llf", "df", "bic", "icl"]].round(2))
mentor_mix = emglm(formula, bio, "poisson", K=2, concomitant="~ ment", random_state=1)
shared = emglm("art ~ ment", bio, "poisson", K=2, fixed="~ fem + mar + kid5 + phd",
               random_state=1)
print(compare(res, mentor_mix, shared, names=["K = 2", "concomitant ~ ment", "shared effects"]))

# %% [markdown]
# BIC chooses two classes. Letting the mentor's articles move the class
# shares adds nothing (the log-likelihood rises by 0.01); sharing the
# effects of sex, marriage, children and prestige between the classes
# lowers the BIC by 22, which the tests across classes below anticipate.
# This report keeps the class-specific model to show those tests; a paper
# would report the shared-effects model beside it.
#
# ## The classes, in the order the report uses
#
# Components come out in decreasing prior. A report may prefer another
# order (here: the class with the lower baseline first, which is already
# the case); `relabel(by=...)`, `relabel(order=...)` or
# `relabel(reference=...)` renumber them, and every estimate, standard
# error and test below follows.

# %%
res = res.relabel(by="Intercept")
sizes = res.class_sizes()
means = res.class_means()
classes = pd.DataFrame({"share": sizes["proportion"], "share s.e.": sizes["std err"],
                        "mean articles": means["mean"], "mean s.e.": means["std err"]})
print(classes.round(3))

# %% [markdown]
# Three quarters of the students are in a low-output class (about one
# article on average), a quarter in a high-output class (about 3.6). The
# shares and the class means carry delta-method standard errors (Stata's
# `estat lcprob` and `estat lcmean`).
#
# ## Effects by class, and whether they differ
#
# The table of class-specific effects, as rate ratios with 95% intervals,
# and for each term the Wald test that its coefficient is the same in both
# classes:

# %%
ci = res.conf_int()
rows = []
for term in res.params.index[1:]:
    row = {}
    for k in res.component_names:
        low, high = ci.loc[term, (k, "lower")], ci.loc[term, (k, "upper")]
        row[f"{k} IRR"] = np.exp(res.params.loc[term, k])
        row[f"{k} 95% CI"] = f"{np.exp(low):.2f} to {np.exp(high):.2f}"
    rows.append(pd.Series(row, name=term))
table = pd.DataFrame(rows)
tests = res.wald_test_terms()
table["equal across classes, p"] = tests.summary_frame().loc[table.index, "P>chi2"].round(3)
print(table.round(3).to_string())
print(f"baseline (Intercept) equal across classes: p = "
      f"{tests.summary_frame().loc['Intercept', 'P>chi2']:.2g}")

# %% [markdown]
# Only the baseline differs significantly between the classes; no
# covariate's effect differs significantly (`phd` comes closest, p = 0.09),
# which is not the same as showing them equal. A single
# constraint is tested the same way, with its estimate and interval:

# %%
print(res.t_test("comp1:fem = comp2:fem").summary_frame().round(4).to_string())

# %% [markdown]
# ## Predictions with intervals
#
# Expected articles for two profiles (married, no young children, a
# department of prestige 3, a mentor with 8 articles), by sex: the mixture
# mean and each class's mean, with intervals computed on the log scale and
# transformed back, as statsmodels does.

# %%
profiles = pd.DataFrame({"fem": [0, 1], "mar": [1, 1], "kid5": [0, 0], "phd": [3.0, 3.0],
                         "ment": [8, 8]}, index=["man", "woman"])
prediction = res.get_prediction(profiles).summary_frame()
prediction.index = profiles.index
print(prediction.round(3))
by_class = res.get_prediction(profiles, type="component").summary_frame()
by_class.index = profiles.index
print(by_class.xs("mean", axis=1, level=1).round(3))

# %% [markdown]
# ## Average marginal effects
#
# The change in expected articles per unit of each covariate, averaged over
# the students (`get_margeff`, statsmodels' names and columns), for the
# mixture mean and within each class:

# %%
margins = res.get_margeff().summary_frame()
print(margins[["dy/dx", "Std. Err.", "Pr(>|z|)"]].round(4))

# %% [markdown]
# A mentor's additional article goes with 0.05 more articles of the
# student on average; a young child with 0.33 fewer.
#
# ## Assignments and how clear they are
#
# Each student's most probable class (`clusters()`, flexmix's name), the
# average posterior probability by assigned class, and the entropy R² (1:
# perfectly separated classes, 0: no information) describe how well the
# classes separate the students:

# %%
assigned = res.clusters()
print(assigned.value_counts().sort_index().rename("students"))
print(res.average_posterior().round(3))
print(f"entropy R2 {res.entropy_r2():.3f}")

# %% [markdown]
# An entropy R² of 0.49 says the classes are a description of the
# distribution of output more than a sharp partition of the students: a
# student assigned to the high class has a posterior of 0.79 on average.
#
# ## Standard errors: Louis, robust, bootstrap
#
# The standard errors above are the inverse of Louis' observed
# information. A robust (sandwich) covariance and a nonparametric bootstrap
# (students resampled, each replicate refitted from these estimates and
# its classes matched to them) are the usual checks:

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    boot = res.bootstrap(99, random_state=3)
errors = pd.DataFrame({"Louis": res.theta_bse,
                       "robust": res.with_cov_type("robust").theta_bse,
                       "bootstrap": boot.bse})
print(errors.round(4))
print(boot)

# %% [markdown]
# The robust errors are up to 1.3 times Louis', and the bootstrap's (99
# replicates, themselves uncertain by about 7%) larger again, up to 1.6
# times for the high class's intercept and the mixing proportion.
# bioChemists has several nearby local maxima for K = 2
# (tests/reference/README.md) and its classes separate the students only
# moderately, so resampled data sets move the class boundary: a report
# should quote the bootstrap or robust errors for those parameters, or say
# that the class structure is uncertain.
# `res.with_cov_type("bootstrap", bootstrap=boot)` makes the bootstrap
# covariance that of every table and test above.
#
# ## A figure for the report
#
# The class-specific coefficients with their 95% intervals:

# %%
ax = res.plot_params()
ax.figure.set_size_inches(7, 4)
ax.figure.tight_layout()
plt.show()
