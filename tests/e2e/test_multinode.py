"""A real multi-node run (issue 13): two Ray nodes on this machine (`ray start`, each in a session
of its own, node B at another loopback address), a frontend attached to each, PostgreSQL and
Redis; shards spread over both nodes with the writer, wallboard and statistics on the head;
cases equal to a single-node run of the same traffic; node B SIGKILLed mid-replay (raylet,
workers, agents) and its shards back on the head by themselves, popups going on, nothing
acknowledged lost or doubled; frontend B restarted on the surviving node.

The run is `bench/multinode.py`'s (which a user runs at any scale); its steps are checked here
one test each, from one run for the module. ~2 minutes on this machine."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.multinode]

ROOT = Path(__file__).resolve().parents[2]
CALLS = 24  # per traffic file: ~120 notifications, ~5 calls live at once


def _load(name: str, path: Path) -> ModuleType:
    sys.path.insert(0, str(path.parent))  # multinode imports chaos beside it
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(e2e_kit: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    multinode = _load("multinode", ROOT / "bench" / "multinode.py")
    chaos = sys.modules["chaos"]
    problem = None if chaos.redis_up() else "Redis at 127.0.0.1:6379 does not answer"
    if problem is None and not chaos.pg_ready(e2e_kit.PG_URL, timeout=5):
        problem = f"PostgreSQL at {e2e_kit.PG_URL} does not answer"
    if problem:
        if e2e_kit.REQUIRE_SERVICES:
            pytest.fail(problem + " (CALLROUTER_REQUIRE_SERVICES=1)")
        pytest.skip(problem)
    setup = multinode.Setup(calls=CALLS, shards=4, database_url=e2e_kit.PG_URL, replay_seconds=16)
    with multinode.multinode(tmp_path_factory.mktemp("multinode"), setup) as lab:
        yield lab.run()


def test_shards_spread_over_both_nodes_the_writer_on_the_head(run: Any) -> None:
    assert not run.of("start") and not run.of("placement"), "\n".join(run.lines)


def test_popups_cross_frontends_through_redis(run: Any) -> None:
    assert not run.of("popups"), "\n".join(run.lines)


def test_two_node_cases_equal_the_single_node_run(run: Any) -> None:
    assert not run.of("clean"), "\n".join(run.lines)


def test_node_loss_mid_replay_loses_and_doubles_nothing(run: Any) -> None:
    assert not run.of("node_loss"), "\n".join(run.lines)
    assert run.figures["node_loss_recovery_seconds"] < 60


def test_the_lost_nodes_frontend_restarts_on_the_surviving_node(run: Any) -> None:
    assert not run.of("restart"), "\n".join(run.lines)
