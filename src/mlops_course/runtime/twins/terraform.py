"""The walkthrough's Terraform, checked without a ``terraform`` binary (python-hcl2).

Each environment (``01-dev``, ``02-staging``, ``03-prod``) is its own Terraform root, as in
Google's quickstart; :func:`problems` checks that they declare the same resources, that every
``var.x`` is declared, that ``terraform.tfvars`` sets declared variables only, and that names
follow the ``<prefix>-<environment>-<purpose>`` convention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from mlops_course import paths

__all__ = [
    "ENVIRONMENTS",
    "load",
    "problems",
    "resource_name",
    "resources",
    "variables_declared",
    "variables_used",
]

ENVIRONMENTS = ("01-dev", "02-staging", "03-prod")
# Attributes that carry a resource's name, in the order they are looked for.
NAME_ATTRIBUTES = (
    "account_id",
    "dataset_id",
    "repository_id",
    "workload_identity_pool_provider_id",
    "workload_identity_pool_id",
    "project_id",
    "name",
)
# The prefix convention: every named resource starts with "<prefix>-<environment>" (or its
# underscore form where a name cannot hold dashes, as in BigQuery datasets).
PREFIX_FORMS = (
    "${local.name_prefix}",
    "${local.dataset_prefix}",
    "${var.prefix}-${var.environment}",
)


def load(env_dir: Path | str) -> dict[str, dict]:
    """Every ``*.tf`` file of an environment folder, parsed with python-hcl2 (name -> dict)."""
    import hcl2

    parsed = {}
    for path in sorted(Path(env_dir).glob("*.tf")):
        with path.open() as handle:
            parsed[path.name] = hcl2.load(handle)
    return parsed


def _blocks(parsed: Mapping[str, dict], kind: str) -> list[dict]:
    return [block for document in parsed.values() for block in document.get(kind, [])]


def resources(env_dir: Path | str) -> dict[str, dict]:
    """``"type.name"`` -> the resource's attributes, for every resource of an environment."""
    found = {}
    for block in _blocks(load(env_dir), "resource"):
        for rtype, named in block.items():
            for rname, body in named.items():
                found[f"{rtype}.{rname}"] = body
    return found


def variables_declared(env_dir: Path | str) -> set[str]:
    return {name for block in _blocks(load(env_dir), "variable") for name in block}


_VAR = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


def variables_used(env_dir: Path | str) -> set[str]:
    """Every ``var.x`` referenced in an environment's ``*.tf`` files."""
    parsed = load(env_dir)
    return set(_VAR.findall(json.dumps(parsed)))


def _tfvars(env_dir: Path) -> dict:
    import hcl2

    path = env_dir / "terraform.tfvars"
    if not path.is_file():
        return {}
    with path.open() as handle:
        return hcl2.load(handle)


def resource_name(body: Mapping) -> str | None:
    for attribute in NAME_ATTRIBUTES:
        value = body.get(attribute)
        if isinstance(value, str):
            return value
    return None


def problems(
    root: Path | str | None = None, environments: Iterable[str] = ENVIRONMENTS
) -> list[str]:
    """Everything wrong with the Terraform environments, one sentence each (empty: all good).

    Checks: each environment has main.tf, variables.tf, terraform.tfvars and outputs.tf; all
    declare the same resources (type and name); every ``var.x`` used is declared; every value
    in terraform.tfvars is a declared variable; every named resource follows the prefix
    convention (its name starts with ``${local.name_prefix}`` or the underscore form).
    """
    root = Path(root) if root else paths.walkthrough("gcp") / "terraform"
    found: list[str] = []
    inventories = {}
    for env in environments:
        env_dir = root / env
        for name in ("main.tf", "variables.tf", "terraform.tfvars", "outputs.tf"):
            if not (env_dir / name).is_file():
                found.append(f"Expected {env}/{name}, found no such file.")
        if not env_dir.is_dir():
            continue
        try:
            found_resources = resources(env_dir)
            declared, used = variables_declared(env_dir), variables_used(env_dir)
            tfvars = _tfvars(env_dir)
        except Exception as error:  # noqa: BLE001 - a parse error is a problem to report
            found.append(f"Expected {env} to parse as HCL, found: {str(error).splitlines()[0]}")
            continue
        inventories[env] = set(found_resources)
        for missing in sorted(used - declared):
            found.append(
                f"Expected variable {missing!r} used in {env} to be declared, found no declaration."
            )
        for unknown in sorted(set(tfvars) - declared):
            found.append(
                f"Expected {env}/terraform.tfvars to set declared variables only, found {unknown!r}."
            )
        for address, body in sorted(found_resources.items()):
            name = resource_name(body)
            if name is not None and not name.startswith(PREFIX_FORMS):
                found.append(
                    f"Expected {env} resource {address} to be named with the prefix convention "
                    f"(${{local.name_prefix}}-...), found {name!r}."
                )
    if inventories:
        reference_env, reference = next(iter(inventories.items()))
        for env, inventory in inventories.items():
            if inventory != reference:
                extra, missing = sorted(inventory - reference), sorted(reference - inventory)
                found.append(
                    f"Expected {env} to declare the same resources as {reference_env}, "
                    f"found extra {extra or 'none'} and missing {missing or 'none'}."
                )
    return found
