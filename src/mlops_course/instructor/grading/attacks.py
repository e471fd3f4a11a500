"""Submissions that attack the grader, for the tests that prove they earn nothing.

Each attack starts from an assignment's blank release (or a wrong answer) and adds what a
student's cells could do to their kernel. Under ``mlops-course grade`` every one of them must
score exactly what the same notebook scores without the attack, and nothing of a hidden test
may reach its outputs. The release is trimmed to the cells grading needs (parameters, set-up,
shared, answer and test cells): the attacks do not depend on the walkthroughs' servers, and a
student may delete those cells too.

- ``pack``: every answer replaced by values that lie (equal to anything, always true); a cell
  that reads everything the kernel can reach (history, environment, arguments, other
  processes, notebooks on disk) and prints it with a huge output; the course's check helpers,
  MlflowClient and pandas patched to pass; an AST transformer that wraps every later statement
  in ``try/except BaseException`` and drops asserts; the traceback display replaced and
  ``set_custom_exc`` swallowing everything; builtins patched; test cells edited, moved and
  deleted; an endless loop at the end.
- ``input``: an input transformer that turns every later cell into ``pass``.
- ``exit``: ``os._exit(0)`` right after the set-up cell.
- ``tamper``: the kernel attacks of ``pack`` (snooping, patched helpers, transformers,
  traceback display, builtins, the endless loop) on an untrimmed notebook whose answers stay
  as they are: a wrong answer plus tampering must score what the wrong answer scores.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterable

import nbformat

__all__ = ["ATTACKS", "ENDLESS", "attack", "trimmed"]

ATTACKS = ("pack", "input", "exit", "tamper")

SNOOP = """\
# Attack: read everything this kernel can reach and print it (a huge output, too).
import glob, os, sys
_found = []
try:
    _found += [str(entry) for entry in get_ipython().history_manager.get_range(raw=True)]
except Exception:
    pass
_found += [repr(dict(os.environ)), " ".join(sys.argv)]
for _path in glob.glob("/proc/[0-9]*/cmdline") + glob.glob("/proc/[0-9]*/environ"):
    try:
        _found.append(open(_path, "rb").read().replace(b"\\0", b" ").decode(errors="replace"))
    except Exception:
        pass
for _folder in (os.getcwd(), os.path.expanduser("~"), "/tmp", "/work", "/root"):
    for _path in glob.glob(_folder + "/**/*.ipynb", recursive=True)[:40]:
        try:
            _found.append(open(_path).read()[:300000])
        except Exception:
            pass
# What was found goes out first, on its own and under the grader's output limit (a message
# over the limit is dropped whole, which would hide a leak); then the huge output.
print("\\n".join(_found)[:1_500_000])
sys.stdout.flush()
print("x" * 3_000_000)
"""

TAMPER = """\
# Attack: make every check of this kernel pass, whatever the answers.
import ast, builtins
import mlflow, pandas
from mlops_course.runtime import checks as _checks, student as _student

for _name in dir(_checks):
    if not _name.startswith("_") and callable(getattr(_checks, _name)):
        setattr(_checks, _name, lambda *a, **k: None)
_student.value = _student.call = _student.evaluate = lambda *a, **k: "C"
mlflow.MlflowClient.search_runs = lambda *a, **k: []
pandas.DataFrame.equals = lambda *a, **k: True


class _Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        body = [s for s in node.body if not isinstance(s, ast.Assert)]
        node.body = [
            ast.Try(
                body=[statement],
                handlers=[ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None,
                                            body=[ast.Pass()])],
                orelse=[], finalbody=[],
            )
            for statement in body
        ] or [ast.Pass()]
        return ast.fix_missing_locations(node)


