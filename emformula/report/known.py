"""Known (true) coefficients against fitted ones: shape and label matching.

A mixture's components come out in an arbitrary order (label switching), so
a comparison with known values first finds the permutation of the known
components closest to the fitted ones. Used by ``plot_params(known=...)``
and the ``emformula demo`` printout; pure numpy and pandas.

Examples
--------
>>> import pandas as pd
>>> fitted = pd.DataFrame({"comp1": [2.0, 0.5], "comp2": [0.1, -1.0]}, index=["a", "b"])
>>> truth = known_frame([[0.0, -1.0], [2.0, 0.5]], fitted)
>>> match_components(truth, fitted).to_numpy().tolist()
[[2.0, 0.0], [0.5, -1.0]]
"""

import numpy as np
import pandas as pd


def match_components(truth, params):
    """Permute the columns of ``truth`` to the closest components of ``params``."""
    from itertools import permutations

    est, ref = params.to_numpy(), truth.to_numpy()
    usable = np.all(np.isfinite(ref), axis=1)
    K = est.shape[1]
    candidates = permutations(range(K)) if K <= 7 else [tuple(range(K))]
    best = min(
        candidates,
        key=lambda order: float(np.sum((est[usable] - ref[usable][:, list(order)]) ** 2)),
    )
    return pd.DataFrame(ref[:, list(best)], index=truth.index, columns=truth.columns)


def known_frame(known, params):
    """``known`` as a float frame shaped and labelled like ``params``."""
    p, K = params.shape
    terms, names = params.index, params.columns
    if isinstance(known, pd.Series):
        known = known.to_frame()
    if isinstance(known, pd.DataFrame):
        if all(name in known.columns for name in names):
            frame = known.loc[:, list(names)]
        elif known.shape[1] == K:
            frame = known.set_axis(names, axis=1)
        else:
            raise ValueError(
                f"known has columns {list(known.columns)}: expected the "
                f"component names {list(names)} or {K} column(s)"
            )
        if len(set(frame.index) & set(terms)):
            frame = frame.reindex(terms)
        elif frame.shape[0] == p:
            frame = frame.set_axis(terms, axis=0)
        else:
            raise ValueError(
                f"known has {frame.shape[0]} rows and no term names: "
                f"expected {p} rows ({list(terms)})"
            )
        return frame.astype(float)
    if isinstance(known, (list, tuple)):
        vectors = [np.asarray(v, dtype=float).ravel() for v in known]
        if len(vectors) != K or any(v.shape != (p,) for v in vectors):
            raise ValueError(
                f"known as a list needs {K} vector(s) of length {p}, got "
                f"lengths {[v.size for v in vectors]}"
            )
        values = np.column_stack(vectors)
    else:
        values = np.asarray(known, dtype=float)
        if values.ndim == 1 and K == 1:
            values = values[:, None]
        if values.shape != (p, K):
            raise ValueError(f"known must have shape ({p}, {K}) like params, got {values.shape}")
    return pd.DataFrame(values, index=terms, columns=names)
