"""Write a results object pickled by emformula 0.1.0 as it was before the
layered packages (commit 4b9ddaa), for tests/test_pickle_compat.py.

Run with that version of the package first on the path:

    git worktree add /tmp/emformula-4b9ddaa 4b9ddaa
    PYTHONPATH=/tmp/emformula-4b9ddaa python tests/reference/make_v0_1_0_pickle.py

It writes tests/reference/results_v0_1_0.pickle and, beside it,
results_v0_1_0.csv with the numbers the test compares (llf, params, bse,
prior, the first rows' posterior).
"""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

import emformula
from emformula import emglm

HERE = Path(__file__).resolve().parent

rng = np.random.default_rng(2024)
n = 200
x = rng.normal(size=n)
z = rng.integers(0, 2, size=n)
data = pd.DataFrame(
    {
        "y": rng.poisson(np.exp(np.where(z == 0, 0.2 + 0.9 * x, 1.8 - 0.4 * x))),
        "x": x,
        "w": rng.integers(1, 3, size=n).astype(float),
    }
)
data.to_csv(HERE / "results_v0_1_0_data.csv", index=False)
res = emglm("y ~ x", data, "poisson", 2, weights="w", random_state=1)
(HERE / "results_v0_1_0.pickle").write_bytes(pickle.dumps(res))
values = {"llf": res.llf, "aic": res.aic, "bic": res.bic}
for term in res.params.index:
    for comp in res.params.columns:
        values[f"params:{comp}:{term}"] = res.params.loc[term, comp]
        values[f"bse:{comp}:{term}"] = res.bse.loc[term, comp]
for comp in res.prior.index:
    values[f"prior:{comp}"] = res.prior[comp]
for i in range(3):
    values[f"posterior:{i}"] = res.posterior.iloc[i, 0]
pd.Series(values, name="value").to_csv(HERE / "results_v0_1_0.csv", index_label="name")
print("emformula", emformula.__file__, "llf", res.llf)
