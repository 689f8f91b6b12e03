# %% [markdown]
# # The command line: fitting, choosing K and exporting without Python
#
# `emformula` installs a command that fits a mixture to a CSV or Parquet
# file and prints the statsmodels-style summary, or writes JSON, HTML or
# LaTeX for a report, and the posterior for a spreadsheet. This walkthrough
# runs it on the bioChemists data (articles of 915 PhD students, Long 1990)
# written to a CSV file. Each cell shows the command, as typed in a shell,
# and what it prints. (`python -m emformula` works the same.)

# %%
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from emformula import datasets

folder = Path(tempfile.mkdtemp())
datasets.load_biochemists().to_csv(folder / "bio.csv", index=False)


def emformula(command, lines=None):
    """Run `emformula <command>` in the data's folder; print what it prints
    (its first ``lines`` lines only, if given)."""
    print(f"$ emformula {command}")
    done = subprocess.run([sys.executable, "-m", "emformula", *shlex.split(command)],
                          cwd=folder, capture_output=True, text=True, check=True)
    shown = done.stdout.rstrip().splitlines()
    print("\n".join(shown if lines is None else shown[:lines] + ["..."]))
    return done


emformula("--version")

# %% [markdown]
# ## A fit and its summary
#
# The data file, a two-sided formula, the family and K; `--seed` makes the
# random starts reproducible. The summary is the one `res.summary()`
# prints; a line on stderr says how many of the full starts reached the
# best log-likelihood.

# %%
fit = emformula('fit bio.csv "art ~ fem + mar + kid5 + phd + ment" --family poisson -K 2 '
                "--seed 1")
print(fit.stderr.strip())

# %% [markdown]
# ## Choosing K
#
# `select-k` fits K = 1..kmax and marks the choice of the criterion (BIC by
# default; `--criterion icl` or `aic`); `--format csv` gives the table to a
# spreadsheet.

# %%
emformula('select-k bio.csv "art ~ fem + mar + kid5 + phd + ment" --kmax 3 --seed 1')

# %% [markdown]
# ## Machine-readable output
#
# `--format json` has every number of the fit: estimates with standard
# errors, mixing proportions, log-likelihood, AIC, BIC, ICL, convergence.
# `--posterior FILE` writes each row's posterior probabilities.

# %%
done = emformula('fit bio.csv "art ~ fem + mar + kid5 + phd + ment" -K 2 --seed 1 '
                 "--format json --posterior posterior.csv", lines=12)
report = json.loads(done.stdout)
print(sorted(report))
print({key: round(report[key], 3) for key in ("llf", "aic", "bic")})
posterior = pd.read_csv(folder / "posterior.csv", index_col=0)
print(posterior.head(3).round(3))

# %% [markdown]
# The exported posterior is an ordinary table; for example, how sharply the
# fit assigns the students to the high-output class:

# %%
ax = posterior["comp2"].plot.hist(bins=20, figsize=(6, 3), color="C1")
ax.set_xlabel("posterior probability of the high-output class (comp2)")
ax.figure.tight_layout()
plt.show()

# %% [markdown]
# `--format html` and `--format latex` give the summary's tables for a web
# page or a paper.
#
# ## The options of the Python API
#
# The model's main options have flags: a zero-inflated Poisson model (a
# point mass at zero as one component, whose share depends on the mentor's
# articles and the children) with robust standard errors:

# %%
emformula('fit bio.csv "art ~ fem + mar + kid5 + phd + ment" --family pointmass,poisson '
          '--concomitant "~ ment + kid5" --cov-type robust --seed 1')

# %% [markdown]
# `emformula fit --help` lists the rest: `--weights`, `--offset` or
# `--exposure`, `--fixed` (shared effects), `--groups`, `--equal-scale`,
# `--n-init`, `--max-iter`, `--tol`, `--n-jobs`. Formulas may use column
# names, numpy functions and formulaic's transforms; `--allow-python`
# allows any Python expression, for formulas you trust.
