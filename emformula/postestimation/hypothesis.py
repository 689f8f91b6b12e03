"""Wald tests of linear hypotheses on the free parameters, and linear combinations.

A mixture's questions are about the parameters of ``res.cov_params()``:
does the effect of ``x`` differ between the classes (``"comp1:x =
comp2:x"``), are the dispersions equal, does a concomitant variable move
the class membership. :func:`t_test`, :func:`wald_test` and :func:`f_test`
answer them with statsmodels' ``ContrastResults``, so a statsmodels user
reads them as usual; :func:`wald_test_terms` tests every term's equality
across components at once and :func:`lincom` tabulates linear
combinations.

Hypotheses are written ``R theta = q`` on the free parameters ``theta``
(``res.theta``, labelled by ``res.param_names``): the dispersions enter as
``log(scale)`` and constant mixing proportions as their log-odds against
component 1, the scales on which the covariance is estimated.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contrast import ContrastResults, WaldTestResults

from ._delta import covariance, normal_quantile

__all__ = [
    "LinearConstraints",
    "linear_constraints",
    "t_test",
    "wald_test",
    "f_test",
    "wald_test_terms",
    "lincom",
]

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_OPERATORS = "+-*/()=,"


class LinearConstraints:
    """Linear hypotheses ``R theta = q`` with their labels.

    Attributes
    ----------
    matrix : ndarray (m, P)
    values : ndarray (m,)
    names : list of str
        The constraints as written (``"comp1:x - comp2:x = 0"``, or
        ``"c0", "c1", ...`` for a matrix).
    """

    def __init__(self, matrix, values, names):
        self.matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
        self.values = np.asarray(values, dtype=float).reshape(-1)
        self.names = list(names)
        if self.values.size != self.matrix.shape[0]:
            raise ValueError(
                f"q has {self.values.size} values for {self.matrix.shape[0]} constraints"
            )

    def __len__(self):
        return self.matrix.shape[0]


# ----------------------------------------------------------------- parsing
#: Names of the mixing log-odds before version 0.2 (``alpha:comp2``), renamed
#: ``logit_prior:comp2`` so as not to clash with the negative binomial's alpha.
_OLD_MIXING_NAME = re.compile(r"(?<![\w(])alpha:comp(\d+)")


def _current_names(text):
    """``text`` with the mixing log-odds' old names (``alpha:comp2``) written
    as today's (``logit_prior:comp2``), so constraints written for version
    0.1 still read."""
    return _OLD_MIXING_NAME.sub(r"logit_prior:comp\1", text)


def _tokenize(text, names):
    """Tokens of a constraint string: known names (longest first, so that
    ``comp1:x1`` is not read as ``comp1:x`` and ``1``), numbers, operators.

    Parameter names contain ``:``, parentheses, brackets and even commas
    (``C(g, Treatment)[T.b]``), so they are matched before anything else.
    """
    ordered = sorted(names, key=len, reverse=True)
    tokens, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        name = next((n for n in ordered if text.startswith(n, i)), None)
        if name is not None:
            tokens.append(("name", name))
            i += len(name)
            continue
        number = _NUMBER.match(text, i)
        if number:
            tokens.append(("number", float(number.group(0))))
            i = number.end()
            continue
        if text[i] in _OPERATORS:
            tokens.append(("op", text[i]))
            i += 1
            continue
        raise ValueError(
            f"cannot read the constraint at {text[i : i + 20]!r} (position {i}): "
            "not a parameter name (see res.param_names), a number or one of "
            f"{_OPERATORS!r}"
        )
    return tokens


class _Parser:
    """Recursive descent over the tokens; every value is linear in theta,
    held as ``(coefficients, constant)``."""

    def __init__(self, tokens, positions):
        self.tokens = tokens
        self.i = 0
        self.positions = positions
        self.size = len(positions)

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self):
        token = self.peek()
        self.i += 1
        return token

    def constraint(self):
        """``expr (= expr)*``: a chain ``a = b = c`` means ``a = b, b = c``;
        an expression alone means ``expr = 0``."""
        sides = [self.expression()]
        while self.peek() == ("op", "="):
            self.take()
            sides.append(self.expression())
        if len(sides) == 1:
            sides.append((np.zeros(self.size), 0.0))
        return [
            (left[0] - right[0], right[1] - left[1]) for left, right in zip(sides[:-1], sides[1:])
        ]

    def expression(self):
        value = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            sign = 1.0 if self.take()[1] == "+" else -1.0
            other = self.term()
            value = (value[0] + sign * other[0], value[1] + sign * other[1])
        return value

    def term(self):
        value = self.factor()
        while self.peek() in (("op", "*"), ("op", "/")):
            op = self.take()[1]
            other = self.factor()
            if op == "*":
                if np.any(value[0]) and np.any(other[0]):
                    raise ValueError(
                        "a constraint must be linear in the parameters: a product of two parameters"
                    )
                if np.any(value[0]):
                    value = (value[0] * other[1], value[1] * other[1])
                else:
                    value = (other[0] * value[1], other[1] * value[1])
            else:
                if np.any(other[0]):
                    raise ValueError(
                        "a constraint must be linear in the parameters: a division by a parameter"
                    )
                value = (value[0] / other[1], value[1] / other[1])
        return value

    def factor(self):
        kind, token = self.take()
        if (kind, token) in (("op", "-"), ("op", "+")):
            value = self.factor()
            return value if token == "+" else (-value[0], -value[1])
        if kind == "number":
            return np.zeros(self.size), token
        if kind == "name":
            coef = np.zeros(self.size)
            coef[self.positions[token]] = 1.0
            return coef, 0.0
        if (kind, token) == ("op", "("):
            value = self.expression()
            if self.take() != ("op", ")"):
                raise ValueError("unbalanced parentheses in the constraint")
            return value
        raise ValueError(
            f"unexpected {token!r} in the constraint"
            if token is not None
            else "the constraint ends too early"
        )


def _parse(text, names):
    positions = {name: j for j, name in enumerate(names)}
    tokens = _tokenize(text, names)
    # Split at the commas between constraints (commas inside names were
    # consumed with the names).
    pieces, current = [], []
    for token in tokens:
        if token == ("op", ","):
            pieces.append(current)
            current = []
        else:
            current.append(token)
    pieces.append(current)
    rows, values, labels = [], [], []
    for piece in pieces:
        if not piece:
            raise ValueError(f"an empty constraint in {text!r}")
        parser = _Parser(piece, positions)
        for coef, value in parser.constraint():
            if parser.i != len(piece):
                raise ValueError(
                    f"cannot read the constraint {text!r} past token {parser.tokens[parser.i][1]!r}"
                )
            if not np.any(coef):
                raise ValueError(f"a constraint of {text!r} involves no parameter")
            rows.append(coef)
            values.append(value)
            labels.append(_label(coef, value, names))
    return LinearConstraints(np.vstack(rows), values, labels)


def _label(coef, value, names):
    """``"comp1:x - comp2:x = 0"``: a constraint written out from its row."""
    return f"{_expression(coef, names)} = {value:g}"


def _expression(coef, names):
    """``"comp1:x - 2 comp2:x"``: the linear form of a row written out."""
    parts = []
    for j in np.flatnonzero(coef):
        c = coef[j]
        sign = "-" if c < 0 else "+"
        size = "" if abs(c) == 1 else f"{abs(c):g} "
        parts.append(f"{sign} {size}{names[j]}")
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def linear_constraints(res, r, q=None):
    """``R theta = q`` from a string of constraints or a matrix.

    Parameters
    ----------
    res : EMGLMResults
    r : str, array_like, DataFrame or (R, q) tuple
        A string: constraints on the names of ``res.param_names``, linear
        combinations with numbers, ``=`` (an expression alone means ``= 0``,
        ``a = b = c`` two constraints), several separated by commas. A
        matrix: one row per constraint, one column per free parameter (a
        DataFrame or Series is aligned on its column labels, which must be
        parameter names; missing ones count 0).
    q : array_like, optional
        Right-hand sides of a matrix (default 0).

    Returns
    -------
    LinearConstraints

    Examples
    --------
    >>> linear_constraints(res, "comp1:x = comp2:x, comp1:log(scale) = comp2:log(scale)")
    ... # doctest: +SKIP
    """
    names = list(res.param_names)
    if isinstance(r, str):
        if q is not None:
            raise ValueError("q is given in the constraint string itself")
        return _parse(_current_names(r), names)
    if isinstance(r, tuple) and len(r) == 2 and q is None:
        r, q = r
    if isinstance(r, pd.Series):
        r = r.to_frame().T
    if isinstance(r, pd.DataFrame):
        r = r.rename(columns=_current_names)
        unknown = [c for c in r.columns if c not in names]
        if unknown:
            raise ValueError(f"not parameter names: {unknown}")
        r = r.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    matrix = np.atleast_2d(np.asarray(r, dtype=float))
    if matrix.shape[1] != len(names):
        raise ValueError(
            f"r has {matrix.shape[1]} columns, the fit {len(names)} free "
            f"parameters ({', '.join(names)})"
        )
    values = np.zeros(matrix.shape[0]) if q is None else q
    return LinearConstraints(matrix, values, [f"c{i}" for i in range(matrix.shape[0])])


def _df_resid(res):
    """The results' :attr:`df_resid` (statsmodels' count: one component's F
    test is statsmodels')."""
    return float(res.df_resid)


