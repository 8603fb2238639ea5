"""R16 by event time: a caller's finished calls are released for their decisions in the order of
their ends, whatever order they finish in; other callers never wait; a quarantined call stops
holding anyone up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callrouter.domain.ordering import DecisionOrder


def test_a_later_call_waits_for_an_earlier_ending_one_of_the_same_caller() -> None:
    order: DecisionOrder[str] = DecisionOrder()
    order.ended(1, "p", 100.0)
    order.ended(2, "p", 200.0)
    order.ended(3, "q", 150.0)
    assert order.finished(2, "p", 200.0, "two") == []  # call 1 ended first: it goes first
    assert order.finished(3, "q", 150.0, "three") == ["three"]  # another caller: no wait
    assert order.waiting() == 1
    assert order.finished(1, "p", 100.0, "one") == ["one", "two"]
    assert order.waiting() == 0 and order.callers == {}


def test_a_call_whose_end_was_not_stored_holds_nobody_up() -> None:
    order: DecisionOrder[str] = DecisionOrder()
    assert order.finished(7, "p", 50.0, "silent") == ["silent"]


def test_a_quarantined_call_releases_the_calls_it_held() -> None:
    order: DecisionOrder[str] = DecisionOrder()
    order.ended(1, "p", 100.0)
    order.ended(2, "p", 200.0)
    assert order.finished(2, "p", 200.0, "two") == []
    assert order.forget(1) == ["two"]
    assert order.forget(1) == []


@given(st.permutations(list(range(6))))
def test_any_finishing_order_releases_in_end_order(finish_order: list[int]) -> None:
    order: DecisionOrder[int] = DecisionOrder()
    for call in range(6):
        order.ended(call, "p", 10.0 * call)
    released: list[int] = []
    for call in finish_order:
        released += order.finished(call, "p", 10.0 * call, call)
    assert released == list(range(6))
