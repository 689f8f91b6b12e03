"""The ``emformula`` command: ``demo``, ``fit`` and ``select-k``.

Every error a user can cause (a missing or unreadable file, a bad column,
formula, family, number or combination of options) ends in one line on
stderr, ``emformula: error: ...`` naming it, and exit status 2, never a
traceback.

Formulas arrive from the command line, perhaps from someone else: unlike
the Python API, which evaluates the Python in a formula's terms in the
caller's namespace (as statsmodels and formulaic do), the command line
evaluates only column names, numpy functions and formulaic's transforms,
checked on the parsed Python of every term of the formula, ``--fixed`` and
``--concomitant`` before anything is evaluated
(:func:`emformula.formula.design.check_safe_formula`). ``--allow-python`` lifts
that for formulas the user trusts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from .covariance.registry import cov_type_names
from .model import DEFAULT_MAX_ITER, DEFAULT_N_INIT, DEFAULT_TOL

__all__ = ["main", "build_parser"]


class UsageError(Exception):
    """A problem with the command line or its inputs (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line and status 2 like every
    other user error (argparse would print the usage first)."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


#: Exceptions that report a user's mistake (status 2); anything else is a bug.
_USER_ERRORS = (
    UsageError,
    ValueError,
    TypeError,
    KeyError,
    LookupError,
    OSError,
    NotImplementedError,
    ArithmeticError,
    MemoryError,
    RecursionError,
    ImportError,
)


# ------------------------------------------------------------------ input
def _read_data(path):
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise UsageError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        raise UsageError(f"data file {str(path)!r} is a folder, not a .csv or .parquet file")
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    compressed = suffixes[-1:] in ([".gz"], [".bz2"], [".zip"], [".xz"])
    suffix = suffixes[-2] if compressed and len(suffixes) == 2 else suffixes[-1] if suffixes else ""
    if suffix not in (".parquet", ".pq", ".csv", ".txt", ".tsv", ".gz", ".bz2", ".zip", ".xz"):
        raise UsageError(
            f"data file {str(path)!r} must be .csv (.tsv, .txt, compressed or not) or .parquet"
        )
    try:
        if suffix in (".parquet", ".pq"):
            data = pd.read_parquet(path)
        else:
            data = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
            if data.shape[1] == 1:
                # A file separated by ";" or tabs reads as one column.
                header = str(data.columns[0])
                for sep in (";", "\t", "|"):
                    if sep in header:
                        data = pd.read_csv(path, sep=sep)
                        break
    except pd.errors.EmptyDataError:
        raise UsageError(f"data file {str(path)!r} is empty") from None
    except ImportError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc}") from None
    except Exception as exc:  # pandas and pyarrow raise many parser errors
        raise UsageError(f"cannot read {str(path)!r} as {suffix[1:]}: {_first_line(exc)}") from None
    if len(data) == 0:
        raise UsageError(f"data file {str(path)!r} has no rows (only a header)")
    return data


def _first_line(exc):
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _formula_context(args, data):
    """Check the formulas (unless --allow-python) and give their namespace.

    Safe mode: every formula-valued option is checked against the data's
    columns and evaluated with nothing but formulaic's own transforms (an
    empty context). --allow-python: any Python, with numpy, pandas and math
    as np, pd and math.
    """
    from .formula.design import check_safe_formula

    if getattr(args, "allow_python", False):
        import math

        import pandas as pd

        return {"np": np, "pd": pd, "math": math}
    check_safe_formula(args.formula, data.columns, "formula")
    for name in ("fixed", "concomitant"):
        value = getattr(args, name, None)
        if value is not None:
            check_safe_formula(value, data.columns, f"--{name}", two_sided=False)
    return {}