def _effect_and_cov(res, constraints):
    theta = res.theta.reindex(res.param_names).to_numpy(dtype=float)
    R = constraints.matrix
    return R @ theta, R @ covariance(res) @ R.T


# ------------------------------------------------------------------ tests
def t_test(res, r, q=None):
    """Test each linear hypothesis ``R theta = q`` on its own (z tests).

    Parameters
    ----------
    res : EMGLMResults
    r : str, array_like or DataFrame
        Constraints (see :func:`linear_constraints`): ``"comp1:x =
        comp2:x"``, ``"fixed:z = 0.5"``, ``"concomitant:comp2:w"``, or a
        matrix over ``res.param_names``.
    q : array_like, optional
        Right-hand sides of a matrix.

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults
        ``effect`` (``R theta``), ``sd``, ``statistic``, ``pvalue``,
        ``conf_int()``, ``summary()``; the reference is the normal
        distribution, as for statsmodels' GLM (the estimates are maximum
        likelihood and their covariance ``res.cov_params()``).

    Examples
    --------
    Does the effect of ``x`` differ between the two classes?

    >>> t_test(res, "comp1:x = comp2:x").pvalue   # doctest: +SKIP
    """
    constraints = linear_constraints(res, r, q)
    effect, cov = _effect_and_cov(res, constraints)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = (effect - constraints.values) / sd
    result = ContrastResults(
        effect=effect, statistic=statistic, sd=sd, df_denom=_df_resid(res), distribution="norm"
    )
    result.c_names = constraints.names
    return result


