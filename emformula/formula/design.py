"""The formula layer: the only module that talks to formulaic.

It turns a two-sided formula and a data frame into the arrays the model
needs (response, design, weights, offset, trials), remembers the formulaic
``ModelSpec`` so new data is encoded with the training levels and stateful
transforms, and maps everything back to the caller's row labels. It does no
arithmetic beyond taking the logarithm of an exposure.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic.errors import DataMismatchWarning, FormulaicError
from formulaic.formula import SimpleFormula
from formulaic.parser import DefaultFormulaParser
from formulaic.parser.types import ASTNode, Token
from formulaic.transforms import TRANSFORMS
from formulaic.utils.code import sanitize_variable_names

from ..warnings import warn
from .columns import as_float, prepare_columns

__all__ = [
    "Design",
    "build_design",
    "group_codes",
    "new_design_matrix",
    "new_response",
    "as_frame",
    "resolve_vector",
    "resolve_labels",
    "parse_formula",
    "check_safe_formula",
    "spec_columns",
    "SAFE_FUNCTIONS",
]


@dataclass(frozen=True)
class Design:
    """Arrays built from a formula, aligned to the rows that were kept.

    Attributes
    ----------
    endog : ndarray, (n,) or (n, 2)
        The response (two columns for binomial ``successes + failures ~``).
    exog : ndarray (n, p)
    endog_names : list of str
    exog_names : list of str
    weights, offset, exposure, trials : ndarray (n,) or None
    row_index : pandas.Index
        Labels of the kept rows in the caller's data.
    kept : ndarray of bool
        Which rows of the caller's data were kept (the rest had missing values).
    model_spec : formulaic ModelSpecs
        To rebuild the design for new data.
    column_args : dict
        The names of columns given for weights/offset/exposure/trials/groups/
        cov_groups, so ``predict`` can find them in new data.
    fixed, concomitant : ndarray (n, r), (n, q) or None
        Designs of the shared effects and of the mixing proportions.
    fixed_names, concomitant_names : list of str
    fixed_spec, concomitant_spec : formulaic ModelSpec or None
        To rebuild those designs for new data (``fixed_names`` selects the
        columns kept from ``fixed_spec``).
    groups, cov_groups : pandas Series or None
        Group and cluster labels of the kept rows.
    column_kinds : dict or None
        ``"numeric"`` or ``"categorical"`` for each data column the formulas
        read (see :mod:`emformula.formula.columns`), to check new data.
    """

    endog: np.ndarray
    exog: np.ndarray
    endog_names: list
    exog_names: list
    weights: np.ndarray | None
    offset: np.ndarray | None
    exposure: np.ndarray | None
    trials: np.ndarray | None
    row_index: pd.Index
    kept: np.ndarray
    model_spec: object
    column_args: dict
    formula: str
    fixed: np.ndarray | None = None
    fixed_names: list | None = None
    fixed_spec: object = None
    concomitant: np.ndarray | None = None
    concomitant_names: list | None = None
    concomitant_spec: object = None
    groups: pd.Series | None = None
    cov_groups: pd.Series | None = None
    column_kinds: dict | None = None


def as_frame(data, name="data"):
    """Accept a DataFrame, a mapping of columns (a dict of lists or arrays)
    or a table with ``to_pandas()`` (pyarrow); reject anything else."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        try:
            return pd.DataFrame(dict(data))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name}: cannot make a data frame of this dict of columns "
                f"({exc}); give one list or 1-d array per column, all of the "
                "same length"
            ) from None
    if hasattr(data, "to_pandas") and not isinstance(data, pd.Series | np.ndarray):
        frame = data.to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    hint = (
        "; a Series is one column: use series.to_frame() or a dict"
        if isinstance(data, pd.Series)
        else ""
    )
    raise TypeError(
        f"{name} must be a pandas DataFrame (or a dict of columns), got {type(data).__name__}{hint}"
    )


def resolve_vector(value, data, argument, n_rows):
    """A per-row argument given as a column name or an array, as floats.

    Returns ``None`` for ``None``; raises a ValueError naming the argument
    for a missing column or a wrong length, a TypeError for values that are
    not numbers. Nullable, pyarrow and Decimal numbers are floats, their
    missing values NaN.
    """
    if value is None:
        return None
    column = None
    if isinstance(value, str):
        if data is None or value not in data.columns:
            raise ValueError(f"{argument}={value!r}: no column {value!r} in the data")
        column, value = value, data[value]
    array = as_float(value, argument, column)
    if array.ndim == 0:
        array = np.full(n_rows, float(array))
    if array.ndim != 1:
        raise ValueError(
            f"{argument} must be one value per row (a 1-d array), got an array "
            f"of shape {array.shape}"
        )
    if array.shape[0] != n_rows:
        raise ValueError(
            f"{argument} has {array.shape[0] if array.ndim else 1} values "
            f"but the data has {n_rows} rows"
        )
    return array


