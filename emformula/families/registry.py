"""Family and link names, and :func:`as_family`: from what a user writes to a family.

A family is found by name (``"poisson"``), by a statsmodels family instance
(``sm.families.Gamma(sm.families.links.Log())``) or given as a
:class:`~emformula.families.MixtureFamily` itself. Adding a family is one
entry in :data:`FAMILY_CLASSES`.
"""

from __future__ import annotations

from statsmodels.genmod import families as sm_families
from statsmodels.genmod.families import links as sm_links

from .base import MixtureFamily
from .binomial import Binomial
from .censored_gaussian import CensoredGaussian
from .components import ComponentFamilies
from .gamma import Gamma
from .gaussian import Gaussian
from .inverse_gaussian import InverseGaussian
from .negative_binomial import NegativeBinomial
from .ordinal import OrdinalFamily
from .point_mass import PointMass
from .poisson import Poisson

__all__ = ["as_family", "FAMILY_CLASSES", "FAMILY_NAMES", "LINK_NAMES"]

#: The component families, in the order error messages list them.
FAMILY_CLASSES = (Poisson, Binomial, Gaussian, Gamma, InverseGaussian, NegativeBinomial)

#: Family name -> family class; ``"normal"`` is an alias of ``"gaussian"``.
_BY_NAME = {**{cls.name: cls for cls in FAMILY_CLASSES}, "normal": Gaussian}

#: statsmodels family class -> family class wrapping it.
_BY_STATSMODELS = {cls.statsmodels_class: cls for cls in FAMILY_CLASSES}

#: Family names accepted wherever a family is asked for, with the statsmodels
#: family class each stands for.
FAMILY_NAMES = {name: cls.statsmodels_class for name, cls in _BY_NAME.items()}

#: Family names without a statsmodels family.
OTHER_NAMES = ("ordinal_logit", "ordinal_probit", "pointmass", "tobit")

#: Link names accepted by :func:`as_family` (statsmodels link classes).
LINK_NAMES = {
    "log": sm_links.Log,
    "logit": sm_links.Logit,
    "probit": sm_links.Probit,
    "cloglog": sm_links.CLogLog,
    "loglog": sm_links.LogLog,
    "cauchy": sm_links.Cauchy,
    "identity": sm_links.Identity,
    "inverse": sm_links.InversePower,
    "inverse_power": sm_links.InversePower,
    "inverse_squared": sm_links.InverseSquared,
    "sqrt": sm_links.Sqrt,
}


def as_family(family, link=None):
    """Return a component family from a name or a statsmodels family.

    Parameters
    ----------
    family : str or statsmodels.genmod.families.Family or MixtureFamily or list
        ``"poisson"``, ``"binomial"``, ``"gaussian"``, ``"gamma"``,
        ``"inverse_gaussian"``, ``"negative_binomial"`` (alpha estimated),
        ``"pointmass"`` (all mass at 0, no coefficients), or an instance of
        the corresponding statsmodels family with any link statsmodels
        allows; or a list of these, one per component
        (:class:`~emformula.families.components.ComponentFamilies`).
    link : str or statsmodels link, optional
        Only with a family name: the link to use instead of the canonical
        one (``"log"``, ``"identity"``, ``"logit"``, ...).

    Returns
    -------
    MixtureFamily
        An instance of the family's class (:class:`Poisson`, :class:`Gamma`...).

    Examples
    --------
    >>> import statsmodels.api as sm
    >>> as_family("gamma", link="log").link_name
    'Log'
    >>> as_family(sm.families.Poisson()).name
    'poisson'
    """
    if isinstance(family, MixtureFamily):
        if link is not None:
            raise ValueError("link= is only accepted together with a family name")
        return family
    if isinstance(family, (list, tuple)):
        # One family per component; link= applies to every named one.
        return ComponentFamilies([_member(f, link) for f in family])
    if isinstance(family, str):
        key = family.strip().lower().replace("-", "_").replace(" ", "_")
        if key in ("pointmass", "point_mass"):
            if link is not None:
                raise ValueError("a point mass has no link")
            return PointMass()
        if key in ("ordinal_logit", "ordinal_probit"):
            if link is not None:
                raise ValueError(f"give the distribution in the name ({key}), not link=")
            return OrdinalFamily(key.split("_")[1])
        if key == "tobit":
            if link is not None:
                raise ValueError("the tobit family's link is the identity")
            return CensoredGaussian(lower=0.0)
        if key not in FAMILY_NAMES:
            raise ValueError(
                f"unknown family {family!r}; choose one of "
                f"{', '.join(sorted(set(FAMILY_NAMES) - {'normal'}) + list(OTHER_NAMES))}"
            )
        kwargs = {}
        if link is not None:
            kwargs["link"] = _as_link(link)
        statsmodels_class = FAMILY_NAMES[key]
        if statsmodels_class is sm_families.NegativeBinomial:
            # Only its link is used (alpha is estimated); statsmodels warns
            # when alpha is left out.
            kwargs["alpha"] = 1.0
        try:
            sm_family = statsmodels_class(**kwargs)
        except ValueError:
            allowed = ", ".join(c.__name__ for c in statsmodels_class.links)
            raise ValueError(
                f"link {link!r} is not allowed for family {family!r}; statsmodels allows {allowed}"
            ) from None
        return _BY_NAME[key].from_name(sm_family)
    if isinstance(family, sm_families.Family):
        if link is not None:
            raise ValueError(
                "link= is only accepted together with a family name; "
                "give the link to the statsmodels family instead"
            )
        return _from_statsmodels(family)
    raise TypeError(
        f"family must be a name or a statsmodels family instance, got {type(family).__name__}"
    )


def _member(family, link):
    """One component's family of a list (``link`` for the named ones)."""
    if isinstance(family, (list, tuple)):
        raise TypeError("a list of families holds one family per component, not lists")
    if isinstance(family, str) and family.strip().lower() not in (
        "pointmass",
        "point_mass",
        "tobit",
        "ordinal_logit",
        "ordinal_probit",
    ):
        return as_family(family, link)
    return as_family(family)


def _from_statsmodels(sm_family):
    """The family class wrapping ``type(sm_family)``, built on a copy of it."""
    kind = type(sm_family)
    if kind not in _BY_STATSMODELS:
        raise TypeError(
            f"family {kind.__name__} is not supported: its density is needed for the "
            f"mixture likelihood; use one of "
            f"{', '.join(cls.statsmodels_class.__name__ for cls in FAMILY_CLASSES)}"
        )
    return _BY_STATSMODELS[kind](sm_family)


def _as_link(link):
    if isinstance(link, sm_links.Link):
        return link
    if isinstance(link, str):
        key = link.strip().lower()
        if key not in LINK_NAMES:
            raise ValueError(
                f"unknown link {link!r}; choose one of {', '.join(sorted(LINK_NAMES))}"
            )
        return LINK_NAMES[key]()
    raise TypeError(
        f"link must be a name or a statsmodels link instance, got {type(link).__name__}"
    )
