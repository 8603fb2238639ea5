"""Storage shapes for the incremental statistics: hour-bucket counters and sorted-value trees.

Everything is an `array('q')` so a year of buckets sums at C speed (`sum(a[i:j])`) and a
snapshot is a handful of byte strings.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any, TypeAlias

BLOCK = 64  # hours per block of `Counts` sums
BRANCH_BITS = 3  # an 8-ary tree: nodes of 1, 8, 64, 512, 4096 … hours


def zeros(n: int) -> array[int]:
    """An int64 array of n zeros."""
    return array("q", bytes(8 * n))


class Counts:
    """An integer per hour bucket, over a range that grows (both ways) as buckets are touched,
    with per-block sums so a year-long total is a few short slices."""

    __slots__ = ("base", "blocks", "values")

    def __init__(self, base: int = 0, values: array[int] | None = None) -> None:
        self.base = base - base % BLOCK  # blocks line up with the values
        self.values = values if values is not None else array("q")
        if base != self.base:
            self.values = zeros(base - self.base) + self.values
        self._reblock()

    def _reblock(self) -> None:
        v = self.values
        self.blocks = array("q", (sum(v[i : i + BLOCK]) for i in range(0, len(v), BLOCK)))

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        return [self.base, self.values]

    @classmethod
    def load(cls, plain: list[Any]) -> Counts:
        """The counters `dump` gave."""
        return cls(plain[0], plain[1])

    def add(self, bucket: int, delta: int) -> None:
        """Add `delta` to `bucket`'s counter."""
        i = bucket - self.base
        if 0 <= i < len(self.values):
            self.values[i] += delta
            self.blocks[i // BLOCK] += delta
            return
        n = len(self.values)
        if n == 0:
            self.base = bucket - bucket % BLOCK
            self.values = zeros(BLOCK)
        elif i < 0:
            # Grow by at least the current size so prepending stays amortised O(1).
            pad = max(-i, n)
            pad += -pad % BLOCK
            self.values = zeros(pad) + self.values
            self.base -= pad
        else:
            grow = max(i - n + 1, n)
            self.values.extend(zeros(grow + -grow % BLOCK))
        self._reblock()
        self.add(bucket, delta)

    def total(self, lo: int, hi: int) -> int:
        """The sum over buckets [lo, hi)."""
        a = max(lo - self.base, 0)
        b = min(hi - self.base, len(self.values))
        if b - a <= 2 * BLOCK:
            return sum(self.values[a:b]) if a < b else 0
        ba, bb = -(-a // BLOCK), b // BLOCK  # the whole blocks inside
        return (
            sum(self.values[a : ba * BLOCK])
            + sum(self.blocks[ba:bb])
            + sum(self.values[bb * BLOCK : b])
        )

    def stride_total(self, lo: int, hi: int, step: int) -> int:
        """The sum over buckets lo, lo+step, … below hi."""
        if lo < self.base:
            lo += -((lo - self.base) // step) * step  # first bucket of the progression in range
        a = lo - self.base
        b = min(hi - self.base, len(self.values))
        return sum(self.values[a:b:step]) if a < b else 0


# sorted values, and `stride` payload ints per value
Node: TypeAlias = "tuple[array[int], array[int]]"


class Tree:
    """Sorted values in the nodes of an 8-ary tree over hour buckets, with optional payloads.

    A value put at bucket b goes into node b >> 3·level of every level, so any bucket range is
    a few whole nodes (`cover`), each answering "how many values ≥ x" with one bisect.
    """

    __slots__ = ("levels", "nodes", "stride")

    def __init__(self, levels: int, stride: int) -> None:
        self.levels = levels
        self.stride = stride
        self.nodes: list[dict[int, Node]] = [{} for _ in range(levels)]

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        return [
            self.levels,
            self.stride,
            [{k: list(node) for k, node in nodes.items()} for nodes in self.nodes],
        ]

    @classmethod
    def load(cls, plain: list[Any]) -> Tree:
        """The tree `dump` gave."""
        tree = cls(plain[0], plain[1])
        tree.nodes = [{k: (node[0], node[1]) for k, node in nodes.items()} for nodes in plain[2]]
        return tree

    def insert(self, bucket: int, value: int, payload: Sequence[int] = ()) -> None:
        """Put `value` (with `stride` payload ints) at `bucket`."""
        stride = self.stride
        for nodes in self.nodes:
            node = nodes.get(bucket)
            if node is None:
                nodes[bucket] = (array("q", (value,)), array("q", payload))
            elif node[0][-1] <= value:  # values mostly come in time order
                node[0].append(value)
                node[1].extend(payload)
            else:
                i = bisect_right(node[0], value)
                node[0].insert(i, value)
                node[1][i * stride : i * stride] = array("q", payload)
            bucket >>= BRANCH_BITS

    def remove(self, bucket: int, value: int, ident: int | None = None) -> None:
        """Take out one `value` at `bucket` (the one whose first payload int is `ident`)."""
        s = self.stride
        for nodes in self.nodes:
            key = bucket
            bucket >>= BRANCH_BITS
            values, pay = nodes[key]
            i = bisect_left(values, value)
            if ident is not None:
                while pay[i * s] != ident:
                    i += 1
            del values[i]
            del pay[i * s : (i + 1) * s]
            if not values:
                del nodes[key]

    def cover(self, lo: int, hi: int) -> list[Node]:
        """The non-empty nodes that together hold exactly the buckets [lo, hi)."""
        out: list[Node] = []
        top = self.levels - 1
        for level, nodes in enumerate(self.nodes):
            if lo >= hi:
                break
            if level == top:
                keys: Sequence[int] = range(lo, hi) if hi - lo < len(nodes) else sorted(nodes)
                out.extend(nodes[k] for k in keys if lo <= k < hi and k in nodes)
                break
            while lo < hi and lo & 7:
                if lo in nodes:
                    out.append(nodes[lo])
                lo += 1
            while lo < hi and hi & 7:
                hi -= 1
                if hi in nodes:
                    out.append(nodes[hi])
            lo >>= BRANCH_BITS
            hi >>= BRANCH_BITS
        return out


def count_at_least(nodes: list[Node], x: int) -> int:
    """How many values in `nodes` are ≥ x."""
    return sum(len(values) - bisect_left(values, x) for values, _ in nodes)
