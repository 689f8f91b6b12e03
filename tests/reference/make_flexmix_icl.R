# Reference values of flexmix's ICL (the hard-classification kind) and of
# the complete-data log-likelihood it is built from.
#
# How to run (from the project root; needs R and flexmix, e.g. Debian's
# `apt-get install r-base-core r-cran-flexmix`):
#
#     Rscript tests/reference/make_flexmix_icl.R
#
# CI never runs this script: tests/test_information_criteria.py reads the
# CSV it writes.
#
# flexmix defines (methods "clogLik" and "ICL" of class flexmix)
#   clogLik = sum_i log(prior_{z_i} f_{z_i}(y_i)),  z_i = clusters(fit)
#             (the most probable component of row i)
#   ICL     = -2 clogLik + df log(nobs)
# Fits: the best of 20 random starts (set.seed(s), s = 1..20), with
# control = list(tolerance = 1e-12, iter.max = 5000, minprior = 0), refined
# by EM from its posterior with tolerance 1e-16 (see best_fit), of
#   poisson          y ~ x, Poisson, K = 2 (constant mixing proportions) on
#                    the data of concomitant_poisson.csv
#   binomial_counts  cbind(succ, fail) ~ x, binomial, K = 2
# (the data sets of make_data.py). Without a concomitant model: flexmix
# fits that one with nnet's multinom, whose own tolerance leaves the
# estimates about 1e-7 from the maximum, enough to move the ICL by 3e-4.
# Poisson and binomial only: flexmix's Gaussian sigma is not the ML value,
# so its ICL would not be at the maximum emformula finds.
#
# Writes flexmix_icl.csv next to this file: one row per data set with
# loglik, clogLik, df, nobs, BIC, ICL, the same two recomputed from the
# posterior at the final parameters (clogLik_final, ICL_final) and the
# fitted priors (sorted), which identify the maximum.

suppressPackageStartupMessages(library(flexmix))

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"

CONTROL <- list(tolerance = 1e-12, iter.max = 5000, minprior = 0)
REFINE <- list(tolerance = 1e-16, iter.max = 200000, minprior = 0)

best_fit <- function(formula, data, model, concomitant = FLXPconstant()) {
  best <- NULL
  for (s in 1:20) {
    set.seed(s)
    fit <- tryCatch(flexmix(formula, data = data, k = 2, model = model,
                            concomitant = concomitant, control = CONTROL),
                    error = function(e) NULL)
    if (!is.null(fit) && fit@k == 2 && (is.null(best) || logLik(fit) > logLik(best))) best <- fit
  }
  # EM stopped by a relative change of 1e-12 in the log-likelihood leaves
  # the parameters about 1e-4 from the maximum (the log-likelihood is flat
  # there, the classification likelihood is not): EM goes on from the best
  # posterior until the log-likelihood stops changing at all.
  flexmix(formula, data = data, k = 2, model = model, concomitant = concomitant,
          cluster = posterior(best), control = REFINE)
}

concomitant <- read.csv(file.path(here, "concomitant_poisson.csv"))
binomial <- read.csv(file.path(here, "binomial_counts.csv"))
fits <- list(
  poisson = best_fit(y ~ x, concomitant, FLXMRglm(family = "poisson")),
  binomial_counts = best_fit(cbind(succ, fail) ~ x, binomial, FLXMRglm(family = "binomial")))

rows <- lapply(names(fits), function(name) {
  fit <- fits[[name]]
  ll <- logLik(fit)
  priors <- sort(fit@prior)
  # flexmix keeps the posterior of its last E-step, one M-step before the
  # final parameters; the posterior recomputed at them gives the ICL of
  # the final fit (ICL_final), which is what a fit at the same maximum has.
  data <- if (name == "binomial_counts") binomial else concomitant
  tau <- posterior(fit, newdata = data)
  clog_final <- as.numeric(ll) + sum(log(apply(tau, 1, max)))
  data.frame(data = name, loglik = as.numeric(ll), clogLik = flexmix:::clogLik(fit),
             df = attr(ll, "df"), nobs = attr(ll, "nobs"), BIC = BIC(fit), ICL = ICL(fit),
             clogLik_final = clog_final,
             ICL_final = -2 * clog_final + attr(ll, "df") * log(attr(ll, "nobs")),
             prior_small = priors[1], prior_large = priors[2], iterations = fit@iter)
})
out <- do.call(rbind, rows)
print(out, digits = 12)
write.csv(out, file.path(here, "flexmix_icl.csv"), row.names = FALSE)
