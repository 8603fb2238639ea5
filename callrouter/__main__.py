"""The only entry point: `python -m callrouter serve|replay` (API.md "Starting it")."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from aiohttp import web

from callrouter import logs
from callrouter.config import Settings, admin_token

log = logging.getLogger("callrouter")


def _serve(args: argparse.Namespace) -> int:
    from callrouter.http.app import create_app

    settings = Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        database_url=args.database_url,
        redis_url=args.redis_url,
        public_url=args.public_url,
        data_api_url=args.data_api_url,
        ray_address=args.ray_address,
        ray_node_ip=args.ray_node_ip,
        shards=args.shards,
        statistics=not args.no_stats,
        log_format=args.log_format,
    )
    logs.setup(settings.log_format)
    from_env = bool(os.environ.get("CALLROUTER_ADMIN_TOKEN"))
    token, generated = admin_token(settings.data_dir)
    logs.hide(token)
    if generated:
        # The one place the token is shown (API.md "Starting it"): on stdout, never logged.
        print(f"Admin token (stored in {settings.data_dir}/admin_token): {token}", flush=True)
    source = "environment" if from_env else "generated" if generated else "data dir"
    summary = _summary(settings, source)
    log.info(
        "callrouter starting: %s",
        ", ".join(f"{k}={v}" for k, v in summary.items()),
        extra={"event": "start", **summary},
    )
    app = create_app(settings, token)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=lambda msg: print(msg, flush=True),
    )
    return 0


def _summary(settings: Settings, token_source: str) -> dict[str, Any]:
    """The configuration worth a start line, with no secret: URLs lose their password, the
    admin token is named by where it came from."""
    return {
        "listen": f"{settings.host}:{settings.port}",
        "data_dir": settings.data_dir,
        "database": logs.mask_url(settings.database),
        "redis": logs.mask_url(settings.redis_url) or "off",
        "ray": settings.ray_address or "local",
        "shards": settings.shards,
        "statistics": "on" if settings.statistics else "off",
        "public_url": settings.public_url or "from requests",
        "log_format": settings.log_format,
        "admin_token_from": token_source,
    }


def main(argv: list[str] | None = None) -> int:
    logs.setup("text")
    parser = argparse.ArgumentParser(prog="callrouter")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", default="./data")
    serve.add_argument(
        "--database-url", default=None, help="PostgreSQL URL; default: SQLite in the data dir"
    )
    serve.add_argument("--redis-url", default=None, help="fan live events out through Redis")
    serve.add_argument(
        "--public-url",
        default=None,
        help="the address UIS reaches this service at (https://host); default: the request's",
    )
    serve.add_argument(
        "--data-api-url",
        default=None,
        help="the UIS Data API (import of operators); default: beside the Call API URL "
        "(https://dataapi.uiscom.ru/v2.0)",
    )
    serve.add_argument(
        "--ray-address", default=None, help="join this Ray cluster; default: a local Ray"
    )
    serve.add_argument(
        "--ray-node-ip",
        default=None,
        help="with --ray-address: attach to the Ray node of this IP address (when one machine "
        "runs several nodes); default: this machine's node",
    )
    serve.add_argument(
        "--shards", type=int, default=2, help="shard actors hosting the live entities"
    )
    serve.add_argument(
        "--no-stats",
        action="store_true",
        help="run without the statistics actor (reports answer 503)",
    )
    serve.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="text",
        help="log lines on stderr as text or as JSON objects (ts, level, logger, message, ...)",
    )
    serve.set_defaults(run=_serve)
    replay = commands.add_parser(
        "replay", help="post recorded UIS traffic (JSONL) to a running service"
    )
    try:
        from callrouter import replay as replay_cmd

        replay_cmd.add_arguments(replay)
        replay.set_defaults(run=replay_cmd.run)
    except ImportError:  # pragma: no cover
        pass
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
