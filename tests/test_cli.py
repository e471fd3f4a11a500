"""The command line: exit codes and one-sentence errors (`mlops-course <command>`), run in-process.

Nothing here executes a notebook or runs nbgrader: every error case stops before the work
starts, and `strip-outputs` works on notebooks written into a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from mlops_course import environment
from mlops_course.instructor import cli, kernel
from mlops_course.instructor.grading import sandbox

from .conftest import ASSIGNMENTS

ASSIGNMENT = "01_mlops_paradigm"


@pytest.fixture(autouse=True)
def _restore_course_variables(monkeypatch):
    """`main` applies the course's variables to os.environ; give them back after each test."""
    for name, value in environment.COURSE_VARIABLES.items():
        monkeypatch.setenv(name, os.environ.get(name, value))  # undone (or unset) at teardown


def course_error(capsys, command: str, argv: list[str]) -> str:
    """Run `mlops-course <argv>`; expect exit 2 and one sentence on stderr; return the sentence."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2, f"expected exit code 2, found {code}; stderr: {captured.err!r}"
    lines = captured.err.splitlines()
    assert len(lines) == 1 and captured.err.endswith("\n"), (
        f"expected one line on stderr, found {captured.err!r}"
    )
    line = lines[0]
    prefix = f"mlops-course {command}: "
    assert line.startswith(prefix), f"expected {prefix!r} first, found {line!r}"
    assert line.endswith(".") and len(line) > len(prefix) + 10, f"not a full sentence: {line!r}"
    return line.removeprefix(prefix)


def test_course_unknown_notebook(capsys, tmp_path):
    sentence = course_error(
        capsys, "course", ["course", "--only", "99", "--build-dir", str(tmp_path / "b")]
    )
    assert "99" in sentence
    for name in ASSIGNMENTS:
        assert name in sentence, f"the known notebook {name} is not named in {sentence!r}"
    assert not (tmp_path / "b").exists(), "the course command wrote its build folder anyway"


def test_release_unknown_notebook(capsys):
    sentence = course_error(capsys, "release", ["release", "--only", "99"])
    assert "99" in sentence and ASSIGNMENT in sentence


def test_grade_unknown_assignment(capsys, tmp_path):
    out = tmp_path / "out"
    argv = ["grade", "--assignment", "nope", "--submissions", str(tmp_path), "--out", str(out)]
    sentence = course_error(capsys, "grade", argv)
    assert "'nope'" in sentence and ASSIGNMENT in sentence
    assert not out.exists()


def test_grade_missing_submissions(capsys, tmp_path):
    # --no-sandbox: without it a machine lacking bubblewrap would refuse first.
    missing, out = tmp_path / "no-such-folder", tmp_path / "out"
    argv = ["grade", "--assignment", ASSIGNMENT, "--submissions", str(missing), "--out", str(out)]
    sentence = course_error(capsys, "grade", [*argv, "--no-sandbox"])
    assert str(missing) in sentence and "submissions" in sentence
    assert not out.exists(), "the grader wrote into --out before it found the submissions missing"


def _which_without_bwrap(monkeypatch):
    real_which = shutil.which

    def which(name, *args, **kwargs):
        return None if name == "bwrap" else real_which(name, *args, **kwargs)

    monkeypatch.setattr(sandbox.shutil, "which", which)


def test_grade_without_bubblewrap(capsys, monkeypatch, tmp_path):
    _which_without_bwrap(monkeypatch)
    assert sandbox.available() is False
    out = tmp_path / "out"
    argv = ["grade", "--assignment", ASSIGNMENT, "--submissions", str(tmp_path), "--out", str(out)]
    sentence = course_error(capsys, "grade", argv)
    assert "--no-sandbox" in sentence and "bwrap" in sentence
    assert not out.exists()


def test_class_server_csv_without_student_id(capsys, tmp_path):
    students = tmp_path / "bad.csv"
    students.write_text("name,password\nada,correct-horse-battery\n")
    data = tmp_path / "data"
    argv = ["class-server", "--students", str(students), "--data-dir", str(data)]
    sentence = course_error(capsys, "class-server", argv)
    assert "student_id" in sentence and str(students) in sentence
    assert not data.exists(), "the class server created its data folder for a bad CSV"


def _notebook(with_outputs: bool) -> nbformat.NotebookNode:
    code = nbformat.v4.new_code_cell("print('hi')")
    if with_outputs:
        code.execution_count = 3
        code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Title"), code, nbformat.v4.new_code_cell("1 + 1")]
    )


def test_strip_outputs(capsys, tmp_path):
    dirty, clean = tmp_path / "dirty.ipynb", tmp_path / "clean.ipynb"
    nbformat.write(_notebook(with_outputs=True), dirty)
    nbformat.write(_notebook(with_outputs=False), clean)
    clean_bytes = clean.read_bytes()

    assert cli.main(["strip-outputs", str(dirty), str(clean)]) == 1  # a file changed: fail
    assert str(dirty) in capsys.readouterr().out
    stripped = nbformat.read(dirty, as_version=4)
    assert [c.source for c in stripped.cells] == ["# Title", "print('hi')", "1 + 1"]
    for cell in stripped.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert clean.read_bytes() == clean_bytes

    assert cli.main(["strip-outputs", str(dirty), str(clean)]) == 0  # nothing left to strip
    assert capsys.readouterr().out == ""
    assert clean.read_bytes() == clean_bytes


def test_interrupt_exits_130(capsys, monkeypatch, tmp_path):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_strip_outputs", interrupted)  # build_parser looks it up per call
    assert cli.main(["strip-outputs", str(tmp_path / "any.ipynb")]) == 130
    assert "Interrupted" in capsys.readouterr().err


def test_install_kernel_reports_the_folder(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(kernel, "install", lambda: str(tmp_path / "kernels" / "mlops-course"))
    assert cli.main(["install-kernel"]) == 0
    out = capsys.readouterr().out
    assert kernel.KERNEL_NAME in out and str(tmp_path / "kernels") in out


@pytest.mark.parametrize(
    "argv",
    [
        ["grade", "--assignment", ASSIGNMENT, "--out", "x"],  # no --submissions
        ["class-server", "--students", "s.csv"],  # no --data-dir
        ["strip-outputs"],  # no path
        [],  # no command
    ],
)
def test_missing_required_option(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_module_help():
    completed = subprocess.run(
        [sys.executable, "-m", "mlops_course", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    for command in (
        "course",
        "release",
        "grade",
        "class-server",
        "install-kernel",
        "strip-outputs",
    ):
        assert command in completed.stdout


def test_console_script_points_at_the_cli():
    """`mlops-course` (pyproject's [project.scripts]) resolves to the command line's main."""
    import importlib
    import tomllib

    from .conftest import REPO

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["mlops-course"].partition(":")
    assert getattr(importlib.import_module(module), function) is cli.main
