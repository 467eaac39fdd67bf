"""``report`` and ``serve`` errors name the URL or the host:port they tried."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from otel_downstream.exporters.cli import main as cli


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_report_to_a_closed_port_names_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/metrics"
    assert cli.main(["report", "--url", url]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {url}" in err
    assert "refused" in err.lower()


def test_report_http_error_names_the_url_and_status(capsys: pytest.CaptureFixture[str]) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/nope"
        assert cli.main(["report", "--url", url]) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert f"cannot read {url}: HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "what"),
    [
        ("--otlp-http-port", "OTLP/HTTP"),
        ("--otlp-grpc-port", "OTLP/gRPC"),
        ("--metrics-port", "/metrics"),
    ],
)
def test_serve_on_a_taken_port_names_the_listener_and_host_port(flag: str, what: str) -> None:
    ports = {"--otlp-http-port": "-1", "--otlp-grpc-port": "-1", "--metrics-port": "-1"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports[flag] = str(port)
        result = subprocess.run(
            [sys.executable, "-m", "otel_downstream.exporters.cli.main", "serve"]
            + [f"{name}={value}" for name, value in ports.items()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"otel-downstream serve: cannot bind {what} to 127.0.0.1:{port}"), last
    assert "Traceback" not in result.stderr
