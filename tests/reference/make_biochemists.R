# Reference data and fits from R for the bioChemists data set (pscl).
#
# How to run (from the project root; needs R with flexmix and pscl, e.g.
# Debian's `apt-get install r-base-core r-cran-flexmix r-cran-pscl r-cran-mass`):
#
#     Rscript tests/reference/make_biochemists.R
#
# CI never runs this script: the tests only read the CSVs it writes.
#
# Data coding in biochemists.csv (915 rows, columns art, fem, mar, kid5, phd,
# ment, in pscl's row order):
#   fem = 1 if fem == "Women", 0 if "Men"       (pscl factor levels Men, Women)
#   mar = 1 if mar == "Married", 0 if "Single"  (pscl factor levels Single, Married)
#   art, kid5, ment integers; phd numeric (prestige of the PhD department).
# This is the same design matrix as R's treatment contrasts on the factors
# (femWomen, marMarried), so the fits below equal fits on the factors.
#
# Fits (on the CSV as read back, so the terms are named fem and mar):
#   glm_k1      glm(art ~ fem + mar + kid5 + phd + ment, family = poisson)
#   flexmix_k2  flexmix(art ~ fem + mar + kid5 + phd + ment, k = 2,
#                       model = FLXMRglm(family = "poisson"))
# The reference K = 2 fit is the best of stepFlexmix(nrep = 50) runs for
# several seeds, with control = list(tolerance = 1e-12, iter.max = 5000,
# minprior = 0) so that EM is run to convergence (flexmix's default relative
# tolerance 1e-6 stops about 0.013 short of each maximum on this data set).
# Components are ordered by prior, largest first (flexmix's labels are
# arbitrary).
#
# Local maxima: 50 single starts, set.seed(s); flexmix(..., k = 2) for
# s = 1..50, with the tight control above; the converged log-likelihoods are
# grouped (within 1e-3) and each group's best run gives llf and the fem
# coefficients (components ordered by prior, largest first). The same 50 seeds
# with flexmix's default control are printed for comparison.
#
# Writes, next to this file:
#   biochemists.csv               the data
#   biochemists_flexmix.csv       model, component, term, value
#   biochemists_local_maxima.csv  llf, count, fem_comp1, fem_comp2
# and replaces its own section of VERSIONS.txt (flexmix_fits.R rewrites that
# file whole, so run this script after it).
#
# Made with R 4.2.2 Patched (2022-11-10 r83330), flexmix 2.3.18,
# modeltools 0.2.23, pscl 1.5.5, MASS 7.3.58.2, x86_64-pc-linux-gnu.

