# Reference ordinal fit from R's MASS::polr on MASS's housing data.
#
# How to run (from the project root; needs R with MASS, e.g. Debian's
# `apt-get install r-base-core r-cran-mass`):
#
#     Rscript tests/reference/make_housing_polr.R
#
# CI never runs this script: the tests read the CSVs it writes.
#
# Data: MASS's `housing` (Madsen 1976: satisfaction of 1681 tenants in 72
# cells), written to tests/reference/housing.csv with Sat as its code
# (0 Low, 1 Medium, 2 High) and the factors as their labels; Freq counts
# the tenants of a cell.
# Fit: polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing,
#           method = "logistic", Hess = TRUE) with
#      control = list(reltol = 1e-14, maxit = 5000): treatment contrasts,
#      factor levels in R's order (Infl Low < Medium < High; Type Tower,
#      Apartment, Atrium, Terrace; Cont Low, High).
# housing_polr.csv: term, estimate, se (from optim's finite-difference
# Hessian: good to about 1e-4) for the coefficients and the cut points
# (zeta "Low|Medium", "Medium|High"), and the log-likelihood.

suppressPackageStartupMessages(library(MASS))
h <- housing
out_data <- data.frame(Sat = as.integer(h$Sat) - 1L, Infl = as.character(h$Infl),
                       Type = as.character(h$Type), Cont = as.character(h$Cont),
                       Freq = h$Freq)
write.csv(out_data, "tests/reference/housing.csv", row.names = FALSE)
fit <- polr(Sat ~ Infl + Type + Cont, weights = Freq, data = h, method = "logistic",
            Hess = TRUE, control = list(reltol = 1e-14, maxit = 5000))
se <- sqrt(diag(vcov(fit)))
out <- data.frame(term = c(names(coef(fit)), names(fit$zeta), "llf"),
                  estimate = c(coef(fit), fit$zeta, as.numeric(logLik(fit))),
                  se = c(se[names(coef(fit))], se[names(fit$zeta)], NA))
write.csv(out, "tests/reference/housing_polr.csv", row.names = FALSE)
cat(R.version.string, "MASS", as.character(packageVersion("MASS")), "\n")
