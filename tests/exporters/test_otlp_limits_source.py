"""Per-source limits count senders, not addresses a sender can rotate through."""

from __future__ import annotations

import pytest

from otel_downstream.exporters.otlp.limits import BodyBudget, BudgetExceeded, source_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/serve.sock", "/run/serve.sock"),
    ],
)
def test_source_key(address: str, key: str) -> None:
    assert source_key(address) == key


def test_a_source_holds_at_most_its_share_and_gets_it_back() -> None:
    budget = BodyBudget(100, per_source=30)
    budget.reserve(30, "a")
    with pytest.raises(BudgetExceeded, match="share"):
        budget.reserve(1, "a")
    budget.reserve(30, "b")
    budget.reserve(30, "c")
    with pytest.raises(BudgetExceeded, match="max_body_bytes_in_flight"):
        budget.reserve(11, "d")
    for source in ("a", "b", "c"):
        budget.release(30, source)
    assert budget.held == 0
    budget.reserve(30, "a")  # nothing left over from before
