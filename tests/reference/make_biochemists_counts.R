# Reference fits of count models beyond Poisson on bioChemists (MASS, pscl).
#
# How to run (from the project root; needs R with MASS and pscl, e.g.
# Debian's `apt-get install r-base-core r-cran-mass r-cran-pscl`):
#
#     Rscript tests/reference/make_biochemists_counts.R
#
# CI never runs this script: the tests read the CSV it writes,
# tests/reference/biochemists_counts.csv, with one row per estimate:
#   model      glm_nb   MASS::glm.nb(art ~ fem + mar + kid5 + phd + ment)
#              zip      pscl::zeroinfl(art ~ fem + mar + kid5 + phd + ment | ment + kid5,
#                                      dist = "poisson")
#              zinb     the same with dist = "negbin"
#   part       count, zero (the zero model's logit coefficients), theta, alpha
#              (alpha = 1 / theta with its delta-method standard error), llf
#   term       the coefficient's name (Intercept for "(Intercept)")
#   estimate, se
# The data are tests/reference/biochemists.csv (see make_biochemists.R for
# its coding). Fits are run to tight tolerances: glm.nb with
# control = glm.control(epsilon = 1e-12, maxit = 200); zeroinfl with
# zeroinfl.control(reltol = 1e-14, maxit = 10000): from pscl's
# default start (Poisson and logit GLMs) optim (BFGS) to a relative tolerance
# of 1e-14 (pscl 1.5.9's EM = TRUE fails with "object model_count not found"); the
# standard errors are from optim's Hessian of the log-likelihood.

suppressPackageStartupMessages({library(MASS); library(pscl)})
bio <- read.csv("tests/reference/biochemists.csv")
form <- art ~ fem + mar + kid5 + phd + ment
rows <- list()
add <- function(model, part, term, estimate, se) {
  term <- sub("^\\(Intercept\\)$", "Intercept", term)
  rows[[length(rows) + 1]] <<- data.frame(model = model, part = part, term = term,
                                          estimate = estimate, se = se)
}

nb <- glm.nb(form, data = bio, control = glm.control(epsilon = 1e-12, maxit = 200))
cf <- summary(nb)$coefficients
add("glm_nb", "count", rownames(cf), cf[, 1], cf[, 2])
add("glm_nb", "theta", "theta", nb$theta, nb$SE.theta)
add("glm_nb", "alpha", "alpha", 1 / nb$theta, nb$SE.theta / nb$theta^2)
add("glm_nb", "llf", "llf", as.numeric(logLik(nb)), NA)

for (dist in c("poisson", "negbin")) {
  zi <- zeroinfl(art ~ fem + mar + kid5 + phd + ment | ment + kid5, data = bio,
                 dist = dist,
                 control = zeroinfl.control(reltol = 1e-14, maxit = 10000))
  name <- if (dist == "poisson") "zip" else "zinb"
  s <- summary(zi)$coefficients
  add(name, "count", rownames(s$count), s$count[, 1], s$count[, 2])
  add(name, "zero", rownames(s$zero), s$zero[, 1], s$zero[, 2])
  if (dist == "negbin") {
    # SE.logtheta is the standard error of log(theta) = -log(alpha).
    add(name, "theta", "theta", zi$theta, zi$SE.logtheta * zi$theta)
    add(name, "alpha", "alpha", 1 / zi$theta, zi$SE.logtheta / zi$theta)
  }
  add(name, "llf", "llf", as.numeric(logLik(zi)), NA)
}
out <- do.call(rbind, rows)
out <- out[out$term != "Log(theta)", ]
write.csv(out, "tests/reference/biochemists_counts.csv", row.names = FALSE)
cat(R.version.string, "MASS", as.character(packageVersion("MASS")), "pscl",
    as.character(packageVersion("pscl")), "\n")
