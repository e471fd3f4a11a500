"""Evaluate step: score the candidate and the production model on the same test table, and
write the deploy flag that the register step obeys (promote-if-better, rule in promotion.py)."""

import argparse
import json
from pathlib import Path

import mlflow.sklearn
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from promotion import should_promote
from sklearn.metrics import mean_squared_error, r2_score

TARGET = "target"
PRODUCTION_ALIAS = "production"


def production_model_uri(model_name: str) -> str | None:
    """models:/<name>@production, or None when no version carries the alias yet."""
    try:
        MlflowClient().get_model_version_by_alias(model_name, PRODUCTION_ALIAS)
    except MlflowException:
        return None
    return f"models:/{model_name}@{PRODUCTION_ALIAS}"


def rmse(model, X, y) -> float:
    return float(mean_squared_error(y, model.predict(X)) ** 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name", required=True, help="registered model name")
    parser.add_argument("--model_input", required=True, help="folder of the candidate MLflow model")
    parser.add_argument("--test_data", required=True, help="folder with test.csv")
    parser.add_argument("--min_gain", type=float, default=0.0, help="RMSE gain needed to promote")
    parser.add_argument("--evaluation_output", required=True, help="output folder")
    args = parser.parse_args()

    table = pd.read_csv(Path(args.test_data) / "test.csv")
    X, y = table.drop(columns=[TARGET]), table[TARGET]
    candidate = mlflow.sklearn.load_model(args.model_input)
    candidate_rmse = rmse(candidate, X, y)

    production_uri = production_model_uri(args.model_name)
    production_rmse = None
    if production_uri is not None:
        production_rmse = rmse(mlflow.sklearn.load_model(production_uri), X, y)
    promote = bool(should_promote(candidate_rmse, production_rmse, args.min_gain))

    with mlflow.start_run():
        mlflow.log_metrics(
            {"test_rmse": candidate_rmse, "test_r2": float(r2_score(y, candidate.predict(X)))}
        )
        if production_rmse is not None:
            mlflow.log_metric("production_rmse", production_rmse)
        mlflow.log_param("min_gain", args.min_gain)
        mlflow.set_tag("deploy_flag", int(promote))

    output = Path(args.evaluation_output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "deploy_flag").write_text(str(int(promote)))
    (output / "metrics.json").write_text(
        json.dumps(
            {
                "test_rmse": candidate_rmse,
                "production_rmse": production_rmse,
                "min_gain": args.min_gain,
            }
        )
    )
    versus = (
        "no production model" if production_rmse is None else f"production {production_rmse:.2f}"
    )
    print(f"evaluate: candidate RMSE {candidate_rmse:.2f} vs {versus}: deploy_flag={int(promote)}")


if __name__ == "__main__":
    main()
