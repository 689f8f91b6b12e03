"""Run the vignettes and render them, with their figures, to Markdown.

The sources are percent-format Python files (the format jupytext reads):
``# %% [markdown]`` cells hold Markdown in comment lines, ``# %%`` cells hold
code. Each code cell runs in one namespace per vignette; what it prints and
the figures it leaves open are written after it.

Usage (from the project root)::

    python vignettes/render.py            # regenerate vignettes/*.md and figures
    python vignettes/render.py --check    # run everything, fail if the .md are stale

The check compares the Markdown text with the date, time and iteration count
of summary headers masked, so it passes on any day and BLAS; figures are regenerated in a
temporary folder and only their presence is checked (PNG bytes vary with the
matplotlib version).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VIGNETTES = ["getting_started", "too_many_classes", "warmup_starts", "count_models",
             "reporting_a_mixture", "grouped_data", "command_line"]
_CELL = re.compile(r"^# %%(.*)$")
_VOLATILE = [
    (re.compile(r"(Date:\s+)\w{3}, \d{2} \w{3} \d{4}"), r"\1<date>"),
    (re.compile(r"(Time:\s+)\d{2}:\d{2}:\d{2}"), r"\1<time>"),
    # Iteration counts can move by one with the last bits of another BLAS.
    (re.compile(r"(No\. Iterations:\s+)\d+"), r"\1<n>"),
]


def parse_cells(source):
    """Split a percent-format file into ``(kind, text)`` cells."""
    cells, kind, lines = [], None, []
    for line in source.splitlines():
        match = _CELL.match(line)
        if match:
            if kind is not None:
                cells.append((kind, "\n".join(lines).strip("\n")))
            kind = "markdown" if "[markdown]" in match.group(1) else "code"
            lines = []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append((kind, "\n".join(lines).strip("\n")))
    return [(k, t) for k, t in cells if t.strip()]


def _markdown(text):
    return "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                     for line in text.splitlines())


def render(name, figures_dir):
    """Execute one vignette; return its Markdown (figures written to figures_dir)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = (HERE / f"{name}.py").read_text()
    namespace = {"__name__": f"vignette_{name}"}
    out = [f"<!-- Rendered from {name}.py by vignettes/render.py: edit the .py, "
           "then run `python vignettes/render.py`. -->", ""]
    figure_count = 0
    figures_dir.mkdir(parents=True, exist_ok=True)
    for kind, text in parse_cells(source):
        if kind == "markdown":
            out += [_markdown(text), ""]
            continue
        out += ["```python", text, "```", ""]
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(text, f"{name}.py", "exec"), namespace)
        printed = buffer.getvalue().rstrip()
        if printed:
            out += ["```text", printed, "```", ""]
        for number in plt.get_fignums():
            figure_count += 1
            filename = f"{name}-{figure_count}.png"
            plt.figure(number).savefig(figures_dir / filename, dpi=90, bbox_inches="tight")
            out += [f"![figure {figure_count}](figures/{filename})", ""]
        plt.close("all")
    return "\n".join(out).rstrip() + "\n"


def _mask(text):
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail when the rendered Markdown is out of date")
    parser.add_argument("names", nargs="*", default=VIGNETTES)
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    stale = []
    for name in args.names:
        target = HERE / f"{name}.md"
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                text = render(name, Path(tmp) / "figures")
                made = sorted(p.name for p in (Path(tmp) / "figures").glob("*.png"))
            committed = target.read_text() if target.exists() else ""
            missing = [f for f in made if not (HERE / "figures" / f).exists()]
            if _mask(text) != _mask(committed) or missing:
                diff = "".join(difflib.unified_diff(
                    _mask(committed).splitlines(True), _mask(text).splitlines(True),
                    f"{name}.md (committed)", f"{name}.md (fresh)", n=1))
                stale.append(f"{name}: {'missing figures ' + str(missing) if missing else ''}"
                             f"\n{diff[:4000]}")
        else:
            target.write_text(render(name, HERE / "figures"))
            print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print("stale vignettes (run `python vignettes/render.py`):\n" + "\n".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
