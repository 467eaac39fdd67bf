"""Other languages' request spans: device class, country and body sizes from the semantic
conventions alone (``user_agent.original``, ``client.address``, captured ``content-length``
headers, a Collector's ``geo.country.iso_code``), and what bad values of each cost.

The accounting is shared, so these hold in process (``FootprintSpanProcessor``) and in ``serve``
(tests/e2e/test_service_semconv.py, tests/e2e/test_node_otel.py).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from otel_downstream.agent import attributes as A
from otel_downstream.agent.client import address_country
from otel_downstream.agent.client.device_class import MAX_UA_LENGTH, cache_info
from otel_downstream.exporters.accounting.accountant import Accountant
from otel_downstream.exporters.accounting.settings import AccountingSettings
from otel_downstream.exporters.accounting.span_inputs import SpanRejected, http_input
from otel_downstream.exporters.engine.engine import Engine, EngineConfig
from otel_downstream.exporters.exporter import FootprintSpanProcessor

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
GB_IP, US_IP, FR_IP, DE_IP6 = "81.2.69.142", "8.8.8.8", "193.51.224.1", "2a02:8070::1"
GET = {A.HTTP_REQUEST_METHOD: "GET"}


def _in(attrs: dict[str, Any]) -> Any:
    return http_input({**GET, **attrs})


# --- device class and country from the conventions --------------------------------------------


def test_user_agent_and_client_address_give_device_and_country() -> None:
    rec = _in({A.USER_AGENT_ORIGINAL: IPHONE, A.CLIENT_ADDRESS: GB_IP})
    assert (rec.country, rec.device_class, rec.unknown) == ("GB", "smartphone", ())


@pytest.mark.parametrize(
    ("ua_key", "ip_key", "ua", "ip", "expected"),
    [
        (A.HTTP_USER_AGENT_OLD, A.HTTP_CLIENT_IP_OLD, WINDOWS, US_IP, ("US", "desktop")),
        (A.USER_AGENT_ORIGINAL, A.NETWORK_PEER_ADDRESS, IPAD, FR_IP, ("FR", "tablet")),
        (
            A.USER_AGENT_ORIGINAL,
            A.NET_SOCK_PEER_ADDR_OLD,
            IPHONE,
            f"[{DE_IP6}]:443",
            ("DE", "smartphone"),
        ),
        (A.HTTP_USER_AGENT_OLD, A.NET_PEER_IP_OLD, "curl/8.5.0", f"{GB_IP}:5000", ("GB", "bot")),
    ],
)
def test_older_names_are_read_too(
    ua_key: str, ip_key: str, ua: str, ip: str, expected: tuple[str, str]
) -> None:
    rec = _in({ua_key: ua, ip_key: ip})
    assert (rec.country, rec.device_class) == expected


def test_client_address_wins_over_the_peer_and_ours_win_over_both() -> None:
    # client.address is the client behind the proxies; the peer is the last proxy.
    rec = _in({A.CLIENT_ADDRESS: GB_IP, A.NETWORK_PEER_ADDRESS: US_IP})
    assert rec.country == "GB"
    ours = _in(
        {
            A.CLIENT_ADDRESS: GB_IP,
            A.USER_AGENT_ORIGINAL: IPHONE,
            A.GEO_COUNTRY_ISO_CODE: "FR",
            A.DOWNSTREAM_DEVICE_CLASS: "tv",
        }
    )
    assert (ours.country, ours.device_class) == ("FR", "tv")
    synthetic = _in({A.USER_AGENT_ORIGINAL: IPHONE, A.USER_AGENT_SYNTHETIC_TYPE: "test"})
    assert synthetic.device_class == "bot"


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "127.0.0.1", "::1", "192.168.0.9", "203.0.113.5", "fe80::1%eth0"]
)
def test_private_loopback_and_reserved_addresses_are_no_country(address: str) -> None:
    rec = _in({A.CLIENT_ADDRESS: address})
    assert (rec.country, rec.unknown) == (None, ())  # no country, and not bad input


@pytest.mark.parametrize(
    ("value", "expected"), [("fr", "FR"), ("FRA", "FR"), (" GB", None), ("ZZ", None)]
)
def test_a_collectors_geo_country_is_validated(value: str, expected: str | None) -> None:
    rec = _in({A.GEO_COUNTRY_ISO_CODE: value})
    assert rec.country == expected


@pytest.mark.parametrize("value", ["F1", "XX", "", "EU", "ÉÉ", 33, ["FR"], "A" * 100_000])
def test_an_invalid_geo_country_is_counted_and_the_address_decides(value: object) -> None:
    rec = _in({A.GEO_COUNTRY_ISO_CODE: value, A.CLIENT_ADDRESS: GB_IP})
    assert (rec.country, rec.unknown) == ("GB", ("invalid_country",))


@pytest.mark.parametrize(
    "address",
    [
        "not-an-ip",
        "shop.example.com",
        "/run/app.sock",
        "",
        "1.2.3.4.5",
        "x" * 1_000_000,
        42,
        [GB_IP],
    ],
)
def test_junk_client_address_is_ignored_and_counted(address: object) -> None:
    rec = _in({A.CLIENT_ADDRESS: address})
    assert (rec.country, rec.unknown) == (None, ("client_address",))


def test_junk_addresses_never_become_cache_keys() -> None:
    huge = "1" * 1_000_000
    assert address_country(huge) == ("ZZ", False)
    assert address_country(" " + GB_IP + " ") == ("GB", True)


def test_an_invalid_device_class_of_ours_is_counted_and_the_user_agent_decides() -> None:
    rec = _in({A.DOWNSTREAM_DEVICE_CLASS: "fridge", A.USER_AGENT_ORIGINAL: IPAD})
    assert (rec.device_class, rec.unknown) == ("tablet", ("device_class",))


@pytest.mark.parametrize("ua", [42, ["Mozilla/5.0"], True])
def test_a_user_agent_that_is_not_a_string_is_ignored_and_counted(ua: object) -> None:
    rec = _in({A.USER_AGENT_ORIGINAL: ua})
    assert (rec.device_class, rec.unknown) == (None, ("user_agent",))


def test_a_megabyte_user_agent_costs_bounded_work() -> None:
    before = cache_info()[2]
    huge = IPHONE + "x" * 1_000_000
    start = time.perf_counter()
    for i in range(50):
        rec = _in({A.USER_AGENT_ORIGINAL: huge + str(i)})
    elapsed = time.perf_counter() - start
    assert rec.device_class == "smartphone"  # the first MAX_UA_LENGTH characters decide
    assert elapsed < 2.0, elapsed  # cut before parsing: no megabyte reaches the parser
    assert cache_info()[2] - before <= 1  # one cache entry: every string cut to the same prefix
    assert len(IPHONE) < MAX_UA_LENGTH


# --- body sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        ["50000"],
        ("50000",),
        "50000",
        [50000],
        ["50000", "50000"],
        ["50000, 50000"],
        [" 50000 "],
        [5e4],
    ],
)
def test_captured_content_length_headers_are_body_sizes(header: object) -> None:
    rec = _in(
        {
            A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: header,
            A.HTTP_REQUEST_HEADER_CONTENT_LENGTH: ["300"],
        }
    )
    assert (rec.request_bytes, rec.response_bytes, rec.response_size_known) == (
        300.0,
        50000.0,
        True,
    )
    assert rec.unknown == ()


def test_size_precedence_attribute_then_older_attribute_then_header() -> None:
    header = {
        A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: ["3"],
        A.HTTP_REQUEST_HEADER_CONTENT_LENGTH: ["4"],
    }
    older = {A.HTTP_RESPONSE_CONTENT_LENGTH_OLD: 2, A.HTTP_REQUEST_CONTENT_LENGTH_OLD: 5}
    current = {A.HTTP_RESPONSE_BODY_SIZE: 1, A.HTTP_REQUEST_BODY_SIZE: 6}
    assert _in(header)[:2] == (4.0, 3.0)
    assert _in({**header, **older})[:2] == (5.0, 2.0)
    assert _in({**header, **older, **current})[:2] == (6.0, 1.0)


@pytest.mark.parametrize(
    "header",
    [
        ["-5"],
        ["+5"],
        ["abc"],
        ["12kB"],
        ["1", "2"],
        ["1, 2"],
        [],
        ["1" * 14],  # over 1e12 bytes
        ["nan"],
        [math.nan],
        [math.inf],
        [1.5],
        [-1],
        [10**13],
        [True],
        ["٣"],  # a digit, but not ASCII
        ["1"] * 17,
        "9" * 10_000,
    ],
)
def test_a_bad_content_length_header_is_ignored_and_counted(header: object) -> None:
    rec = _in({A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: header})
    assert (rec.response_bytes, rec.response_size_known) == (0.0, False)
    assert rec.unknown == ("content_length",)


@pytest.mark.parametrize("bad", [-1, 1e15, math.nan, math.inf, -math.inf, "12kB"])
def test_a_bad_size_attribute_still_rejects_the_span(bad: object) -> None:
    # A size attribute is the instrumentation's own measurement: a bad one is corrupt input and
    # rejects the span (docs/metrics.md); a header is text copied from the wire, ignored alone.
    with pytest.raises(SpanRejected) as info:
        _in({A.HTTP_RESPONSE_BODY_SIZE: bad, A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: ["5"]})
    assert info.value.reason == "invalid_bytes"


# --- the accountant, in process -----------------------------------------------------------------


def _accountant() -> tuple[Accountant, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = AccountingSettings.resolve()
    return Accountant(Engine(EngineConfig()), registry=registry, settings=settings), registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_in_process_spans_with_semconv_attributes_only_get_the_right_labels_and_figures() -> None:
    acc, registry = _accountant()
    provider = TracerProvider(resource=Resource.create({"service.name": "js-like"}))
    provider.add_span_processor(FootprintSpanProcessor(acc))
    tracer = provider.get_tracer("semconv")
    attrs = {
        A.HTTP_REQUEST_METHOD: "GET",
        A.USER_AGENT_ORIGINAL: IPHONE,
        A.CLIENT_ADDRESS: GB_IP,
        A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: ("50000",),
    }
    for _ in range(20):
        tracer.start_span("GET /", kind=SpanKind.SERVER, attributes=attrs).end()
    bad = {**attrs, A.CLIENT_ADDRESS: "junk", A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: ("-1",)}
    tracer.start_span("GET /", kind=SpanKind.SERVER, attributes=bad).end()
    provider.shutdown()
    acc.flush()

    labels = {"service_name": "js-like", "geo_country_iso_code": "GB", "device_class": "smartphone"}
    assert _value(registry, "downstream_requests_total", **labels) == 20
    zz = {**labels, "geo_country_iso_code": "ZZ"}
    assert _value(registry, "downstream_requests_total", **zz) == 1
    response = _value(registry, "downstream_transfer_bytes_total", direction="response")
    assert response == 20 * 50_000
    assert _value(registry, "downstream_unknown_total", kind="client_address") == 1
    assert _value(registry, "downstream_unknown_total", kind="content_length") == 1
    assert _value(registry, "downstream_unknown_total", kind="response_size") == 1
    footprints = Engine(EngineConfig()).http_request(
        request_bytes=0, response_bytes=50_000, country="GB", device_class="smartphone"
    )
    expected = 20 * sum(fp.total.co2e_g for fp in footprints)
    got = _value(registry, "downstream_co2e_grams_total", **labels)
    assert got == pytest.approx(expected, rel=1e-9)


def test_the_accountant_survives_every_bad_value_and_stays_sound() -> None:
    acc, registry = _accountant()
    bad_values: list[dict[str, Any]] = [
        {A.CLIENT_ADDRESS: "x" * 1_000_000, A.USER_AGENT_ORIGINAL: "y" * 1_000_000},
        {A.CLIENT_ADDRESS: None, A.USER_AGENT_ORIGINAL: None},
        {A.GEO_COUNTRY_ISO_CODE: "\ud800\ud800", A.CLIENT_ADDRESS: "\x00"},
        {A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: ["1" * 100]},
        {A.HTTP_REQUEST_HEADER_CONTENT_LENGTH: [math.nan]},
        {A.DOWNSTREAM_DEVICE_CLASS: 7, A.HTTP_USER_AGENT_OLD: ["a", "b"]},
    ]
    for attrs in bad_values:
        assert acc.account(
            {**GET, **{k: v for k, v in attrs.items() if v is not None}},
            service_name="s",
            kind="SERVER",
        )
    nan = {**GET, A.HTTP_RESPONSE_BODY_SIZE: math.nan}
    assert not acc.account(nan, service_name="s", kind="SERVER")
    acc.flush()
    assert _value(registry, "downstream_requests_total") == len(bad_values)
    assert _value(registry, "downstream_spans_rejected_total", reason="invalid_bytes") == 1
    assert _value(registry, "downstream_spans_rejected_total", reason="internal_error") == 0
    for family in registry.collect():
        for sample in family.samples:
            assert math.isfinite(sample.value), sample
            assert all(len(v) <= 128 for v in sample.labels.values()), sample
