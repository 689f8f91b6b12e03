# flexmix reference fits of the betablocker data (22 centres of a
# meta-analysis of beta-blockers after myocardial infarction, Yusuf et al.
# 1985; flexmix's example of grouped data and a shared effect).
#
# How to run (from the project root; needs R and flexmix, e.g. Debian's
# `apt-get install r-base-core r-cran-flexmix`):
#
#     Rscript tests/reference/make_betablocker.R
#
# Writes
#   emformula/datasets/betablocker.csv   the data (Deaths, Total, Center, Treatment)
#   tests/reference/betablocker_flexmix.csv
#       for K = 1, 2, 3: log-likelihood, df, BIC, the priors and the
#       coefficients (sorted by intercept) of
#       flexmix(cbind(Deaths, Total - Deaths) ~ 1 | Center, k = K,
#               model = FLXMRglmfix(family = "binomial", fixed = ~ Treatment))
#       best of 20 starts (set.seed(s), s = 1..20), tolerance 1e-12, refined
#       by EM from the best posterior with tolerance 1e-16.
# CI never runs this script; tests/test_betablocker.py reads the CSVs.

suppressPackageStartupMessages(library(flexmix))

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"

data(betablocker)
write.csv(betablocker, file.path(here, "..", "..", "emformula", "datasets", "betablocker.csv"),
          row.names = FALSE)

CONTROL <- list(tolerance = 1e-12, iter.max = 5000, minprior = 0)
REFINE <- list(tolerance = 1e-16, iter.max = 200000, minprior = 0)
model <- FLXMRglmfix(family = "binomial", fixed = ~ Treatment)
formula <- cbind(Deaths, Total - Deaths) ~ 1 | Center

rows <- list()
for (K in 1:3) {
  best <- NULL
  for (s in 1:20) {
    set.seed(s)
    fit <- tryCatch(flexmix(formula, data = betablocker, k = K, model = model,
                            control = CONTROL), error = function(e) NULL)
    if (!is.null(fit) && fit@k == K && (is.null(best) || logLik(fit) > logLik(best)))
      best <- fit
  }
  if (K > 1)
    best <- flexmix(formula, data = betablocker, k = K, model = model,
                    cluster = posterior(best), control = REFINE)
  ll <- logLik(best)
  p <- parameters(best)
  coefs <- as.matrix(p)
  order <- order(coefs["coef.(Intercept)", ])
  for (j in seq_along(order)) {
    k <- order[j]
    rows[[length(rows) + 1]] <- data.frame(
      K = K, component = j, prior = if (K == 1) 1 else best@prior[k],
      intercept = coefs["coef.(Intercept)", k], treatment = coefs["coef.TreatmentTreated", k],
      loglik = as.numeric(ll), df = attr(ll, "df"), nobs = attr(ll, "nobs"), BIC = BIC(best))
  }
}
out <- do.call(rbind, rows)
print(out, digits = 10)
write.csv(out, file.path(here, "betablocker_flexmix.csv"), row.names = FALSE)
