"""The student's names, as a hidden test reaches them: the same small interface in two places.

A hidden test never uses a student's variable or function by its bare name. It asks::

    from mlops_course.runtime import student

    student.value("PIPELINE_OF")                  # the value of a name the notebook defined
    student.call("promote_if_better", run_id, name)  # what the notebook's function returns
    student.evaluate("tree_info.model_uri")       # an expression over the notebook's names
    student.assign("API", url)                    # put a value the test chose into the notebook

and gets **data** back (:mod:`mlops_course.runtime.wire`): numbers, text, lists, dicts,
DataFrames, arrays, bytes. Values the test sends (arguments, assigned values) may be any
Python object: they travel from the trusted side into the notebook, never the other way.

- Inside the kernel (plain ``nbgrader autograde``, ``make course``, a student running the
  notebook) the names are looked up in the notebook's own namespace, and every answer still
  makes the data round trip, so the test sees the same types as below.
- Under ``mlops-course grade`` the hidden tests run in the grader's own process, outside the
  student's sandboxed kernel (:mod:`mlops_course.instructor.grading.judge`); there each call is
  a request to the kernel and only data comes back. Whatever the kernel answers is the
  student's answer: a kernel that lies only gives a wrong answer.

Two instruments let a test observe a *process* from the trusted side, in both places:

- ``student.recording_server(responses)`` (a ``with`` block): an HTTP server the notebook's
  code can reach, which answers with canned responses and records every request
  (:mod:`mlops_course.runtime.instruments`);
- ``student.network_call(function, *args)``: run a function of the test where the notebook's
  own servers are reachable (under ``mlops-course grade``: in the sandbox's network, outside
  its files and its user), for example a boto3 call to the notebook's AWS twin. The servers a
  notebook starts belong to the student's environment, like the files in its folder: a test
  reads their state, it never relies on an object of the kernel.

A name the notebook did not define raises :class:`NoAnswer`; an exception in the student's
code raises :class:`StudentError` naming it; both are one-sentence course errors.
"""

from __future__ import annotations

import base64
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from mlops_course.runtime import wire
from mlops_course.runtime.errors import CourseError

__all__ = [
    "NoAnswer",
    "StudentError",
    "assign",
    "call",
    "evaluate",
    "network_call",
    "recording_server",
    "tracking_uri",
    "value",
    "workdir",
]


class NoAnswer(CourseError, LookupError):
    """The notebook does not define a name the test needs."""


class StudentError(CourseError):
    """The student's code raised an exception while a test used it."""

    def __init__(self, message: str, kind: str = "Exception") -> None:
        super().__init__(message)
        self.kind = kind


class Backend(Protocol):
    """Where the names live: this kernel, or a kernel reached from outside."""

    def request(self, operation: dict) -> dict: ...

    def workdir(self) -> Path: ...

    def recording_server(self, responses: Mapping[str, Mapping]) -> Any: ...

    def network_call(self, function: Callable, args: tuple, kwargs: dict) -> Any: ...


# --------------------------------------------------------------------------- the operations


