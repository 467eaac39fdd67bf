"""Span attributes -> the small input records the engine takes, with validation.

Reads the current semantic-convention names first and the deprecated ones after them, so spans from
other instrumentations and other languages count too (``gen_ai.system``, ``prompt_tokens``,
``http.request_content_length``, ...). Anything the engine cannot take raises :class:`SpanRejected`
with a bounded ``reason`` (a metric label) and the field and value (for the log), so the caller can
count it and carry on with the next span.

Validation rules (also in docs/metrics.md):
- sizes, token counts, seconds and joules must be finite numbers within a plausible range;
  a value outside it (negative, NaN, 1e15 bytes) rejects the whole span, never a clamped guess;
- a missing body size is 0 bytes (a GET has no request body); a missing response size is also
  counted as unknown (``response_size``: an instrumentation that does not record it); missing usage
  on both token counts rejects a GenAI span (``missing_usage``); one missing count is 0;
- an invalid country or device class is not a rejection: it is counted as unknown and ignored, and
  the client address or user agent decides (else ``ZZ``/``unknown``, accounting/labels.py);
- spans from other languages: without our device class and country, the user agent
  (``user_agent.original``) is classified and the client address (``client.address``) looked up
  offline; without a size attribute, a captured ``content-length`` header is the body size (a bad
  one is ignored and counted, ``content_length``): ``accounting/semconv_client.py``.

A span's sampling weight (its adjusted count) is read by ``accounting/sampling_weight.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal, NamedTuple

from otel_downstream.agent import attributes as A
from otel_downstream.agent.model_calls import is_model_call
from otel_downstream.exporters.accounting import semconv_client
from otel_downstream.exporters.footprint import InputError

AttributeScalar = str | bool | int | float
AttributeValue = AttributeScalar | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
Attributes = Mapping[str, AttributeValue]

SpanType = Literal["http", "engagement", "gen_ai", "host"]

MAX_BODY_BYTES: Final = 1e12
"""One terabyte in one request or response is beyond any real service; more is corrupt input."""
MAX_TOKENS: Final = 1e8
"""Two orders of magnitude above the largest context windows offered in 2025."""
MAX_SECONDS: Final = 86_400.0
"""A day of engagement, LLM latency or host interval in one span."""
MAX_HOST_ENERGY_J: Final = 1e10
"""2.8 MWh in one sampling interval: far above any single host."""
MAX_EMBODIED_G: Final = 1e7
MAX_PUE: Final = 5.0

ENGAGEMENT_SPAN_NAME: Final = A.DOWNSTREAM_ENGAGEMENT_SPAN_NAME
"""Engagement beacons: one INTERNAL span each (seconds, device class, country), no bytes."""


_KINDS: Final = {
    "SERVER": "SERVER",
    "CLIENT": "CLIENT",
    "INTERNAL": "INTERNAL",
    "PRODUCER": "PRODUCER",
    "CONSUMER": "CONSUMER",
}


class SpanRejected(InputError):
    """A span the engine cannot take: ``reason`` is a bounded label, ``field``/``value`` the why."""

    def __init__(self, reason: str, field: str, value: object, expected: str) -> None:
        self.reason = reason
        super().__init__(field, value, expected)


class HttpInput(NamedTuple):
    """One served request (or, with ``counts_request`` false, one engagement beacon)."""

    request_bytes: float
    response_bytes: float
    country: object
    device_class: object
    engagement_s: float | None
    counts_request: bool
    response_size_known: bool = True
    unknown: tuple[str, ...] = ()
    """``downstream_unknown_total`` kinds of fields ignored while reading the span."""


class GenAIInput(NamedTuple):
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_s: float | None
    zone: str | None
    operation: str | None = None  # gen_ai.operation.name: embeddings are priced differently


class HostInput(NamedTuple):
    energy_j: float
    country: object
    pue: float
    share: float
    embodied_co2e_g: float
    method: str


def normalize_kind(kind: str) -> str:
    """``SERVER``/``server``/``SPAN_KIND_SERVER``/``SpanKind.SERVER`` -> ``SERVER``; else as given."""
    found = _KINDS.get(kind)
    if found is not None:
        return found
    tail = kind.rsplit(".", 1)[-1].upper().removeprefix("SPAN_KIND_")
    return _KINDS.get(tail, tail)


def classify(attributes: Attributes, name: str, kind: str) -> SpanType | None:
    """Which record a span feeds, or ``None`` for spans the footprint does not cover."""
    if name == A.DOWNSTREAM_HOST_SAMPLE_SPAN_NAME:
        return "host"
    if name == ENGAGEMENT_SPAN_NAME:
        return "engagement"
    kind = normalize_kind(kind)
    if is_model_call(attributes, kind):
        return "gen_ai"
    if kind == "SERVER" and (
        A.HTTP_REQUEST_METHOD in attributes or A.HTTP_METHOD_OLD in attributes
    ):
        return "http"
    return None


IGNORED_NOT_FOOTPRINT_KIND: Final = "not_footprint_kind"
"""A CLIENT, INTERNAL, PRODUCER, CONSUMER or kind-less span with no GenAI marker: a database call,
outgoing HTTP, a queue, internal work. Most spans of a real application are these."""
IGNORED_SERVER_WITHOUT_HTTP_METHOD: Final = "server_without_http_method"
"""A SERVER span with neither ``http.request.method`` nor ``http.method``: a gRPC or other RPC
server, or an HTTP instrumentation that left the method out; it cannot be told from a request."""
IGNORED_GEN_AI_NOT_A_CALL: Final = "gen_ai_not_a_call"
"""A GenAI-marked span that is not one model call: an agent or tool operation (``invoke_agent``,
``execute_tool``), or a framework's INTERNAL span with only ``gen_ai.system`` and no usage."""
IGNORED_REASONS: Final = (
    IGNORED_NOT_FOOTPRINT_KIND,
    IGNORED_SERVER_WITHOUT_HTTP_METHOD,
    IGNORED_GEN_AI_NOT_A_CALL,
)
"""Every ``downstream_spans_ignored_total`` reason (a closed set; docs/metrics.md lists them)."""


