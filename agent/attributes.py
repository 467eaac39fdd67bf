"""Every span attribute name the project reads or writes, in one place.

Standard OpenTelemetry semantic-convention names come first; names we had to invent live under the
``downstream.`` prefix. The exporter reads the deprecated GenAI names too, so spans written by other
instrumentations (and other languages) are accounted.
"""

from __future__ import annotations

from typing import Final

# --- HTTP server spans (semconv, stable HTTP conventions) -------------------------------------
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_REQUEST_BODY_SIZE: Final = "http.request.body.size"
HTTP_RESPONSE_BODY_SIZE: Final = "http.response.body.size"
URL_SCHEME: Final = "url.scheme"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
NETWORK_PROTOCOL_NAME: Final = "network.protocol.name"
ERROR_TYPE: Final = "error.type"
USER_AGENT_ORIGINAL: Final = "user_agent.original"  # opt-in only: personal data
USER_AGENT_SYNTHETIC_TYPE: Final = "user_agent.synthetic.type"  # "bot" | "test"
CLIENT_ADDRESS: Final = "client.address"  # opt-in only: personal data
GEO_COUNTRY_ISO_CODE: Final = "geo.country.iso_code"
GEO_REGION_ISO_CODE: Final = "geo.region.iso_code"

# Older HTTP conventions still emitted by some instrumentations; read, never written.
HTTP_METHOD_OLD: Final = "http.method"
HTTP_STATUS_CODE_OLD: Final = "http.status_code"
HTTP_REQUEST_CONTENT_LENGTH_OLD: Final = "http.request_content_length"
HTTP_RESPONSE_CONTENT_LENGTH_OLD: Final = "http.response_content_length"
HTTP_SCHEME_OLD: Final = "http.scheme"
HTTP_HOST_OLD: Final = "http.host"
HTTP_USER_AGENT_OLD: Final = "http.user_agent"
HTTP_CLIENT_IP_OLD: Final = "http.client_ip"  # the forwarded client, as client.address now
NET_SOCK_PEER_ADDR_OLD: Final = "net.sock.peer.addr"  # the TCP peer, as network.peer.address now
NET_PEER_IP_OLD: Final = "net.peer.ip"  # the TCP peer, older still

# Read from other languages' spans when our own device class and country are absent.
NETWORK_PEER_ADDRESS: Final = "network.peer.address"  # the TCP peer (a proxy, behind one)
# Captured headers (the conventions' http.{request,response}.header.<name>: an array of strings),
# read as the body size when no size attribute is present.
HTTP_REQUEST_HEADER_CONTENT_LENGTH: Final = "http.request.header.content-length"
HTTP_RESPONSE_HEADER_CONTENT_LENGTH: Final = "http.response.header.content-length"
# Where a span from another language says who the client is, first present wins: the user agent
# (classified as the middleware does), and the client address (looked up offline as the middleware
# does): client.address is the client behind any proxies, the peer names only the TCP peer.
USER_AGENT_NAMES: Final = (USER_AGENT_ORIGINAL, HTTP_USER_AGENT_OLD)
CLIENT_ADDRESS_NAMES: Final = (
    CLIENT_ADDRESS,
    HTTP_CLIENT_IP_OLD,
    NETWORK_PEER_ADDRESS,
    NET_SOCK_PEER_ADDR_OLD,
    NET_PEER_IP_OLD,
)
# Body sizes, first present wins: the current attribute, the older one, the captured header.
# (The older ``*_uncompressed`` sizes are not read: the footprint is of the bytes on the wire.)
REQUEST_SIZE_NAMES: Final = (HTTP_REQUEST_BODY_SIZE, HTTP_REQUEST_CONTENT_LENGTH_OLD)
RESPONSE_SIZE_NAMES: Final = (HTTP_RESPONSE_BODY_SIZE, HTTP_RESPONSE_CONTENT_LENGTH_OLD)

# --- GenAI client spans (semconv GenAI conventions) -------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
# Deprecated names, read for compatibility with other instrumentations, never written.
GEN_AI_SYSTEM: Final = "gen_ai.system"
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
# Token counts under either name, the current one first (it wins when both are present).
GEN_AI_INPUT_TOKEN_NAMES: Final = (GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS)
GEN_AI_OUTPUT_TOKEN_NAMES: Final = (GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_COMPLETION_TOKENS)
LLM_REQUEST_TYPE: Final = "llm.request.type"  # OpenLLMetry's operation ("chat", "embedding", ...)
# A non-server span carrying any of these is one model call's span, and is counted as such,
# unless its operation is an agent-level one, which aggregates the model calls below it.
GEN_AI_CALL_MARKERS: Final = (GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM, GEN_AI_OPERATION_NAME)
GEN_AI_AGENT_OPERATIONS: Final = frozenset({"invoke_agent", "create_agent", "execute_tool"})

