"""One MixtureSpec carries the model keywords through every entry point."""

import pickle

import numpy as np
import pandas as pd
import pytest

from emformula import EMGLM, datasets, emglm, select_k, small_em
from emformula.specification import MixtureSpec


@pytest.fixture(scope="module")
def sim2():
    return datasets.load_sim2()


def test_a_spec_gives_the_fit_of_its_keywords(sim2):
    data = sim2.data.assign(w=np.arange(len(sim2.data)) % 3 + 1.0)
    by_keywords = emglm(sim2.formula, data, "poisson", 2, weights="w", random_state=3, n_init=2)
    spec = MixtureSpec("poisson", 2, weights="w")
    by_spec = emglm(sim2.formula, data, spec=spec, random_state=3, n_init=2)
    assert by_spec.llf == by_keywords.llf
    np.testing.assert_array_equal(by_spec.params, by_keywords.params)
    assert by_spec.model.spec.weights == "w"
    # A keyword beside the spec overrides it.
    unweighted = emglm(sim2.formula, data, spec=spec, weights=None, random_state=3, n_init=2)
    assert unweighted.wnobs == len(data) and by_spec.wnobs == data["w"].sum()


@pytest.mark.parametrize(
    "call",
    [
        lambda f, d: emglm(f, d, "poisson", 2, weigths="w"),
        lambda f, d: small_em(f, d, "poisson", 2, repeats=1, concommitant="~ 1"),
        lambda f, d: select_k(f, d, "poisson", [1], groop="g"),
        lambda f, d: EMGLM.from_formula(f, d, "poisson", 2, offest="x"),
    ],
)
def test_a_misspelt_model_keyword_is_refused_by_name(sim2, call):
    with pytest.raises(TypeError, match="unexpected keyword argument .*did you mean"):
        call(sim2.formula, sim2.data)


def test_family_and_k_come_from_the_spec_or_the_arguments_not_both(sim2):
    with pytest.raises(TypeError, match="not both"):
        emglm(sim2.formula, sim2.data, "gaussian", spec=MixtureSpec("poisson", 2))
    # Even when the values written out are the defaults: never silently dropped.
    with pytest.raises(TypeError, match="not both"):
        emglm(sim2.formula, sim2.data, K=2, spec=MixtureSpec("poisson", 3))
    with pytest.raises(TypeError, match="not both"):
        select_k(sim2.formula, sim2.data, "poisson", [1], spec=MixtureSpec("poisson"))


def test_with_k_runs_the_constructor_checks():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(12), rng.normal(size=12)])
    y = rng.poisson(2.0, size=12).astype(float)
    model = EMGLM(y, x, "poisson", 1, weights=np.ones(12))
    assert model.with_k(2).K == 2 and model.with_k(2).data.nobs == 12
    # 5 components x 2 coefficients + 4 mixing parameters > 12 rows.
    with pytest.raises(ValueError, match="K=5 is too large"):
        model.with_k(5)
    with pytest.raises(ValueError, match="K must be at least 1"):
        model.with_k(0)


def test_select_k_checks_every_k_before_fitting(sim2):
    small = sim2.data.iloc[:20]
    with pytest.raises(ValueError, match="K=4 is too large"):
        select_k(sim2.formula, small, "poisson", [1, 4])


def test_a_formula_model_keeps_its_spec_through_with_k_and_pickle(sim2):
    model = EMGLM.from_formula(sim2.formula, sim2.data, "poisson", 2, na_action="raise")
    three = model.with_k(3)
    assert three.spec.K == 3 and three.spec.na_action == "raise"
    assert three.design is model.design and three.exog_names == model.exog_names
    restored = pickle.loads(pickle.dumps(three))
    assert restored.spec.K == 3 and restored.spec.context is None


def test_pandas_arrays_keep_their_names_and_index(sim2):
    data = sim2.data.copy()
    data.index = data.index * 2 + 1000
    model = EMGLM(data["y"], data[["V1", "V2", "V3", "V4", "V5"]], "poisson", 2)
    assert model.exog_names == ["V1", "V2", "V3", "V4", "V5"] and model.endog_names == ["y"]
    res = model.fit(random_state=1, n_init=2)
    assert list(res.params.index) == ["V1", "V2", "V3", "V4", "V5"]
    assert res.posterior.index.equals(data.index)
    assert "Dep. Variable:                        y" in res.summary().as_text()
    # The same fit as from plain arrays, where the labels are generated.
    plain = EMGLM(
        data["y"].to_numpy(), data[["V1", "V2", "V3", "V4", "V5"]].to_numpy(), "poisson", 2
    ).fit(random_state=1, n_init=2)
    assert plain.llf == res.llf and list(plain.params.index) == [f"x{j}" for j in range(5)]
    assert plain.posterior.index.equals(pd.RangeIndex(len(data)))
    # Explicit names still win.
    named = EMGLM(data["y"], data[["V1", "V2"]], "poisson", 1, exog_names=["a", "b"])
    assert named.exog_names == ["a", "b"]
