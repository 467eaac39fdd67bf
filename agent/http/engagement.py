"""Engagement beacon: how long a page was visible, reported by the browser.

The exporter's time-based customer-device method needs engagement seconds, which the server never
sees. A page reports them with ``navigator.sendBeacon`` (see ``examples/engagement.js``) as a small
JSON body ``{"seconds": 12.5, "page": "/products/{id}"}``. The middleware answers the beacon itself
(204, or 4xx naming the bad field) and records one INTERNAL span carrying the seconds, the device
class and the country; the host application never sees the request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from otel_downstream.agent import attributes as attr
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.http.describe import describe_client
from otel_downstream.agent.http.options import HTTPOptions

MAX_BODY_BYTES = 4096
"""Beacons are tiny; anything larger is refused with 413 before it is read."""
MAX_SECONDS = 86400.0
MAX_PAGE_CHARS = 256


class BeaconError(ValueError):
    """Bad beacon input; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Beacon:
    """A validated beacon."""

    seconds: float
    page: str | None


@dataclass(frozen=True, slots=True)
class BeaconReply:
    """What to answer: status line parts, headers and body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


_REASONS = {
    204: "No Content",
    400: "Bad Request",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
}


def reply(status: int, message: str = "") -> BeaconReply:
    """A reply with a short plain-text explanation (empty for 204)."""
    body = b"" if status == 204 else (message + "\n").encode("utf-8")
    headers: list[tuple[str, str]] = [("Cache-Control", "no-store")]
    if status == 405:
        headers.append(("Allow", "POST"))
    if body:
        headers.append(("Content-Type", "text/plain; charset=utf-8"))
        headers.append(("Content-Length", str(len(body))))
    return BeaconReply(status, _REASONS.get(status, "Error"), tuple(headers), body)


def check_head(method: str, content_length: str | None) -> BeaconReply | None:
    """Reject before reading the body: wrong method, or a declared length over the bound."""
    if method != "POST":
        return reply(405, "engagement beacon: use POST")
    if content_length:
        try:
            length = int(content_length)
        except ValueError:
            return reply(
                400, f"engagement beacon: Content-Length {content_length[:32]!r} is not a number"
            )
        if length < 0:
            return reply(400, f"engagement beacon: Content-Length {length} is negative")
        if length > MAX_BODY_BYTES:
            return reply(413, f"engagement beacon: body of {length} bytes exceeds {MAX_BODY_BYTES}")
    return None


def parse_beacon(body: bytes) -> Beacon:
    """Validate a beacon body; ``BeaconError`` names the field and value that is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise BeaconError(413, f"engagement beacon: body exceeds {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (
        UnicodeDecodeError,
        ValueError,
        RecursionError,
    ):  # deep nesting hits the recursion limit
        raise BeaconError(400, "engagement beacon: body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise BeaconError(400, "engagement beacon: body must be a JSON object")
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise BeaconError(400, f"engagement beacon: seconds={_short(seconds)} is not a number")
    seconds = float(seconds)
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise BeaconError(
            400, f"engagement beacon: seconds={seconds!r} must be in (0, {MAX_SECONDS:g}]"
        )
    page = data.get("page")
    if page is not None and (not isinstance(page, str) or not page or len(page) > MAX_PAGE_CHARS):
        raise BeaconError(
            400,
            f"engagement beacon: page={_short(page)} must be a string of 1..{MAX_PAGE_CHARS} chars",
        )
    return Beacon(seconds, page)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def accept(
    body: bytes,
    *,
    options: HTTPOptions,
    tracer: Tracer,
    headers: Mapping[str, str],
    peer_ip: str | None,
    component: str,
) -> BeaconReply:
    """Parse, validate and record one beacon; return the reply to send."""
    try:
        beacon = parse_beacon(body)
    except BeaconError as exc:
        return reply(exc.status, str(exc))
    record_engagement(
        beacon,
        options=options,
        tracer=tracer,
        headers=headers,
        peer_ip=peer_ip,
        component=component,
    )
    return reply(204)


def record_engagement(
    beacon: Beacon,
    *,
    options: HTTPOptions,
    tracer: Tracer,
    headers: Mapping[str, str],
    peer_ip: str | None,
    component: str,
) -> None:
    """One INTERNAL span with the seconds, device class and country; faults are counted, not raised."""
    try:
        _, device_class, synthetic, country, _ = describe_client(
            options, headers, peer_ip, component
        )
        attributes: dict[str, AttributeValue] = {
            attr.DOWNSTREAM_ENGAGEMENT_SECONDS: beacon.seconds,
            attr.DOWNSTREAM_DEVICE_CLASS: device_class,
            attr.GEO_COUNTRY_ISO_CODE: country,
        }
        if synthetic is not None:
            attributes[attr.USER_AGENT_SYNTHETIC_TYPE] = synthetic
        if beacon.page is not None:
            attributes[attr.HTTP_ROUTE] = beacon.page
        span = tracer.start_span(
            attr.DOWNSTREAM_ENGAGEMENT_SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attributes
        )
        span.end()
    except Exception as exc:
        report_fault(component, exc)
