"""The ``emformula`` command."""

from __future__ import annotations

import argparse
import sys
import warnings

__all__ = ["main"]


def _demo(args):
    import statsmodels.api as sm

    from . import datasets, emglm, small_em, select_best
    from .summary import compare

    sim2 = datasets.load_sim2()
    formula = sim2.formula
    print(f"emformula demo: the bundled sim2 data ({len(sim2.data)} rows), {formula}\n")
    glm = sm.GLM.from_formula("y ~ V1 + V2 + V3 + V4 + V5", sim2.data,
                              family=sm.families.Poisson()).fit()
    warm = small_em(formula, sim2.data, family="poisson", K=2, repeats=10,
                    random_state=args.seed)
    res = emglm(formula, sim2.data, family="poisson", K=2, start=select_best(warm))
    print(compare(glm, res, names=["Poisson GLM", "EM mixture K=2"]).as_text())
    print()
    print(res.summary())
    print("\nTrue coefficients:")
    print(sim2.params.to_string())
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="emformula",
        description="Finite mixtures of generalized linear models fitted by EM.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="fit the bundled sim2 data and print the results",
                          description="Fit a Poisson GLM and a two-component EM mixture "
                                      "to the bundled sim2 data and print both.")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None):
    """Entry point of the ``emformula`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
