"""The process configuration, parsed once from the command line and environment, passed down."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from callrouter.storage.engine import sqlite_url


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./data"
    database_url: str | None = None
    redis_url: str | None = None
    public_url: str | None = None  # the base of the webhook URL shown to the admin
    data_api_url: str | None = None  # UIS Data API; None: derived from the Call API URL
    ray_address: str | None = None
    ray_node_ip: str | None = None  # the Ray node to attach to, when one machine runs several
    shards: int = 2
    statistics: bool = True  # off: no statistics actor (benchmarks of their cost)
    prefix: str = "callrouter"  # names of the Ray actors: two services may share a cluster
    log_format: str = "text"  # or "json": one JSON object per log line (callrouter/logs.py)

    @property
    def database(self) -> str:
        return self.database_url or sqlite_url(self.data_dir)


def admin_token(data_dir: str) -> tuple[str, bool]:
    """`CALLROUTER_ADMIN_TOKEN`, else the token stored in the data dir, else a new one stored
    there. Returns (token, whether it was just generated)."""
    from_env = os.environ.get("CALLROUTER_ADMIN_TOKEN")
    if from_env:
        return from_env, False
    path = Path(data_dir) / "admin_token"
    if path.exists():
        return path.read_text().strip(), False
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token, True
