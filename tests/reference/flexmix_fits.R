# Reference fits from R flexmix for emformula's extension features.
#
# How to run (from the project root; needs R and the flexmix package, e.g.
# Debian's `apt-get install r-base-core r-cran-flexmix`):
#
#     python tests/reference/make_data.py
#     Rscript tests/reference/flexmix_fits.R
#
# CI never runs this script: the tests only read the CSVs it writes.
#
# Reads the data sets written by make_data.py and fits, with flexmix,
#   concomitant_poisson  y ~ x, Poisson, K = 2, concomitant FLXPmultinom(~ z)
#   fixed_gaussian       y ~ x1, FLXMRglmfix(fixed = ~ x2, varFix = TRUE), K = 2
#   grouped_poisson      y ~ x | id, Poisson, K = 2
#   binomial_counts      cbind(succ, fail) ~ x, binomial, K = 2
#   gaussian_k3          y ~ x, Gaussian, K = 3
# each the best (highest log-likelihood) of 20 random starts (set.seed(s),
# s = 1..20), with control = list(tolerance = 1e-12, iter.max = 5000,
# minprior = 0); standard errors from refit() (optim BFGS + numerical Hessian).
#
# Writes, next to this file:
#   flexmix_extension_fits.csv  one row per model x component x parameter
#   flexmix_ml_polish.csv       the exact mixture log-likelihood maximised from
#                               the flexmix fit (matters for the Gaussian fits,
#                               whose flexmix sigma is not the ML estimate)
#   VERSIONS.txt                R and flexmix versions
# Components are relabelled to the order of truth.csv (see README.md).

suppressPackageStartupMessages(library(flexmix))

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"

CONTROL <- list(tolerance = 1e-12, iter.max = 5000, minprior = 0)
NSTARTS <- 20
truth <- read.csv(file.path(here, "truth.csv"), check.names = FALSE)

# ---------------------------------------------------------------------------
# Model specifications
# ---------------------------------------------------------------------------
specs <- list(
  concomitant_poisson = list(
    formula = y ~ x, K = 2,
    model = function() FLXMRglm(family = "poisson"),
    concomitant = function() FLXPmultinom(~ z)),
  fixed_gaussian = list(
    formula = y ~ x1, K = 2,
    model = function() FLXMRglmfix(formula = . ~ ., fixed = ~ x2, varFix = TRUE,
                                   family = "gaussian"),
    concomitant = function() FLXPconstant()),
  grouped_poisson = list(
    formula = y ~ x | id, K = 2,
    model = function() FLXMRglm(family = "poisson"),
    concomitant = function() FLXPconstant()),
  binomial_counts = list(
    formula = cbind(succ, fail) ~ x, K = 2,
    model = function() FLXMRglm(family = "binomial"),
    concomitant = function() FLXPconstant()),
  gaussian_k3 = list(
    formula = y ~ x, K = 3,
    model = function() FLXMRglm(family = "gaussian"),
    concomitant = function() FLXPconstant())
)

best_of_starts <- function(spec, data) {
  fits <- lapply(seq_len(NSTARTS), function(s) {
    set.seed(s)
    tryCatch(flexmix(spec$formula, data = data, k = spec$K, model = spec$model(),
                     concomitant = spec$concomitant(), control = CONTROL),
             error = function(e) NULL)
  })
  ll <- sapply(fits, function(f) if (is.null(f) || f@k < spec$K) -Inf else as.numeric(logLik(f)))
  best <- which.max(ll)
  list(fit = fits[[best]], seed = best,
       at_best = sum(abs(ll - ll[best]) < 1e-6),
       lost_component = sum(!is.finite(ll)))
}

# ---------------------------------------------------------------------------
# Component order: the permutation of flexmix's labels closest to truth.csv
# ---------------------------------------------------------------------------
permutations <- function(n) {
  if (n == 1) return(matrix(1L, 1, 1))
  p <- permutations(n - 1)
  do.call(rbind, lapply(seq_len(n), function(i) cbind(i, ifelse(p >= i, p + 1L, p))))
}

