"""The vignettes run, and their committed Markdown is what they produce now."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "vignettes"))
import render  # noqa: E402


def test_vignettes_run_and_rendered_markdown_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "vignettes" / "render.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={"MPLBACKEND": "Agg", "PATH": "", **_env()},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}


def test_every_vignette_has_its_figures_referenced_and_committed():
    for name in render.VIGNETTES:
        text = (ROOT / "vignettes" / f"{name}.md").read_text()
        figures = [
            line.split("(")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")
        ]
        assert figures, name
        for figure in figures:
            assert (ROOT / "vignettes" / figure).exists(), figure


def test_cells_parse_as_percent_format():
    cells = render.parse_cells("# %% [markdown]\n# # Title\n# text\n\n# %%\nx = 1\n# %%\n")
    assert cells == [("markdown", "# # Title\n# text"), ("code", "x = 1")]
    assert render._markdown(cells[0][1]) == "# Title\ntext"


def test_check_mode_fails_on_a_stale_vignette(tmp_path, monkeypatch):
    (tmp_path / "tiny.py").write_text("# %%\nprint(1 + 1)\n")
    (tmp_path / "tiny.md").write_text("stale\n")
    monkeypatch.setattr(render, "HERE", tmp_path)
    assert render.main(["--check", "tiny"]) == 1
    assert render.main(["tiny"]) == 0
    assert "```text\n2\n```" in (tmp_path / "tiny.md").read_text()
    assert render.main(["--check", "tiny"]) == 0
