"""The SageMaker runtime twin alone: a real process on 127.0.0.1 in front of a fake scoring server.

The fake backend (a stdlib HTTP server in a thread) answers ``POST /invocations`` with a JSON
document derived from the request, and ``POST /broken/invocations`` with HTTP 400 and a message,
so a route to ``<backend>/broken`` exercises the twin's ModelError path.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from mlops_course.runtime import processes
from mlops_course.runtime.twins import aws

BACKEND_TYPE = "application/vnd.scoring-twin+json"  # passed through unchanged by the twin
BACKEND_ERROR = "Failed to parse input: column 'petal_width' is missing"


class _Backend(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # stdlib signature; keep the test output quiet
        pass

    def do_POST(self):  # stdlib name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/invocations":
            rows = json.loads(body)["inputs"]
            answer = {
                "predictions": [sum(row) for row in rows],
                "content_type": self.headers.get("Content-Type"),
            }
            status, payload, kind = 200, json.dumps(answer).encode(), BACKEND_TYPE
        elif self.path == "/broken/invocations":
            status, payload, kind = (
                400,
                json.dumps({"message": BACKEND_ERROR}).encode(),
                "text/json",
            )
        else:
            status, payload, kind = 404, b"no such path", "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def backend():
    server = ThreadingHTTPServer((processes.LOOPBACK, 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{processes.LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def twin(backend, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runtime-twin")
    routes = folder / "routes.json"
    aws.register_route(routes, "iris", backend)
    aws.register_route(routes, "iris-broken", backend + "/broken")
    aws.register_route(routes, "iris-gone", f"http://{processes.LOOPBACK}:{processes.free_port()}")
    with aws.runtime_server(routes, log_dir=folder / "logs") as server:
        yield {"server": server, "url": server.url, "routes": routes}
    assert processes.running_servers() == []


def call(url: str, path: str, body: bytes | None = None, method: str = "POST"):
    """(status, headers, parsed or raw body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(
        url + path, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    return status, headers, json.loads(raw)


def invoke(url: str, endpoint: str, rows):
    return call(url, f"/endpoints/{endpoint}/invocations", json.dumps({"inputs": rows}).encode())


def test_ping_lists_routes(twin):
    status, _, body = call(twin["url"], "/ping", method="GET")
    assert status == 200
    assert {"iris", "iris-broken", "iris-gone"} <= set(body["routes"])


def test_invocation_returns_the_backends_answer(twin):
    status, headers, body = invoke(twin["url"], "iris", [[1, 2], [3, 4.5]])
    assert status == 200
    assert body == {"predictions": [3, 7.5], "content_type": "application/json"}
    assert headers["Content-Type"] == BACKEND_TYPE
    assert "x-amzn-ErrorType" not in headers


def test_unknown_endpoint_is_a_validation_error(twin):
    status, headers, body = invoke(twin["url"], "no-such-endpoint", [[1]])
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "ValidationError"
    assert body["__type"] == "ValidationError" and "no-such-endpoint" in body["message"]


def test_backend_error_is_a_model_error(twin):
    status, headers, body = invoke(twin["url"], "iris-broken", [[1]])
    assert status == 424
    assert headers["x-amzn-ErrorType"] == "ModelError"
    assert "(400)" in body["message"] and BACKEND_ERROR in body["message"]


def test_unreachable_backend_is_service_unavailable(twin):
    status, headers, body = invoke(twin["url"], "iris-gone", [[1]])
    assert status == 503
    assert headers["x-amzn-ErrorType"] == "ServiceUnavailable"
    assert "iris-gone" in body["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/endpoints/iris"), ("POST", "/models/iris/invocations"), ("GET", "/nope")],
)
def test_unknown_path_is_404(twin, method, path):
    status, headers, body = call(twin["url"], path, b"{}" if method == "POST" else None, method)
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert path in body["message"]


def test_route_added_while_running(twin, backend):
    assert invoke(twin["url"], "late", [[1]])[0] == 400
    aws.register_route(twin["routes"], "late", backend)
    status, _, body = invoke(twin["url"], "late", [[2, 2]])
    assert status == 200 and body["predictions"] == [4]
    assert "late" in call(twin["url"], "/ping", method="GET")[2]["routes"]
    assert twin["server"].running, "the twin restarted or stopped"


def test_boto3_invoke_endpoint(twin):
    env = aws.aws_env(f"http://{processes.LOOPBACK}:1", runtime_url=twin["url"])
    runtime = aws.boto_client("sagemaker-runtime", env)
    answer = runtime.invoke_endpoint(
        EndpointName="iris",
        Body=json.dumps({"inputs": [[0.5, 0.25]]}),
        ContentType="application/json",
    )
    assert answer["ContentType"] == BACKEND_TYPE
    assert json.loads(answer["Body"].read())["predictions"] == [0.75]

    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="ghost", Body=b"{}", ContentType="application/json")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "ghost" in raised.value.response["Error"]["Message"]

    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(
            EndpointName="iris-broken", Body=b"{}", ContentType="application/json"
        )
    assert raised.value.response["Error"]["Code"] == "ModelError"


def test_stopped_after_the_block(backend, tmp_path):
    routes = tmp_path / "routes.json"
    aws.register_route(routes, "iris", backend)
    before = set(processes.running_servers())
    with aws.runtime_server(routes, log_dir=tmp_path / "logs") as server:
        assert server.running and server in processes.running_servers()
        url = server.url
    assert not server.running
    assert set(processes.running_servers()) == before
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/ping", timeout=5)
