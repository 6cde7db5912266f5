"""``risk-registry serve`` as a real process, for tests that need signals, sockets and outages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class LiveService:
    """One ``python -m service serve`` process on a free local port."""

    def __init__(self, database_url: str, log_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = log_dir / f"serve-{self.port}.log"
        self._env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REGISTRY_HOST": "127.0.0.1",
            "REGISTRY_PORT": str(self.port),
            "REGISTRY_LOG_LEVEL": "INFO",
            # The suite's shared database is sealed by the tests that are about sealing.
            "REGISTRY_SEALER": "false",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> LiveService:
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited here
            [sys.executable, "-m", "service", "serve"],
            cwd=REPO_ROOT,
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        try:
            await self.wait_ready()
        except BaseException:
            # A server that did not come up must not outlive the test that started it.
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stderr.close()

    async def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"serve exited early:\n{self.log_text()}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"serve did not come up in {within} s:\n{self.log_text()}")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not exit in {within} s:\n{self.log_text()}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    def log_text(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def log_entries(self) -> list[dict[str, object]]:
        """Every line the process wrote to stderr, each of which must be a JSON object."""
        # Split on newlines only: a JSON string may hold U+2028 and friends unescaped.
        return [json.loads(line) for line in self.log_text().split("\n") if line.strip()]
