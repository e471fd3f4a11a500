"""Train step: fit a ridge regression, track it with MLflow, and save it as an MLflow model folder.

Azure ML's tracking server speaks the MLflow protocol, so the same calls work in the cloud
(with the azureml-mlflow plugin) and locally (MLFLOW_TRACKING_URI points at the notebook's store).
"""

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import cloudpickle
import mlflow
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

TARGET = "target"


def fingerprint(train_file: Path, params: dict) -> str:
    """Same data, same parameters, same code: same fingerprint (used to avoid duplicate versions)."""
    digest = hashlib.sha256(train_file.read_bytes())
    digest.update(json.dumps(params, sort_keys=True).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train_data", required=True, help="folder with train.csv")
    parser.add_argument("--alpha", type=float, default=1.0, help="ridge regularisation strength")
    parser.add_argument("--model_output", required=True, help="output folder for the MLflow model")
    args = parser.parse_args()

    train_file = Path(args.train_data) / "train.csv"
    table = pd.read_csv(train_file)
    X, y = table.drop(columns=[TARGET]), table[TARGET]
    model = Ridge(alpha=args.alpha).fit(X, y)
    train_rmse = mean_squared_error(y, model.predict(X)) ** 0.5

    with mlflow.start_run():  # the run the pipeline created for this step (MLFLOW_RUN_ID)
        mlflow.log_params({"model": "ridge", "alpha": args.alpha, "train_rows": len(table)})
        mlflow.log_metric("train_rmse", train_rmse)
        mlflow.set_tag("fingerprint", fingerprint(train_file, {"alpha": args.alpha}))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"scikit-learn=={sklearn.__version__}",
                f"cloudpickle=={cloudpickle.__version__}",
            ],
            # skops (MLflow 3's default) is safer to load but costs seconds per process here;
            # cloudpickle runs code when loaded: load only models your own pipeline produced.
            serialization_format="cloudpickle",
        )
    # The step's output is the model folder itself (type mlflow_model), as in Azure ML.
    output = Path(args.model_output)
    shutil.rmtree(output, ignore_errors=True)
    mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(output))
    print(f"train: alpha={args.alpha}, train RMSE {train_rmse:.2f}")


if __name__ == "__main__":
    main()