def resolve_labels(value, data, argument, n_rows):
    """A per-row label argument (groups, clusters) as a column name or array.

    Returns a pandas Series of the labels (any type) or ``None``; a missing
    label is a ValueError naming the rows.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if data is None or value not in data.columns:
            raise ValueError(f"{argument}={value!r}: no column {value!r} in the data")
        labels = data[value].reset_index(drop=True)
    else:
        labels = pd.Series(np.asarray(value))
    if labels.shape != (n_rows,):
        raise ValueError(
            f"{argument} must have one label per row ({n_rows}), got "
            f"{labels.shape[0] if labels.ndim else 1}"
        )
    if labels.isna().any():
        rows = np.flatnonzero(labels.isna().to_numpy())
        raise ValueError(
            f"{argument} has {rows.size} missing label(s), first at row "
            f"positions {rows[:5].tolist()}"
        )
    return labels


def group_codes(labels, n, argument):
    """``(labels, codes)``: the distinct labels (sorted) and codes ``0..G-1``.

    For the group and cluster labels of the array-level model; labels of
    mixed types that cannot be sorted are coded as strings.
    """
    if labels is None:
        return None, None
    if isinstance(labels, str):
        raise TypeError(
            f"{argument} must be labels, one per row (a column name only "
            "works with a formula and data)"
        )
    series = resolve_labels(labels, None, argument, n)  # length and missing labels
    try:
        codes, uniques = pd.factorize(series.to_numpy(), sort=True)
    except TypeError:
        codes, uniques = pd.factorize(series.astype(str).to_numpy(), sort=True)
    return pd.Index(uniques), codes.astype(np.intp)


def _one_sided(formula, argument):
    """``"~ z"`` (or ``"z"``) as a one-sided formula string."""
    if not isinstance(formula, str):
        raise TypeError(
            f"{argument} must be a one-sided formula string such as '~ z', "
            f"got {type(formula).__name__}"
        )
    text = formula.strip()
    if not text.startswith("~"):
        if "~" in text:
            raise ValueError(f"{argument}={formula!r} must be one-sided (no response): write '~ z'")
        text = "~ " + text
    if not text[1:].strip():
        raise ValueError(f"{argument}={formula!r} is empty: write '~ z' (or leave it out)")
    return text


# ------------------------------------------------------------ formula checks
#: formulaic's transforms a command-line formula may call (its default
#: context without the ``np`` and ``contr`` namespaces, which are checked
#: attribute by attribute, and ``exp10``, which computes ``x**10``).
SAFE_FUNCTIONS = tuple(sorted(set(TRANSFORMS) - {"np", "contr", "exp10"}))
#: Besides every numpy ufunc (``np.log``, ``np.sqrt``, ``np.maximum``, ...).
_NUMPY_EXTRAS = frozenset(
    {
        "clip",
        "where",
        "round",
        "around",
        "nan_to_num",
        "sinc",
        "i0",
        "digitize",
        "interp",
        "pi",
        "e",
        "inf",
        "nan",
        "euler_gamma",
    }
)
_CONTRASTS = frozenset({"treatment", "sum", "helmert", "poly", "diff", "custom", "SAS"})
_SAFE_BINOPS = (
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.BitAnd,
    ast.BitOr,
)
_SAFE_NODES = (
    ast.UnaryOp,
    ast.Compare,
    ast.BoolOp,
    ast.IfExp,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
)
_OPERATOR_NODES = (ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context)
_SAFE_HINT = (
    "; a command-line formula may use only column names, numpy functions "
    "(np.log, log, exp, np.sqrt, ...) and formulaic's transforms (C, I, center, "
    "scale, bs, poly, ...): pass --allow-python to evaluate any Python (only for "
    "formulas you trust)"
)
#: What R users write that Python spells differently.
_R_HINTS = {
    "factor": "R's factor(g) is C(g) here",
    "as_factor": "R's as.factor(g) is C(g) here",
    "offset": "pass the offset as offset='z' (--offset z on the command line), not in the formula",
    "ns": "natural cubic splines are cr(x, df=4) here",
    "relevel": "C(g, contr.treatment('b')) makes 'b' the reference level",
}


def _numpy_allowed(attr):
    return attr in _NUMPY_EXTRAS or isinstance(getattr(np, attr, None), np.ufunc)


def _has_name(node):
    return any(isinstance(child, ast.Name) for child in ast.walk(node))


class _TermCheck:
    """Walks the Python of one term: records the data columns it reads and
    refuses what would silently mean something else (``^``, formulaic's
    ``exp10``, a column hiding a function), plus, in safe mode, every name,
    attribute and syntax outside the command line's allowance."""

    def __init__(self, label, term, columns, safe, context):
        self.label, self.term, self.columns = label, term, columns
        self.safe, self.context = safe, context
        self.used = set()
        self.aliases = {}

    def fail(self, reason, unsafe=True):
        """Refuse the term; ``unsafe``: for a reason of the safe mode."""
        hint = _SAFE_HINT if self.safe and unsafe else ""
        raise ValueError(f"{self.label}: the term `{self.term}` {reason}{hint}")

    def check(self, expr):
        code = sanitize_variable_names(expr, {}, self.aliases)
        try:
            tree = ast.parse(code, mode="eval")
        except SyntaxError as exc:
            raise ValueError(
                f"{self.label}: the term `{self.term}` is not valid Python ({exc.msg})"
            ) from None
        if self.safe:
            # Double underscores first, wherever they are: `().__class__`,
            # `__import__("os")`, `f(__x=1)`.
            for node in ast.walk(tree):
                word = (
                    node.id
                    if isinstance(node, ast.Name) and node.id not in self.aliases
                    else node.attr
                    if isinstance(node, ast.Attribute)
                    else node.arg
                    if isinstance(node, ast.keyword)
                    else None
                )
                if word is not None and "__" in word:
                    self.fail(
                        f"uses `{word}`: double-underscore names and attributes are never evaluated"
                    )
        self.visit(tree.body)
        return self.used

    def in_scope(self, name):
        if self.context is not None and name in self.context:
            return True
        return name in TRANSFORMS or (not self.safe and hasattr(builtins, name))

    def visit(self, node, called=False):
        if isinstance(node, ast.Name):
            return self.name(node.id, called)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, called)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Constant):
            if self.safe and not isinstance(node.value, int | float | str | type(None)):
                self.fail(f"has the constant {node.value!r:.30}, which is not a number or text")
            return None
        if self.safe and not isinstance(node, _SAFE_NODES + _OPERATOR_NODES):
            self.fail(f"uses Python syntax ({type(node).__name__})")
        if self.safe and isinstance(node, ast.Dict) and None in node.keys:
            self.fail("unpacks a dict (**)")
        for child in ast.iter_child_nodes(node):
            self.visit(child)
        return None

    def name(self, identifier, called):
        quoted = identifier in self.aliases
        name = self.aliases.get(identifier, identifier)
        if self.safe and not quoted and "__" in name:
            self.fail(f"uses `{name}`: double-underscore names are never evaluated")
        if name in self.columns:
            if called:
                self.fail(
                    f"calls {name}(), but the data has a column named {name!r} that hides "
                    "the function: rename the column",
                    unsafe=False,
                )
            self.used.add(name)
            return
        if quoted:
            return
        if called and not self.in_scope(name):
            hint = _R_HINTS.get(name)
            if hint is not None:
                self.fail(f"calls {name}(): {hint}", unsafe=False)
            if not self.safe:
                self.fail(
                    f"calls {name}(), which is not a function in scope (formulaic's "
                    "transforms, the caller's namespace or context=)"
                )
        if (
            called
            and name == "exp10"
            and (self.safe or self.context is None or name not in self.context)
        ):
            self.fail(
                "calls formulaic's exp10(x), which computes x**10, not 10**x: write "
                "I(10 ** x) or np.power(10, x)",
                unsafe=False,
            )
        if not self.safe or (called and name in SAFE_FUNCTIONS):
            return
        if name in ("np", "contr"):
            self.fail(f"uses `{name}` itself; only its functions, such as np.log(x), are allowed")
        self.fail(
            f"uses `{name}`, which is neither a column of the data nor a function a "
            "command-line formula may call"
        )

    def attribute(self, node, called):
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        chain.reverse()
        dotted = ".".join(chain)
        if self.safe and any(part.startswith("_") for part in chain):
            self.fail(
                f"uses the attribute `{dotted}`: double-underscore and private "
                "attributes are never evaluated"
            )
        if not isinstance(base, ast.Name):
            if self.safe:
                self.fail(f"takes the attribute `{dotted}` of an expression")
            return self.visit(base)
        root = self.aliases.get(base.id, base.id)
        if root in self.columns:
            if root in ("np", "contr"):
                self.fail(
                    f"uses {root}.{dotted}, but the data has a column named {root!r} "
                    f"that hides {root}: rename the column",
                    unsafe=False,
                )
            if self.safe:
                self.fail(f"uses the method or attribute `{root}.{dotted}` of a column")
            self.used.add(root)
            return None
        if not self.safe:
            return None
        if len(chain) == 1 and (
            (root == "np" and _numpy_allowed(chain[0]))
            or (root == "contr" and chain[0] in _CONTRASTS)
        ):
            return None
        self.fail(f"uses `{root}.{dotted}`, which a command-line formula may not call")

    def call(self, node):
        self.visit(node.func, called=True)
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "Q"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in self.columns
        ):
            self.used.add(node.args[0].value)
        for arg in node.args:
            if self.safe and isinstance(arg, ast.Starred):
                self.fail("unpacks arguments (*)")
            self.visit(arg.value if isinstance(arg, ast.Starred) else arg)
        for keyword in node.keywords:
            if self.safe and (keyword.arg is None or keyword.arg.startswith("_")):
                self.fail(f"passes the keyword {keyword.arg or '**'}")
            self.visit(keyword.value)

    def binop(self, node):
        if isinstance(node.op, ast.BitXor):
            left, right = ast.unparse(node.left), ast.unparse(node.right)
            self.fail(
                f"uses `^`, which in Python is exclusive or, not a power: write "
                f"{left} ** {right} for the power (np.bitwise_xor({left}, {right}) if "
                "you do mean exclusive or)",
                unsafe=False,
            )
        if self.safe:
            if not isinstance(node.op, _SAFE_BINOPS):
                self.fail(f"uses the operator {type(node.op).__name__}")
            if isinstance(node.op, ast.Pow) and not _has_name(node.left):
                # Python's integers have no bound: 2 ** 10 ** 10 would not end.
                exponent = node.right
                if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, ast.USub):
                    exponent = exponent.operand
                simple = _has_name(exponent) or (
                    isinstance(exponent, ast.Constant)
                    and isinstance(exponent.value, int | float)
                    and abs(exponent.value) <= 1000
                )
                nested = any(
                    isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow)
                    for n in ast.walk(node.left)
                )
                if not simple or nested:
                    self.fail("raises a constant to a power above 1000 or to a computed power")
            if isinstance(node.op, ast.Mult) and any(
                isinstance(side, ast.Constant) and isinstance(side.value, str)
                for side in (node.left, node.right)
            ):
                self.fail("repeats text")
        self.visit(node.left)
        self.visit(node.right)


