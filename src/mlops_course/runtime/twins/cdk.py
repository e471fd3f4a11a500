"""CDK synthesis of the chapter's AWS stack, offline: ``walkthroughs/aws`` to CloudFormation.

``cdk synth`` runs the CDK app (``python app.py``) and writes the template; no AWS account,
credentials or Docker engine are needed for that, because the stack is environment-agnostic
and its container image is only staged as an asset (Docker builds it at ``cdk deploy``).
Synthesis takes 10 to 30 s, so notebook 08 starts it in the background (:class:`SynthJob`)
and reads the result later.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops_course.runtime.processes import ServerError

__all__ = ["SynthJob", "SynthResult", "cdk_synth", "resources_table"]


@dataclass
class SynthResult:
    template: dict
    seconds: float
    template_path: Path


def _synth_env(out_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The set-up compiles no bytecode for aws-cdk-lib (it would be 196 MB); the app's own
    # imports (about 30 MB of it) are compiled by the first synthesis and re-used after, also
    # where PYTHONDONTWRITEBYTECODE is set: with them a synthesis takes 5.6 s instead of 9.4 s.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "CDK_OUTDIR": str(out_dir),
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "CDK_DISABLE_VERSION_CHECK": "1",
        }
    )
    for key in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        env.pop(key, None)
    return env


class SynthJob:
    """A CDK synthesis running in the background (``python app.py``, what ``cdk synth`` runs)."""

    def __init__(self, app_dir: Path, out_dir: Path, *, stack: str = "MLflowStack") -> None:
        self.app_dir, self.out_dir = Path(app_dir).resolve(), Path(out_dir).resolve()
        self.stack = stack
        self.log_path = self.out_dir.parent / f"{self.out_dir.name}.log"
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # closed in result()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=self.app_dir,
            env=_synth_env(self.out_dir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def result(self, timeout: float = 300.0) -> SynthResult:
        """Wait for the synthesis (at most ``timeout`` s) and read the template."""
        try:
            code = self.process.wait(timeout=max(0.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired as error:
            self.process.kill()
            self.process.wait()
            raise ServerError(
                f"CDK synth did not finish within {timeout:.0f} s in {self.app_dir}."
            ) from error
        finally:
            self._log.close()
        seconds = round(time.monotonic() - self.started, 2)
        template_path = self.out_dir / f"{self.stack}.template.json"
        if code != 0 or not template_path.exists():
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
            raise ServerError(
                f"CDK synth failed (exit {code}) in {self.app_dir}; last lines:\n{tail}"
            )
        return SynthResult(json.loads(template_path.read_text()), seconds, template_path)


def cdk_synth(
    app_dir: Path, out_dir: Path, *, timeout: float = 300.0, stack: str = "MLflowStack"
) -> SynthResult:
    """``python app.py`` in ``app_dir`` (what ``cdk synth`` runs): CloudFormation into ``out_dir``.

    Offline and without credentials: the stack is environment-agnostic and the container
    image is only staged as an asset (Docker builds it at ``cdk deploy``, not here).
    """
    return SynthJob(app_dir, out_dir, stack=stack).result(timeout)


def resources_table(template: Mapping):
    """The template's resources as a DataFrame (logical id, type), sorted by type."""
    import pandas as pd

    rows = [
        {"logical id": key, "type": value["Type"]} for key, value in template["Resources"].items()
    ]
    return pd.DataFrame(rows).sort_values(["type", "logical id"], ignore_index=True)
