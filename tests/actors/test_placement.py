"""Where actors go on a cluster of several nodes (issue 13): the pure placement rules, and the
routing that must not change between processes or restarts. No Ray is started here."""

from __future__ import annotations

import subprocess
import sys
import zlib

from callrouter.actors.host import shard_of
from callrouter.actors.placement import NODE_LABEL, NodeView, head_of, on_node, spread

HEAD = NodeView("h" * 8, "10.0.0.10", head=True, alive=True)
W1 = NodeView("b" * 8, "10.0.0.11", head=False, alive=True)
W2 = NodeView("a" * 8, "10.0.0.12", head=False, alive=True)
DEAD = NodeView("d" * 8, "10.0.0.13", head=False, alive=False)


def test_shards_go_round_the_worker_nodes_first_then_the_head() -> None:
    assert spread(5, [HEAD, W2, W1]) == [
        W1.node_id,
        W2.node_id,
        HEAD.node_id,
        W1.node_id,
        W2.node_id,
    ]


def test_the_spread_does_not_depend_on_the_order_nodes_are_listed_in() -> None:
    assert spread(4, [W2, HEAD, W1]) == spread(4, [W1, W2, HEAD])


def test_dead_nodes_get_no_shards_and_one_node_gets_them_all() -> None:
    assert spread(3, [DEAD, HEAD]) == [HEAD.node_id] * 3
    assert spread(2, []) == [None, None]  # nothing known: Ray decides


def test_the_head_is_found_only_while_alive() -> None:
    assert head_of([W1, HEAD]) == HEAD.node_id
    assert head_of([W1, NodeView("h", "x", head=True, alive=False)]) is None


def test_a_placement_is_a_preference_with_a_fallback_to_any_node() -> None:
    options = on_node(W1.node_id)
    assert options["label_selector"] == {NODE_LABEL: W1.node_id}
    assert options["fallback_strategy"] == [{"label_selector": {}}]  # a lost node's actors move
    assert on_node(None) == {}


def test_routing_is_the_same_in_every_process_whatever_its_hash_seed() -> None:
    keys = [f"call:{i}" for i in range(0, 10**9, 10**7)] + ["agent:7", "agent:123"]
    here = [shard_of(k, 7) for k in keys]
    assert here == [zlib.crc32(k.encode()) % 7 for k in keys]
    code = (
        "import sys; from callrouter.actors.host import shard_of; "
        f"print([shard_of(k, 7) for k in {keys!r}])"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == str(here)
