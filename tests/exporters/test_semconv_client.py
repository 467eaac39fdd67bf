"""Two rules of ``accounting/semconv_client.py`` a review asked to pin down: a client address with a
zone id, and a captured ``content-length`` repeated with the same value (RFC 9110 8.6)."""

from __future__ import annotations

from typing import Any

import pytest

from otel_downstream.agent import attributes as A
from otel_downstream.exporters.accounting.semconv_client import header_length
from otel_downstream.exporters.accounting.span_inputs import MAX_BODY_BYTES, http_input


def _in(attrs: dict[str, Any]) -> Any:
    return http_input({A.HTTP_REQUEST_METHOD: "GET", **attrs})


@pytest.mark.parametrize(
    "address",
    [
        "2a02:8070::1%eth0",  # a global IPv6 address (DE without the zone id)
        "81.2.69.142%eth0",  # GB without the zone id
        "fe80::1%eth0",
        "fe80::1%2",
        "[2a02:8070::1%eth0]:443",
        "2a02:8070::1%en0.5",
    ],
)
def test_an_address_with_a_zone_id_is_no_country_and_not_bad_input(address: str) -> None:
    # A zone id scopes the address to one host's link: no country, whatever the digits, and the
    # same answer for IPv4 and IPv6 (it is an IP address, like a link-local one).
    rec = _in({A.CLIENT_ADDRESS: address})
    assert (rec.country, rec.unknown) == (None, ())


@pytest.mark.parametrize(
    "address",
    ["2a02:8070::1%", "81.2.69.142%", "junk%eth0", "2a02:8070::1%e th", "::1%" + "e" * 33],
)
def test_an_empty_or_odd_zone_id_or_junk_before_it_is_counted(address: str) -> None:
    rec = _in({A.CLIENT_ADDRESS: address})
    assert (rec.country, rec.unknown) == (None, ("client_address",))


def test_without_a_zone_id_the_same_addresses_have_their_country() -> None:
    assert _in({A.CLIENT_ADDRESS: "2a02:8070::1"}).country == "DE"
    assert _in({A.CLIENT_ADDRESS: "81.2.69.142"}).country == "GB"


@pytest.mark.parametrize(
    "header",
    [["5", "5"], ("5", "5", "5"), ["5, 5", "5"], "5,5", [5, 5], ["5"] * 16, [5.0, "5"]],
)
def test_identical_repeats_are_one_length(header: object) -> None:
    assert header_length(header, MAX_BODY_BYTES) == 5.0
    rec = _in({A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: header})
    assert (rec.response_bytes, rec.response_size_known, rec.unknown) == (5.0, True, ())


@pytest.mark.parametrize("header", [["5", "6"], "5, 6", ["5", "5, 6"], ["5"] * 17])
def test_differing_values_or_too_many_give_no_length(header: object) -> None:
    assert header_length(header, MAX_BODY_BYTES) is None
    assert _in({A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH: header}).unknown == ("content_length",)
