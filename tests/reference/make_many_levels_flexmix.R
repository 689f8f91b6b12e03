# flexmix's best log-likelihoods for many_levels.csv: a K = 2 Poisson mixture
# with a 60-level factor, where random starts end at many local maxima.
#
# How to run (from the project root; needs R with flexmix, e.g. Debian's
# `apt-get install r-base-core r-cran-flexmix`):
#
#     Rscript tests/reference/make_many_levels_flexmix.R
#
# CI never runs this script: the tests only read the CSV it writes. It reads
# tests/reference/many_levels.csv (3000 rows: y count, x numeric, g a factor
# with levels g00..g59; treatment coding, g00 the reference level).
#
# Fits, all with control = list(tolerance = 1e-12, iter.max = 5000,
# minprior = 0) (flexmix's default relative tolerance 1e-6 stops early):
#   full    flexmix(y ~ x + g, k = 2, model = FLXMRglm(family = "poisson"))
#   nested  flexmix(y ~ x, k = 2,
#                   model = FLXMRglmfix(fixed = ~ g, family = "poisson"))
#           (x and the intercept per component, the g effects shared)
# 1. full: stepFlexmix(nrep = 50) after set.seed(s), s = 1..4. stepFlexmix's
#    loop is replicated here (set.seed(s), then 50 consecutive flexmix()
#    calls, the first strictly best kept), so that every start's llf,
#    iterations and convergence are kept; a cheap check below shows that the
#    replica and stepFlexmix give identical log-likelihoods. The 50 starts of
#    s = 1 are the single starts whose local maxima are tabulated (grouped
#    when within 1e-3).
# 2. nested: set.seed(s); flexmix(...) for s = 1..20, the best kept.
# 3. full started from the nested fit's posteriors:
#    flexmix(y ~ x + g, ..., cluster = posterior(nested_best)).
# The nested model is the full model with the g effects equal across
# components, so the full model's maximum is at least the nested llf.
#
# Writes, next to this file:
#   many_levels_flexmix.csv   fit, llf, count
#     full_best         best llf over steps 1 and 3; count = how many of the
#                       50 single starts (seed 1) reach it within 1e-3
#     nested_best       best of step 2; count = its starts within 1e-3
#     full_from_nested  step 3; count = 1
#     full_local_max    one row per distinct maximum of the 50 single starts
#                       (the best llf of the group), count = starts in it
# and replaces its own section of VERSIONS.txt (flexmix_fits.R rewrites that
# file whole, so run this script after it). The best fit's priors and
# coefficients are printed (lines BEST_PRIOR / BEST_COEF, full precision) so
# that its log-likelihood can be recomputed elsewhere.
#
# Independent tasks (the four stepFlexmix seeds, the 20 nested starts) run in
# parallel::mclapply with MC_CORES processes (environment variable, default
# 2); each task sets its own seed, so the output does not depend on it.
# Progress (one line per start) goes to stderr.
#
# Run time: 103 min (93 min of CPU) on 2 cores shared with other jobs. The
# 200 full-model starts take 156 to 1983 EM iterations (609 on average), each
# about 0.05 s on an idle core (two weighted glm.fit calls on 3000 x 61).
#
# Made with R 4.2.2 Patched (2022-11-10 r83330), flexmix 2.3.18,
# modeltools 0.2.23, x86_64-pc-linux-gnu.

