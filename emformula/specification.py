"""What a mixture model is, apart from its formula and data: one object.

Every entry point (:func:`emformula.emglm`, :func:`emformula.small_em`,
:func:`emformula.select_k`, :func:`emformula.bootstrap_lrt`,
:meth:`EMGLM.from_formula`, the dask fit) takes the same model keywords;
they are gathered here once, checked once, and passed on as one
:class:`MixtureSpec`, so that a new keyword is added in one place and a
model with another ``K`` is ``spec.replace(K=...)`` built through the
model's constructor.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["MixtureSpec", "DEFAULT_FAMILY", "DEFAULT_K", "given"]


class _Default:
    """A default argument that knows it was not given.

    Entry points take ``family`` and ``K`` positionally and also accept a
    whole ``spec=``; with these defaults they can tell ``K=2`` written out
    (which must not be silently dropped for the spec's K) from ``K`` left
    out. Shown as the value itself in signatures and help.
    """

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(self.value)


#: The default family and number of components of the entry points.
# (Typed Any: each stands for a value of the parameter's own type.)
DEFAULT_FAMILY: Any = _Default("poisson")
DEFAULT_K: Any = _Default(2)


def given(value):
    """``(value, True)`` for an argument given, ``(default, False)`` for one left out."""
    if isinstance(value, _Default):
        return value.value, False
    return value, True


@dataclass(frozen=True, eq=False)
class MixtureSpec:
    """The model keywords of a mixture fit.

    Parameters
    ----------
    family : str, statsmodels family or MixtureFamily, or a list, default "poisson"
        The component family (see :func:`emformula.families.as_family`), or
        one per component.
    K : int, optional
        Number of components: 2 by default, the number of families for a
        list of families.
    link : str or statsmodels link, optional
        With a family name, a non-canonical link.
    weights, offset, exposure, trials : str or array_like, optional
        Column names or arrays, one value per row: frequency weights, an
        offset, an exposure (its log joins the offset), the binomial number
        of trials of a proportion response.
    fixed : str, optional
        One-sided formula of effects shared by all components.
    concomitant : str, optional
        One-sided formula of the mixing proportions (a multinomial logit).
    groups : str or array_like, optional
        Rows of a group share one latent component.
    equal_scale : bool, default False
        One value of each family parameter (a dispersion, alpha) for all
        components.
    cov_groups : str or array_like, optional
        Cluster labels for ``cov_type="cluster"``.
    na_action : {"drop", "raise"}, default "drop"
        What the formula layer does with rows with missing values.
    context : mapping, optional
        Names a formula may use (default: the caller's namespace).

    Examples
    --------
    >>> spec = MixtureSpec("poisson", 2, weights="w")
    >>> spec.replace(K=3).K, spec.replace(K=3).weights
    (3, 'w')
    >>> MixtureSpec.from_keywords("emglm", weigths="w")
    Traceback (most recent call last):
    ...
    TypeError: emglm() got an unexpected keyword argument 'weigths' (did you mean 'weights'?)
    """

    family: object = "poisson"
    K: object = None
    link: object = None
    weights: object = None
    offset: object = None
    exposure: object = None
    trials: object = None
    fixed: object = None
    concomitant: object = None
    groups: object = None
    equal_scale: bool = False
    cov_groups: object = None
    na_action: str = "drop"
    context: object = None

    def __post_init__(self):
        if self.K is None:
            many = isinstance(self.family, (list, tuple))
            object.__setattr__(self, "K", len(self.family) if many else 2)

    #: Keywords whose value is a column of the data (a name) or one value per row.
    COLUMN_KEYWORDS = ("weights", "offset", "exposure", "trials", "groups", "cov_groups")

    @classmethod
    def keywords(cls):
        """The names of the model keywords."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_keywords(cls, caller, spec=None, **keywords):
        """A spec from an entry point's keywords (or its ``spec=`` plus changes).

        Unknown keywords are refused with the caller's name and the closest
        known keyword, as Python itself would for a misspelt argument.
        """
        known = cls.keywords()
        for name in keywords:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}{hint}")
        if spec is None:
            return cls(**keywords)
        if not isinstance(spec, cls):
            raise TypeError(f"spec must be a MixtureSpec, got {type(spec).__name__}")
        return spec.replace(**keywords) if keywords else spec

    def replace(self, **changes):
        """The same spec with some keywords changed."""
        return replace(self, **changes)

    def column_arguments(self):
        """``{keyword: value}`` of the column keywords that are set."""
        return {
            name: getattr(self, name)
            for name in self.COLUMN_KEYWORDS
            if getattr(self, name) is not None
        }

    def __repr__(self):
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is f.default or (
                f.name != "context" and value == f.default
                if isinstance(value, str | bool | int)
                else False
            ):
                continue
            if f.name == "context":
                shown.append("context=...")
                continue
            text = (
                repr(value)
                if isinstance(value, str | int | bool | float)
                else (f"<{type(value).__name__}>")
            )
            shown.append(f"{f.name}={text}")
        return f"MixtureSpec({', '.join(shown)})"
