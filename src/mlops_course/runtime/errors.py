"""The course's exceptions: each message is one sentence naming what was expected and found.

In a notebook, :func:`mlops_course.start` asks IPython to show these without a
traceback, so a student reads the sentence, not a wall of frames.
"""

from __future__ import annotations

__all__ = ["CheckFailed", "CourseError", "show_without_traceback"]


class CourseError(Exception):
    """Base class: a problem the course can explain in one sentence."""


class CheckFailed(CourseError, AssertionError):
    """A test found something other than what the exercise asks for."""


def show_without_traceback() -> None:
    """In IPython, print course errors as ``Name: message`` only (they still fail the cell)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - plain Python
        return
    shell = get_ipython()
    if shell is None:
        return

    def handler(shell, etype, value, tb, tb_offset=None):  # IPython's signature
        shell.showtraceback((etype, value, tb), exception_only=True)

    shell.set_custom_exc((CourseError,), handler)