coef_matrix <- function(fit) {
  # terms x components, coefficient names without flexmix's "coef." prefix
  p <- parameters(fit)
  p <- p[grepl("^coef\\.", rownames(p)), , drop = FALSE]
  rownames(p) <- sub("^coef\\.", "", rownames(p))
  p
}

choose_order <- function(name, fit) {
  est <- coef_matrix(fit)
  tr <- truth[truth$model == name, ]
  ref <- sapply(seq_len(fit@k), function(k)
    sapply(rownames(est), function(t) tr$value[tr$component == k & tr$parameter == t]))
  perms <- permutations(fit@k)
  cost <- apply(perms, 1, function(o) sum(abs(est[, o, drop = FALSE] - ref)))
  perms[which.min(cost), ]
}

# Re-base the multinomial-logit coefficients on a new reference component:
# new component j (= old component order[j]) gets gamma[order[j]] - gamma[order[1]],
# old component 1 having gamma = 0.  A linear map A, so vcov -> A V A'.
rebase <- function(order, nterms) {
  K <- length(order)
  A <- matrix(0, (K - 1) * nterms, (K - 1) * nterms)
  block <- function(old) if (old == 1) NULL else (old - 2) * nterms + seq_len(nterms)
  for (j in 2:K) {
    rows <- (j - 2) * nterms + seq_len(nterms)
    if (!is.null(block(order[j]))) A[rows, block(order[j])] <- A[rows, block(order[j])] + diag(nterms)
    if (!is.null(block(order[1]))) A[rows, block(order[1])] <- A[rows, block(order[1])] - diag(nterms)
  }
  A
}

# ---------------------------------------------------------------------------
# Log-likelihood recomputed by hand from the reported parameters
# ---------------------------------------------------------------------------
loglik_by_hand <- function(name, fit, data) {
  K <- fit@k
  est <- coef_matrix(fit)
  pars <- parameters(fit)
  logf <- sapply(seq_len(K), function(k) {
    b <- est[, k]
    switch(name,
      concomitant_poisson = , grouped_poisson =
        dpois(data$y, exp(b["(Intercept)"] + b["x"] * data$x), log = TRUE),
      binomial_counts =
        dbinom(data$succ, data$succ + data$fail,
               plogis(b["(Intercept)"] + b["x"] * data$x), log = TRUE),
      fixed_gaussian =
        dnorm(data$y, b["(Intercept)"] + b["x1"] * data$x1 + b["x2"] * data$x2,
              pars["sigma", k], log = TRUE),
      gaussian_k3 =
        dnorm(data$y, b["(Intercept)"] + b["x"] * data$x, pars["sigma", k], log = TRUE))
  })
  if (name == "concomitant_poisson") {
    g <- parameters(fit, which = "concomitant")        # terms x K, column 1 = 0
    eta <- cbind(1, data$z) %*% g
    logprior <- eta - apply(eta, 1, function(e) max(e) + log(sum(exp(e - max(e)))))
  } else {
    logprior <- matrix(log(fit@prior), nrow(data), K, byrow = TRUE)
  }
  group <- if (name == "grouped_poisson") data$id else seq_len(nrow(data))
  # grouped data: the whole group's product of densities, one prior per group
  logf_g <- rowsum(logf, group, reorder = FALSE)
  logprior_g <- logprior[!duplicated(group), , drop = FALSE]
  lp <- logf_g + logprior_g
  sum(apply(lp, 1, function(e) max(e) + log(sum(exp(e - max(e))))))
}

