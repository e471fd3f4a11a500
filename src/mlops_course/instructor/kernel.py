"""The course's Jupyter kernel: installed into the environment, chosen by every headless run."""

from __future__ import annotations

import sys

from mlops_course import environment

__all__ = ["DISPLAY_NAME", "KERNEL_NAME", "install", "kernel_name"]

KERNEL_NAME = "mlops-course"
DISPLAY_NAME = "MLOps course (Python 3.11)"


def install() -> str:
    """Install the course kernel into this environment (``sys.prefix``), not the user's home;
    its spec carries the course's environment variables. Returns the kernel's folder."""
    from ipykernel.kernelspec import install as install_kernelspec

    return install_kernelspec(
        kernel_name=KERNEL_NAME,
        display_name=DISPLAY_NAME,
        prefix=sys.prefix,
        env=dict(environment.COURSE_VARIABLES),
    )


def kernel_name() -> str:
    """The course kernel when installed (``make`` does it), else the current Python's kernel."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"
