"""The judge's side of the data-only channel to a student's kernel.

:class:`KernelChannel` is the backend of :mod:`mlops_course.runtime.student` while the judge
runs hidden tests: each request is sent to the kernel as one line of code that calls
``student.serve``, and only the JSON the kernel displays comes back. It also starts the
tests' recording servers inside the sandbox's network namespace (with ``nsenter``) and runs a
test's function there (:func:`in_network_of`, a forked child that joins that namespace), so
the trusted side can reach the servers a notebook started without any code of the kernel.
"""

from __future__ import annotations

import base64
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_course.instructor.grading import sandbox
from mlops_course.runtime.errors import CourseError
from mlops_course.runtime.instruments import RecordingServer

if TYPE_CHECKING:
    from mlops_course.instructor.grading.judge import TrustedExecute

__all__ = ["KernelChannel", "in_network_of"]


class KernelChannel:
    """student.* requests sent to the kernel as code; only the displayed JSON comes back."""

    def __init__(self, executor: TrustedExecute, workdir: Path, records: Path, student_id: str):
        self.executor = executor
        self.root = workdir
        self.records = records
        self.student_id = student_id
        self.deadline = float("inf")

    def workdir(self) -> Path:
        return self.root

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the hidden test ran out of time")
        return remaining

    def _sandbox_pid(self) -> int | None:
        return sandbox.sandbox_pid(self.records / "kernels", self.student_id)

    def recording_server(self, responses: dict) -> RecordingServer:
        """The recording server runs in the sandbox's network, its records outside the sandbox."""
        folder = Path(tempfile.mkdtemp(prefix="recording-", dir=self.records))
        pid = self._sandbox_pid()
        prefix = ["nsenter", f"--net=/proc/{pid}/ns/net"] if pid else []
        return RecordingServer(responses, folder, prefix=prefix)

    def network_call(self, function, args: tuple, kwargs: dict):
        """Run a function of the test in the sandbox's network namespace (a forked child)."""
        pid = self._sandbox_pid()
        if pid is None:  # no sandbox (--no-sandbox): the kernel shares this network
            return function(*args, **kwargs)
        return in_network_of(pid, function, args, kwargs, timeout=self._remaining())

    def hand_back(self) -> None:
        """Give what the judge wrote in the submission folder to the sandbox user: a store a
        hidden test created must stay writable for the kernel (SQLite opens a file it cannot
        write read-only, and MLflow keeps that connection)."""
        if self._sandbox_pid() is not None:
            sandbox.give_to_nobody(self.root)

    def request(self, operation: dict) -> dict:
        if self.executor.kernel_dead:
            return {"error": {"kind": "DeadKernel", "message": "the kernel had died"}}
        remaining = self._remaining()
        self.hand_back()
        payload = base64.b64encode(pickle.dumps(operation)).decode()
        code = f'__import__("mlops_course.runtime.student", fromlist=["serve"]).serve("{payload}")'
        answers = self.executor.run_in_kernel(code, timeout=max(1, min(remaining, 300)))
        found = [a for a in answers if isinstance(a, dict) and ("ok" in a or "error" in a)]
        if not found:
            return {
                "error": {
                    "kind": "NoAnswer",
                    "message": "no answer from your notebook's kernel (was it changed or busy?)",
                }
            }
        return found[-1]


CLONE_NEWNET = 0x40000000


def in_network_of(pid: int, function, args: tuple, kwargs: dict, timeout: float):
    """``function(*args, **kwargs)`` in a forked child that joined process ``pid``'s network.

    The child runs only the test's own (trusted) code; its result comes back pickled through a
    pipe. Joining another network namespace needs root, as bubblewrap does here.
    """
    import ctypes
    import select

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        try:
            descriptor = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            if ctypes.CDLL(None, use_errno=True).setns(descriptor, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            payload = pickle.dumps(("ok", function(*args, **kwargs)))
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            payload = pickle.dumps(("error", f"{type(error).__name__}: {error}"))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pipe], [], [], max(0.0, left))
            if not ready:
                os.kill(child, 9)
                os.waitpid(child, 0)
                raise TimeoutError(f"a call into the notebook's servers took over {timeout:.0f} s")
            chunk = pipe.read1(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(child, 0)
    status, result = pickle.loads(b"".join(chunks))  # from the judge's own child
    if status != "ok":
        raise CourseError(f"Expected the notebook's servers to answer the test, found {result}.")
    return result