# ---------------------------------------------------------------------------
# Exact mixture log-likelihood maximised from the flexmix fit (BFGS, then
# Newton steps on a numerical Hessian of the analytic gradient)
# ---------------------------------------------------------------------------
ml_polish <- function(fit) {
  fn <- FLXlogLikfun(fit)
  gr <- FLXgradlogLikfun(fit)
  if (is.null(gr)) {
    # no analytic gradient (FLXMRglmfix): central differences
    gr <- function(par) sapply(seq_along(par), function(i) {
      h <- 1e-5 * max(1, abs(par[i])); e <- replace(numeric(length(par)), i, h)
      (fn(par + e) - fn(par - e)) / (2 * h)
    })
  }
  par <- FLXgetParameters(fit)
  o <- optim(par, fn, gr, method = "BFGS",
             control = list(fnscale = -1, reltol = 1e-16, maxit = 10000))
  par <- o$par
  for (i in 1:50) {
    g <- gr(par)
    if (max(abs(g)) < 1e-9) break
    H <- optimHess(par, fn, gr)
    step <- tryCatch(solve(H, g), error = function(e) NULL)
    if (is.null(step)) break
    cand <- par - step
    if (fn(cand) < fn(par) - 1e-12) break
    par <- cand
  }
  H <- optimHess(par, fn, gr)
  list(par = par, vcov = -solve(H), loglik = fn(par), grad = max(abs(gr(par))),
       fit = flexmix:::FLXreplaceParameters(fit, par))
}

# ---------------------------------------------------------------------------
# Rows of one fit: estimates from `fit` (a flexmix object), standard errors
# from (theta, V), a parameter vector and its covariance in flexmix's
# FLXgetParameters() parametrisation (coefficients, log(sigma), concomitant
# log-odds against flexmix's component 1); theta's own values go to
# `theta_estimate`.  Components in the order `order` (our j = flexmix's order[j]).
# ---------------------------------------------------------------------------
param_rows <- function(name, fit, order, theta, V, prior) {
  K <- fit@k
  se_all <- sqrt(diag(V))
  comps1 <- lapply(fit@components, "[[", 1)
  midx <- grep("^model\\.1_", names(theta))
  tabs <- flexmix:::refit_optim(fit@model[[1]], components = comps1,
                                coef = theta[midx], se = se_all[midx])
  Design <- flexmix:::FLXgetDesign(fit@model[[1]], comps1)
  pars <- parameters(fit)
  est <- coef_matrix(fit)
  out <- list()
  for (j in seq_len(K)) {
    k <- order[j]
    terms <- rownames(est)
    part <- data.frame(row.names = NULL, component = j, flexmix_component = k,
                       prior = unname(prior[k]), parameter = terms,
                       estimate = unname(est[terms, k]),
                       se = unname(tabs[[k]][terms, "Std. Error"]),
                       theta_estimate = unname(tabs[[k]][terms, "Estimate"]))
    if ("sigma" %in% rownames(pars)) {
      # theta holds log(sigma); summary(refit()) leaves it out, its vcov has it
      idx <- midx[which(as.logical(Design[k, ]) & grepl("sigma$", colnames(Design)))]
      part <- rbind(part, data.frame(
        row.names = NULL, component = j, flexmix_component = k, prior = unname(prior[k]),
        parameter = c("sigma", "log(sigma)"),
        estimate = c(pars["sigma", k], log(pars["sigma", k])),
        se = c(NA, se_all[idx]), theta_estimate = c(exp(theta[idx]), theta[idx])))
    }
    out[[j]] <- part
  }
  # mixing proportions: multinomial logit, reference = our component 1
  cidx <- grep("^concomitant_", names(theta))
  if (name == "concomitant_poisson") {
    g <- fit@concomitant@coef                          # terms x K, column 1 = 0
    cterms <- rownames(g)
  } else {
    g <- matrix(log(prior) - log(prior[1]), 1, K)      # alpha_k = log(p_k / p_1)
    cterms <- "alpha"
  }
  A <- rebase(order, length(cterms))
  g_new <- g[, order, drop = FALSE] - g[, order[1]]
  t_new <- A %*% theta[cidx]
  se_new <- sqrt(diag(A %*% V[cidx, cidx, drop = FALSE] %*% t(A)))
  for (j in seq_len(K)) {
    if (j == 1) {
      se <- rep(NA, length(cterms)); tj <- rep(0, length(cterms))
    } else {
      pos <- (j - 2) * length(cterms) + seq_along(cterms)
      se <- se_new[pos]; tj <- t_new[pos]
    }
    out[[K + j]] <- data.frame(row.names = NULL, component = j, flexmix_component = order[j],
                               prior = unname(prior[order[j]]),
                               parameter = paste0("concomitant:", cterms),
                               estimate = unname(g_new[, j]), se = se, theta_estimate = tj)
  }
  do.call(rbind, out)
}

