"""Values as data: how a student's answers travel from the kernel to the grader.

Grading that trusts nothing in the student's kernel asks that kernel for values (a variable,
what a function returns) and receives **data only**: JSON values, and a few tagged forms for
the data science types a hidden test compares (DataFrames, Series, numeric arrays, bytes).
Nothing is ever unpickled or executed on the receiving side: :func:`decode` builds plain
Python, pandas and NumPy values from JSON.

The same round trip runs when the tests execute inside the kernel (plain ``nbgrader
autograde``, ``make course``), so a hidden test sees the same types in both places: a tuple
arrives as a list, a NumPy scalar as a Python number.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from mlops_course.runtime.errors import CourseError

__all__ = ["MIME_TYPE", "NotData", "decode", "encode"]

MIME_TYPE = "application/vnd.mlops-course.answer+json"
MAX_DEPTH = 20
TAG = "__wire__"


class NotData(CourseError, TypeError):
    """A value that cannot travel as data (an open file, a model object, a function, ...)."""


def encode(value: Any, _depth: int = 0) -> Any:
    """A JSON-compatible form of ``value``; :class:`NotData` names what cannot travel."""
    if _depth > MAX_DEPTH:
        raise NotData(f"Expected data nested at most {MAX_DEPTH} deep, found deeper nesting.")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):  # NumPy's float64 is a float too: sent as a plain one
        value = float(value)
        return value if math.isfinite(value) else {TAG: "float", "value": repr(value)}
    if isinstance(value, list | tuple):
        return [encode(item, _depth + 1) for item in value]
    if isinstance(value, set | frozenset):
        return {TAG: "set", "items": [encode(item, _depth + 1) for item in value]}
    if isinstance(value, Mapping):
        keys = list(value)
        if all(isinstance(key, str) for key in keys) and TAG not in value:
            return {key: encode(value[key], _depth + 1) for key in keys}
        return {
            TAG: "map",
            "items": [[encode(k, _depth + 1), encode(value[k], _depth + 1)] for k in keys],
        }
    if isinstance(value, bytes | bytearray):
        return {TAG: "bytes", "base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, PurePath):
        return {TAG: "path", "value": str(value)}
    return _encode_library_value(value, _depth)


def _encode_library_value(value: Any, depth: int) -> Any:
    """NumPy and pandas values, recognised by their module so neither is imported needlessly."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.generic):
            return encode(value.item(), depth + 1)
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                return {TAG: "list-array", "items": encode(value.tolist(), depth + 1)}
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(value), allow_pickle=False)
            return {TAG: "ndarray", "npy": base64.b64encode(buffer.getvalue()).decode()}
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return {
                TAG: "dataframe",
                "split": json.loads(value.to_json(orient="split", date_format="iso")),
                "dtypes": {str(k): str(v) for k, v in value.dtypes.items()},
            }
        if isinstance(value, pd.Series):
            return {
                TAG: "series",
                "name": encode(value.name, depth + 1),
                "split": json.loads(value.to_json(orient="split", date_format="iso")),
                "dtype": str(value.dtype),
            }
    raise NotData(
        f"Expected a value that can travel as data (numbers, text, lists, dicts, DataFrames, "
        f"arrays), found a {type(value).__module__}.{type(value).__qualname__}."
    )


def decode(data: Any) -> Any:
    """The value :func:`encode` described; only JSON is read, nothing is executed."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(TAG)
    if kind is None:
        return {key: decode(item) for key, item in data.items()}
    if kind == "float":
        return float(data["value"])
    if kind == "set":
        return {_hashable(decode(item)) for item in data["items"]}
    if kind == "map":
        return {_hashable(decode(key)): decode(item) for key, item in data["items"]}
    if kind == "bytes":
        return base64.b64decode(data["base64"])
    if kind == "path":
        return Path(data["value"])  # a concrete path: the receiver may read the folder it names
    if kind == "list-array":
        import numpy as np

        return np.array(decode(data["items"]))
    if kind == "ndarray":
        import numpy as np

        return np.load(io.BytesIO(base64.b64decode(data["npy"])), allow_pickle=False)
    if kind == "dataframe":
        import pandas as pd

        split = data["split"]
        frame = pd.DataFrame(split["data"], index=split["index"], columns=split["columns"])
        return _with_dtypes(frame, data.get("dtypes", {}))
    if kind == "series":
        import pandas as pd

        split = data["split"]
        series = pd.Series(split["data"], index=split["index"], name=decode(data["name"]))
        return _astype(series, data.get("dtype", ""))
    raise NotData(f"Expected a known data form, found {kind!r}.")


def _hashable(item: Any) -> Any:
    """Tuples travel as lists; as a key or a set item a list becomes a tuple again."""
    return tuple(_hashable(x) for x in item) if isinstance(item, list) else item


SAFE_DTYPES = ("int", "uint", "float", "bool", "object", "string")


def _astype(series, dtype: str):
    if dtype and dtype.startswith(SAFE_DTYPES):
        try:
            return series.astype(dtype)
        except (TypeError, ValueError):
            return series
    return series


def _with_dtypes(frame, dtypes: Mapping[str, str]):
    for column in frame.columns:
        dtype = dtypes.get(str(column), "")
        frame[column] = _astype(frame[column], dtype)
    return frame
