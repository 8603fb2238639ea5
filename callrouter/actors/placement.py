"""Where the actors run on a Ray cluster of several nodes (issue 13).

The writer, the wallboard, the statistics and the supervisor that owns them go to the head
node: the head already holds the cluster's one irreplaceable part (the GCS), so losing any other
node loses shards only, and shards come back by themselves (epochs, the writer's re-routing).
Shards are spread over the nodes alive when the supervisor is made, worker nodes first: shard i
goes to the i-th node of that order, round and round.

Every placement is a preference, never a requirement: a label selector on the node's id
(`ray.io/node-id`, a label Ray gives every node) with a fallback to any node, so when its node
is gone (at the start, or when Ray restarts the actor after the node died) Ray puts the actor
on a node that is alive. Ray's soft `NodeAffinitySchedulingStrategy` is not used: in Ray 2.60
it placed actors on other nodes while their node was alive (every other one went elsewhere).
Nothing moves back by itself when a node returns; see docs/capacity.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ray

HEAD_RESOURCE = "node:__internal_head__"  # Ray gives this resource to the head node only
NODE_LABEL = "ray.io/node-id"  # Ray labels every node with its id


@dataclass(frozen=True, slots=True)
class NodeView:
    """A Ray node as placement sees it."""

    node_id: str  # hex
    address: str  # the node's IP address
    head: bool
    alive: bool

    def wire(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "head": self.head,
            "alive": self.alive,
        }


def spread(count: int, nodes: Sequence[NodeView]) -> list[str | None]:
    """The node of each of `count` shards: the alive nodes, worker nodes before the head
    (which carries the writer and the GCS), each group in a stable order, taken in turn.
    None for every shard when no node is known (a single-node run places nothing)."""
    alive = [n for n in nodes if n.alive]
    order = sorted(alive, key=lambda n: (n.head, n.address, n.node_id))
    if not order:
        return [None] * count
    return [order[i % len(order)].node_id for i in range(count)]


def head_of(nodes: Sequence[NodeView]) -> str | None:
    """The head node's id, if it is alive."""
    return next((n.node_id for n in nodes if n.head and n.alive), None)


# -- the Ray shell ----------------------------------------------------------------------------


def cluster_nodes() -> list[NodeView]:
    """Every node the GCS knows (dead ones included: they show what was lost)."""
    return [
        NodeView(
            node_id=str(n["NodeID"]),
            address=str(n.get("NodeManagerAddress", "")),
            head=HEAD_RESOURCE in (n.get("Resources") or {}),
            alive=bool(n.get("Alive")),
        )
        for n in ray.nodes()  # type: ignore[no-untyped-call]
    ]


def on_node(node_id: str | None) -> dict[str, Any]:
    """Actor options that prefer `node_id` (any node once it is gone); none for None."""
    if node_id is None:
        return {}
    return {"label_selector": {NODE_LABEL: node_id}, "fallback_strategy": [{"label_selector": {}}]}


def on_head() -> dict[str, Any]:
    """Actor options that prefer the head node."""
    return on_node(head_of(cluster_nodes()))


def this_node() -> str:
    """The id of the node this process runs on."""
    return str(ray.get_runtime_context().get_node_id())
