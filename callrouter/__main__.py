"""The only entry point: `python -m callrouter serve|replay` (API.md "Starting it")."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from callrouter.config import Settings, admin_token


def _serve(args: argparse.Namespace) -> int:
    from callrouter.http.app import create_app

    settings = Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        database_url=args.database_url,
        redis_url=args.redis_url,
        ray_address=args.ray_address,
        shards=args.shards,
        statistics=not args.no_stats,
    )
    token, generated = admin_token(settings.data_dir)
    if generated:
        print(f"Admin token (stored in {settings.data_dir}/admin_token): {token}", flush=True)
    app = create_app(settings, token)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=lambda msg: print(msg, flush=True),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
        "--ray-address", default=None, help="join this Ray cluster; default: a local Ray"
    )
    serve.add_argument(
        "--shards", type=int, default=2, help="shard actors hosting the live entities"
    )
    serve.add_argument(
        "--no-stats",
        action="store_true",
        help="run without the statistics actor (reports answer 503)",
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
