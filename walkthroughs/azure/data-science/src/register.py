"""Register step: register the candidate in the model registry when the evaluation set the
deploy flag, with its test metrics as version tags. A model already registered from the same
training (same fingerprint) is not registered twice."""

import argparse
import json
from pathlib import Path


def read_mlmodel(model_path: str) -> dict:
    """The few fields of the MLmodel file we need (model_id, run_id), without a YAML parser."""
    fields = {}
    for line in (Path(model_path) / "MLmodel").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("model_id", "run_id"):
            fields[key] = value.strip()
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_path", required=True, help="folder of the candidate MLflow model")
    parser.add_argument("--evaluation_output", required=True, help="folder with deploy_flag")
    parser.add_argument("--model_info_output", required=True, help="output folder")
    args = parser.parse_args()

    output = Path(args.model_info_output)
    output.mkdir(parents=True, exist_ok=True)
    flag = (Path(args.evaluation_output) / "deploy_flag").read_text().strip()
    if flag != "1":
        (output / "model_info.json").write_text(json.dumps({"registered": False}))
        print("register: deploy_flag=0, the candidate is not registered")
        return

    import mlflow  # only when there is something to register
    from mlflow import MlflowClient

    metrics = json.loads((Path(args.evaluation_output) / "metrics.json").read_text())
    fields = read_mlmodel(args.model_path)
    client = MlflowClient()
    fingerprint = client.get_run(fields["run_id"]).data.tags.get("fingerprint", "")
    same = [
        v
        for v in client.search_model_versions(f"name = '{args.model_name}'")
        if fingerprint and v.tags.get("fingerprint") == fingerprint
    ]
    if same:
        version = min(int(v.version) for v in same)
    else:
        registered = mlflow.register_model(f"models:/{fields['model_id']}", args.model_name)
        version = int(registered.version)
        client.set_model_version_tag(args.model_name, str(version), "fingerprint", fingerprint)
    client.set_model_version_tag(
        args.model_name, str(version), "test_rmse", f"{metrics['test_rmse']:.4f}"
    )
    with mlflow.start_run():
        mlflow.log_param("registered_version", version)
    (output / "model_info.json").write_text(
        json.dumps({"registered": True, "name": args.model_name, "version": version})
    )
    print(f"register: {args.model_name} version {version}")


if __name__ == "__main__":
    main()
