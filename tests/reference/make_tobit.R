# Reference tobit fits from R's survival::survreg.
#
# How to run (from the project root; needs R with survival, e.g. Debian's
# `apt-get install r-base-core r-cran-survival`):
#
#     Rscript tests/reference/make_tobit.R
#
# CI never runs this script: the tests read the CSVs it writes.
#
# Data: survival's `tobin` (Tobin 1958: expenditure on durable goods,
# `durable`, of 20 households, censored at 0; `age`, `quant` liquidity
# ratio), written to tests/reference/tobin.csv.
# Fit: survreg(Surv(durable, durable > 0, type = "left") ~ age + quant,
#              data = tobin, dist = "gaussian")
# with survreg.control(rel.tolerance = 1e-12, maxiter = 200).
# tobit_survreg.csv: one row per estimate (term, estimate, se): the
# coefficients, log(sigma) ("Log(scale)"), sigma and the log-likelihood.

suppressPackageStartupMessages(library(survival))
data(tobin, package = "survival")
write.csv(tobin[, c("durable", "age", "quant")], "tests/reference/tobin.csv", row.names = FALSE)
fit <- survreg(Surv(durable, durable > 0, type = "left") ~ age + quant, data = tobin,
               dist = "gaussian", control = survreg.control(rel.tolerance = 1e-12,
                                                            maxiter = 200))
s <- summary(fit)$table
out <- data.frame(term = sub("^\\(Intercept\\)$", "Intercept", rownames(s)),
                  estimate = s[, 1], se = s[, 2])
out <- rbind(out, data.frame(term = "sigma", estimate = fit$scale,
                             se = fit$scale * s["Log(scale)", 2]),
             data.frame(term = "llf", estimate = as.numeric(logLik(fit)), se = NA))
write.csv(out, "tests/reference/tobit_survreg.csv", row.names = FALSE)
cat(R.version.string, "survival", as.character(packageVersion("survival")), "\n")