def _wald_statistic(res, constraints):
    effect, cov = _effect_and_cov(res, constraints)
    if np.isnan(cov).any():
        raise ValueError(
            "a constraint involves a parameter without a standard error "
            "(res.cov_params() has NaN there)"
        )
    rank = np.linalg.matrix_rank(cov)
    gap = effect - constraints.values
    return float(gap @ np.linalg.pinv(cov) @ gap), rank


def wald_test(res, r, q=None, scalar=True):
    """Joint Wald test of linear hypotheses ``R theta = q`` (chi-squared).

    Parameters
    ----------
    res : EMGLMResults
    r : str, array_like or DataFrame
        Constraints (see :func:`linear_constraints`), tested jointly.
    q : array_like, optional
    scalar : bool, default True
        The statistic as a float (statsmodels' ``scalar=True``), else a
        ``(1, 1)`` array.

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults
        ``statistic`` ``W = (R theta - q)' (R V R')^+ (R theta - q)``,
        chi-squared with as many degrees of freedom as the rank of
        ``R V R'`` (``df_denom``, as statsmodels stores it), ``pvalue``.

    Examples
    --------
    Are all the slopes equal across the classes, and the dispersions too?

    >>> wald_test(res, "comp1:x = comp2:x, comp1:log(scale) = comp2:log(scale)")
    ... # doctest: +SKIP
    """
    constraints = linear_constraints(res, r, q)
    statistic, rank = _wald_statistic(res, constraints)
    value = statistic if scalar else np.array([[statistic]])
    return ContrastResults(
        chi2=value, df_denom=rank, statistic=value, distribution="chi2", distargs=(rank,)
    )


def f_test(res, r, q=None, df_denom=None):
    """Joint test of linear hypotheses as an F test: the Wald statistic
    divided by the number of constraints, against ``F(J, df_denom)``.

    Parameters
    ----------
    res : EMGLMResults
    r : str, array_like or DataFrame
    q : array_like, optional
    df_denom : float, optional
        Denominator degrees of freedom; default the results' ``df_resid``
        (the weighted rows less every free parameter but the dispersion-like
        ones, as statsmodels counts them). The F reference is a small-sample convention carried over
        from linear models; for a mixture the chi-squared test of
        :func:`wald_test` is the asymptotically justified one.

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults
        ``fvalue``, ``df_num``, ``df_denom``, ``pvalue``.

    Examples
    --------
    >>> f_test(res, "comp1:x = comp2:x, comp1:x2 = comp2:x2").fvalue   # doctest: +SKIP
    """
    constraints = linear_constraints(res, r, q)
    statistic, rank = _wald_statistic(res, constraints)
    df_denom = _df_resid(res) if df_denom is None else float(df_denom)
    return ContrastResults(F=float(statistic / rank), df_denom=df_denom, df_num=rank)