# Provider names as the GenAI conventions spell them.
PROVIDER_OPENAI: Final = "openai"
PROVIDER_MISTRAL: Final = "mistral_ai"
PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"

# --- Ours (downstream.*) -----------------------------------------------------------------------
DOWNSTREAM_DEVICE_CLASS: Final = "downstream.device.class"
DOWNSTREAM_ENGAGEMENT_SECONDS: Final = "downstream.engagement.seconds"
# Engagement beacons become one INTERNAL span each, carrying the seconds, device class and country.
DOWNSTREAM_ENGAGEMENT_SPAN_NAME: Final = "downstream.engagement"
DOWNSTREAM_TOKENS_ESTIMATED: Final = "downstream.tokens.estimated"
DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK: Final = "downstream.gen_ai.time_to_first_chunk"  # seconds
DOWNSTREAM_GEN_AI_ZONE: Final = "downstream.gen_ai.zone"  # electricity zone of the provider's DC
# SCI-style functional unit this span completes (e.g. "user" on a new user's first request, "order"):
# counted as downstream_functional_units_total{unit} so dashboards can show CO2e per user / per order.
DOWNSTREAM_FUNCTIONAL_UNIT: Final = "downstream.functional_unit"

# Host samples from customer-hosted infrastructure (one INTERNAL span per sampling interval).
DOWNSTREAM_HOST_SAMPLE_SPAN_NAME: Final = "downstream.host.sample"
DOWNSTREAM_HOST_ENERGY_JOULES: Final = "downstream.host.energy.joules"
DOWNSTREAM_HOST_ENERGY_METHOD: Final = "downstream.host.energy.method"  # "measured" | "modelled"
DOWNSTREAM_HOST_INTERVAL_SECONDS: Final = "downstream.host.interval.seconds"
DOWNSTREAM_HOST_PROFILE: Final = "downstream.host.profile"
DOWNSTREAM_HOST_PUE: Final = "downstream.host.pue"
DOWNSTREAM_HOST_SHARE: Final = "downstream.host.share"  # fraction of the host used by the service
DOWNSTREAM_HOST_EMBODIED_CO2E_GRAMS: Final = "downstream.host.embodied.co2e_grams"

# Device classes (values of DOWNSTREAM_DEVICE_CLASS).
DEVICE_CLASSES: Final = (
    "smartphone",
    "tablet",
    "desktop",
    "tv",
    "console",
    "wearable",
    "bot",
    "unknown",
)

UNKNOWN_COUNTRY: Final = "ZZ"

# Every span attribute the accounting core reads (``exporters/accounting``, ``agent/model_calls``,
# ``exporters/otlp/export``): ``serve`` decodes these and skips every other key's value unread.
# ``tests/exporters/test_otlp_decode_attributes.py`` fails if the accounting looks up another key.
ACCOUNTED_KEYS: Final = frozenset(
    {
        HTTP_REQUEST_METHOD,
        HTTP_METHOD_OLD,
        HTTP_REQUEST_BODY_SIZE,
        HTTP_REQUEST_CONTENT_LENGTH_OLD,
        HTTP_RESPONSE_BODY_SIZE,
        HTTP_RESPONSE_CONTENT_LENGTH_OLD,
        HTTP_REQUEST_HEADER_CONTENT_LENGTH,
        HTTP_RESPONSE_HEADER_CONTENT_LENGTH,
        USER_AGENT_SYNTHETIC_TYPE,
        *USER_AGENT_NAMES,
        GEO_COUNTRY_ISO_CODE,
        *CLIENT_ADDRESS_NAMES,
        *GEN_AI_CALL_MARKERS,
        GEN_AI_REQUEST_MODEL,
        GEN_AI_RESPONSE_MODEL,
        *GEN_AI_INPUT_TOKEN_NAMES,
        *GEN_AI_OUTPUT_TOKEN_NAMES,
        LLM_REQUEST_TYPE,
        DOWNSTREAM_DEVICE_CLASS,
        DOWNSTREAM_ENGAGEMENT_SECONDS,
        DOWNSTREAM_GEN_AI_ZONE,
        DOWNSTREAM_FUNCTIONAL_UNIT,
        DOWNSTREAM_HOST_ENERGY_JOULES,
        DOWNSTREAM_HOST_ENERGY_METHOD,
        DOWNSTREAM_HOST_PUE,
        DOWNSTREAM_HOST_SHARE,
        DOWNSTREAM_HOST_EMBODIED_CO2E_GRAMS,
    }
)