def ignored_reason(attributes: Attributes, kind: str) -> str:
    """Why :func:`classify` gave ``None`` for a span: one of :data:`IGNORED_REASONS`.

    Asked only for spans already classified as not ours, so the accepted path pays nothing."""
    if kind == "SERVER" or normalize_kind(kind) == "SERVER":
        return IGNORED_SERVER_WITHOUT_HTTP_METHOD
    if _MARKER_0 in attributes or _MARKER_1 in attributes or _MARKER_2 in attributes:
        return IGNORED_GEN_AI_NOT_A_CALL
    return IGNORED_NOT_FOOTPRINT_KIND


_MARKER_0, _MARKER_1, _MARKER_2 = A.GEN_AI_CALL_MARKERS  # unrolled: most spans are ignored ones


def _number(
    attributes: Attributes, names: tuple[str, ...], reason: str, upper: float
) -> float | None:
    """The first present attribute of ``names`` as a float in ``[0, upper]``, or ``None``."""
    for field in names:
        value = attributes.get(field)
        if value is None:
            continue
        if isinstance(value, bool):
            raise SpanRejected(reason, field, value, "a number")
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise SpanRejected(reason, field, value, "a number") from None
        else:
            raise SpanRejected(reason, field, value, "a number")
        if not (0.0 <= number <= upper):  # also false for NaN
            raise SpanRejected(reason, field, value, f"a finite number in [0, {upper:g}]")
        return number
    return None


def _text(attributes: Attributes, *names: str) -> str | None:
    for field in names:
        value = attributes.get(field)
        if isinstance(value, str) and value:
            return value
    return None


_REQUEST_SIZE: Final = A.REQUEST_SIZE_NAMES
_RESPONSE_SIZE: Final = A.RESPONSE_SIZE_NAMES
_ENGAGEMENT: Final = (A.DOWNSTREAM_ENGAGEMENT_SECONDS,)
_NO_UNKNOWN: Final[tuple[str, ...]] = ()


def _size(
    attributes: Attributes, names: tuple[str, ...], header: str, unknown: list[str]
) -> float | None:
    """A body size: the first size attribute present (a bad one rejects the span), else the
    captured header (a bad one is ignored and counted as ``content_length``), else ``None``."""
    size = _number(attributes, names, "invalid_bytes", MAX_BODY_BYTES)
    if size is not None:
        return size
    return semconv_client.header_size(attributes, header, MAX_BODY_BYTES, unknown)


def http_input(attributes: Attributes, *, engagement_only: bool = False) -> HttpInput:
    """The served request (or engagement beacon) a span describes."""
    unknown: list[str] = []
    response: float | None = 0.0
    if engagement_only:
        request_bytes = 0.0
    else:
        request = _size(attributes, _REQUEST_SIZE, A.HTTP_REQUEST_HEADER_CONTENT_LENGTH, unknown)
        request_bytes = request or 0.0
        response = _size(attributes, _RESPONSE_SIZE, A.HTTP_RESPONSE_HEADER_CONTENT_LENGTH, unknown)
    engagement = _number(attributes, _ENGAGEMENT, "invalid_seconds", MAX_SECONDS)
    if engagement_only and engagement is None:
        raise SpanRejected(
            "invalid_seconds", A.DOWNSTREAM_ENGAGEMENT_SECONDS, None, "engagement seconds"
        )
    return HttpInput(
        request_bytes,
        response or 0.0,
        semconv_client.country(attributes, unknown),
        semconv_client.device_class(attributes, unknown),
        engagement,
        not engagement_only,
        response is not None,
        tuple(unknown) if unknown else _NO_UNKNOWN,
    )


