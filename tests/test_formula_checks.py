"""Formulas: what would silently mean something else is refused, malformed
formulas are named, and the command line's safe evaluation (README, "Data
types and formulas" and "Command line")."""

import warnings

import numpy as np
import pandas as pd
import pytest

from emformula import emglm
from emformula.formula.design import SAFE_FUNCTIONS, check_safe_formula

N = 80
RNG = np.random.default_rng(3)
X = RNG.normal(size=N)
D = pd.DataFrame(
    {
        "y": RNG.poisson(np.exp(0.5 + 0.4 * X)).astype(float),
        "x": X,
        "z": RNG.uniform(1, 3, size=N),
        "g": RNG.choice(["a", "b", "c"], size=N),
        "k": RNG.integers(0, 4, size=N),
        "s": RNG.integers(0, 5, size=N).astype(float),
        "f": RNG.integers(1, 5, size=N).astype(float),
    }
)


def fit(formula, data=None, **kwargs):
    kwargs.setdefault("K", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return emglm(formula, D if data is None else data, **kwargs)


# (id, call, exception, words the message must contain)
REFUSED = [
    (
        "column named Intercept",
        lambda: fit("y ~ Intercept + x", D.assign(Intercept=D.z)),
        ValueError,
        ["'Intercept'", "rename the column"],
    ),
    (
        "Intercept column in fixed",
        lambda: fit("y ~ x", D.assign(Intercept=D.z), fixed="~ 0 + Intercept"),
        ValueError,
        ["'Intercept'", "rename"],
    ),
    ("xor in I()", lambda: fit("y ~ I(k^2)"), ValueError, ["I(k ^ 2)", "exclusive or", "**"]),
    ("xor in braces", lambda: fit("y ~ {k ^ 2}"), ValueError, ["exclusive or", "k ** 2"]),
    (
        "xor in concomitant",
        lambda: fit("y ~ x", K=2, concomitant="~ I(k ^ 2)"),
        ValueError,
        ["concomitant", "**"],
    ),
    (
        "power of one term",
        lambda: fit("y ~ x^2"),
        ValueError,
        ["x^2", "interaction power", "I(x ** 2)"],
    ),
    ("power of one term, **", lambda: fit("y ~ z + x**3"), ValueError, ["x**3", "I(x ** 3)"]),
    (
        "response on the right",
        lambda: fit("y ~ y + x"),
        ValueError,
        ["response", "'y'", "right-hand side"],
    ),
    (
        "response inside a term",
        lambda: fit("y ~ x + np.log(y + 1)"),
        ValueError,
        ["response", "'y'"],
    ),
    (
        "two-column response on the right",
        lambda: fit("s + f ~ x + f", family="binomial"),
        ValueError,
        ["response", "'f'"],
    ),
    (
        "response in concomitant",
        lambda: fit("y ~ x", K=2, concomitant="~ y"),
        ValueError,
        ["concomitant", "response", "'y'"],
    ),
    (
        "response in fixed",
        lambda: fit("y ~ x", fixed="~ I(y * 2)"),
        ValueError,
        ["fixed", "response"],
    ),
    (
        "column hides log",
        lambda: fit("y ~ log(z)", D.assign(log=1.0)),
        ValueError,
        ["log()", "column named 'log'", "rename"],
    ),
    (
        "column hides np",
        lambda: fit("y ~ np.log(z)", D.assign(np=1.0)),
        ValueError,
        ["'np'", "rename"],
    ),
    ("column hides C", lambda: fit("y ~ C(g)", D.assign(C=1.0)), ValueError, ["C()", "'C'"]),
    ("exp10 is x**10", lambda: fit("y ~ exp10(x)"), ValueError, ["exp10", "x**10", "10 ** x"]),
    (
        "a value outside levels=",
        lambda: fit("y ~ C(g, levels=['a', 'b'])"),
        ValueError,
        ["{'c'}", "levels"],
    ),
    ("R grouping bar", lambda: fit("y ~ x | g"), ValueError, ["|", "groups="]),
    ("R factor()", lambda: fit("y ~ factor(g)"), ValueError, ["factor", "C(g)"]),
    ("R offset()", lambda: fit("y ~ x + offset(z)"), ValueError, ["offset", "offset='z'"]),
    (
        "unknown function",
        lambda: fit("y ~ nosuchfunction(x)"),
        ValueError,
        ["nosuchfunction()", "not a function in scope"],
    ),
    (
        "same column twice in the data",
        lambda: fit("y ~ x", pd.concat([D, D[["x"]]], axis=1)),
        ValueError,
        ["several columns", "'x'"],
    ),
]


MALFORMED = [
    ("y ~ 0", ValueError, ["'y ~ 0'", "no terms", "'y ~ 1'"]),
    ("y ~ -1", ValueError, ["no terms"]),
    ("~ x", ValueError, ["'~ x'", "no left-hand side"]),
    ("y ~", ValueError, ["nothing right of '~'", "y ~ 1"]),
    ("", ValueError, ["formula is empty"]),
    ("   ", ValueError, ["formula is empty"]),
    ("x", ValueError, ["left-hand side"]),
    ("y ~ I(x +)", ValueError, ["'y ~ I(x +)'", "invalid syntax", "I(x +)"]),
    ("y ~ np.log(x", ValueError, ["'y ~ np.log(x'", "not a valid formula"]),
    ("y ~ x +", ValueError, ["'y ~ x +'", "not a valid formula"]),
    ("y ~ x ~ z", ValueError, ["not a valid formula"]),
    ("y ~ (x", ValueError, ["not a valid formula"]),
    ("y ~ x + 'a'", ValueError, ["not a valid formula"]),
    ("y ~ x + 3", ValueError, ["not a valid formula"]),
    ("1 ~ x", ValueError, ["left-hand side", "response"]),
    ("y ~ x + I()", ValueError, ["I()"]),
    ("y ~ x + np.nosuch(x)", ValueError, ["np.nosuch(x)"]),
    ("y ~ x + nothere", ValueError, ["'nothere'", "neither a column"]),
    ("y ~ I(x.nosuch)", ValueError, ["nosuch"]),
]


@pytest.mark.parametrize("case, call, kind, words", REFUSED, ids=[c[0] for c in REFUSED])
def test_formulas_that_would_mean_something_else_are_refused(case, call, kind, words):
    with pytest.raises(kind) as info:
        call()
    for word in words:
        assert word in str(info.value), (case, str(info.value))


@pytest.mark.parametrize("formula, kind, words", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_formulas_are_named(formula, kind, words):
    with pytest.raises(kind) as info:
        fit(formula)
    for word in words:
        assert word in str(info.value), (formula, str(info.value))


@pytest.mark.parametrize(
    "argument, value, kind, words",
    [
        ("fixed", "", ValueError, ["fixed", "empty"]),
        ("fixed", "~ 0", ValueError, ["fixed", "no terms"]),
        ("fixed", "y ~ z", ValueError, ["fixed", "one-sided"]),
        ("fixed", 3, TypeError, ["fixed", "int"]),
        ("concomitant", "~ z +", ValueError, ["concomitant", "not a valid formula"]),
        ("concomitant", "~ I(z +)", ValueError, ["concomitant", "I(z +)"]),
    ],
)
def test_malformed_side_formulas_are_named(argument, value, kind, words):
    with pytest.raises(kind) as info:
        fit("y ~ x", K=2, **{argument: value})
    for word in words:
        assert word in str(info.value), str(info.value)


def test_what_is_fine_stays_fine():
    ref = fit("y ~ x")
    # A repeated term is the term once (as in R).
    assert list(fit("y ~ x + x").params.index) == ["Intercept", "x"]
    assert fit("y ~ x + x").llf == ref.llf
    # An interaction power of a sum works as in R.
    assert list(fit("y ~ (x + z)^2").params.index) == ["Intercept", "x", "z", "x:z"]
    # The square written the Python way.
    squared = fit("y ~ x + I(x ** 2)")
    assert squared.llf == pytest.approx(fit("y ~ x + x2", D.assign(x2=D.x**2)).llf, abs=1e-10)
    # An unused column named Intercept, log or np changes nothing.
    assert fit("y ~ x", D.assign(Intercept=1.0, log=2.0, np=3.0)).llf == ref.llf
    # A user's own exp10 in scope is theirs.
    assert fit("y ~ exp10(x)", context={"exp10": lambda v: 10.0 ** (v / 10)}).nobs == N


def test_dot_stands_for_the_other_columns():
    data = D[["y", "x", "z", "f"]]
    res = fit("y ~ .", data)
    assert list(res.params.index) == ["Intercept", "x", "z", "f"]
    assert res.llf == pytest.approx(fit("y ~ x + z + f", data).llf, abs=1e-10)
    # Columns given a role are not covariates.
    res = fit("y ~ .", data, exposure="z", weights="f")
    assert list(res.params.index) == ["Intercept", "x"]
    assert list(fit("y ~ . - z", data).params.index) == ["Intercept", "x", "f"]


# ------------------------------------------------------- the safe check
ALLOWED = [
    "y ~ x + z",
    "y ~ 0 + x",
    "y ~ np.log(z) + np.sqrt(z)",
    "y ~ log(z) + exp(x / 10)",
    "y ~ log10(z) + log2(z)",
    "y ~ I(x ** 2) + I(x * z - 1)",
    "y ~ I(x > 0) + I((x > 0) & (z > 2))",
    "y ~ C(g) + C(k)",
    "y ~ C(g, contr.treatment('b'))",
    "y ~ C(g, Treatment('c'))",
    "y ~ C(g, levels=['c', 'b', 'a'])",
    "y ~ center(x) + scale(z)",
    "y ~ standardize(x)",
    "y ~ bs(x, df=4)",
    "y ~ cr(x, df=3)",
    "y ~ poly(x, 2)",
    "y ~ np.clip(x, -1, 1)",
    "y ~ np.where(x > 0, x, 0)",
    "y ~ np.maximum(x, 0) + np.abs(x)",
    "y ~ I(np.pi * x)",
    "y ~ x * C(g)",
    "y ~ (x + z)^2",
    "y ~ Q('x')",
    "y ~ `x` + `z`",
    "y ~ .",
    "y ~ I(-x) + I(x % 2) + I(x // 1)",
    "y ~ hashed(g, levels=4)",
    "y ~ I(x ** (1 / 3))",
    "y ~ I(2 ** x) + I(10 ** -2 * x)",
]


@pytest.mark.parametrize("formula", ALLOWED)
def test_safe_formulas_pass_the_check(formula):
    check_safe_formula(formula, D.columns)


@pytest.mark.parametrize(
    "formula, words",
    [
        ("y ~ x + I(__import__('os').system('touch pwned'))", ["__import__", "double-underscore"]),
        ("y ~ I(().__class__)", ["__class__", "double-underscore"]),
        ("y ~ I(x.__class__)", ["__class__"]),
        ("y ~ I(getattr(x, 'sum')())", ["getattr"]),
        ("y ~ I(open('f'))", ["open"]),
        ("y ~ I(eval('1'))", ["eval"]),
        ("y ~ I(abs(x))", ["abs", "--allow-python"]),
        ("y ~ x.to_csv('f')", ["x.to_csv", "method"]),
        ("y ~ np.save('f', x)", ["np.save"]),
        ("y ~ np.load('f')", ["np.load"]),
        ("y ~ np.lib.format.open_memmap('f')", ["np.lib"]),
        ("y ~ I(np)", ["np"]),
        ("y ~ I([v for v in x])", ["ListComp"]),
        ("y ~ I((lambda v: v)(x))", ["Lambda"]),
        ("y ~ I(x[0])", ["Subscript"]),
        ("y ~ C(g, _state={})", ["_state"]),
        ("y ~ I(2 ** 10 ** 10)", ["power above 1000"]),
        ("y ~ I(2 ** 5000)", ["power above 1000"]),
        ("y ~ I((10 ** 100) ** 100)", ["power above 1000"]),
        ("y ~ I('a' * 10)", ["repeats text"]),
        ("y ~ I(x @ x)", ["MatMult"]),
        ("y ~ exp10(x)", ["exp10"]),
        ("y ~ I(b'a')", ["constant"]),
    ],
)
def test_unsafe_formulas_are_refused_before_evaluation(formula, words):
    with pytest.raises(ValueError) as info:
        check_safe_formula(formula, D.columns)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_safe_check_covers_one_sided_formulas():
    check_safe_formula("~ z + C(g)", D.columns, "--concomitant", two_sided=False)
    with pytest.raises(ValueError, match="--fixed .*__import__"):
        check_safe_formula("~ I(__import__('os'))", D.columns, "--fixed", two_sided=False)


def test_safe_functions_are_formulaics_transforms():
    assert {"C", "I", "center", "scale", "bs", "poly", "lag", "log", "exp", "Q"} <= set(
        SAFE_FUNCTIONS
    )
    assert "np" not in SAFE_FUNCTIONS and "exp10" not in SAFE_FUNCTIONS


def test_the_python_api_still_evaluates_in_the_callers_namespace():
    def shifted(values):
        return values + 1.0

    res = emglm("y ~ shifted(x)", D, K=1)  # shifted is found in this frame
    ref = fit("y ~ x1", D.assign(x1=D.x + 1.0))
    assert res.llf == pytest.approx(ref.llf, abs=1e-10)
    # Builtins too: abs is Python, not a formulaic transform.
    assert fit("y ~ I(abs(x))").llf == pytest.approx(
        fit("y ~ ax", D.assign(ax=D.x.abs())).llf, abs=1e-10
    )