mean_prior <- function(name, fit, data) {
  # the mixing proportions held by fit@concomitant (FLXreplaceParameters()
  # updates these, not fit@prior); for a concomitant model the mean over
  # observations of the fitted prior probabilities (what flexmix stores in fit@prior)
  coef <- fit@concomitant@coef
  if (name != "concomitant_poisson") return(as.vector(coef))
  eta <- cbind(1, data$z) %*% coef
  p <- exp(eta - apply(eta, 1, max))
  colMeans(p / rowSums(p))
}

# ---------------------------------------------------------------------------
# Fit, refit, write
# ---------------------------------------------------------------------------
rows <- list()
ml_rows <- list()
for (name in names(specs)) {
  spec <- specs[[name]]
  data <- read.csv(file.path(here, paste0(name, ".csv")))
  t0 <- proc.time()[["elapsed"]]
  b <- best_of_starts(spec, data)
  seconds <- proc.time()[["elapsed"]] - t0   # printed only: keeps the CSVs reproducible
  fit <- b$fit
  order <- choose_order(name, fit)
  ll <- logLik(fit)
  ll_hand <- loglik_by_hand(name, fit, data)
  # for the concomitant model fit@prior comes from the last E-step, so it agrees
  # with the mean fitted prior at the final parameters to about 1e-7 only
  stopifnot(isTRUE(all.equal(unname(mean_prior(name, fit, data)), as.vector(fit@prior), tolerance = 1e-6)))
  rf <- refit(fit)                          # method = "optim"
  tab <- param_rows(name, fit, order, rf@coef, rf@vcov, fit@prior)
  names(tab)[names(tab) == "theta_estimate"] <- "refit_estimate"
  rows[[name]] <- cbind(
    data.frame(model = name, K = fit@k), tab,
    data.frame(loglik = as.numeric(ll), loglik_recomputed = ll_hand,
               df = attr(ll, "df"), nobs = attr(ll, "nobs"),
               AIC = AIC(fit), BIC = BIC(fit),
               iterations = fit@iter, converged = fit@converged,
               best_seed = b$seed, starts_at_best = b$at_best,
               starts_lost_component = b$lost_component))

  ml <- ml_polish(fit)
  mtab <- param_rows(name, ml$fit, order, ml$par, ml$vcov, mean_prior(name, ml$fit, data))
  mtab$theta_estimate <- NULL
  ml_rows[[name]] <- cbind(
    data.frame(model = name, K = fit@k), mtab,
    data.frame(loglik = ml$loglik, loglik_flexmix = as.numeric(ll),
               max_abs_gradient = ml$grad))
  cat(sprintf("%-20s loglik %.6f (by hand %.6f, ML %.6f, |grad| %.1e) df %d iter %d starts at best %d/%d, order %s, %.1fs\n",
              name, as.numeric(ll), ll_hand, ml$loglik, ml$grad, attr(ll, "df"), fit@iter,
              b$at_best, NSTARTS, paste(order, collapse = ","), seconds))
}

write.csv(do.call(rbind, rows), file.path(here, "flexmix_extension_fits.csv"), row.names = FALSE)
write.csv(do.call(rbind, ml_rows), file.path(here, "flexmix_ml_polish.csv"), row.names = FALSE)

writeLines(c(R.version.string,
             paste("flexmix", as.character(packageVersion("flexmix"))),
             paste("modeltools", as.character(packageVersion("modeltools"))),
             paste("platform", R.version$platform)),
           file.path(here, "VERSIONS.txt"))
