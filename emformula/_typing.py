"""Type aliases of the public API (for annotations only)."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

__all__ = ["RandomState", "FamilyLike", "DataLike"]

#: What ``random_state=`` accepts: a seed, a numpy Generator or SeedSequence, or None.
RandomState = Union[int, np.random.Generator, np.random.SeedSequence, None]
#: A family name, a statsmodels family instance or an emformula family.
FamilyLike = Any
#: A pandas DataFrame, a dict of columns, or a dask DataFrame.
DataLike = Any