@dataclass(frozen=True)
class ParsedFormula:
    """A formula parsed and checked by :func:`parse_formula`.

    Attributes
    ----------
    text : str
        The formula as given.
    formula : formulaic Formula
        What formulaic materializes (``.`` already expanded).
    lhs, rhs : frozenset of str
        The data columns read on each side (``lhs`` empty for a one-sided formula).
    """

    text: str
    formula: object
    lhs: frozenset = field(default_factory=frozenset)
    rhs: frozenset = field(default_factory=frozenset)


def _first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _single_term_powers(text):
    """``x^2`` / ``x**2`` of one term (formulaic and R read it as ``x``)."""
    try:
        root = DefaultFormulaParser().get_ast(text)
    except Exception:  # reported by the full parse
        return []
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, ASTNode):
            continue
        args = list(node.args)
        if (
            getattr(node.operator, "symbol", None) in ("^", "**")
            and len(args) == 2
            and isinstance(args[0], Token)
            and str(args[1]) != "1"
        ):
            found.append((str(args[0]), node.operator.symbol, str(args[1])))
        stack.extend(args)
    return found


def _side_columns(simple, label, columns, safe, context):
    """The data columns one side of a formula reads (checking its Python terms)."""
    used = set()
    for term in simple:
        for factor in term.factors:
            method = factor.eval_method.value
            if method == "lookup":
                if factor.expr in columns:
                    used.add(factor.expr)
            elif method == "python":
                used |= _TermCheck(label, str(term), columns, safe, context).check(factor.expr)
    return used


