"""Every milestone shows its training curve in the notebook that runs it, and only there."""
from __future__ import annotations

import os
import subprocess
import sys

import nbclient
import nbformat
import pytest

from course.build import sources

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.notebook
def test_a_milestone_run_from_a_notebook_shows_its_saved_curve(tmp_path):
    """`%run -m course.milestones.xor` in a kernel: the PNG it saved is displayed in the cell's output."""
    plot = tmp_path / "results" / "milestones" / "xor_loss.png"   # the default, under the notebook's folder
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%run -m course.milestones.xor")])
    env_path = os.pathsep.join([str(sources.ROOT), os.environ.get("PYTHONPATH", "")])
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path
    try:
        client.execute()
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)
    outputs = nb.cells[0].outputs
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert plot.read_bytes().startswith(PNG_MAGIC), "the milestone saves its plot"
    assert len(images) == 1, f"expected the saved curve displayed once, got outputs {[o.output_type for o in outputs]}"
    import base64
    assert base64.b64decode(images[0]["data"]["image/png"]) == plot.read_bytes(), "the displayed image is the saved PNG"


def test_outside_a_notebook_the_milestone_only_saves_its_plot(tmp_path):
    """From a terminal nothing is displayed (and IPython is not needed): the PNG's path is printed."""
    plot = tmp_path / "xor.png"
    code = ("import sys\nfrom course.milestones import show_plot, xor\n"
            f"assert xor.main(['--plot', {str(plot)!r}]) == 0\n"
            f"assert show_plot({str(plot)!r}) is False\n"
            "assert 'IPython.display' not in sys.modules, 'nothing to display outside a kernel'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=sources.ROOT)
    assert result.returncode == 0, result.stderr
    assert f"plot: {plot}" in result.stdout


@pytest.mark.parametrize("name", ["xor", "mnist_cnn", "tinygpt"])
def test_every_milestone_displays_the_plot_it_saves(name):
    """Each milestone's main hands the PNG it wrote to show_plot (the kernel check is show_plot's)."""
    source = (sources.MILESTONES / f"{name}.py").read_text()
    assert "show_plot(" in source, f"course/milestones/{name}.py saves a plot but never shows it in a notebook"