def wald_test_terms(res):
    """For each term of the design, the Wald test that its coefficients are
    equal in every component.

    The question a mixture of regressions is fitted to answer: which
    effects differ between the classes. A term (a covariate, or a factor's
    columns together) has ``p_t`` columns; equality across ``K`` components
    is ``(K - 1) p_t`` constraints ``comp1:x = comp_k:x``.

    Parameters
    ----------
    res : EMGLMResults
        With at least two components.

    Returns
    -------
    statsmodels.stats.contrast.WaldTestResults
        As statsmodels' ``wald_test_terms()``: ``table``, a DataFrame with
        one row per term and the columns ``statistic``, ``pvalue``,
        ``df_constraint``, and ``summary_frame()`` (``chi2``, ``P>chi2``,
        ``df constraint``).

    Examples
    --------
    >>> wald_test_terms(res).summary_frame()   # doctest: +SKIP
                 chi2    P>chi2  df constraint
    Intercept  812.31  1.2e-178              1
    x           15.20   9.7e-05              1
    """
    K = res.n_components
    if K < 2:
        raise ValueError("equality across components needs at least two components")
    lay = res.layout
    if not all(idx.size for idx in lay.coef_index):
        raise ValueError(
            "equality of a term across components needs coefficients in every "
            f"component; the {res.family.name} components include a point mass"
        )
    rows = {}
    for term, columns in _term_columns(res):
        R = np.zeros(((K - 1) * len(columns), lay.size))
        r = 0
        for j in columns:
            for k in range(1, K):
                R[r, lay.coef_index[0][j]] = 1.0
                R[r, lay.coef_index[k][j]] = -1.0
                r += 1
        statistic, rank = _wald_statistic(
            res, LinearConstraints(R, np.zeros(len(R)), [""] * len(R))
        )
        rows[term] = (statistic, stats.chi2.sf(statistic, rank), rank)
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=["statistic", "pvalue", "df_constraint"]
    )
    return WaldTestResults(None, "chi2", None, table=table)


def _term_columns(res):
    """``[(term, columns of exog)]``: the model's terms where it knows them
    (a factor's columns together), else one term per column."""
    terms = getattr(res.model, "term_columns", None)
    names = res.model.exog_names
    if terms:
        # The intercept's term is "1" in formulaic; its column is "Intercept".
        return [
            (names[columns[0]] if term == "1" else term, list(columns)) for term, columns in terms
        ]
    return [(name, [j]) for j, name in enumerate(names)]


def lincom(res, r, q=None, alpha=0.05):
    """Linear combinations of the free parameters with standard errors.

    Stata's ``lincom``: each row of ``R`` (or each constraint of a string,
    its left side less its right side) is estimated as ``R theta - q``,
    with its standard error ``sqrt(R V R')``, z statistic, p-value and
    Wald interval.

    Parameters
    ----------
    res : EMGLMResults
    r : str, array_like or DataFrame
        ``"comp2:x - comp1:x"`` (an expression alone), or constraints
        ``"comp2:x = comp1:x"`` whose difference is estimated.
    q : array_like, optional
    alpha : float, default 0.05

    Returns
    -------
    DataFrame
        One row per combination (labelled by the constraint): ``coef``,
        ``std err``, ``z``, ``P>|z|``, ``[alpha/2``, ``1-alpha/2]`` as
        statsmodels' ``summary_frame``.

    Examples
    --------
    The difference of the slopes of x between classes 2 and 1:

    >>> lincom(res, "comp2:x - comp1:x")   # doctest: +SKIP
    """
    constraints = linear_constraints(res, r, q)
    effect, cov = _effect_and_cov(res, constraints)
    estimate = effect - constraints.values
    se = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = estimate / se
    quantile = normal_quantile(alpha)
    names = constraints.names
    if isinstance(r, str):
        # Label each combination by what is estimated: left side less right side.
        names = [
            _expression(row, res.param_names) + ("" if q_ == 0 else f" - {q_:g}")
            for row, q_ in zip(constraints.matrix, constraints.values)
        ]
    return pd.DataFrame(
        {
            "coef": estimate,
            "std err": se,
            "z": z,
            "P>|z|": 2.0 * stats.norm.sf(np.abs(z)),
            f"[{alpha / 2:g}": estimate - quantile * se,
            f"{1 - alpha / 2:g}]": estimate + quantile * se,
        },
        index=names,
    )
