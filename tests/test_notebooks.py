"""Every solution notebook runs headless, offline, and gives the same results when re-run."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from .conftest import ASSIGNMENTS, run_course_cli

pytestmark = pytest.mark.notebooks


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_runs(executed_course, assignment):
    result = executed_course["results"][assignment]
    assert result["status"] == "ok", (
        f"{assignment} failed in cell {result['failing_cell']}: {result['error']} "
        f"(executed copy: {result['output']})"
    )


# Run-specific values that legitimately change between runs: ids, times, ports, paths.
VOLATILE = [
    (re.compile(r"\bm-[0-9a-f]{32}\b"), "<model-id>"),
    (re.compile(r"\b[0-9a-f]{8,32}\b"), "<id>"),  # run ids, whole or shortened
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+\d{2}:\d{2})?"), "<time>"),
    (re.compile(r"\b\d{10,13}\b"), "<epoch>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"localhost:\d+"), "localhost:<port>"),
    (re.compile(r"\d+(\.\d+)? ?(s|seconds|ms)\b"), "<duration>"),
    (re.compile(r"/tmp/\S+"), "<tmp>"),
    (re.compile(r"\bversion \d+"), "version <n>"),  # registry versions grow with every run
    (re.compile(r"-\d{4,5}\.log\b"), "-<port>.log"),  # server logs are named after their port
]


def _normalized_outputs(path) -> list[str]:
    notebook = json.loads(path.read_text())
    texts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code" or "injected-parameters" in cell["metadata"].get("tags", []):
            continue
        parts = []  # one text per cell: stdout arrives in chunks that depend on timing
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream" and output.get("name") == "stdout":
                parts.append("".join(output["text"]))
            elif output["output_type"] in ("execute_result", "display_data"):
                parts.append("".join(output.get("data", {}).get("text/plain", "")))
        text = "".join(parts)
        for pattern, replacement in VOLATILE:
            text = pattern.sub(replacement, text)
        texts.append(text)
    return texts


def test_rerun_in_the_same_store_gives_the_same_results(executed_course, tmp_path):
    """Run the whole course again in the stores of the first run: every notebook (and so every
    in-notebook test) passes again, and what the notebooks print is the same."""
    build_dir = executed_course["build_dir"]
    first = {}
    for assignment in ASSIGNMENTS:
        copy = tmp_path / f"{assignment}.ipynb"
        shutil.copyfile(build_dir / assignment / f"{assignment}.ipynb", copy)
        first[assignment] = copy
    report, _ = run_course_cli(build_dir, "--keep-stores")
    failures = {r["notebook"]: r["error"] for r in report["notebooks"] if r["status"] != "ok"}
    assert not failures, f"Re-running in the same store failed: {failures}"
    for assignment in ASSIGNMENTS:
        before = _normalized_outputs(first[assignment])
        after = _normalized_outputs(build_dir / assignment / f"{assignment}.ipynb")
        changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
        assert len(before) == len(after) and not changed, (
            f"{assignment} printed something else on the second run: {changed[:1] or (len(before), len(after))}"
        )