suppressPackageStartupMessages({
  library(flexmix)
  library(parallel)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"

TIGHT <- list(tolerance = 1e-12, iter.max = 5000, minprior = 0)
FULL <- y ~ x + g
STEP_SEEDS <- 1:4
NREP <- 50
NESTED_SEEDS <- 1:20
GROUP_TOL <- 1e-3
CORES <- as.integer(Sys.getenv("MC_CORES", "2"))
t_start <- proc.time()[["elapsed"]]
elapsed <- function() proc.time()[["elapsed"]] - t_start
# Progress on stderr, one line per start.
progress <- function(msg) message(sprintf("[%5.0f s] %s", elapsed(), msg))

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
d <- read.csv(file.path(here, "many_levels.csv"), stringsAsFactors = FALSE)
LEVELS <- sprintf("g%02d", 0:59)
stopifnot(identical(names(d), c("y", "x", "g")), nrow(d) == 3000,
          setequal(unique(d$g), LEVELS), all(d$y >= 0), all(d$y == round(d$y)))
d$g <- factor(d$g, levels = LEVELS)
X <- model.matrix(FULL, d)
y <- d$y
stopifnot(ncol(X) == 61, identical(colnames(X)[1:3], c("(Intercept)", "x", "gg01")))
cat(sprintf("many_levels.csv: %d rows, %d levels, %d columns in y ~ x + g\n",
            nrow(d), nlevels(d$g), ncol(X)))

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
# Coefficients as a (columns of X) x K matrix, components ordered by prior,
# largest first; works for FLXMRglm and FLXMRglmfix fits (shared terms are
# repeated in each component by parameters()).
parts <- function(fit) {
  cf <- parameters(fit)
  rownames(cf) <- sub("^coef\\.", "", rownames(cf))
  stopifnot(setequal(rownames(cf), colnames(X)))
  o <- order(-fit@prior)
  list(coef = cf[colnames(X), o, drop = FALSE], prior = fit@prior[o])
}
mix_ll <- function(coef, prior) {
  l <- sapply(seq_along(prior), function(k)
    log(prior[k]) + dpois(y, exp(drop(X %*% coef[, k])), log = TRUE))
  m <- apply(l, 1, max)
  sum(m + log(rowSums(exp(l - m))))
}
# One flexmix() call; warnings counted and muffled (glm.fit's "fitted rates
# numerically 0 occurred" is frequent: level effects of a component heading
# to -Inf where it has no counts).
quiet_fit <- function(expr) {
  nwarn <- 0L
  fit <- withCallingHandlers(expr, warning = function(w) {
    nwarn <<- nwarn + 1L
    invokeRestart("muffleWarning")
  })
  list(fit = fit, nwarn = nwarn)
}
run_info <- function(r, ...) {
  data.frame(..., k = r$fit@k, llf = as.numeric(logLik(r$fit)),
             iter = r$fit@iter, converged = r$fit@converged, warnings = r$nwarn)
}
group_llf <- function(ll, tol = GROUP_TOL) {
  o <- order(-ll); id <- integer(length(ll)); g <- 0; last <- Inf
  for (i in o) { if (last - ll[i] > tol) g <- g + 1; id[i] <- g; last <- ll[i] }
  id
}
maxima_table <- function(ll) {
  gid <- group_llf(ll)
  t <- do.call(rbind, lapply(split(ll, gid), function(v)
    data.frame(llf = max(v), count = length(v), spread = max(v) - min(v))))
  t[order(-t$llf), ]
}

# stepFlexmix's loop (flexmix 2.3-18, bestFlexmix): for m in 1..nrep,
# x = try(flexmix(...)); keep x if logLik(x) > the best so far. Nothing else
# draws random numbers, so set.seed(s) followed by this loop gives exactly
# stepFlexmix's starts. Returns every start's summary and the best fit.
step_replica <- function(seed, formula, model, nrep, control = TIGHT,
                         what = "full") {
  set.seed(seed)
  best <- NULL; info <- list()
  for (m in seq_len(nrep)) {
    r <- quiet_fit(try(flexmix(formula, data = d, k = 2, model = model,
                               control = control), silent = TRUE))
    if (inherits(r$fit, "try-error")) {
      info[[m]] <- data.frame(seed = seed, start = m, k = NA, llf = NA, iter = NA,
                              converged = NA, warnings = r$nwarn)
      next
    }
    info[[m]] <- run_info(r, seed = seed, start = m)
    progress(sprintf("%s seed %d start %2d: llf %.6f, iter %d", what, seed, m,
                     info[[m]]$llf, info[[m]]$iter))
    if (is.null(best) || logLik(r$fit) > logLik(best)) best <- r$fit
  }
  list(info = do.call(rbind, info), best = best)
}

# Check of the replica against stepFlexmix itself, on a cheap model.
chk_model <- FLXMRglm(family = "poisson")
set.seed(11)
chk_step <- suppressWarnings(stepFlexmix(y ~ x, data = d, k = 2, nrep = 4,
                                         model = chk_model, control = TIGHT,
                                         verbose = FALSE, drop = FALSE))
chk_rep <- step_replica(11, y ~ x, chk_model, 4, what = "check y ~ x")
stopifnot(identical(as.numeric(chk_step@logLiks), chk_rep$info$llf),
          identical(logLik(getModel(chk_step, "2")), logLik(chk_rep$best)))
cat(sprintf("replica check: stepFlexmix(y ~ x, nrep = 4) and the replica agree: %s\n",
            paste(sprintf("%.6f", chk_rep$info$llf), collapse = " ")))

# ---------------------------------------------------------------------------
# 1. Full model: stepFlexmix(nrep = 50) for seeds 1..4
# ---------------------------------------------------------------------------
full_model <- FLXMRglm(family = "poisson")
steps <- mclapply(STEP_SEEDS, step_replica, formula = FULL, model = full_model,
                  nrep = NREP, mc.cores = CORES, mc.preschedule = FALSE)
for (s in steps) if (inherits(s, "try-error")) stop(s)
full_info <- do.call(rbind, lapply(steps, `[[`, "info"))
stopifnot(!anyNA(full_info$llf), all(full_info$k == 2), all(full_info$converged))
step_best <- lapply(steps, `[[`, "best")
step_ll <- sapply(step_best, function(f) as.numeric(logLik(f)))
cat(sprintf("\n[%.0f s] full model, stepFlexmix(k = 2, nrep = %d): best llf per seed\n",
            elapsed(), NREP))
for (i in seq_along(STEP_SEEDS)) {
  inf <- full_info[full_info$seed == STEP_SEEDS[i], ]
  cat(sprintf("  seed %d: %.8f (iter %d); starts: iter %d..%d, %d warnings\n",
              STEP_SEEDS[i], step_ll[i], step_best[[i]]@iter, min(inf$iter),
              max(inf$iter), sum(inf$warnings)))
}

# ---------------------------------------------------------------------------
# 2. Nested model: best of 20 starts
# ---------------------------------------------------------------------------
nested_model <- FLXMRglmfix(fixed = ~ g, family = "poisson")
nested_runs <- mclapply(NESTED_SEEDS, function(s) {
  set.seed(s)
  r <- quiet_fit(flexmix(y ~ x, data = d, k = 2, model = nested_model,
                         control = TIGHT))
  progress(sprintf("nested seed %2d: llf %.6f, iter %d", s,
                   as.numeric(logLik(r$fit)), r$fit@iter))
  r
}, mc.cores = CORES, mc.preschedule = FALSE)
for (r in nested_runs) if (inherits(r, "try-error")) stop(r)
nested_info <- do.call(rbind, lapply(seq_along(nested_runs), function(i)
  run_info(nested_runs[[i]], seed = NESTED_SEEDS[i])))
stopifnot(all(nested_info$k == 2), all(nested_info$converged))
nested_best <- nested_runs[[which.max(nested_info$llf)]]$fit
nested_ll <- as.numeric(logLik(nested_best))
nested_count <- sum(nested_ll - nested_info$llf <= GROUP_TOL)
cat(sprintf("\n[%.0f s] nested model, %d starts: best llf %.8f, reached by %d",
            elapsed(), length(NESTED_SEEDS), nested_ll, nested_count),
    "(within 1e-3)\n")
print(maxima_table(nested_info$llf), row.names = FALSE)

# ---------------------------------------------------------------------------
# 3. Full model started from the nested fit's posteriors
# ---------------------------------------------------------------------------
fn <- quiet_fit(flexmix(FULL, data = d, k = 2, model = full_model,
                        cluster = posterior(nested_best), control = TIGHT))
from_nested <- fn$fit
stopifnot(from_nested@k == 2, from_nested@converged)
fn_ll <- as.numeric(logLik(from_nested))
cat(sprintf("\n[%.0f s] full model from the nested posteriors: llf %.8f (iter %d)\n",
            elapsed(), fn_ll, from_nested@iter))
stopifnot(fn_ll >= nested_ll - 1e-6)

# ---------------------------------------------------------------------------
# Best full fit, checked by hand
# ---------------------------------------------------------------------------
cands <- c(step_best, list(from_nested))
cand_ll <- c(step_ll, fn_ll)
best <- cands[[which.max(cand_ll)]]
best_ll <- max(cand_ll)
for (f in list(best, nested_best, from_nested)) {
  p <- parts(f)
  stopifnot(abs(mix_ll(p$coef, p$prior) - as.numeric(logLik(f))) < 1e-8)
}
bp <- parts(best)
cat(sprintf("\nbest full llf %.10f (%s); recomputed by hand %.10f\n", best_ll,
            if (which.max(cand_ll) > length(STEP_SEEDS)) "from the nested fit"
            else sprintf("stepFlexmix seed %d", STEP_SEEDS[which.max(cand_ll)]),
            mix_ll(bp$coef, bp$prior)))
cat(sprintf("BEST_PRIOR %.17g %.17g\n", bp$prior[1], bp$prior[2]))
for (j in seq_len(nrow(bp$coef))) {
  cat(sprintf("BEST_COEF %s %.17g %.17g\n", rownames(bp$coef)[j], bp$coef[j, 1],
              bp$coef[j, 2]))
}

# ---------------------------------------------------------------------------
# Local maxima
# ---------------------------------------------------------------------------
single <- full_info[full_info$seed == STEP_SEEDS[1], ]
maxima <- maxima_table(single$llf)
best_count <- sum(best_ll - single$llf <= GROUP_TOL)
best_count_all <- sum(best_ll - full_info$llf <= GROUP_TOL)
cat(sprintf("\nLocal maxima over the %d single starts of seed %d", nrow(single),
            STEP_SEEDS[1]), "(grouped within 1e-3):\n")
print(maxima, row.names = FALSE, digits = 10)
cat(sprintf("\nOver all %d starts (seeds %s): %d reach the best llf\n",
            nrow(full_info), paste(STEP_SEEDS, collapse = ","), best_count_all))
print(maxima_table(full_info$llf), row.names = FALSE, digits = 10)

out <- rbind(
  data.frame(fit = "full_best", llf = best_ll, count = best_count),
  data.frame(fit = "nested_best", llf = nested_ll, count = nested_count),
  data.frame(fit = "full_from_nested", llf = fn_ll, count = 1L),
  data.frame(fit = "full_local_max", llf = maxima$llf, count = maxima$count))
out$llf <- sprintf("%.15g", out$llf)
write.csv(out, file.path(here, "many_levels_flexmix.csv"), row.names = FALSE,
          quote = FALSE)

# ---------------------------------------------------------------------------
# VERSIONS.txt: replace this script's section, keep the rest
# ---------------------------------------------------------------------------
vfile <- file.path(here, "VERSIONS.txt")
header <- "[make_many_levels_flexmix.R]"
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
             paste("platform", R.version$platform)),
           vfile)
cat(sprintf("\ndone in %.0f s\n", elapsed()))
