"""A model call recorded by nested spans (a framework's span around the SDK instrumentation's, ours
around the SDK's own) counts once, on the innermost span; a rejected child leaves its parent."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.nested_calls import NestedCalls
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.metrics import families as M
from otel_downstream.exporters.otlp.decoded import DecodedSpan
from otel_downstream.exporters.otlp.export import children_first

TRACE = 0xABC


def _call(**extra: object) -> dict[str, object]:
    return {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "openai",
        A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        A.GEN_AI_USAGE_INPUT_TOKENS: 100,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 10,
        **extra,
    }


def _accountant() -> tuple[Accountant, CollectorRegistry]:
    registry = CollectorRegistry()
    return Accountant(Engine(EngineConfig()), registry=registry), registry


def _calls(registry: CollectorRegistry) -> float:
    return sum(
        s.value for family in registry.collect() for s in family.samples if s.name == M.GEN_AI_CALLS
    )


def _end(acc: Accountant, attrs: dict[str, object], span: int, parent: int | None) -> bool:
    """One span ending, children before parents as the SDK ends them."""
    return acc.account(
        attrs,
        service_name="shop",
        kind="CLIENT",
        span_key=(TRACE, span),
        parent_key=None if parent is None else (TRACE, parent),
    )


def test_three_nested_spans_of_one_call_count_once() -> None:
    acc, registry = _accountant()
    # SDK's own span (innermost) <- our CLIENT span <- a framework's chat span <- the request
    assert _end(acc, _call(), span=3, parent=2)
    assert _end(acc, _call(), span=2, parent=1)
    assert _end(acc, _call(), span=1, parent=0)
    assert _calls(registry) == 1.0
    enclosing = registry.get_sample_value(
        "downstream_spans_accounted_total", {"type": "gen_ai_enclosing"}
    )
    assert enclosing == 2.0


def test_a_rejected_child_leaves_the_parent_to_count() -> None:
    """An SDK span that ended before the stream was read has no usage: the call's own span,
    which has it, is the one counted."""
    acc, registry = _accountant()
    no_usage = {k: v for k, v in _call().items() if "usage" not in k}
    assert not _end(acc, no_usage, span=3, parent=2)
    assert _end(acc, _call(), span=2, parent=1)
    assert _calls(registry) == 1.0


def test_sibling_calls_in_one_request_each_count() -> None:
    acc, registry = _accountant()
    for span in (11, 12, 13):
        assert _end(acc, _call(), span=span, parent=1)
    assert _calls(registry) == 3.0


def test_without_span_keys_every_model_call_span_counts() -> None:
    acc, registry = _accountant()
    for _ in range(2):
        assert acc.account(_call(), service_name="shop", kind="CLIENT")
    assert _calls(registry) == 2.0


def test_a_different_call_inside_a_call_leaves_both_counted() -> None:
    """An embedding made while a chat span is open is another call: both count."""
    acc, registry = _accountant()
    embedding = _call(**{A.GEN_AI_REQUEST_MODEL: "text-embedding-3-small"})
    assert _end(acc, embedding, span=2, parent=1)
    assert _end(acc, _call(), span=1, parent=0)
    assert _calls(registry) == 2.0


def test_an_enclosing_span_without_usage_is_taken_not_rejected() -> None:
    """A framework span that names the call but reports no tokens around a counted call."""
    acc, registry = _accountant()
    assert _end(acc, _call(), span=2, parent=1)
    no_usage = {k: v for k, v in _call().items() if "usage" not in k}
    assert _end(acc, no_usage, span=1, parent=0)
    assert _calls(registry) == 1.0
    assert (
        registry.get_sample_value("downstream_spans_rejected_total", {"reason": "missing_usage"})
        is None
    )


def test_a_resolved_model_name_is_the_same_call() -> None:
    """mistralai's own span may name the dated model the alias resolved to."""
    acc, registry = _accountant()
    dated = _call(**{A.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18"})
    assert _end(acc, {**dated, A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini-2024-07-18"}, span=2, parent=1)
    assert _end(acc, _call(), span=1, parent=0)
    assert _calls(registry) == 1.0


def test_memory_is_bounded_oldest_parents_forgotten_first() -> None:
    nested = NestedCalls(capacity=3)
    for parent in range(5):
        nested.note(("t", parent), frozenset({"m"}))
    assert len(nested) == 3
    assert nested.counted_inside(("t", 0)) is None  # forgotten
    assert nested.counted_inside(("t", 4)) == frozenset({"m"})
    assert nested.counted_inside(("t", 4)) is None  # asked once: a span ends once


def _decoded(key: int, parent: int | None) -> DecodedSpan:
    return DecodedSpan(
        "shop",
        _call(),
        "chat",
        "CLIENT",
        1.0,
        None,
        key.to_bytes(8, "big"),
        None if parent is None else parent.to_bytes(8, "big"),
    )


def test_children_first_orders_any_depth_and_survives_a_loop() -> None:
    chain = [_decoded(i, i - 1 if i else None) for i in range(2_000)]  # root 0 ... leaf 1999
    ordered = children_first(chain)
    assert [int.from_bytes(s.span_key or b"", "big") for s in ordered] == list(range(1999, -1, -1))
    loop = [_decoded(1, 2), _decoded(2, 1), _decoded(3, 1)]  # a broken sender's parent loop
    assert sorted(s.span_key for s in children_first(loop)) == sorted(s.span_key for s in loop)
    plain = [_decoded(5, None), _decoded(6, None)]
    assert children_first(plain) is plain  # nothing nested: the batch as sent