def _model_kwargs(args, data):
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.n_init < 1:
        raise UsageError(f"--n-init must be at least 1, got {args.n_init}")
    kwargs = {"context": _formula_context(args, data)}
    for name in ("concomitant", "fixed"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    if getattr(args, "equal_scale", False):
        kwargs["equal_scale"] = True
    for name in ("weights", "offset", "exposure", "groups"):
        column = getattr(args, name, None)
        if column is not None:
            if column not in data.columns:
                raise UsageError(
                    f"--{name} column {column!r} is not in the data "
                    f"(columns: {', '.join(map(str, data.columns))})"
                )
            kwargs[name] = column
    return kwargs


def _family(args):
    """The family of ``--family``: a name, or names separated by commas (one
    family per component, e.g. ``pointmass,poisson``)."""
    from .families import as_family

    names = [name.strip() for name in args.family.split(",")]
    return as_family(names if len(names) > 1 else names[0], args.link)


# --------------------------------------------------------------- commands
def _demo(args):
    import statsmodels.api as sm

    from . import datasets, emglm, select_best, small_em
    from .report.summary import compare

    sim2 = datasets.load_sim2()
    formula = sim2.formula
    print(f"emformula demo: the bundled sim2 data ({len(sim2.data)} rows), {formula}\n")
    glm = sm.GLM.from_formula(
        "y ~ V1 + V2 + V3 + V4 + V5", sim2.data, family=sm.families.Poisson()
    ).fit()
    warm = small_em(formula, sim2.data, family="poisson", K=2, repeats=10, random_state=args.seed)
    res = emglm(formula, sim2.data, family="poisson", K=2, start=select_best(warm))
    print(compare(glm, res, names=["Poisson GLM", "EM mixture K=2"]).as_text())
    print()
    print(res.summary())
    # The components come out in either order: put the true values under the
    # fitted component they match.
    from .report.known import known_frame, match_components

    truth = match_components(known_frame(sim2.params, res.params), res.params)
    print("\nTrue coefficients (simulation), matched to the fitted components:")
    print(truth.to_string())
    if args.plots:
        for path in _demo_plots(Path(args.plots), glm, res, sim2):
            print(f"wrote {path}")
    return 0


def _demo_plots(folder, glm, res, sim2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report.plotting import plot_qq

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --plots folder {str(folder)!r}: {exc}") from None
    figures = {
        "glm_pearson_qq.png": plot_qq(glm, type="pearson"),
        "em_quantile_qq.png": res.plot_qq(random_state=1),
        "em_params_vs_known.png": res.plot_params(known=sim2.params),
        "em_posterior.png": res.plot_posterior(),
    }
    written = []
    for name, fig in figures.items():
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        written.append(folder / name)
    return written


def _fit(args):
    from . import emglm

    data = _read_data(args.data)
    family = _family(args)
    if args.K is None:
        args.K = family.n_members or 2  # a list of families: one component each
    if args.K < 1:
        raise UsageError(f"-K must be at least 1, got {args.K}")
    if args.cov_groups is not None and args.cov_type != "cluster":
        raise UsageError("--cov-groups is only used with --cov-type cluster")
    if args.cov_type == "cluster" and args.cov_groups is None:
        raise UsageError("--cov-type cluster needs --cov-groups COL (the cluster labels)")
    kwargs = _model_kwargs(args, data)
    if args.cov_type != "louis":
        kwargs["cov_type"] = args.cov_type
        if args.cov_groups is not None:
            if args.cov_groups not in data.columns:
                raise UsageError(f"--cov-groups column {args.cov_groups!r} is not in the data")
            kwargs["cov_groups"] = args.cov_groups
    res = emglm(
        args.formula,
        data,
        family=family,
        K=args.K,
        random_state=args.seed,
        **_fit_kwargs(args),
        **kwargs,
    )
    # On stderr, so that the JSON, HTML or LaTeX on stdout stays clean.
    print(
        f"emformula: log-likelihood {res.llf:.4f}; best llf replicated: {res.n_best} of "
        f"{res.n_full_starts} starts",
        file=sys.stderr,
    )
    if args.format == "json":
        print(json.dumps(_as_json(res), indent=2))
    elif args.format == "html":
        print(res.summary().as_html())
    elif args.format == "latex":
        print(res.summary().as_latex())
    else:
        print(res.summary().as_text())
    if args.posterior:
        try:
            res.posterior.to_csv(args.posterior)
        except OSError as exc:
            raise UsageError(f"cannot write --posterior {args.posterior!r}: {exc}") from None
    return 0


def _as_json(res):
    def clean(value):
        value = float(value)
        return value if np.isfinite(value) else None

    return {
        "formula": res.model.formula,
        "family": res.family.family_name,
        "link": res.family.link_name,
        "K": res.n_components,
        "nobs": int(res.nobs),
        "df_model": int(res.df_model),
        "llf": clean(res.llf),
        "aic": clean(res.aic),
        "bic": clean(res.bic),
        "icl": clean(res.icl),
        "converged": bool(res.converged),
        "n_best": res.n_best,
        "n_starts": res.n_full_starts,
        "n_iter": int(res.n_iter),
        "components": [
            {
                "name": name,
                "prior": clean(res.prior[name]),
                "prior_se": clean(res.prior_bse[name]),
                "scale": clean(res.scale[name]),
                "scale_se": clean(res.scale_bse[name]),
                "family_params": {
                    parameter: {
                        "estimate": clean(res.family_params.loc[parameter, name]),
                        "se": clean(res.family_bse.loc[parameter, name]),
                    }
                    for parameter in res.family_params.index
                },
                "params": {
                    term: {
                        "estimate": clean(res.params.loc[term, name]),
                        "se": clean(res.bse.loc[term, name]),
                    }
                    for term in res.params.index
                },
            }
            for name in res.component_names
        ],
        "fixed": {
            term: {"estimate": clean(res.fixed_params[term]), "se": clean(res.fixed_bse[term])}
            for term in res.fixed_params.index
        },
        "concomitant": None
        if res.concomitant_params is None
        else {
            name: {
                term: {
                    "estimate": clean(res.concomitant_params.loc[term, name]),
                    "se": clean(res.concomitant_bse.loc[term, name]),
                }
                for term in res.concomitant_params.index
            }
            for name in res.component_names[1:]
        },
        "cov_type": res.cov_type,
        "problems": list(res.problems),
    }


def _select_k(args):
    from .selection import select_k

    if args.kmax < 1:
        raise UsageError(f"--kmax must be at least 1, got {args.kmax}")
    data = _read_data(args.data)
    family = _family(args)
    if args.kmax > len(data):
        raise UsageError(f"--kmax {args.kmax} is more than the {len(data)} rows of the data")
    options = _fit_kwargs(args)
    choice = select_k(
        args.formula,
        data,
        family,
        K=range(1, args.kmax + 1),
        criterion=args.criterion,
        n_init=options.pop("n_init"),
        random_state=args.seed,
        n_jobs=options.pop("n_jobs"),
        fit_kwargs=options,
        **_model_kwargs(args, data),
    )
    table = choice.table
    if args.format == "json":
        print(
            json.dumps(
                {
                    "criterion": choice.criterion,
                    "best_k": choice.best_k,
                    "table": json.loads(table.reset_index().to_json(orient="records")),
                },
                indent=2,
            )
        )
    elif args.format == "html":
        print(choice._repr_html_())
    elif args.format == "csv":
        print(table.to_csv(), end="")
    else:
        print(choice)
    return 0


def _fit_kwargs(args):
    """The options of the fit itself, checked as the library would."""
    if args.max_iter < 1:
        raise UsageError(f"--max-iter must be at least 1, got {args.max_iter}")
    if not (args.tol > 0 and math.isfinite(args.tol)):
        raise UsageError(f"--tol must be a positive number, got {args.tol}")
    if args.n_jobs == 0 or args.n_jobs < -1:
        raise UsageError(
            f"--n-jobs must be a positive number of processes or -1, got {args.n_jobs}"
        )
    return {
        "n_init": args.n_init,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "n_jobs": args.n_jobs,
    }


# ----------------------------------------------------------------- parser
def _add_model_arguments(parser):
    parser.add_argument("data", help="a .csv or .parquet file")
    parser.add_argument("formula", help="two-sided formula, e.g. 'y ~ x1 + C(g)'")
    parser.add_argument(
        "--family",
        default="poisson",
        help="poisson (default), binomial, gaussian, gamma, "
        "inverse_gaussian, negative_binomial (alpha estimated), or "
        "one per component separated by commas, e.g. "
        "pointmass,poisson (zero-inflated Poisson)",
    )
    parser.add_argument("--link", default=None, help="a non-canonical link, e.g. log, identity")
    parser.add_argument("--weights", metavar="COL", help="column of frequency weights")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--offset", metavar="COL", help="column of offsets")
    group.add_argument("--exposure", metavar="COL", help="column of exposures")
    parser.add_argument(
        "--concomitant",
        metavar="FORMULA",
        help="mixing proportions depend on these covariates, e.g. '~ z'",
    )
    parser.add_argument(
        "--fixed", metavar="FORMULA", help="effects shared by all components, e.g. '~ x2'"
    )
    parser.add_argument("--groups", metavar="COL", help="rows of one group share a component")
    parser.add_argument(
        "--equal-scale",
        action="store_true",
        dest="equal_scale",
        help="one dispersion (or alpha) for all components",
    )
    parser.add_argument(
        "--n-init",
        type=int,
        default=DEFAULT_N_INIT,
        dest="n_init",
        help=f"starts run to convergence after screening (default {DEFAULT_N_INIT})",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument(
        "--max-iter",
        type=int,
        default=DEFAULT_MAX_ITER,
        dest="max_iter",
        help=f"EM iterations per start (default {DEFAULT_MAX_ITER})",
    )
    parser.add_argument(
        "--tol",
        type=float,
        default=DEFAULT_TOL,
        help=f"relative change of the log-likelihood at convergence (default {DEFAULT_TOL:g})",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        dest="n_jobs",
        help="processes for the starts (-1: every core; default 1); the "
        "result does not depend on it",
    )
    parser.add_argument(
        "--allow-python",
        action="store_true",
        dest="allow_python",
        help="evaluate any Python in the formulas (with np, pd, math and "
        "Python's builtins); without it a formula may use only column "
        "names, numpy functions (np.log, log, exp, np.sqrt, ...) and "
        "formulaic's transforms (C, I, center, scale, bs, poly, ...). "
        "Only for formulas you trust: Python can do anything you can",
    )


def build_parser():
    parser = _Parser(
        prog="emformula", description="Finite mixtures of generalized linear models fitted by EM."
    )
    parser.add_argument("--version", action="version", version=f"emformula {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="fit the bundled sim2 data and print the results",
        description="Fit a Poisson GLM and a two-component EM mixture "
        "to the bundled sim2 data and print both.",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument("--plots", metavar="DIR", help="also write the vignette's figures here")
    demo.set_defaults(handler=_demo)

    fit = sub.add_parser(
        "fit",
        help="fit a mixture and print its summary",
        description="Fit a finite mixture of GLMs to a data file.",
    )
    _add_model_arguments(fit)
    fit.add_argument(
        "-K",
        type=int,
        default=None,
        help="number of components (default 2; with a list of families, their number)",
    )
    fit.add_argument(
        "--format",
        choices=["text", "html", "latex", "json"],
        default="text",
        help="output format (default text)",
    )
    fit.add_argument("--posterior", metavar="FILE", help="write the posterior to this CSV")
    fit.add_argument(
        "--cov-type",
        choices=list(cov_type_names()),
        default="louis",
        dest="cov_type",
        help="covariance of the estimates (default louis)",
    )
    fit.add_argument(
        "--cov-groups",
        metavar="COL",
        dest="cov_groups",
        help="cluster column for --cov-type cluster",
    )
    fit.set_defaults(handler=_fit)

    select = sub.add_parser(
        "select-k",
        help="fit K = 1..kmax and choose K",
        description="Fit K = 1..kmax components and choose K by an information criterion.",
    )
    _add_model_arguments(select)
    select.add_argument("--kmax", type=int, default=5, help="largest K (default 5)")
    select.add_argument("--criterion", choices=["bic", "aic", "icl"], default="bic")
    select.add_argument(
        "--format",
        choices=["text", "json", "html", "csv"],
        default="text",
        help="output format of the table (default text)",
    )
    select.set_defaults(handler=_select_k)
    return parser


def main(argv=None):
    """Entry point of the ``emformula`` console script.

    Returns the exit status: 0, 2 for every user error (one line on stderr,
    ``emformula: error: ...``), 1 for an unexpected internal error (one line
    too; ``EMFORMULA_TRACEBACK=1`` shows the traceback), 130 when interrupted.
    """
    # `emformula demo | head` should end quietly, as Unix tools do: the
    # default SIGPIPE action while the command runs, and the caller's back
    # afterwards (main() called inside a program, a test run, must not leave
    # its process to be killed by the next write to a closed pipe).
    previous = _default_sigpipe()
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGPIPE, previous)


def _default_sigpipe():
    """Set SIGPIPE to its default action; the previous handler, or None
    where it cannot be set (no SIGPIPE, not the main thread)."""
    if not hasattr(signal, "SIGPIPE"):
        return None
    try:
        return signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    except ValueError:  # not the main thread
        return None


def _main(argv):
    parser = build_parser()
    format_warning = warnings.formatwarning
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            parser.print_help(sys.stderr)
            return 2
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.formatwarning = _one_line_warning
            return args.handler(args)
    except _USER_ERRORS as exc:
        # One line: formulaic's parser errors add a drawing of the formula.
        print(f"emformula: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emformula: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("EMFORMULA_TRACEBACK"):
            raise
        print(
            f"emformula: error: unexpected {type(exc).__name__}: {_first_line(exc)} "
            "(this is a bug: please report it; EMFORMULA_TRACEBACK=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.formatwarning = format_warning


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"warning: {category.__name__}: {message}\n"


if __name__ == "__main__":
    sys.exit(main())
