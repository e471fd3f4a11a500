"""A twin of the SageMaker runtime API: ``POST /endpoints/<name>/invocations``.

SageMaker runs a model's container behind each endpoint and forwards ``InvokeEndpoint``
calls to the container's ``/invocations``. This twin does the same with local scoring
servers (``mlflow models serve``): a JSON routes file maps endpoint names to their base URLs.
The file is read on every request, so routes can be added while the twin runs.

    python -m mlops_course.runtime.twins.sagemaker_runtime --routes routes.json --port 8080

Point boto3 at it with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8080``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ACCOUNT = "123456789012"


def load_routes(path: Path) -> dict[str, str]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def make_handler(routes_path: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "SageMakerRuntimeTwin/1.0"

        def log_message(self, format: str, *args: object) -> None:  # stdlib signature
            print(f"{self.address_string()} {format % args}", flush=True)

        def _answer(
            self, status: int, body: bytes, content_type: str, error_type: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if error_type:
                # botocore reads the error code of rest-json services from this header.
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, error_type: str, message: str) -> None:
            body = json.dumps({"__type": error_type, "message": message}).encode()
            self._answer(status, body, "application/json", error_type)

        def do_GET(self) -> None:  # stdlib name
            if self.path in ("/ping", "/"):
                self._answer(
                    200,
                    json.dumps({"routes": sorted(load_routes(routes_path))}).encode(),
                    "application/json",
                )
            else:
                self._error(404, "UnknownOperationException", f"No operation at GET {self.path}.")

        def do_POST(self) -> None:  # stdlib name
            parts = self.path.split("?")[0].strip("/").split("/")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
                self._error(404, "UnknownOperationException", f"No operation at POST {self.path}.")
                return
            name = urllib.request.unquote(parts[1])
            target = load_routes(routes_path).get(name)
            if target is None:
                self._error(
                    400, "ValidationError", f"Endpoint {name} of account {ACCOUNT} not found."
                )
                return
            request = urllib.request.Request(
                target.rstrip("/") + "/invocations",
                data=body,
                method="POST",
                headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    self._answer(
                        200,
                        response.read(),
                        response.headers.get("Content-Type", "application/json"),
                    )
            except urllib.error.HTTPError as error:
                # SageMaker reports a container's own error answer as ModelError (HTTP 424).
                detail = error.read().decode(errors="replace")[:2000]
                self._error(
                    424,
                    "ModelError",
                    f'Received client error ({error.code}) from primary with message "{detail}".',
                )
            except (urllib.error.URLError, OSError) as error:
                self._error(
                    503,
                    "ServiceUnavailable",
                    f"The container of endpoint {name} did not answer: {error}.",
                )

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--routes", required=True, help="JSON file: {endpoint name: scoring server URL}"
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Path(args.routes)))
    print(
        f"SageMaker runtime twin on http://{args.host}:{args.port}, routes in {args.routes}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