def parse_formula(
    formula,
    columns,
    *,
    argument="formula",
    two_sided=True,
    safe=False,
    context=None,
    available=None,
):
    """Parse and check a formula against the data's column names.

    A formula never silently means something else than its text: refused
    with a ValueError naming the formula (and the term) are a missing
    response or right-hand side, ``y ~ 0`` (no terms), ``|`` (use
    ``groups=``), ``x^2`` of a single term (``x`` itself, as in R: write
    ``I(x**2)``), ``^`` inside Python (exclusive or: write ``**``),
    formulaic's ``exp10`` (``x**10``), a data column that hides a function
    the formula calls (``log``, ``np``, ``C``), a column named ``Intercept``,
    the response on the right-hand side, and malformed Python.

    ``safe=True`` (the command line) also refuses every name that is not a
    column, a numpy ufunc or one of :data:`SAFE_FUNCTIONS` (formulaic's
    transforms), every attribute but ``np.<function>`` and
    ``contr.<contrast>``, double-underscore names, and Python beyond
    arithmetic, comparisons and literal lists; this is checked on the parsed
    Python of each term before anything is evaluated.

    ``available`` lists the columns ``.`` stands for (R's "all other
    columns"; the response is left out by formulaic).

    Returns
    -------
    ParsedFormula
    """
    if not isinstance(formula, str):
        raise TypeError(f"{argument} must be a string, got {type(formula).__name__}")
    label = f"{argument} {formula!r}"
    columns = frozenset(c for c in columns if isinstance(c, str))
    if two_sided:
        text = formula.strip()
        if not text:
            raise ValueError(f"{argument} is empty: write a formula such as 'y ~ x'")
        if "~" not in text:
            raise ValueError(f"{label} has no left-hand side: write 'y ~ x'")
        left, _, right = text.partition("~")
        if not left.strip():
            raise ValueError(f"{label} has no left-hand side (the response): write 'y ~ x'")
        if not right.strip():
            raise ValueError(
                f"{label} has nothing right of '~': write 'y ~ 1' for a model "
                "with an intercept only"
            )
    else:
        text = _one_sided(formula, argument)
    parse_context = (
        None
        if available is None
        else {"__formulaic_variables_available__": [c for c in available if isinstance(c, str)]}
    )
    try:
        parsed = Formula(text, _context=parse_context)
    except SyntaxError as exc:
        code = f" in `{exc.text.strip()}`" if exc.text else ""
        raise ValueError(
            f"{label} is not a valid formula: {exc.msg}{code} (Python syntax inside a term)"
        ) from None
    except (FormulaicError, ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"{label} is not a valid formula: {_first_line(exc)}") from None
    sides = (
        (getattr(parsed, "lhs", None), getattr(parsed, "rhs", None))
        if two_sided
        else (None, parsed)
    )
    if (two_sided and not isinstance(sides[0], SimpleFormula)) or not isinstance(
        sides[1], SimpleFormula
    ):
        if "|" in text:
            raise ValueError(
                f"{label}: `|` (several parts, or R's grouping `y ~ x | id`) is "
                "not supported in a formula: pass groups='id' (--groups id) for "
                "rows that share a component"
            )
        raise ValueError(
            f"{label} has a structure that is not supported: "
            f"{'write response ~ terms' if two_sided else 'write ~ terms'}"
        )
    for base, symbol, power in _single_term_powers(text):
        raise ValueError(
            f"{label}: `{base}{symbol}{power}` is the interaction power of a "
            f"single term, which is `{base}` itself (as in R): for the power "
            f"write I({base} ** {power}) (or poly({base}, {power}))"
        )
    lhs = set()
    if two_sided:
        if any(
            factor.eval_method.value == "literal" for term in sides[0] for factor in term.factors
        ):
            raise ValueError(
                f"{label}: the left-hand side must be the response column(s), not a number"
            )
        lhs = _side_columns(sides[0], label, columns, safe, context)
    if not len(sides[1]):
        raise ValueError(
            f"{label} has no terms (no intercept and no variables): write "
            f"{'y ~ 1' if two_sided else '~ 1'!r} for an intercept only"
        )
    rhs = _side_columns(sides[1], label, columns, safe, context)
    if "Intercept" in rhs:
        raise ValueError(
            f"{label}: the data has a column named 'Intercept', which the "
            "design's own intercept column would hide: rename the column"
        )
    both = sorted(lhs & rhs)
    if both:
        raise ValueError(
            f"{label}: the response {both} also appears on the right-hand side; "
            "remove it there (a response cannot explain itself)"
        )
    return ParsedFormula(formula, parsed, frozenset(lhs), frozenset(rhs))


