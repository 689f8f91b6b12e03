"""Type aliases of the public API (for annotations only)."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

__all__ = ["RandomState", "FamilyLike", "DataLike"]

#: What ``random_state=`` accepts: a seed, a numpy Generator or SeedSequence, or None.
# (typing.Union: an alias is evaluated at run time, and X | Y of numpy classes needs 3.10+ types.)
RandomState = Union[int, np.random.Generator, np.random.SeedSequence, None]  # noqa: UP007
#: A family name, a statsmodels family instance or an emformula family.
FamilyLike = Any
#: A pandas DataFrame, a dict of columns, or a dask DataFrame.
DataLike = Any
