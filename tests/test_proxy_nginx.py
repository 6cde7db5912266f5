"""Behind the shipped nginx, a client cannot escape the public channel's limit by writing its
own ``X-Forwarded-For``.

The test runs a real nginx with ``deploy/nginx.conf``, changed only where it must be to run
here: the port it listens on, the one upstream (a live ``serve``), and where it keeps its pid
and logs. The service trusts the proxy's address and nothing else, as compose sets it up.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.live_service import LiveService, free_port

REPORT = {"title": "Leaks data", "category": "privacy", "models": ["acme/behind-nginx"]}
#: nginx-light on Debian; .ci/run installs it when it is missing.
NGINX_HINT = "nginx is not installed (Debian: apt-get install -y nginx-light)"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        pytest.fail(f"this test needs a real nginx: {NGINX_HINT}")
    return found


def adapted_config(*, listen: int, upstream: int, workdir: Path) -> str:
    """The shipped configuration with only ports and paths changed."""
    conf = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    conf, n = re.subn(r"^pid \S+;", f"pid {workdir / 'nginx.pid'};", conf, flags=re.M)
    assert n == 1
    conf, n = re.subn(r"access_log /dev/stdout", f"access_log {workdir / 'access.log'}", conf)
    assert n == 1
    conf, n = re.subn(r"error_log /dev/stderr", f"error_log {workdir / 'error.log'}", conf)
    assert n == 1
    conf, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{listen};", conf)
    assert n == 1
    servers = re.findall(r"^\s*server registry-\w+:8080[^;]*;\n", conf, flags=re.M)
    assert len(servers) == 2
    conf = conf.replace(servers[0], f"        server 127.0.0.1:{upstream};\n").replace(
        servers[1], ""
    )
    # Temporary files under the test's own directory, not the system's.
    temp = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return conf.replace("http {\n", "http {\n" + temp, 1)


async def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {log.read_text() if log.exists() else ''}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("nginx did not start listening")


# The proxy's own address, as compose sets it (adapted to this machine), and "*", which the
# compose file used to set: with nginx overwriting the header, neither lets a forgery through.
@pytest.mark.parametrize("trusted", ["127.0.0.1", "*"])
async def test_forged_forwarded_for_does_not_escape_the_public_limit_behind_nginx(
    database_url: str, tmp_path: Path, trusted: str
) -> None:
    binary = nginx_binary()
    listen = free_port()
    async with LiveService(
        database_url,
        tmp_path,
        REGISTRY_TRUSTED_PROXIES=trusted,
        REGISTRY_PUBLIC_RATE_LIMIT="2",
    ) as svc:
        conf = tmp_path / "nginx.conf"
        conf.write_text(adapted_config(listen=listen, upstream=svc.port, workdir=tmp_path))
        errors = tmp_path / "nginx-startup.log"
        with errors.open("wb") as err:
            nginx = subprocess.Popen(  # noqa: S603, ASYNC220 - our binary; a long-lived child
                [
                    binary,
                    "-p",
                    str(tmp_path),
                    "-c",
                    str(conf),
                    "-e",
                    str(errors),
                    "-g",
                    "daemon off;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            await _wait_listening(listen, nginx, errors)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listen}") as client:
                statuses = []
                for i in range(6):
                    # Each request claims to come from somewhere else, in the forms a forger
                    # would try: one address, a list, and garbage.
                    forged = [f"203.0.113.{i}", f"198.51.100.{i}, 192.0.2.{i}", f"x{i}"][i % 3]
                    r = await client.post(
                        "/v1/reports", json=REPORT, headers={"X-Forwarded-For": forged}
                    )
                    statuses.append(r.status_code)
                assert statuses == [201, 201, 429, 429, 429, 429], statuses
                assert r.headers["retry-after"]
            # The proxy hides /metrics; each replica shows its own limit and its refusals.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listen}") as client:
                assert (await client.get("/metrics")).status_code == 404
            async with httpx.AsyncClient(base_url=svc.base_url) as direct:
                text = (await direct.get("/metrics")).text
            assert 'registry_rate_limit_per_process{channel="public_reports"} 2.0' in text
            assert 'registry_rate_limited_total{channel="public_reports"} 4.0' in text
            assert 'registry_rate_limit_per_process{channel="webhooks"} 500.0' in text
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
