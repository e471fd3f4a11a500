"""Repository rules: clean notebooks, the notebook skeleton, environment.yml agrees with the lock."""

from __future__ import annotations

import re

import nbformat
import pytest

from .conftest import ASSIGNMENTS, REPO

ALL_NOTEBOOKS = sorted((REPO / "solutions").glob("*/*.ipynb")) + sorted(
    (REPO / "notebooks").glob("*/*.ipynb")
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def _pins(filename: str, pattern: str) -> dict[str, str]:
    """Exact pins (canonical name -> version) found by ``pattern`` in a repository file."""
    pins = {}
    for line in (REPO / filename).read_text().splitlines():
        match = re.match(pattern, line)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _lock() -> dict[str, str]:
    return _pins("requirements.lock", r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)")


def _environment_pins() -> dict[str, str]:
    return _pins("environment.yml", r"^\s+-\s+([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)")


def _direct_dependencies() -> set[str]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_canonical(re.split(r"[<>=!~; ]", spec, maxsplit=1)[0]) for spec in specs}


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_notebook_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, (
        f"{path.relative_to(REPO)} has outputs in cells {dirty}: strip them (pre-commit does)."
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_skeleton(assignment):
    path = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    cells = nbformat.read(path, as_version=4).cells
    first = cells[0].source
    assert cells[0].cell_type == "markdown" and first.startswith(f"# {assignment[:2]} · "), (
        f"{assignment}: the first cell must be the title '# {assignment[:2]} · <Title>'."
    )
    assert "Learning objectives" in first and "Estimated time" in first, (
        f"{assignment}: the title cell must list the learning objectives and the estimated time."
    )
    parameters = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, (
        f"{assignment}: expected one cell tagged 'parameters', found {len(parameters)}."
    )
    code = [c for c in cells if c.cell_type == "code"]
    assert f'mlops_course.start("{assignment}"' in code[1].source, (
        f"{assignment}: the cell after the parameters must call mlops_course.start({assignment!r}, ...)."
    )
    assert any(c.cell_type == "markdown" and "## Summary" in c.source for c in cells), (
        f"{assignment}: a '## Summary' section is missing."
    )
    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), f"{assignment}: grade ids must be unique, found {ids}."


def test_every_solution_has_a_release():
    for assignment in ASSIGNMENTS:
        assert (REPO / "notebooks" / assignment / f"{assignment}.ipynb").exists(), (
            f"notebooks/{assignment}/ is missing: run `make release`."
        )
    stray = {p.name for p in (REPO / "notebooks").iterdir() if p.is_dir()} - set(ASSIGNMENTS)
    assert not stray, f"notebooks/ has folders without a solution: {sorted(stray)}."


def test_environment_yml_mirrors_the_lock():
    lock, environment, direct = _lock(), _environment_pins(), _direct_dependencies()
    missing = sorted(direct - set(environment))
    assert not missing, (
        f"environment.yml lacks direct dependencies {missing} (add them with a comment)."
    )
    extra = sorted(set(environment) - direct)
    assert not extra, f"environment.yml lists {extra}, which pyproject.toml does not declare."
    wrong = {
        name: (version, lock.get(name))
        for name, version in environment.items()
        if lock.get(name) != version
    }
    assert not wrong, (
        f"environment.yml and requirements.lock disagree (environment, lock): {wrong}."
    )


def test_environment_yml_comments_name_a_user():
    for line in (REPO / "environment.yml").read_text().splitlines():
        if re.match(r"^\s+-\s+[A-Za-z0-9_.\-]+==", line):
            assert "#" in line and line.split("#", 1)[1].strip(), (
                f"Say which notebook needs: {line.strip()}"
            )


def test_lock_pins_exact_versions():
    lines = [
        row
        for row in (REPO / "requirements.lock").read_text().splitlines()
        if row and not row.lstrip().startswith("#")
    ]
    loose = [
        row
        for row in lines
        if not re.match(r"^[A-Za-z0-9_.\-\[\]]+==\S+", row) and not row.startswith(" ")
    ]
    assert not loose, f"requirements.lock must pin exact versions, found: {loose[:3]}."


LINTED = ["src", "tests", "grading", "solutions", "walkthroughs"]


def _ruff(*args: str):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    return subprocess.run([ruff, *args, *LINTED], cwd=REPO, capture_output=True, text=True)


def test_ruff_is_clean():
    """`make lint` in CI: the package, the tests, the walkthroughs' code and the solution notebooks."""
    result = _ruff("check")
    assert result.returncode == 0, (
        f"ruff found problems (run `make lint`):\n{result.stdout[-2000:]}"
    )


def test_code_is_ruff_formatted():
    result = _ruff("format", "--check")
    assert result.returncode == 0, f"Not formatted (run `make format`):\n{result.stdout[-2000:]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_readme_course_map_lists_points(assignment):
    """The README's course map names every notebook with the points its test cells carry."""
    cells = nbformat.read(
        REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4
    ).cells
    points = sum(
        c.metadata.get("nbgrader", {}).get("points", 0)
        for c in cells
        if c.metadata.get("nbgrader", {}).get("grade")
    )
    rows = [
        line
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith(f"| `{assignment}`")
    ]
    assert rows, f"README.md's course map has no row for {assignment}."
    found = rows[0].rstrip(" |").rsplit("|", 1)[1].strip()
    assert found == f"{points:g}", (
        f"README.md gives {assignment} {found} points; its test cells carry {points:g}."
    )


def test_notebooks_embed_the_course_screenshots():
    """Every picture `mlops-course screenshots` takes is committed beside its notebook, in the
    solution and in the release, and the notebook shows it."""
    from mlops_course.instructor import screenshots

    problems = []
    for shot in screenshots.SHOTS:
        for root in ("solutions", "notebooks"):
            folder = REPO / root / shot.notebook
            if not (folder / "images" / shot.file).is_file():
                problems.append(f"{root}/{shot.notebook}/images/{shot.file} is missing")
            markdown = "\n".join(
                c.source
                for c in nbformat.read(folder / f"{shot.notebook}.ipynb", as_version=4).cells
                if c.cell_type == "markdown"
            )
            if f"](images/{shot.file})" not in markdown:
                problems.append(f"{root}/{shot.notebook} does not show images/{shot.file}")
    assert not problems, "Expected the UI pictures in place (make screenshots): " + "; ".join(
        problems
    )