def check_safe_formula(formula, columns, argument="formula", two_sided=True):
    """Refuse a formula that is more than columns, numpy functions and
    formulaic's transforms (see :func:`parse_formula`, ``safe=True``): what
    the command line evaluates without ``--allow-python``."""
    parse_formula(
        formula,
        columns,
        argument=argument,
        two_sided=two_sided,
        safe=True,
        context={},
        available=columns,
    )


def _materialize(parsed, frame, context, na_action):
    label = f"formula {parsed.text!r}"
    try:
        with _formulaic_warnings():
            return parsed.formula.get_model_matrix(frame, context=context, na_action=na_action)
    except DataMismatchWarning as exc:
        # formulaic would keep a value outside C(g, levels=[...]) as the reference level.
        raise ValueError(
            f"{label}: the data have level(s) {_mismatched_levels(exc)} outside "
            "the levels the formula names (C(g, levels=[...])); list every "
            "level, or drop those rows"
        ) from None
    except FormulaicError as exc:
        missing = _missing_name(exc)
        if missing is not None:
            raise ValueError(
                f"{label} uses {missing!r}, which is neither a column "
                "of the data nor a name in scope"
            ) from None
        raise ValueError(f"cannot build the design of {label}: {exc}") from None
    except (NameError, KeyError) as exc:
        raise ValueError(f"{label} names something the data does not have: {exc}") from None
    except (TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
        raise ValueError(
            f"cannot build the design of {label}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None


@contextlib.contextmanager
def _formulaic_warnings():
    """Warnings while formulaic runs: a level mismatch is an error (it would
    recode silently), pandas' notices from inside formulaic are not the
    user's business."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("error", DataMismatchWarning)
        yield


def _mismatched_levels(exc):
    """The levels a formulaic DataMismatchWarning names (its text otherwise)."""
    levels = re.search(r"dataset\): (.*?)\. They are", str(exc))
    return levels.group(1) if levels else f"({_first_line(exc)})"


def _missing_name(exc):
    """The name a formulaic evaluation error complains about, if any."""
    match = re.search(r"`([^`]+)` is not present in the dataset", str(exc))
    return match.group(1) if match else None


def _categorical_response(model_spec):
    """Names of left-hand side variables that formulaic encoded as categories."""
    try:
        state = model_spec.lhs.encoder_state
    except AttributeError:
        return []
    return [
        name for name, (kind, _) in state.items() if getattr(kind, "value", kind) != "numerical"
    ]


def build_design(formula, data, spec):
    """Build the arrays of a fit from a two-sided formula.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + C(g)"``; the left side may be two columns
        ``"successes + failures ~ x"`` for binomial counts.
    data : pandas.DataFrame
        Never modified.
    spec : MixtureSpec
        The model keywords this layer reads: ``context`` (names for the
        formula's functions, the caller's namespace); ``weights``,
        ``offset``, ``exposure``, ``trials`` (column names of ``data`` or
        arrays with one value per row of ``data``); ``na_action`` ("drop":
        rows with a missing value in any variable used are dropped with a
        warning; "raise": reported by a ValueError); ``fixed`` and
        ``concomitant`` (one-sided formulas ``"~ x2"`` of the shared effects
        and of the mixing proportions; the intercept of ``fixed`` is dropped
        when the main formula has one, as each component has its own);
        ``groups`` and ``cov_groups`` (column names or per-row labels).

    Returns
    -------
    Design
    """
    context, na_action = spec.context, spec.na_action
    weights, offset, exposure, trials = spec.weights, spec.offset, spec.exposure, spec.trials
    fixed, concomitant, groups, cov_groups = (
        spec.fixed,
        spec.concomitant,
        spec.groups,
        spec.cov_groups,
    )
    if na_action not in ("drop", "raise"):
        raise ValueError(f"na_action must be 'drop' or 'raise', got {na_action!r}")
    if context is not None and not isinstance(context, Mapping):
        raise TypeError(
            f"context must be a mapping of names (a dict), got {type(context).__name__}"
        )
    data = as_frame(data)
    if len(data) == 0:
        raise ValueError("data has no rows")
    n_rows = len(data)
    # Work on positions: the caller's index may be non-unique or unsorted.
    frame = data.reset_index(drop=True)
    columns = list(frame.columns)
    # `.` stands for the columns not used otherwise (R's "all other columns"),
    # without those given as weights, offsets, groups, ...
    roles = {
        value
        for value in (weights, offset, exposure, trials, groups, cov_groups)
        if isinstance(value, str)
    }
    available = [c for c in columns if c not in roles]
    main = parse_formula(formula, columns, context=context, available=available)
    side = {}
    for name, one_sided in (("fixed", fixed), ("concomitant", concomitant)):
        if one_sided is None:
            continue
        parsed = parse_formula(
            one_sided,
            columns,
            argument=name,
            two_sided=False,
            context=context,
            available=[c for c in available if c not in main.lhs],
        )
        leak = sorted(parsed.rhs & main.lhs)
        if leak:
            raise ValueError(f"{name} {one_sided!r} uses the response {leak} of {formula!r}")
        side[name] = parsed
    used = sorted(set().union(main.lhs, main.rhs, *(p.rhs for p in side.values())), key=str)
    frame, kinds = prepare_columns(frame, used, "data")
    extras = {
        name: resolve_vector(value, frame, name, n_rows)
        for name, value in (
            ("weights", weights),
            ("offset", offset),
            ("exposure", exposure),
            ("trials", trials),
        )
    }
    labels = {
        name: resolve_labels(value, frame, name, n_rows)
        for name, value in (("groups", groups), ("cov_groups", cov_groups))
    }
    matrices = _materialize(main, frame, context, "drop")
    lhs, rhs = matrices.lhs, matrices.rhs
    categorical = _categorical_response(matrices.model_spec)
    if categorical:
        raise TypeError(
            f"the response {', '.join(map(repr, categorical))} is not numeric; "
            "code it as numbers (for example 0/1 for a binomial response)"
        )
    evaluated = np.zeros(n_rows, dtype=bool)
    evaluated[np.asarray(rhs.index, dtype=int)] = True
    # The designs of the shared effects and of the mixing proportions: a row
    # missing one of their variables is dropped like any other.
    side_matrices = {}
    for name, parsed in side.items():
        matrix = _materialize(parsed, frame, context, "drop")
        present = np.zeros(n_rows, dtype=bool)
        present[np.asarray(matrix.index, dtype=int)] = True
        evaluated &= present
        side_matrices[name] = matrix
    # A row missing a value of a column the formulas read is dropped even
    # where its term turns the gap into a number (NaN > 0 is False in Python,
    # NA in R).
    observed = ~frame[used].isna().any(axis=1).to_numpy() if used else np.ones(n_rows, bool)
    kept = evaluated & observed
    # Weights, offsets, exposures and trials describe the rows rather than
    # measure them: a missing one is an error, never a reason to drop the row.
    for name, array in extras.items():
        if array is not None and not np.all(np.isfinite(array)):
            bad = ~np.isfinite(array)
            raise ValueError(
                f"{name} has {bad.sum()} missing or infinite value(s), first at "
                f"rows {data.index[bad][:5].tolist()}"
            )
    n_dropped = n_rows - int(kept.sum())
    if n_dropped:
        dropped = data.index[~kept]
        if na_action == "raise":
            raise ValueError(
                f"{n_dropped} row(s) have missing values in the variables of "
                f"{formula!r}, first at rows {dropped[:5].tolist()}; "
                "use na_action='drop' to drop them"
            )
        if kept.sum() == 0:
            empty = [name for name in used if frame[name].isna().all()]
            which = f" (column(s) {empty} have no values at all)" if empty else ""
            raise ValueError(
                f"every row has a missing value in the variables of {formula!r}{which}"
            )
        undefined = data.index[observed & ~evaluated]
        note = (
            ""
            if undefined.empty
            else f"; {undefined.size} of them have all their data but a term is NaN there "
            f"(such as the log of a negative number), first at rows "
            f"{undefined[:5].tolist()}"
        )
        warn(
            f"dropped {n_dropped} of {n_rows} rows with missing values "
            f"(first at rows {dropped[:5].tolist()}){note}",
            UserWarning,
        )
    positions = np.flatnonzero(kept)
    endog = _numeric(lhs.loc[positions], "response")
    exog = _numeric(rhs.loc[positions], "design")
    if endog.shape[1] == 1:
        endog = endog[:, 0]
    elif endog.shape[1] != 2:
        raise ValueError(
            f"the left side of {formula!r} gives {endog.shape[1]} columns; "
            "use one response or two (successes + failures)"
        )
    column_args = {
        name: value
        for name, value in (
            ("weights", weights),
            ("offset", offset),
            ("exposure", exposure),
            ("trials", trials),
            ("groups", groups),
            ("cov_groups", cov_groups),
        )
        if isinstance(value, str)
    }
    exog_names = _unique_names([str(c) for c in rhs.columns], formula)
    if "Intercept" in exog_names and not family_has_intercept(spec):
        # Ordinal components: the cut points take the intercept's place
        # (as in statsmodels' OrderedModel and R's polr); the other columns
        # keep their coding.
        exog_names.remove("Intercept")
        exog = _numeric(rhs.loc[positions, exog_names], "design")
    extra_designs = {}
    for name, matrix in side_matrices.items():
        names = _unique_names([str(c) for c in matrix.columns], side[name].text)
        if name == "fixed" and "Intercept" in names and "Intercept" in exog_names:
            # Every component has its own intercept already.
            names.remove("Intercept")
        values = _numeric(matrix.loc[positions, names], f"{name} design")
        extra_designs[name] = values if values.shape[1] else None
        extra_designs[f"{name}_names"] = names
        extra_designs[f"{name}_spec"] = matrix.model_spec
    return Design(
        endog=endog,
        exog=exog,
        endog_names=[str(c) for c in lhs.columns],
        exog_names=exog_names,
        **{name: (None if array is None else array[positions]) for name, array in extras.items()},
        row_index=data.index[positions],
        kept=kept,
        model_spec=matrices.model_spec,
        column_args=column_args,
        formula=formula,
        **extra_designs,
        **{
            name: (None if values is None else values.iloc[positions].reset_index(drop=True))
            for name, values in labels.items()
        },
        column_kinds=kinds,
    )


def family_has_intercept(spec):
    """Whether the spec's family has an intercept in its linear predictor
    (ordinal families have cut points instead)."""
    from ..families import as_family

    try:
        return as_family(spec.family, spec.link).has_intercept
    except (TypeError, ValueError):
        return True  # the model refuses the family with its own message


def _unique_names(names, formula):
    """The design's column names, refused when two coincide (``x`` and ``{x}``)."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"formula {formula!r} gives several design columns named {repeated}; "
            "write each term once"
        )
    return names


def _numeric(frame, what):
    try:
        return frame.to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        raise TypeError(f"the {what} column(s) {bad} are not numeric") from None


def new_design_matrix(model_spec, data, context=None, columns=None, kinds=None):
    """Encode new data with the training ``ModelSpec``.

    ``model_spec`` is the ModelSpecs of a two-sided formula (its right-hand
    side is used) or the ModelSpec of a one-sided one; ``columns`` selects
    columns by name (those the training design kept); ``kinds`` are the
    training ``Design.column_kinds``. A row missing a value of a column the
    formula reads is kept, as NaN in every column (the other rows do not
    change). A categorical level that was not seen in training is a
    ValueError naming it, instead of formulaic's warning and silent recoding
    to the reference level.
    """
    spec = getattr(model_spec, "rhs", model_spec)
    matrix = _new_matrix(spec, data, context, "design", kinds)
    if columns is not None:
        matrix = matrix.loc[:, list(columns)]
    return _numeric(matrix, "design")


def new_response(model_spec, data, context=None, kinds=None):
    """The response of new data, from the left-hand side of the training spec.

    Returns an ``(n,)`` or ``(n, 2)`` array (NaN where missing); a ValueError
    names the response when the data lack it.
    """
    matrix = _new_matrix(model_spec.lhs, data, context, "response", kinds)
    values = _numeric(matrix, "response")
    return values[:, 0] if values.shape[1] == 1 else values


def spec_columns(model_spec, columns, context=None):
    """The columns (of ``columns``) a formulaic ModelSpec or ModelSpecs reads."""
    columns = frozenset(c for c in columns if isinstance(c, str))
    specs = [getattr(model_spec, side) for side in ("lhs", "rhs") if hasattr(model_spec, side)] or [
        model_spec
    ]
    return set().union(
        *(
            _side_columns(spec.formula, "the formula of the fit", columns, False, context)
            for spec in specs
        )
    )


def _new_matrix(spec, data, context, what, kinds=None):
    frame = as_frame(data, "new data").reset_index(drop=True)
    n_rows = len(frame)
    names = sorted(spec_columns(spec, frame.columns, context), key=str)
    if kinds:
        # A column of the fit must be a column here too (not a name that
        # happens to be in the caller's namespace).
        absent = sorted(spec_columns(spec, kinds, context) - set(frame.columns), key=str)
        if absent:
            raise ValueError(
                f"new data lacks the column(s) {absent} that the formula uses ({what})"
            )
    frame, _ = prepare_columns(frame, names, "new data", kinds)
    complete = ~frame[names].isna().any(axis=1).to_numpy() if names else np.ones(n_rows, dtype=bool)
    if not complete.any():
        return pd.DataFrame(np.nan, index=range(n_rows), columns=list(spec.column_names))
    # Rows with a gap are left out and come back as NaN: formulaic would
    # encode a missing level as the reference level.
    rows = frame if complete.all() else frame.loc[complete]
    with _formulaic_warnings():
        try:
            matrix = spec.get_model_matrix(rows, context=context, na_action="ignore")
        except DataMismatchWarning as exc:
            raise ValueError(
                f"new data does not match the training data: level(s) "
                f"{_mismatched_levels(exc)} of a categorical variable were not "
                "seen in the fit, which has no coefficient for them"
            ) from None
        except FormulaicError as exc:
            missing = _missing_name(exc)
            if missing is not None:
                raise ValueError(
                    f"new data lacks {missing!r}, which the formula uses "
                    f"({what}): it is neither a column nor a name in scope "
                    "(pass context= for the formula's own functions)"
                ) from None
            raise ValueError(f"cannot build the design for new data: {exc}") from None
        except (NameError, KeyError) as exc:
            raise ValueError(f"new data lacks a variable of the formula ({what}): {exc}") from None
    return matrix.reindex(range(n_rows))
