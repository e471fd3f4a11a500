"""Checking YAML and JSON files against JSON schemas with check-jsonschema, offline.

check-jsonschema ships the schemas of Azure Pipelines, GitHub workflows and Cloud Build
(``--builtin-schema vendor.<name>``), so the walkthroughs' CI/CD files are checked with no
network. It runs in this process (its click command), which is much faster than a
subprocess, and reports in JSON; :func:`check_files` turns the report into one sentence per
problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = ["check_files", "problems", "run_check_jsonschema"]


def run_check_jsonschema(args: Iterable[object]) -> tuple[int, dict]:
    """Run check-jsonschema with ``args`` (its command-line options and files), JSON output.

    Returns the exit code and the parsed report (``status``, ``errors``: one per file and
    problem, with ``best_deep_match`` when the schema has alternatives).
    """
    from check_jsonschema.cli.main_command import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, [*map(str, args), "--output-format", "json"])
    try:
        report = json.loads(result.stdout)
    except ValueError:
        message = result.output.strip()[-300:]
        report = {"status": "fail", "errors": [{"filename": "?", "path": "$", "message": message}]}
    return result.exit_code, report


def problems(report: Mapping) -> list[str]:
    """``file: path: message`` for every error and parse error of a check-jsonschema report."""
    found = []
    for error in report.get("errors", []):
        best = error.get("best_deep_match") or error
        found.append(f"{Path(error['filename']).name}: {best['path']}: {best['message']}")
    for error in report.get("parse_errors", []):
        found.append(f"{Path(error.get('filename', '?')).name}: {error.get('message', error)}")
    return found


def check_files(
    files: Iterable[Path | str],
    *,
    builtin: str | None = None,
    schemafile: Path | str | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """Problems of ``files`` against a built-in schema (``vendor.github-workflows``, ...) or a
    schema file; an empty list means every file is valid."""
    if (builtin is None) == (schemafile is None):
        raise ValueError("Give exactly one of builtin= and schemafile=.")
    chosen = ["--builtin-schema", builtin] if builtin else ["--schemafile", str(schemafile)]
    _, report = run_check_jsonschema([*chosen, *options, *files])
    return problems(report)