suppressPackageStartupMessages({
  library(flexmix)
  library(pscl)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"

TIGHT <- list(tolerance = 1e-12, iter.max = 5000, minprior = 0)
FORMULA <- art ~ fem + mar + kid5 + phd + ment
TERMS <- c("(Intercept)", "fem", "mar", "kid5", "phd", "ment")
STEP_SEEDS <- 1:5
NREP <- 50
SINGLE_SEEDS <- 1:50

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
data("bioChemists", package = "pscl")
stopifnot(identical(levels(bioChemists$fem), c("Men", "Women")),
          identical(levels(bioChemists$mar), c("Single", "Married")))
out <- data.frame(art = as.integer(bioChemists$art),
                  fem = as.integer(bioChemists$fem == "Women"),
                  mar = as.integer(bioChemists$mar == "Married"),
                  kid5 = as.integer(bioChemists$kid5),
                  phd = as.numeric(bioChemists$phd),
                  ment = as.integer(bioChemists$ment))
stopifnot(all(out$kid5 == bioChemists$kid5), all(out$ment == bioChemists$ment),
          all(out$art == bioChemists$art))
data_file <- file.path(here, "biochemists.csv")
write.csv(out, data_file, row.names = FALSE, quote = FALSE)
d <- read.csv(data_file)
stopifnot(isTRUE(all.equal(d, out, check.attributes = FALSE)), nrow(d) == 915)
cat(sprintf("biochemists.csv: %d rows; fem=1 (Women) %d, mar=1 (Married) %d\n",
            nrow(d), sum(d$fem), sum(d$mar)))

# ---------------------------------------------------------------------------
# K = 1: Poisson glm
# ---------------------------------------------------------------------------
g <- glm(FORMULA, family = poisson, data = d)
g_fac <- glm(FORMULA, family = poisson, data = bioChemists)
stopifnot(abs(as.numeric(logLik(g)) - as.numeric(logLik(g_fac))) < 1e-9)
cat(sprintf("glm K=1: llf %.10f\n", as.numeric(logLik(g))))

# ---------------------------------------------------------------------------
# Mixture log-likelihood by hand, for checks
# theta = (beta_1, beta_2, log(pi_2 / pi_1))
# ---------------------------------------------------------------------------
X <- model.matrix(FORMULA, d)
y <- d$art
p <- ncol(X)
mix_ll <- function(theta, gradient = FALSE) {
  b1 <- theta[1:p]; b2 <- theta[p + 1:p]; a <- theta[2 * p + 1]
  mu1 <- exp(drop(X %*% b1)); mu2 <- exp(drop(X %*% b2))
  l1 <- -log1p(exp(a)) + dpois(y, mu1, log = TRUE)
  l2 <- a - log1p(exp(a)) + dpois(y, mu2, log = TRUE)
  m <- pmax(l1, l2)
  ll <- sum(m + log(exp(l1 - m) + exp(l2 - m)))
  if (!gradient) return(ll)
  w2 <- 1 / (1 + exp(l1 - l2)); w1 <- 1 - w2
  c(colSums(w1 * (y - mu1) * X), colSums(w2 * (y - mu2) * X), sum(w2 - plogis(a)))
}
mix_grad <- function(theta) mix_ll(theta, gradient = TRUE)
theta_of <- function(fit) {
  cf <- parameters(fit)
  c(cf[, 1], cf[, 2], log(fit@prior[2] / fit@prior[1]))
}

# Components ordered by prior, largest first (ties: flexmix's order).
ordered_parts <- function(fit) {
  cf <- parameters(fit)
  rownames(cf) <- sub("^coef\\.", "", rownames(cf))
  stopifnot(identical(rownames(cf), TERMS))
  o <- order(-fit@prior)
  list(coef = cf[, o, drop = FALSE], prior = fit@prior[o])
}

fit_one <- function(seed, control = TIGHT) {
  set.seed(seed)
  flexmix(FORMULA, data = d, k = 2, model = FLXMRglm(family = "poisson"),
          control = control)
}

# ---------------------------------------------------------------------------
# K = 2: stepFlexmix(nrep = 50) for several seeds
# ---------------------------------------------------------------------------
step_fits <- list()
cat("\nstepFlexmix(k = 2, nrep = 50): best llf per seed\n")
cat(sprintf("%5s %16s %16s\n", "seed", "tight control", "default control"))
for (s in STEP_SEEDS) {
  set.seed(s)
  ft <- stepFlexmix(FORMULA, data = d, k = 2, nrep = NREP,
                    model = FLXMRglm(family = "poisson"), control = TIGHT,
                    verbose = FALSE)
  set.seed(s)
  fd <- stepFlexmix(FORMULA, data = d, k = 2, nrep = NREP,
                    model = FLXMRglm(family = "poisson"), verbose = FALSE)
  step_fits[[length(step_fits) + 1]] <- ft
  cat(sprintf("%5d %16.8f %16.8f\n", s, as.numeric(logLik(ft)),
              as.numeric(logLik(fd))))
}
step_ll <- sapply(step_fits, function(f) as.numeric(logLik(f)))
stopifnot(max(step_ll) - min(step_ll) < 1e-6)
best <- step_fits[[which.max(step_ll)]]
stopifnot(best@k == 2, best@converged)
best_ll <- as.numeric(logLik(best))
hand_ll <- mix_ll(theta_of(best))
stopifnot(abs(hand_ll - best_ll) < 1e-8)
cat(sprintf("best K=2 llf %.10f (by hand %.10f), iterations %d\n",
            best_ll, hand_ll, best@iter))

# ---------------------------------------------------------------------------
# Long-format fits
# ---------------------------------------------------------------------------
rows <- list(
  data.frame(model = "glm_k1", component = 0, term = c("llf", "nobs"),
             value = c(as.numeric(logLik(g)), nobs(g))),
  data.frame(model = "glm_k1", component = 1, term = c("prior", TERMS),
             value = c(1, unname(coef(g)[c("(Intercept)", TERMS[-1])]))),
  data.frame(model = "flexmix_k2", component = 0, term = c("llf", "nobs"),
             value = c(best_ll, nrow(d))))
bp <- ordered_parts(best)
for (k in 1:2) {
  rows[[length(rows) + 1]] <- data.frame(
    model = "flexmix_k2", component = k, term = c("prior", TERMS),
    value = c(bp$prior[k], unname(bp$coef[, k])))
}
fits <- do.call(rbind, rows)
fits$value <- sprintf("%.15g", fits$value)
write.csv(fits, file.path(here, "biochemists_flexmix.csv"), row.names = FALSE,
          quote = FALSE)
print(bp)

# ---------------------------------------------------------------------------
# Local maxima over single starts
# ---------------------------------------------------------------------------
single <- function(control) {
  do.call(rbind, lapply(SINGLE_SEEDS, function(s) {
    f <- fit_one(s, control)
    if (f@k < 2) {
      return(data.frame(seed = s, k = f@k, llf = as.numeric(logLik(f)),
                        iter = f@iter, converged = f@converged,
                        fem1 = NA, fem2 = NA, fit = I(list(f))))
    }
    op <- ordered_parts(f)
    data.frame(seed = s, k = f@k, llf = as.numeric(logLik(f)), iter = f@iter,
               converged = f@converged, fem1 = op$coef["fem", 1],
               fem2 = op$coef["fem", 2], fit = I(list(f)))
  }))
}
group_llf <- function(ll, tol = 1e-3) {
  o <- order(-ll); id <- integer(length(ll)); g <- 0; last <- Inf
  for (i in o) { if (last - ll[i] > tol) g <- g + 1; id[i] <- g; last <- ll[i] }
  id
}

tight <- single(TIGHT)
stopifnot(all(tight$k == 2), all(tight$converged))
tight$group <- group_llf(tight$llf)
maxima <- do.call(rbind, lapply(split(tight, tight$group), function(t) {
  b <- t[which.max(t$llf), ]
  data.frame(llf = b$llf, count = nrow(t), fem_comp1 = b$fem1, fem_comp2 = b$fem2,
             spread = max(t$llf) - min(t$llf), seeds = paste(t$seed, collapse = " "),
             fit = I(b$fit))
}))
maxima <- maxima[order(-maxima$llf), ]
stopifnot(abs(maxima$llf[1] - best_ll) < 1e-6)

# Each group's end point polished by Newton steps (analytic gradient,
# Hessian by differencing it): the log-likelihood and parameters there, the
# gradient at flexmix's point, and the largest Hessian eigenvalue (negative =
# a strict local maximum).
cat("\nLocal maxima over", length(SINGLE_SEEDS), "single starts (tight control)\n")
for (i in seq_len(nrow(maxima))) {
  th <- theta_of(maxima$fit[[i]])
  th2 <- th
  for (it in 1:20) {
    H <- optimHess(th2, mix_ll, mix_grad)
    th2 <- th2 - solve(H, mix_grad(th2))
  }
  cat(sprintf(paste("llf %.8f count %2d fem %.5f %.5f | spread %.1e | max|grad| %.1e;",
                    "Newton: llf %+.1e, max|grad| %.1e, max|dtheta| %.1e, max eig(H) %.3g\n"),
              maxima$llf[i], maxima$count[i], maxima$fem_comp1[i], maxima$fem_comp2[i],
              maxima$spread[i], max(abs(mix_grad(th))), mix_ll(th2) - mix_ll(th),
              max(abs(mix_grad(th2))), max(abs(th2 - th)),
              max(eigen(H, symmetric = TRUE, only.values = TRUE)$values)))
  cat("  seeds:", maxima$seeds[i], "\n")
}
lm_out <- maxima[, c("llf", "count", "fem_comp1", "fem_comp2")]
for (j in c("llf", "fem_comp1", "fem_comp2")) lm_out[[j]] <- sprintf("%.15g", lm_out[[j]])
write.csv(lm_out, file.path(here, "biochemists_local_maxima.csv"), row.names = FALSE,
          quote = FALSE)

dflt <- single(list())
dflt$group <- NA_integer_
for (i in seq_len(nrow(dflt))) {
  dflt$group[i] <- tight$group[tight$seed == dflt$seed[i]]
}
cat("\nSame seeds, flexmix's default control (tolerance 1e-6, minprior 0.05):\n")
cat(sprintf("components lost: %d; not converged: %d\n", sum(dflt$k < 2),
            sum(!dflt$converged)))
for (gi in sort(unique(tight$group))) {
  t <- dflt[dflt$group == gi, ]
  cat(sprintf("tight maximum %.4f: %2d of its seeds stop at llf %.4f .. %.4f\n",
              maxima$llf[gi], nrow(t), min(t$llf), max(t$llf)))
}

# ---------------------------------------------------------------------------
# VERSIONS.txt: replace this script's section, keep the rest
# ---------------------------------------------------------------------------
vfile <- file.path(here, "VERSIONS.txt")
header <- "[make_biochemists.R]"
old <- if (file.exists(vfile)) readLines(vfile) else character()
start <- match(header, old)
if (!is.na(start)) {
  after <- which(seq_along(old) > start & grepl("^\\[", old))
  stop_at <- if (length(after)) after[1] - 1 else length(old)
  old <- old[-(start:stop_at)]
}
while (length(old) && old[length(old)] == "") old <- old[-length(old)]
writeLines(c(old, "", header, R.version.string,
             paste("flexmix", as.character(packageVersion("flexmix"))),
             paste("modeltools", as.character(packageVersion("modeltools"))),
             paste("pscl", as.character(packageVersion("pscl"))),
             paste("MASS", as.character(packageVersion("MASS"))),
             paste("platform", R.version$platform)),
           vfile)
