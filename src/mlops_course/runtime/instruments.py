"""A recording HTTP server for hidden tests: what did the student's code send, exactly?

A hidden test that must see a *process* (requests a function sends, not only what ends up in
the store) starts one with ``student.recording_server(responses)``, hands its URL to the
student's function, and reads back every request::

    with student.recording_server({"POST /invocations": {"json": {"predictions": [1, 0]}}}) as server:
        student.call("predict_over_http", server.url, frame)
    server.requests  # [{"method": "POST", "path": "/invocations", "json": {...}, ...}]

It answers each ``"METHOD /path"`` with the canned response given (status 200 and an empty
JSON object by default for a known path, 404 otherwise), so the test decides what the
student's code receives. The server is a separate process that only writes its records to a
file the student's code cannot reach: under ``mlops-course grade`` it is started by the
grader inside the sandbox's network namespace (where the student's kernel can reach it),
with its files outside the sandbox.

    python -m mlops_course.runtime.instruments --records R.jsonl --port-file P --responses '{...}'
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mlops_course.runtime.errors import CourseError

__all__ = ["RecordingServer"]


class RecordingServer:
    """A running recording server (use ``with``); ``url`` and the ``requests`` it received."""

    def __init__(
        self, responses: Mapping[str, Mapping], folder: Path, prefix: Sequence[str] = ()
    ) -> None:
        self.responses = {key: dict(value) for key, value in responses.items()}
        self.folder = Path(folder)
        self.prefix = list(prefix)
        self.process: subprocess.Popen | None = None
        self.url = ""

    @property
    def _records(self) -> Path:
        return self.folder / "requests.jsonl"

    def start(self) -> RecordingServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        port_file = self.folder / "port"
        port_file.unlink(missing_ok=True)
        argv = [
            *self.prefix,
            sys.executable,
            "-m",
            "mlops_course.runtime.instruments",
            "--records",
            str(self._records),
            "--port-file",
            str(port_file),
            "--responses",
            json.dumps(self.responses),
        ]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CourseError("Expected the test's recording server to start, found none.")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"
        return self

    @property
    def requests(self) -> list[dict]:
        """Every request received so far, oldest first."""
        if not self._records.exists():
            return []
        found = []
        for line in self._records.read_text().splitlines():
            record = json.loads(line)
            body = base64.b64decode(record.pop("body"))
            record["body"] = body
            try:
                record["json"] = json.loads(body) if body else None
            except ValueError:
                record["json"] = None
            found.append(record)
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            if self.process.poll() is None:
                self.process.kill()
        self.process = None

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _handler(records: Path, responses: Mapping[str, Mapping]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # stdlib signature
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 50_000_000))
            path = self.path.split("?", 1)[0]
            record = {
                "method": self.command,
                "path": path,
                "query": self.path.partition("?")[2],
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": base64.b64encode(body).decode(),
            }
            with open(records, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            response = responses.get(f"{self.command} {path}")
            status = int(response.get("status", 200)) if response is not None else 404
            payload = response.get("json", {}) if response is not None else {"error": "no route"}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # the stdlib names

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--responses", default="{}")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), _handler(Path(args.records), json.loads(args.responses))
    )
    Path(args.port_file).write_text(str(server.server_address[1]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