def _namespace() -> dict:
    """The notebook's namespace: IPython's user namespace in a kernel, else ``__main__``."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython is a dependency
        shell = None
    if shell is not None:
        return shell.user_ns
    return vars(sys.modules["__main__"])


def _missing(name: str) -> dict:
    return {
        "error": {
            "kind": "NoAnswer",
            "message": f"Expected your notebook to define {name!r}, found no such name "
            "(run every cell from the top before you submit).",
        }
    }


_UNSET = object()


def _lookup(namespace: dict, name: str) -> Any:
    """``name`` in the namespace; a dotted name follows attributes (``should_publish.python_func``)."""
    first, *rest = name.split(".")
    found = namespace.get(first, _UNSET)
    for attribute in rest:
        if found is _UNSET:
            break
        found = getattr(found, attribute, _UNSET)
    return found


def perform(operation: dict, namespace: dict | None = None) -> dict:
    """Carry out one operation in ``namespace`` (default: the notebook's) and answer with data.

    Returns ``{"ok": <wire data>}`` or ``{"error": {"kind": ..., "message": ...}}``.
    """
    namespace = _namespace() if namespace is None else namespace
    kind = operation["op"]
    try:
        if kind == "value":
            result = _lookup(namespace, operation["name"])
            if result is _UNSET:
                return _missing(operation["name"])
        elif kind == "call":
            function = _lookup(namespace, operation["name"])
            if function is _UNSET:
                return _missing(operation["name"])
            if not callable(function):
                return {
                    "error": {
                        "kind": "NotCallable",
                        "message": f"Expected {operation['name']!r} to be a function, found a "
                        f"{type(function).__name__}.",
                    }
                }
            result = function(*operation.get("args", ()), **operation.get("kwargs", {}))
        elif kind == "evaluate":
            result = eval(operation["expression"], namespace)  # the student's own namespace
        elif kind == "assign":
            namespace[operation["name"]] = operation["value"]
            result = None
        else:
            return {"error": {"kind": "BadRequest", "message": f"Unknown operation {kind!r}."}}
        return {"ok": wire.encode(result)}
    except wire.NotData as error:
        return {"error": {"kind": "NotData", "message": str(error)}}
    except BaseException as error:  # noqa: BLE001 - the student's code may raise anything
        if isinstance(error, KeyboardInterrupt | SystemExit):
            message = f"{type(error).__name__} was raised"
        else:
            message = f"{type(error).__name__}: {error}".strip().rstrip(":")
        return {"error": {"kind": type(error).__name__, "message": message[:500]}}


def serve(request: str) -> None:
    """Kernel side of the outside channel: decode a request, perform it, display the answer.

    The grader sends ``serve("<base64 pickle>")``: the pickle comes from the trusted side
    (its arguments may be models or DataFrames); the answer goes back as JSON only.
    """
    from IPython.display import display

    operation = pickle.loads(base64.b64decode(request))
    display({wire.MIME_TYPE: perform(operation)}, raw=True)


# --------------------------------------------------------------------------- the backends


class InKernel:
    """The names of this process's notebook (no channel; the data round trip still happens)."""

    def request(self, operation: dict) -> dict:
        answer = perform(operation)
        # The same round trip as over the channel: JSON, then decoded by the caller.
        import json

        return json.loads(json.dumps(answer))

    def workdir(self) -> Path:
        return Path.cwd()

    def recording_server(self, responses: Mapping[str, Mapping]) -> Any:
        from mlops_course.runtime.instruments import RecordingServer

        return RecordingServer(responses, Path(tempfile.mkdtemp(prefix="recording-")))

    def network_call(self, function: Callable, args: tuple, kwargs: dict) -> Any:
        return function(*args, **kwargs)


_backend: Backend = InKernel()


def use(backend: Backend | None) -> None:
    """Route the interface to ``backend`` (the grader does this); None restores this kernel."""
    global _backend
    _backend = backend or InKernel()


def _answer(operation: dict, what: str) -> Any:
    answer = _backend.request(operation)
    if "ok" in answer:
        return wire.decode(answer["ok"])
    error = answer.get("error", {})
    kind, message = error.get("kind", "Error"), error.get("message", "no answer")
    if kind == "NoAnswer":
        raise NoAnswer(message)
    raise StudentError(f"Expected {what} to answer, found {message}.", kind)


# --------------------------------------------------------------------------- the interface


def value(name: str) -> Any:
    """The value of ``name`` in the notebook, as data."""
    return _answer({"op": "value", "name": name}, f"the value of {name!r}")


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the notebook's function ``name`` with these arguments; its result, as data."""
    return _answer({"op": "call", "name": name, "args": args, "kwargs": kwargs}, f"{name}()")


def evaluate(expression: str) -> Any:
    """The value of ``expression`` over the notebook's names, as data."""
    return _answer({"op": "evaluate", "expression": expression}, f"{expression!r}")


def assign(name: str, item: Any) -> None:
    """Set ``name`` in the notebook to ``item`` (a value the test chose)."""
    _answer({"op": "assign", "name": name, "value": item}, f"setting {name!r}")


def recording_server(responses: Mapping[str, Mapping] | None = None):
    """An HTTP server the notebook's code can reach; answers ``{"METHOD /path": {"status":
    200, "json": ...}}`` and records every request (``server.requests``). Use ``with``."""
    return _backend.recording_server(dict(responses or {}))


def network_call(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` run where the notebook's own servers are reachable."""
    return _backend.network_call(function, args, kwargs)


def workdir() -> Path:
    """The submission's folder (the notebook's own folder when run in the kernel)."""
    return _backend.workdir()


def tracking_uri() -> str:
    """The MLflow store the notebook wrote to (its folder's ``mlflow.db`` unless set)."""
    from mlops_course.runtime.session import store_uri

    return os.environ.get("MLFLOW_TRACKING_URI") or store_uri(workdir())
