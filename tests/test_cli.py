"""The emformula command, run as a user would (subprocess)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from emformula import datasets, emglm


def run(*args, cwd=None):
    proc = subprocess.run(
        [sys.executable, "-m", "emformula.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
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
    assert f"{res.bic:.3f}" in out  # the same optimum as a direct fit
    # The printed true coefficients stand under the fitted component they
    # belong to (the simulation's labels may come out swapped).
    block = out.split("matched to the fitted components:\n")[1].split("wrote")[0]
    rows = [line.split() for line in block.strip().splitlines()]
    assert rows[0] == ["comp1", "comp2"]
    printed = pd.DataFrame(
        [[float(v) for v in r[1:]] for r in rows[1:]],
        index=[r[0] for r in rows[1:]],
        columns=rows[0],
    )
    fitted = res.params.loc[printed.index, printed.columns]
    assert np.abs(printed - fitted).to_numpy().max() < 0.05
    assert sorted(printed.round(6).T.values.tolist()) == sorted(
        sim2.params.loc[printed.index].round(6).T.values.tolist()
    )
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == [
        "em_params_vs_known.png",
        "em_posterior.png",
        "em_quantile_qq.png",
        "glm_pearson_qq.png",
    ]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_fit_json_has_every_estimate(files, suffix):
    folder, data = files
    code, out, err = run(
        "fit",
        folder / f"sim2.{suffix}",
        FORMULA,
        "--family",
        "poisson",
        "-K",
        "2",
        "--seed",
        "1",
        "--format",
        "json",
        "--posterior",
        folder / f"post_{suffix}.csv",
    )
    assert code == 0, err
    result = json.loads(out)
    ref = emglm(FORMULA, data, "poisson", K=2, start="warmup", n_init=3, random_state=1)
    assert result["llf"] == pytest.approx(ref.llf, rel=1e-10)
    assert result["aic"] == pytest.approx(ref.aic) and result["bic"] == pytest.approx(ref.bic)
    assert result["df_model"] == 11 and result["K"] == 2
    for comp in result["components"]:
        for term, values in comp["params"].items():
            assert values["estimate"] == pytest.approx(ref.params.loc[term, comp["name"]], rel=1e-6)
            assert values["se"] == pytest.approx(ref.bse.loc[term, comp["name"]], rel=1e-5)
    post = pd.read_csv(folder / f"post_{suffix}.csv", index_col=0)
    assert post.shape == (len(data), 2)
    np.testing.assert_allclose(post.sum(axis=1), 1.0)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize(
    "fmt, marker",
    [("text", "Component 1 (prior"), ("html", "<table"), ("latex", "\\begin{tabular}")],
)
def test_fit_formats(files, fmt, marker, suffix):
    folder, _ = files
    code, out, err = run(
        "fit",
        folder / f"sim2.{suffix}",
        FORMULA,
        "-K",
        "2",
        "--seed",
        "2",
        "--format",
        fmt,
        "--weights",
        "w",
    )
    assert code == 0, err
    assert marker in out


def test_select_k_prints_the_table_and_the_choice(files):
    folder, _ = files
    code, out, err = run(
        "select-k",
        folder / "sim2.csv",
        FORMULA,
        "--family",
        "poisson",
        "--kmax",
        "3",
        "--seed",
        "1",
    )
    assert code == 0, err
    assert "chosen by BIC: K = 2" in out
    assert all(f"\n{k} " in out for k in (1, 2, 3))


@pytest.mark.parametrize(
    "args, words",
    [
        (["fit", "missing.csv", FORMULA], ["missing.csv", "does not exist"]),
        (["fit", "{folder}/sim2.csv", "y ~ V1 + nothere"], ["nothere"]),
        (["fit", "{folder}/sim2.csv", FORMULA, "--family", "poison"], ["unknown family", "poison"]),
        (["fit", "{folder}/sim2.csv", FORMULA, "--weights", "ww"], ["--weights", "'ww'"]),
        (["fit", "{folder}/sim2.csv", "y ~ V1 +"], ["y ~ V1 +"]),
        (
            ["fit", "{folder}/sim2.csv", FORMULA, "--family", "poisson", "--link", "logit"],
            ["'logit'", "poisson"],
        ),
        (["fit", "{folder}/sim2.csv", FORMULA, "--family", "gamma"], ["non-positive", "gamma"]),
        (["fit", "{folder}/notdata.txt2", FORMULA], ["notdata.txt2"]),
        (["select-k", "{folder}/sim2.csv", FORMULA, "--kmax", "0"], ["--kmax"]),
        (["fit", "{folder}/sim2.csv", "g ~ V1"], ["'g'", "not numeric"]),
    ],
)
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
    code, out, err = run(
        "fit",
        folder / "grouped.csv",
        "y ~ 0 + V1 + V2 + V3 + V4",
        "--fixed",
        "~ 0 + V5",
        "--concomitant",
        "~ V5",
        "--cov-type",
        "cluster",
        "--cov-groups",
        "id",
        "--format",
        "json",
        "--seed",
        "3",
    )
    assert code == 0, err
    result = json.loads(out)
    ref = emglm(
        "y ~ 0 + V1 + V2 + V3 + V4",
        frame,
        "poisson",
        K=2,
        fixed="~ 0 + V5",
        concomitant="~ V5",
        cov_type="cluster",
        cov_groups="id",
        start="warmup",
        n_init=3,
        random_state=3,
    )
    assert result["llf"] == pytest.approx(ref.llf, rel=1e-10)
    assert result["df_model"] == ref.df_model
    assert result["cov_type"] == "cluster"
    assert result["fixed"]["V5"]["estimate"] == pytest.approx(ref.fixed_params["V5"], rel=1e-6)
    assert result["fixed"]["V5"]["se"] == pytest.approx(ref.fixed_bse["V5"], rel=1e-6)
    gamma = result["concomitant"]["comp2"]["V5"]
    assert gamma["estimate"] == pytest.approx(ref.concomitant_params.loc["V5", "comp2"], rel=1e-6)
    code, out, err = run("fit", folder / "grouped.csv", FORMULA, "--groups", "nothere")
    assert code == 2 and "nothere" in err


# ------------------------------------------------ every user error, in-process
def main_in_process(capsys, *args):
    from emformula.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_small")
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    data = pd.DataFrame(
        {
            "y": rng.poisson(np.exp(0.5 + 0.3 * x)),
            "x": x,
            "g": rng.choice(["a", "b"], size=60),
            "w": 1.0,
            "t": pd.date_range("2020-01-01", periods=60).astype(str),
        }
    )
    data.to_csv(folder / "d.csv", index=False)
    data.to_csv(folder / "semi.csv", index=False, sep=";")
    data.to_csv(folder / "d.tsv", index=False, sep="\t")
    data.iloc[:0].to_csv(folder / "header.csv", index=False)
    (folder / "empty.csv").write_text("")
    (folder / "binary.csv").write_bytes(b"\xff\xfe\x00\x01\x80\x81" * 50)
    (folder / "fake.parquet").write_text("y,x\n1,2\n")
    (folder / "adir.csv").mkdir()
    data.assign(t=pd.to_datetime(data.t)).to_parquet(folder / "dates.parquet")
    return folder, data


# (id, arguments, words of the one error line)
USER_ERRORS = [
    ("missing file", ["fit", "{f}/nope.csv", "y ~ x"], ["nope.csv", "does not exist"]),
    ("empty file", ["fit", "{f}/empty.csv", "y ~ x"], ["empty.csv", "empty"]),
    ("header only", ["fit", "{f}/header.csv", "y ~ x"], ["header.csv", "no rows"]),
    ("binary csv", ["fit", "{f}/binary.csv", "y ~ x"], ["binary.csv", "cannot read"]),
    ("not parquet", ["fit", "{f}/fake.parquet", "y ~ x"], ["fake.parquet", "cannot read"]),
    ("a folder", ["fit", "{f}/adir.csv", "y ~ x"], ["adir.csv", "folder"]),
    ("wrong suffix", ["fit", "{f}/d.xlsx", "y ~ x"], ["d.xlsx"]),
    ("formula and file swapped", ["fit", "y ~ x", "{f}/d.csv"], ["'y ~ x'", "does not exist"]),
    ("bad column", ["fit", "{f}/d.csv", "y ~ nothere"], ["nothere"]),
    ("date column", ["fit", "{f}/dates.parquet", "y ~ t"], ["'t'", "dates"]),
    ("y ~ 0", ["fit", "{f}/d.csv", "y ~ 0"], ["'y ~ 0'", "no terms"]),
    ("~ x", ["fit", "{f}/d.csv", "~ x"], ["'~ x'", "left-hand side"]),
    ("I(x +)", ["fit", "{f}/d.csv", "y ~ I(x +)"], ["I(x +)", "syntax"]),
    ("x ^ 2", ["fit", "{f}/d.csv", "y ~ I(x^2)"], ["exclusive or", "**"]),
    ("empty formula", ["fit", "{f}/d.csv", ""], ["formula is empty"]),
    ("bar", ["fit", "{f}/d.csv", "y ~ x | g"], ["--groups"]),
    ("response not numeric", ["fit", "{f}/d.csv", "g ~ x"], ["'g'", "not numeric"]),
    ("bad family", ["fit", "{f}/d.csv", "y ~ x", "--family", "poison"], ["poison"]),
    ("bad link", ["fit", "{f}/d.csv", "y ~ x", "--link", "cauchit"], ["cauchit"]),
    ("K zero", ["fit", "{f}/d.csv", "y ~ x", "-K", "0"], ["-K", "at least 1"]),
    ("K negative", ["fit", "{f}/d.csv", "y ~ x", "-K", "-2"], ["-K"]),
    ("K not a number", ["fit", "{f}/d.csv", "y ~ x", "-K", "two"], ["-K", "'two'"]),
    ("K too large", ["fit", "{f}/d.csv", "y ~ x", "-K", "40"], ["too large"]),
    ("n-init zero", ["fit", "{f}/d.csv", "y ~ x", "--n-init", "0"], ["--n-init"]),
    ("negative seed", ["fit", "{f}/d.csv", "y ~ x", "--seed", "-1"], ["--seed"]),
    ("bad format", ["fit", "{f}/d.csv", "y ~ x", "--format", "xml"], ["--format", "xml"]),
    (
        "offset and exposure",
        ["fit", "{f}/d.csv", "y ~ x", "--offset", "w", "--exposure", "w"],
        ["--exposure", "--offset"],
    ),
    (
        "cov-groups without cluster",
        ["fit", "{f}/d.csv", "y ~ x", "--cov-groups", "g"],
        ["--cov-groups", "cluster"],
    ),
    (
        "cluster without cov-groups",
        ["fit", "{f}/d.csv", "y ~ x", "--cov-type", "cluster"],
        ["--cov-groups"],
    ),
    (
        "weights not numeric",
        ["fit", "{f}/d.csv", "y ~ x", "--weights", "g"],
        ["weights", "'g'", "numeric"],
    ),
    (
        "exposure column absent",
        ["fit", "{f}/d.csv", "y ~ x", "--exposure", "nope"],
        ["--exposure", "'nope'"],
    ),
    ("groups column absent", ["fit", "{f}/d.csv", "y ~ x", "--groups", "nope"], ["'nope'"]),
    ("bad --fixed", ["fit", "{f}/d.csv", "y ~ g", "--fixed", "~ x +"], ["--fixed", "~ x +"]),
    (
        "unsafe --fixed",
        ["fit", "{f}/d.csv", "y ~ g", "--fixed", "~ I(open('f'))"],
        ["--fixed", "open", "--allow-python"],
    ),
    (
        "unsafe --concomitant",
        ["fit", "{f}/d.csv", "y ~ x", "--concomitant", "~ I(().__class__)"],
        ["--concomitant", "__class__"],
    ),
    ("kmax zero", ["select-k", "{f}/d.csv", "y ~ x", "--kmax", "0"], ["--kmax"]),
    ("kmax above rows", ["select-k", "{f}/d.csv", "y ~ x", "--kmax", "99"], ["--kmax", "rows"]),
    ("unsafe select-k", ["select-k", "{f}/d.csv", "y ~ I(eval('x'))"], ["eval"]),
    ("max-iter zero", ["fit", "{f}/d.csv", "y ~ x", "--max-iter", "0"], ["--max-iter"]),
    ("tol negative", ["fit", "{f}/d.csv", "y ~ x", "--tol", "-1e-8"], ["--tol"]),
    ("tol not a number", ["fit", "{f}/d.csv", "y ~ x", "--tol", "tiny"], ["--tol", "'tiny'"]),
    ("n-jobs zero", ["select-k", "{f}/d.csv", "y ~ x", "--n-jobs", "0"], ["--n-jobs"]),
    (
        "select-k bad format",
        ["select-k", "{f}/d.csv", "y ~ x", "--format", "latex"],
        ["--format", "latex"],
    ),
    ("unknown option", ["fit", "{f}/d.csv", "y ~ x", "--nope"], ["--nope"]),
    ("unknown command", ["fitt"], ["fitt"]),
    ("missing arguments", ["fit"], ["required"]),
]


@pytest.mark.parametrize("case, args, words", USER_ERRORS, ids=[c[0] for c in USER_ERRORS])
def test_every_user_error_is_one_line_and_status_2(small_files, capsys, case, args, words):
    folder, _ = small_files
    code, out, err = main_in_process(capsys, *[a.format(f=folder) for a in args])
    assert code == 2, (case, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("emformula: error: "), lines[0]
    for word in words:
        assert word in lines[0], (case, lines[0])


def test_no_command_prints_help_and_status_2(capsys):
    code, out, err = main_in_process(capsys)
    assert code == 2 and "select-k" in err


@pytest.mark.parametrize("name", ["semi.csv", "d.tsv"])
def test_semicolon_and_tab_separated_files(small_files, capsys, name):
    folder, data = small_files
    code, out, err = main_in_process(
        capsys, "fit", folder / name, "y ~ x + g", "-K", "1", "--format", "json"
    )
    assert code == 0, err
    ref = emglm("y ~ x + g", data, "poisson", K=1)
    assert json.loads(out)["llf"] == pytest.approx(ref.llf, rel=1e-10)


def test_formula_code_is_not_run_without_allow_python(small_files, tmp_path):
    folder, _ = small_files
    formula = "y ~ x + I(__import__('os').system('touch pwned'))"
    code, out, err = run("fit", folder / "d.csv", formula, "-K", "1", cwd=tmp_path)
    assert code == 2 and "Traceback" not in err
    assert "__import__" in err and "--allow-python" in err
    assert not (tmp_path / "pwned").exists()
    # Nor through the other formula options, nor by the names the command
    # line's own module holds (json, sys, ...).
    for extra in (
        ["--fixed", "~ I(__import__('os').system('touch pwned'))"],
        ["--concomitant", "~ I(sys.exit(0))"],
    ):
        code, out, err = run("fit", folder / "d.csv", "y ~ g", "-K", "2", *extra, cwd=tmp_path)
        assert code == 2, err
    assert not (tmp_path / "pwned").exists()


def test_allow_python_permits_a_harmless_call(small_files, tmp_path, capsys):
    folder, data = small_files
    code, out, err = run(
        "fit",
        folder / "d.csv",
        "y ~ I(abs(x)) + I(math.sqrt(4) * x)",
        "-K",
        "1",
        "--format",
        "json",
        "--allow-python",
        cwd=tmp_path,
    )
    assert code == 0, err
    ref = emglm("y ~ ax + x2", data.assign(ax=data.x.abs(), x2=2 * data.x), "poisson", K=1)
    result = json.loads(out)
    assert result["llf"] == pytest.approx(ref.llf, rel=1e-10)
    assert result["components"][0]["params"]["I(abs(x))"]["estimate"] == pytest.approx(
        ref.params.loc["ax", "comp1"], rel=1e-8
    )
    code, out, err = main_in_process(capsys, "fit", folder / "d.csv", "y ~ I(abs(x))", "-K", "1")
    assert code == 2 and "--allow-python" in err


def test_safe_mode_allows_numpy_and_formulaic_transforms(small_files, capsys):
    folder, data = small_files
    formula = "y ~ np.log(np.abs(x) + 1) + center(x) + C(g) + I(x ** 2) + np.clip(x, -1, 1)"
    code, out, err = main_in_process(
        capsys, "fit", folder / "d.csv", formula, "-K", "1", "--format", "json"
    )
    assert code == 0, err
    ref = emglm(formula, data, "poisson", K=1)
    assert json.loads(out)["llf"] == pytest.approx(ref.llf, rel=1e-10)


def test_an_internal_error_is_one_line_and_status_1(small_files, capsys, monkeypatch):
    from emformula import cli

    def broken(args):
        raise RuntimeError("boom")

    folder, _ = small_files
    monkeypatch.setattr(cli, "_fit", broken)
    code, out, err = main_in_process(capsys, "fit", folder / "d.csv", "y ~ x")
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and "RuntimeError: boom" in err


def test_version_and_python_dash_m():
    from importlib.metadata import version

    import emformula

    proc = subprocess.run(
        [sys.executable, "-m", "emformula", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"emformula {emformula.__version__}"
    assert emformula.__version__ == version("emformula")  # one version, in one place


def test_fit_options_reach_the_fit(small_files, capsys, monkeypatch):
    import emformula

    folder, _ = small_files
    seen = {}
    real = emformula.emglm

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(emformula, "emglm", spy)
    code, out, err = main_in_process(
        capsys,
        "fit",
        f"{folder}/d.csv",
        "y ~ x",
        "-K",
        "2",
        "--max-iter",
        "7",
        "--tol",
        "1e-6",
        "--n-jobs",
        "2",
        "--n-init",
        "3",
        "--seed",
        "3",
        "--format",
        "json",
    )
    assert code == 0, err
    assert (seen["max_iter"], seen["tol"], seen["n_jobs"], seen["n_init"]) == (7, 1e-6, 2, 3)
    assert json.loads(out)["K"] == 2


def test_select_k_formats(small_files, capsys):
    folder, data = small_files
    args = ("select-k", f"{folder}/d.csv", "y ~ x", "--kmax", "2", "--n-init", "2", "--seed", "1")
    code, out, err = main_in_process(capsys, *args, "--format", "json")
    assert code == 0, err
    table = json.loads(out)
    assert [row["K"] for row in table["table"]] == [1, 2]
    assert table["best_k"] in (1, 2) and table["criterion"] == "bic"
    best = min(table["table"], key=lambda row: row["bic"])
    assert best["K"] == table["best_k"]
    k1 = emglm("y ~ x", data, "poisson", 1)
    assert table["table"][0]["llf"] == pytest.approx(k1.llf, rel=1e-9)
    code, out, _ = main_in_process(capsys, *args, "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("K,llf,df")
    code, out, _ = main_in_process(capsys, *args, "--format", "html")
    assert code == 0 and "<table" in out and "K = " in out


def test_fit_a_list_of_families_and_an_estimated_alpha(tmp_path):
    bio = datasets.load_biochemists()
    bio.to_csv(tmp_path / "bio.csv", index=False)
    formula = "art ~ fem + mar + kid5 + phd + ment"
    code, out, err = run(
        "fit",
        tmp_path / "bio.csv",
        formula,
        "--family",
        "pointmass,negative_binomial",
        "--concomitant",
        "~ ment + kid5",
        "--seed",
        "0",
        "--format",
        "json",
    )
    assert code == 0, err
    result = json.loads(out)
    ref = emglm(
        formula,
        bio,
        ["pointmass", "negative_binomial"],
        concomitant="~ ment + kid5",
        random_state=0,
    )
    assert result["K"] == 2 and result["llf"] == pytest.approx(ref.llf, rel=1e-10)
    alpha = result["components"][1]["family_params"]["alpha"]
    assert alpha["estimate"] == pytest.approx(ref.family_params.loc["alpha", "comp2"], rel=1e-8)
    assert alpha["se"] == pytest.approx(ref.family_bse.loc["alpha", "comp2"], rel=1e-6)
    assert result["components"][0]["family_params"] == {"alpha": {"estimate": None, "se": None}}
    code, _, err = run(
        "fit", tmp_path / "bio.csv", formula, "--family", "pointmass,poisson", "-K", "3"
    )
    assert code == 2 and "K=3 but 2 families" in err and len(err.strip().splitlines()) == 1


def test_main_in_process_leaves_the_callers_sigpipe_handler(small_files, capsys):
    # main() sets the default SIGPIPE action for the command's own output;
    # called inside a program (this test run) it must restore the caller's,
    # or the next write to a closed pipe kills the caller (exit 141).
    import signal

    from emformula import cli

    if not hasattr(signal, "SIGPIPE"):
        pytest.skip("no SIGPIPE on this platform")
    before = signal.getsignal(signal.SIGPIPE)
    assert cli.main(["fit"]) == 2  # a usage error
    assert signal.getsignal(signal.SIGPIPE) == before
    assert cli.main(["fit", str(small_files[0] / "d.csv"), "y ~ x", "-K", "1"]) == 0
    assert signal.getsignal(signal.SIGPIPE) == before
    assert "Log-Likelihood" in capsys.readouterr().out
