"""The package's architecture, checked: two rooms, public names only, docs that match the tree.

- Notebooks import the start call (``mlops_course``) and the student runtime
  (``mlops_course.runtime``) only, and use only the names each module lists in ``__all__``.
- The runtime never imports the instructor tools.
- Every module is named in its package's docstring, and no module grows past ~350 lines.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import nbformat
import pytest

import mlops_course

from .conftest import REPO

PACKAGE = REPO / "src" / "mlops_course"
NOTEBOOKS = sorted((REPO / "solutions").glob("*/*.ipynb")) + sorted(
    (REPO / "notebooks").glob("*/*.ipynb")
)
MAX_LINES = 350
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(mlops_course.__path__, "mlops_course.")
    if not m.ispkg and not m.name.endswith("__main__")
)


def _code(notebook: Path) -> str:
    cells = nbformat.read(notebook, as_version=4).cells
    lines = []
    for cell in cells:
        if cell.cell_type == "code":
            # IPython magics and shell escapes are not Python.
            lines += [line for line in cell.source.splitlines() if line.lstrip()[:1] not in "%!"]
            lines.append("")
    return "\n".join(lines)


def _course_imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> course module, for every import of the course's package in ``tree``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mlops_course"):
                    names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlops_course"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names[alias.asname or alias.name] = full if _is_module(full) else node.module
    return names


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_notebooks_import_only_the_runtime_and_its_public_names(notebook):
    tree = ast.parse(_code(notebook))
    imported = _course_imports(tree)
    wrong = sorted(
        module
        for module in imported.values()
        if module != "mlops_course" and not module.startswith("mlops_course.runtime")
    )
    assert not wrong, (
        f"{notebook.relative_to(REPO)} imports {wrong}; notebooks use mlops_course.runtime."
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlops_course"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not _is_module(f"{node.module}.{alias.name}"):
                    assert alias.name in getattr(module, "__all__", ()), (
                        f"{notebook.relative_to(REPO)} imports {alias.name} from {node.module}, "
                        "which its __all__ does not list."
                    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module_name = imported.get(node.value.id)
            if module_name is None or not _is_module(module_name):
                continue
            public = getattr(importlib.import_module(module_name), "__all__", ())
            child = f"{module_name}.{node.attr}"
            assert node.attr in public or _is_module(child), (
                f"{notebook.relative_to(REPO)} uses {node.value.id}.{node.attr}, which "
                f"{module_name}.__all__ does not list (notebooks use public names only)."
            )


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}."


def test_runtime_never_imports_the_instructor_tools():
    for path in sorted((PACKAGE / "runtime").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = [node.module or ""]
            bad = [t for t in targets if t.startswith("mlops_course.instructor")]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}: the runtime must not."


@pytest.mark.parametrize("name", MODULES)
def test_modules_stay_small(name):
    path = Path(importlib.import_module(name).__file__)
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"{path.relative_to(REPO)} has {lines} lines (more than {MAX_LINES}): split it along a seam."
    )


@pytest.mark.parametrize(
    "package",
    sorted({name.rsplit(".", 1)[0] for name in MODULES}),
)
def test_package_docstrings_name_every_module(package):
    module = importlib.import_module(package)
    doc = module.__doc__ or ""
    children = [n.rsplit(".", 1)[1] for n in MODULES if n.rsplit(".", 1)[0] == package]
    children += [
        m.name for m in pkgutil.iter_modules(module.__path__) if m.ispkg
    ]  # subpackages too
    children = [c for c in children if c != "__main__"]
    missing = [c for c in children if not re.search(rf"\b{re.escape(c)}\b", doc)]
    assert not missing, f"The docstring of {package} does not mention {missing}."


def test_contributing_and_readme_describe_the_two_rooms():
    for document in ("README.md", "CONTRIBUTING.md"):
        text = (REPO / document).read_text()
        for room in ("mlops_course.runtime", "mlops_course.instructor"):
            assert room in text, f"{document} does not describe {room}."
