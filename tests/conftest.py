"""Shared fixtures: the independent reference data in ../shared/reference."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples, so a landing
# never depends on what a random search happens to find that day; local runs
# keep searching (and a failure they find is saved in .hypothesis/).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def reference_csv(name):
    """Read a file of ../shared/reference, or skip the test when it is absent."""
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference data {path} not available")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def sim2_r():
    return reference_csv("sim2.csv")


@pytest.fixture(scope="session")
def sim1_r():
    return reference_csv("sim1.csv")


@pytest.fixture(scope="session")
def flexmix_fits():
    return reference_csv("flexmix_sim_fits.csv")


def flexmix_fit(fits, dataset, K):
    """Estimates (terms x components), priors, SEs and llf of one flexmix fit."""
    sub = fits[(fits.dataset == dataset) & (fits.K == K)]
    est = sub.pivot(index="term", columns="component", values="estimate")
    se = sub.pivot(index="term", columns="component", values="se")
    prior = sub.groupby("component").prior.first()
    return est, se, prior.to_numpy(), float(sub.loglik.iloc[0]), sub.iloc[0]


def match_components(params, reference):
    """Order of our columns that best matches the reference's columns."""
    from itertools import permutations

    ours = np.asarray(params)
    ref = np.asarray(reference)
    best = min(
        permutations(range(ours.shape[1])),
        key=lambda order: np.abs(ours[:, list(order)] - ref).sum(),
    )
    return list(best)
