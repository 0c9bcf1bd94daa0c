"""Local AWS for tests: moto server on 127.0.0.1 on a free port, reset between tests, stopped after.

The same emulator the TypeScript tests use (see scripts/lib/moto-server.ts); boto3 clients point at
``endpoint`` with any credentials.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

REGION = "us-east-1"


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen

    def reset(self) -> None:
        """Clears every service's state (POST /moto-api/reset)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"moto reset failed: HTTP {response.status}")

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto_server(timeout: float = 30.0, attempts: int = 3) -> MotoServer:
    """Starts ``moto.server`` from this interpreter's environment and waits until it answers."""
    last_error: Exception | None = None
    for _ in range(attempts):
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
        server = MotoServer(endpoint=f"http://127.0.0.1:{port}", process=process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace")[-2000:] if process.stderr else ""
                last_error = RuntimeError(f"moto server exited with {process.returncode}: {stderr}")
                break
            try:
                with urllib.request.urlopen(f"{server.endpoint}/moto-api/data.json", timeout=2) as response:
                    if response.status == 200:
                        return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        else:
            last_error = TimeoutError(f"moto server did not answer on {server.endpoint} within {timeout} s")
        server.stop()
    raise RuntimeError("could not start moto server") from last_error
