"""The real service in a subprocess (`python -m callrouter serve`), for API tests that need
the whole of it (Ray, the writer, the shards): one per test module, as Ray is heavy.

stdout and stderr go to files of their own, so a test can read what the service logged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0  # Ray starts in 5–10 s; a machine shared with other test runs is slower


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One service process in its own session (so its Ray can be found and stopped with it).
    Without `admin_token` the service makes one (and prints it): `wait_ready` reads it."""

    def __init__(self, root: Path, admin_token: str | None, *extra_args: str) -> None:
        self.root = root
        self.admin_token = admin_token or ""
        self.data_dir = root / "data"
        self.stdout_path = root / "stdout.log"
        self.stderr_path = root / "stderr.log"
        self.port = free_port()
        cmd = [sys.executable, "-m", "callrouter", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir), "--shards", "2", *extra_args]
        env = dict(os.environ, RAY_AUTH_MODE="disabled")
        env.pop("RAY_ADDRESS", None)
        env.pop("CALLROUTER_ADMIN_TOKEN", None)
        if admin_token:
            env["CALLROUTER_ADMIN_TOKEN"] = admin_token
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        data: bytes | None = None,
    ) -> Answer:
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Answer(resp.status, dict(resp.headers), resp.read().decode())
        except urllib.error.HTTPError as err:
            return Answer(err.code, dict(err.headers), err.read().decode())

    def admin(self, method: str, path: str, body: Any = None) -> Answer:
        return self.request(method, path, body, token=self.admin_token)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited:\n{self.logs()[-4000:]}")
            try:
                if self.request("GET", "/healthz").status == 200:
                    if not self.admin_token:
                        self.admin_token = (self.data_dir / "admin_token").read_text().strip()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready after {READY_TIMEOUT} s:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        """stdout then stderr, as written so far."""
        return self.stdout() + self.stderr()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGINT, as Ctrl+C; then SIGKILL whatever is left of its session (its Ray)."""
        sid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        left = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getsid(p.pid) == sid:
                    left.append(p)
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
        _, alive = psutil.wait_procs(left, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass

    def workers(self, title: str) -> list[psutil.Process]:
        """The service's Ray worker processes of actor class `title` ("ray::Shard")."""
        found = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getsid(p.pid) != self.proc.pid:
                    continue
                cmd = p.cmdline()
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
            if cmd and (cmd[0] == title or cmd[0].startswith(title + ".")):
                found.append(p)
        return found