_shell = get_ipython()
_shell.ast_transformers.append(_Swallow())
_shell.showtraceback = _shell._showtraceback = lambda *a, **k: None
_shell.set_custom_exc((BaseException,), lambda *a, **k: None)
builtins.AssertionError = type("AssertionError", (Exception,), {})
# Builtins the checks lean on (not isinstance: patching it kills the kernel itself, and a
# kernel that survives is what exercises the judge against lying answers).
builtins.all = builtins.any = lambda *a, **k: True
"""

LIAR = '''\
class _Liar(str):
    """Equal to everything, true, and hashing like anything."""

    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __hash__(self): return 0
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __getitem__(self, key): return self
    def __getattr__(self, name): return self
    def __call__(self, *args, **kwargs): return self
    def __iter__(self): return iter([self])
    def __len__(self): return 1
'''

ENDLESS = "import time\nwhile True:\n    time.sleep(1)\n"


def _kind(cell) -> str:
    info = cell.metadata.get("nbgrader", {})
    if cell.cell_type != "code":
        return "markdown"
    if info.get("grade") and not info.get("solution"):
        return "test"
    if info.get("solution"):
        return "answer"
    tags = cell.metadata.get("tags", [])
    if "parameters" in tags or "shared" in tags or "mlops_course.start(" in cell.source:
        return "keep"
    return "other"


def trimmed(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with only the cells grading needs (no servers, no walkthrough steps)."""
    result = copy.deepcopy(notebook)
    result.cells = [c for c in result.cells if _kind(c) != "other"]
    return result


def _defined_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def _liars(names: Iterable[str]) -> str:
    # The text under the lie is no answer of any exercise (a quiz letter would be a right
    # answer by its value, not by its lie).
    lines = [LIAR]
    for name in names:
        lines.append(f"{name} = _Liar('a lie')")
    return "\n".join(lines) + "\n"


def _code(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source)


def attack(
    notebook: nbformat.NotebookNode,
    kind: str,
    solution: nbformat.NotebookNode | None = None,
    *,
    endless: bool = True,
) -> nbformat.NotebookNode:
    """``notebook`` (a release, filled or blank) attacked the way ``kind`` names (ATTACKS);
    ``pack`` and ``tamper`` end in an endless loop unless ``endless`` is false."""
    if kind not in ATTACKS:
        raise ValueError(f"Expected an attack among {ATTACKS}, found {kind!r}.")
    result = copy.deepcopy(notebook) if kind == "tamper" else trimmed(notebook)
    setup = next(i for i, c in enumerate(result.cells) if "mlops_course.start(" in c.source)
    if kind == "tamper":
        result.cells.insert(setup + 1, _code(SNOOP))
        result.cells.insert(setup + 2, _code(TAMPER))
        result.cells.append(_code(SNOOP))
        if endless:
            result.cells.append(_code(ENDLESS))
        return result
    if kind == "exit":
        result.cells.insert(setup + 1, _code("import os\nos._exit(0)\n"))
        return result
    if kind == "input":
        transformer = "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
        result.cells.insert(setup + 1, _code(transformer))
        return result
    answers_of = {}
    if solution is not None:
        for cell in solution.cells:
            info = cell.metadata.get("nbgrader", {})
            if info.get("solution") and info.get("grade_id"):
                answers_of[info["grade_id"]] = _defined_names(cell.source)
    for cell in result.cells:
        info = cell.metadata.get("nbgrader", {})
        names = answers_of.get(info.get("grade_id", ""), [])
        if _kind(cell) == "answer" and names:
            cell.source = _liars(names)
    result.cells.insert(setup + 1, _code(SNOOP))
    result.cells.insert(setup + 2, _code(TAMPER))
    tests = [i for i, c in enumerate(result.cells) if _kind(c) == "test"]
    if tests:
        result.cells[tests[0]].source = "print('all checks passed')\n"
    if len(tests) >= 3:
        moved = result.cells.pop(tests[1])
        result.cells.insert(setup + 3, moved)
        tests = [i for i, c in enumerate(result.cells) if _kind(c) == "test"]
        del result.cells[tests[-1]]
    result.cells.append(_code(SNOOP))
    if endless:
        result.cells.append(_code(ENDLESS))
    return result
