# R's flexmix on the workloads of benchmarks/flexmix_workloads.py.
#
#   Rscript flexmix_workloads.R WORKLOAD DATA.csv K FAMILY REPEATS [N_BOOT]
#
# WORKLOAD is "fit" (one flexmix() call, flexmix's default single random
# start, timed REPEATS times with seeds 1..REPEATS), "select_k" (stepFlexmix
# over k = 1..K with nrep = 3, flexmix's way of choosing K) or "bootstrap"
# (a parametric bootstrap likelihood-ratio test of 1 against 2 components
# with N_BOOT replicates, each refitting both models with flexmix). The data
# file has the response y and the covariates x1, x2, ...; the formula is
# y ~ x1 + x2 + ... with an intercept. Prints "seconds", "llf" and "iter"
# lines, one per repeat, for benchmarks/run.py to read.
suppressMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
workload <- args[1]
data <- read.csv(args[2])
K <- as.integer(args[3])
family <- args[4]
repeats <- as.integer(args[5])
n_boot <- if (length(args) >= 6) as.integer(args[6]) else 0L
covariates <- setdiff(names(data), "y")
formula <- as.formula(paste("y ~", paste(covariates, collapse = " + ")))
# minprior = 0: keep every component, as emformula does (flexmix's default
# 0.05 drops small ones and would fit a different model).
control <- list(minprior = 0)

report <- function(seconds, llf, iter) {
  cat(sprintf("seconds %.6f\nllf %.10f\niter %d\n", seconds, llf, as.integer(iter)))
}

if (workload == "fit") {
  for (r in seq_len(repeats)) {
    set.seed(r)
    t <- system.time(fit <- flexmix(formula, data = data, k = K,
                                    model = FLXMRglm(family = family),
                                    control = control))[["elapsed"]]
    report(t, logLik(fit), fit@iter)
  }
} else if (workload == "select_k") {
  for (r in seq_len(repeats)) {
    set.seed(r)
    t <- system.time(fits <- stepFlexmix(formula, data = data, k = 1:K, nrep = 3,
                                         model = FLXMRglm(family = family),
                                         control = control, verbose = FALSE))[["elapsed"]]
    best <- getModel(fits, "BIC")
    report(t, logLik(best), best@k)
  }
} else if (workload == "bootstrap") {
  for (r in seq_len(repeats)) {
    set.seed(r)
    t <- system.time({
      fit1 <- flexmix(formula, data = data, k = 1, model = FLXMRglm(family = family),
                      control = control)
      fit2 <- flexmix(formula, data = data, k = 2, model = FLXMRglm(family = family),
                      control = control)
      observed <- 2 * (logLik(fit2) - logLik(fit1))
      mu <- fitted(fit1)[, 1]
      null <- numeric(n_boot)
      for (b in seq_len(n_boot)) {
        boot <- data
        boot$y <- rpois(nrow(data), mu)
        f1 <- flexmix(formula, data = boot, k = 1, model = FLXMRglm(family = family),
                      control = control)
        f2 <- flexmix(formula, data = boot, k = 2, model = FLXMRglm(family = family),
                      control = control)
        null[b] <- 2 * (logLik(f2) - logLik(f1))
      }
    })[["elapsed"]]
    report(t, observed, n_boot)
  }
} else {
  stop("unknown workload ", workload)
}