_INPUT_TOKENS: Final = A.GEN_AI_INPUT_TOKEN_NAMES
_OUTPUT_TOKENS: Final = A.GEN_AI_OUTPUT_TOKEN_NAMES


def gen_ai_input(attributes: Attributes, duration_s: float | None = None) -> GenAIInput:
    """The LLM call a GenAI client span describes; ``duration_s`` is the span's duration."""
    provider = _text(attributes, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM)
    if provider is None:
        raise SpanRejected("missing_provider", A.GEN_AI_PROVIDER_NAME, None, "a provider name")
    model = _text(attributes, A.GEN_AI_REQUEST_MODEL, A.GEN_AI_RESPONSE_MODEL)
    if model is None:
        raise SpanRejected("missing_model", A.GEN_AI_REQUEST_MODEL, None, "a model name")
    input_tokens = _number(attributes, _INPUT_TOKENS, "invalid_tokens", MAX_TOKENS)
    output_tokens = _number(attributes, _OUTPUT_TOKENS, "invalid_tokens", MAX_TOKENS)
    if input_tokens is None and output_tokens is None:
        raise SpanRejected("missing_usage", A.GEN_AI_USAGE_OUTPUT_TOKENS, None, "token usage")
    latency: float | None = None
    if duration_s is not None and 0.0 < duration_s <= MAX_SECONDS:
        latency = duration_s
    zone = _text(attributes, A.DOWNSTREAM_GEN_AI_ZONE)
    return GenAIInput(
        provider,
        model,
        round(input_tokens or 0.0),
        round(output_tokens or 0.0),
        latency,
        zone,
        _operation(attributes),
    )


def _operation(attributes: Attributes) -> str | None:
    """``gen_ai.operation.name``, or what OpenLLMetry-style spans say instead
    (``llm.request.type="embedding"``), so embeddings are priced as such."""
    operation = _text(attributes, A.GEN_AI_OPERATION_NAME)
    if operation is None and attributes.get(A.LLM_REQUEST_TYPE) == "embedding":
        return "embeddings"
    return operation


def call_models(attributes: Attributes) -> frozenset[str]:
    """The request and response model names a GenAI span gives (lower case): what tells two
    nested spans of one call from two calls."""
    names = set()
    for field in (A.GEN_AI_REQUEST_MODEL, A.GEN_AI_RESPONSE_MODEL):
        value = attributes.get(field)
        if isinstance(value, str) and value.strip():
            names.add(value.strip().lower())
    return frozenset(names)


_HOST_ENERGY: Final = (A.DOWNSTREAM_HOST_ENERGY_JOULES,)
_HOST_PUE: Final = (A.DOWNSTREAM_HOST_PUE,)
_HOST_SHARE: Final = (A.DOWNSTREAM_HOST_SHARE,)
_HOST_EMBODIED: Final = (A.DOWNSTREAM_HOST_EMBODIED_CO2E_GRAMS,)


def host_input(attributes: Attributes) -> HostInput:
    """One host-sampler interval of customer-hosted infrastructure."""
    energy = _number(attributes, _HOST_ENERGY, "invalid_energy", MAX_HOST_ENERGY_J)
    if energy is None:
        raise SpanRejected(
            "invalid_energy", A.DOWNSTREAM_HOST_ENERGY_JOULES, None, "joules for the interval"
        )
    pue = _number(attributes, _HOST_PUE, "invalid_host_sample", MAX_PUE)
    if pue is not None and pue < 1.0:
        raise SpanRejected("invalid_host_sample", A.DOWNSTREAM_HOST_PUE, pue, "a PUE >= 1")
    share = _number(attributes, _HOST_SHARE, "invalid_host_sample", 1.0)
    embodied = _number(attributes, _HOST_EMBODIED, "invalid_host_sample", MAX_EMBODIED_G)
    method = _text(attributes, A.DOWNSTREAM_HOST_ENERGY_METHOD) or ""
    return HostInput(
        energy,
        attributes.get(A.GEO_COUNTRY_ISO_CODE),
        1.0 if pue is None else pue,
        1.0 if share is None else share,
        embodied or 0.0,
        method,
    )
