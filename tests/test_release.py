"""The committed release is what nbgrader generates from the solutions, and leaks nothing.

Fast lane: one nbgrader process generates every assignment (``generate_assignment "*"``) in a
throw-away course derived from ``grading/nbgrader_config.py``; nothing is autograded.
"""

from __future__ import annotations

import nbformat
import pytest

from mlops_course.instructor.grading import courses, release

from .conftest import ASSIGNMENTS, REPO


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    course = courses.make_course(tmp_path_factory.mktemp("release"), ASSIGNMENTS)
    courses.nbgrader(course, "generate_assignment", "*", "--force")
    return course


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_matches_generated(generated, assignment):
    committed = REPO / "notebooks" / assignment / f"{assignment}.ipynb"
    assert committed.exists(), f"{committed} is missing: run `make release`."
    expected = release.normalized(
        nbformat.read(courses.release_notebook(generated, assignment), as_version=4)
    )
    found = release.normalized(nbformat.read(committed, as_version=4))
    assert found == expected, (
        f"{committed} differs from what generate_assignment produces: run `make release`."
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solution_or_hidden_test_text(assignment):
    released = nbformat.read(REPO / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    committed = "\n".join(cell.source for cell in released.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in committed, f"The release of {assignment} contains '{marker}'."
    source = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    for line in release.hidden_test_texts(source):
        assert line not in committed, (
            f"Hidden test text leaked into the release of {assignment}: {line!r}."
        )


def _is_released_picture(path) -> bool:
    """A picture of the notebook's images/ folder, the same bytes as in solutions/."""
    relative = path.relative_to(REPO / "notebooks")
    source = REPO / "solutions" / relative
    return (
        relative.parent.name == "images"
        and source.is_file()
        and source.read_bytes() == path.read_bytes()
    )


def test_release_notebooks_only():
    """The release holds notebooks and the pictures they show, nothing else: nothing a
    solution run leaves beside it is committed."""
    stray = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "notebooks").rglob("*")
        if p.is_file() and p.suffix != ".ipynb" and not _is_released_picture(p)
    )
    assert not stray, f"Expected only notebooks and their images/ in notebooks/, found {stray}."
