"""The interface hidden tests use to reach a student's names, and the data-only wire format.

Fast lane: no kernel. The judge's side (the same interface over a channel to a sandboxed
kernel) is tested in tests/test_judge.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import requests

from mlops_course.runtime import student, wire


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2.5,
        "text",
        [1, "a", None],
        {"a": [1, 2], "b": {"c": 1.5}},
        {1: "one", (2, 3): "pair"},
        {"x", "y"},
        b"\x89PNG\r\n",
    ],
)
def test_plain_values_survive_the_round_trip(value):
    data = json.loads(json.dumps(wire.encode(value)))
    assert wire.decode(data) == value


def test_tuples_arrive_as_lists_and_numpy_scalars_as_python():
    assert wire.decode(wire.encode((1, 2))) == [1, 2]
    back = wire.decode(wire.encode(np.float64(0.25)))
    assert back == 0.25 and type(back) is float
    assert math.isnan(wire.decode(json.loads(json.dumps(wire.encode(float("nan"))))))


def test_frames_series_and_arrays_keep_values_and_dtypes():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "y"]}, index=[10, 11])
    back = wire.decode(json.loads(json.dumps(wire.encode(frame))))
    pd.testing.assert_frame_equal(back, frame)
    series = pd.Series([1.0, 2.0], name="s")
    pd.testing.assert_series_equal(wire.decode(wire.encode(series)), series)
    array = np.arange(6, dtype="int32").reshape(2, 3)
    back = wire.decode(json.loads(json.dumps(wire.encode(array))))
    assert back.dtype == array.dtype and (back == array).all()


def test_objects_do_not_travel_and_say_so():
    with pytest.raises(wire.NotData, match=r"found a requests\.sessions\.Session"):
        wire.encode(requests.Session())
    with pytest.raises(wire.NotData):
        wire.encode(np.array([object()]).astype(object)[0])


def test_unknown_wire_forms_are_refused():
    with pytest.raises(wire.NotData, match="known data form"):
        wire.decode({wire.TAG: "pickle", "data": "..."})


def test_perform_answers_with_data_only():
    namespace = {"ANSWER": "C", "twice": lambda x: 2 * x, "obj": requests.Session()}
    assert student.perform({"op": "value", "name": "ANSWER"}, namespace) == {"ok": "C"}
    assert student.perform({"op": "call", "name": "twice", "args": (21,)}, namespace) == {"ok": 42}
    answer = student.perform({"op": "value", "name": "obj"}, namespace)
    assert answer["error"]["kind"] == "NotData"
    missing = student.perform({"op": "value", "name": "nope"}, namespace)
    assert missing["error"]["kind"] == "NoAnswer" and "'nope'" in missing["error"]["message"]
    raised = student.perform({"op": "evaluate", "expression": "1/0"}, namespace)
    assert raised["error"] == {
        "kind": "ZeroDivisionError",
        "message": "ZeroDivisionError: division by zero",
    }
    student.perform({"op": "assign", "name": "URL", "value": "http://x"}, namespace)
    assert namespace["URL"] == "http://x"


def test_dotted_names_follow_attributes():
    class Component:
        @staticmethod
        def python_func(a, b):
            return a > b

    namespace = {"should_publish": Component}
    assert student.perform(
        {"op": "call", "name": "should_publish.python_func", "args": (2, 1)}, namespace
    ) == {"ok": True}


def test_interface_in_this_process(monkeypatch):
    namespace = {"PIPELINE_OF": {"a": "training"}, "boom": lambda: 1 / 0}
    monkeypatch.setattr(student, "_namespace", lambda: namespace)
    assert student.value("PIPELINE_OF") == {"a": "training"}
    with pytest.raises(student.NoAnswer, match="Expected your notebook to define 'MISSING'"):
        student.value("MISSING")
    with pytest.raises(student.StudentError, match=r"boom\(\) to answer, found ZeroDivisionError"):
        student.call("boom")
    assert student.network_call(lambda a, b: a + b, 1, b=2) == 3


def test_recording_server_records_requests_and_answers_as_told():
    with student.recording_server(
        {"POST /invocations": {"json": {"predictions": [1, 0]}}}
    ) as server:
        answer = requests.post(f"{server.url}/invocations", json={"inputs": [[1]]}, timeout=10)
        missing = requests.get(f"{server.url}/nothing", timeout=10)
    assert answer.json() == {"predictions": [1, 0]} and missing.status_code == 404
    first, second = server.requests
    assert first["method"] == "POST" and first["path"] == "/invocations"
    assert first["json"] == {"inputs": [[1]]} and second["path"] == "/nothing"
    assert server.process is None  # stopped by the with block


def test_paths_arrive_as_paths_the_receiver_can_read(tmp_path):
    """A folder sent to a student's function (a run folder, a work folder) can be listed there."""
    (tmp_path / "metrics.json").write_text("{}")
    arrived = wire.decode(json.loads(json.dumps(wire.encode(tmp_path))))
    assert [p.name for p in arrived.iterdir()] == ["metrics.json"]
