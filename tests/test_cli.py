"""The emformula command, run as a user would (subprocess)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from emformula import datasets, emglm


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "emformula.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    sim2 = datasets.load_sim2()
    data = sim2.data.iloc[::4].copy()
    data["w"] = 1.0
    data["g"] = np.where(data.V1 > 0, "a", "b")
    data.to_csv(folder / "sim2.csv", index=False)
    data.to_parquet(folder / "sim2.parquet", index=False)
    return folder, data


FORMULA = "y ~ 0 + V1 + V2 + V3 + V4 + V5"


def test_demo_prints_glm_and_mixture_side_by_side(tmp_path):
    code, out, err = run("demo", "--plots", tmp_path)
    assert code == 0, err
    assert "Model comparison" in out and "Poisson GLM" in out and "EM mixture K=2" in out
    assert "Component 2 (prior" in out and "Covariance Type:                 Louis" in out
    sim2 = datasets.load_sim2()
    res = emglm(sim2.formula, sim2.data, "poisson", K=2, random_state=1)
    assert f"{res.bic:.3f}" in out      # the same optimum as a direct fit
    # The printed true coefficients stand under the fitted component they
    # belong to (the simulation's labels may come out swapped).
    block = out.split("matched to the fitted components:\n")[1].split("wrote")[0]
    rows = [line.split() for line in block.strip().splitlines()]
    assert rows[0] == ["comp1", "comp2"]
    printed = pd.DataFrame([[float(v) for v in r[1:]] for r in rows[1:]],
                           index=[r[0] for r in rows[1:]], columns=rows[0])
    fitted = res.params.loc[printed.index, printed.columns]
    assert np.abs(printed - fitted).to_numpy().max() < 0.05
    assert sorted(printed.round(6).T.values.tolist()) == sorted(
        sim2.params.loc[printed.index].round(6).T.values.tolist())
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["em_params_vs_known.png", "em_posterior.png", "em_quantile_qq.png",
                    "glm_pearson_qq.png"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_fit_json_has_every_estimate(files, suffix):
    folder, data = files
    code, out, err = run("fit", folder / f"sim2.{suffix}", FORMULA, "--family", "poisson",
                         "-K", "2", "--seed", "1", "--format", "json",
                         "--posterior", folder / f"post_{suffix}.csv")
    assert code == 0, err
    result = json.loads(out)
    ref = emglm(FORMULA, data, "poisson", K=2, start="warmup", n_init=3, random_state=1)
    assert result["llf"] == pytest.approx(ref.llf, rel=1e-10)
    assert result["aic"] == pytest.approx(ref.aic) and result["bic"] == pytest.approx(ref.bic)
    assert result["df_model"] == 11 and result["K"] == 2
    for comp in result["components"]:
        for term, values in comp["params"].items():
            assert values["estimate"] == pytest.approx(ref.params.loc[term, comp["name"]],
                                                       rel=1e-6)
            assert values["se"] == pytest.approx(ref.bse.loc[term, comp["name"]], rel=1e-5)
    post = pd.read_csv(folder / f"post_{suffix}.csv", index_col=0)
    assert post.shape == (len(data), 2)
    np.testing.assert_allclose(post.sum(axis=1), 1.0)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("fmt, marker", [("text", "Component 1 (prior"),
                                         ("html", "<table"), ("latex", "\\begin{tabular}")])
def test_fit_formats(files, fmt, marker, suffix):
    folder, _ = files
    code, out, err = run("fit", folder / f"sim2.{suffix}", FORMULA, "-K", "2", "--seed", "2",
                         "--format", fmt, "--weights", "w")
    assert code == 0, err
    assert marker in out


def test_select_k_prints_the_table_and_the_choice(files):
    folder, _ = files
    code, out, err = run("select-k", folder / "sim2.csv", FORMULA, "--family", "poisson",
                         "--kmax", "3", "--seed", "1")
    assert code == 0, err
    assert "chosen by BIC: K = 2" in out
    assert all(f"\n{k} " in out for k in (1, 2, 3))


@pytest.mark.parametrize("args, words", [
    (["fit", "missing.csv", FORMULA], ["missing.csv", "does not exist"]),
    (["fit", "{folder}/sim2.csv", "y ~ V1 + nothere"], ["nothere"]),
    (["fit", "{folder}/sim2.csv", FORMULA, "--family", "poison"], ["unknown family", "poison"]),
    (["fit", "{folder}/sim2.csv", FORMULA, "--weights", "ww"], ["--weights", "'ww'"]),
    (["fit", "{folder}/sim2.csv", "y ~ V1 +"], ["y ~ V1 +"]),
    (["fit", "{folder}/sim2.csv", FORMULA, "--family", "poisson", "--link", "logit"],
     ["'logit'", "poisson"]),
    (["fit", "{folder}/sim2.csv", FORMULA, "--family", "gamma"], ["non-positive", "gamma"]),
    (["fit", "{folder}/notdata.txt2", FORMULA], ["notdata.txt2"]),
    (["select-k", "{folder}/sim2.csv", FORMULA, "--kmax", "0"], ["--kmax"]),
    (["fit", "{folder}/sim2.csv", "g ~ V1"], ["'g'", "not numeric"]),
])
def test_bad_invocations_give_one_line_and_status_2(files, args, words):
    folder, _ = files
    (folder / "notdata.txt2").write_text("x")
    args = [a.format(folder=folder) for a in args]
    code, out, err = run(*args)
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


def test_help_on_each_command():
    for command in ("demo", "fit", "select-k"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "usage: emformula " + command in out
    code, out, _ = run("--help")
    assert code == 0 and "select-k" in out


def test_fit_with_the_extensions(files):
    folder, data = files
    frame = data.copy()
    frame["id"] = np.arange(len(frame)) // 5
    frame.to_csv(folder / "grouped.csv", index=False)
    code, out, err = run("fit", folder / "grouped.csv", "y ~ 0 + V1 + V2 + V3 + V4",
                         "--fixed", "~ 0 + V5", "--concomitant", "~ V5", "--cov-type",
                         "cluster", "--cov-groups", "id", "--format", "json", "--seed", "3")
    assert code == 0, err
    result = json.loads(out)
    ref = emglm("y ~ 0 + V1 + V2 + V3 + V4", frame, "poisson", K=2, fixed="~ 0 + V5",
                concomitant="~ V5", cov_type="cluster", cov_groups="id", start="warmup",
                n_init=3, random_state=3)
    assert result["llf"] == pytest.approx(ref.llf, rel=1e-10)
    assert result["df_model"] == ref.df_model
    assert result["cov_type"] == "cluster"
    assert result["fixed"]["V5"]["estimate"] == pytest.approx(ref.fixed_params["V5"], rel=1e-6)
    assert result["fixed"]["V5"]["se"] == pytest.approx(ref.fixed_bse["V5"], rel=1e-6)
    gamma = result["concomitant"]["comp2"]["V5"]
    assert gamma["estimate"] == pytest.approx(ref.concomitant_params.loc["V5", "comp2"],
                                              rel=1e-6)
    code, out, err = run("fit", folder / "grouped.csv", FORMULA, "--groups", "nothere")
    assert code == 2 and "nothere" in err
