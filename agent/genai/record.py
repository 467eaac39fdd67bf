"""One frozen record per LLM API call, and the one function that turns it into span attributes.

The OpenAI and Mistral wrappers differ only in how they *observe* a call; both reduce what they saw
to a :class:`GenAIRecord`, so the attribute names, the span name and the rules for what is recorded
(never prompts or completions) live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry.util.types import AttributeValue

from otel_downstream.agent import attributes as attr

OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"
OPERATION_GENERATE_CONTENT = "generate_content"


class GenAIRecord(NamedTuple):
    """What one API call cost and returned, without any prompt or completion text.

    A named tuple rather than a frozen dataclass: it is just as immutable, and one is built per
    traced call, where the dataclass's field-by-field ``object.__setattr__`` cost ~2.5 µs more.
    """

    operation: str
    provider: str
    request_model: str | None = None
    response_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    reasoning_tokens: int | None = None
    stream: bool = False
    finish_reasons: tuple[str, ...] = ()
    error_type: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    request_bytes: int | None = None
    response_bytes: int | None = None
    time_to_first_chunk: float | None = None
    tokens_estimated: bool = False


def span_name(operation: str, request_model: str | None) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, or the operation alone without a model."""
    return f"{operation} {request_model}" if request_model else operation


def start_attributes(
    *,
    operation: str,
    provider: str,
    request_model: str | None,
    stream: bool,
    server_address: str | None,
    server_port: int | None,
) -> dict[str, AttributeValue]:
    """Attributes known before the call, set at span start so samplers can see them."""
    out: dict[str, AttributeValue] = {
        attr.GEN_AI_OPERATION_NAME: operation,
        attr.GEN_AI_PROVIDER_NAME: provider,
        attr.GEN_AI_REQUEST_STREAM: stream,
    }
    if request_model:
        out[attr.GEN_AI_REQUEST_MODEL] = request_model
    if server_address:
        out[attr.SERVER_ADDRESS] = server_address
    if server_port is not None:
        out[attr.SERVER_PORT] = server_port
    return out


def record_attributes(record: GenAIRecord) -> dict[str, AttributeValue]:
    """Every attribute of ``record``: what a span started with :func:`start_attributes` and ended
    with :func:`end_attributes` carries."""
    """Every span attribute the record implies; absent values are left out, never zero-filled."""
    out = start_attributes(
        operation=record.operation,
        provider=record.provider,
        request_model=record.request_model,
        stream=record.stream,
        server_address=record.server_address,
        server_port=record.server_port,
    )
    out.update(end_attributes(record))
    return out


def end_attributes(record: GenAIRecord) -> dict[str, AttributeValue]:
    """The attributes only known once the call is over (what :func:`start_attributes` lacks).

    A span started with :func:`start_attributes` gets exactly these at its end, so no attribute is
    validated twice on the hot path. Written as a flat run of tests because it runs once per call.
    """
    out: dict[str, AttributeValue] = {}
    if record.response_model is not None:
        out[attr.GEN_AI_RESPONSE_MODEL] = record.response_model
    if record.input_tokens is not None:
        out[attr.GEN_AI_USAGE_INPUT_TOKENS] = record.input_tokens
    if record.output_tokens is not None:
        out[attr.GEN_AI_USAGE_OUTPUT_TOKENS] = record.output_tokens
    if record.cache_read_tokens is not None:
        out[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = record.cache_read_tokens
    if record.reasoning_tokens is not None:
        out[attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = record.reasoning_tokens
    if record.error_type is not None:
        out[attr.ERROR_TYPE] = record.error_type
    if record.request_bytes is not None:
        out[attr.HTTP_REQUEST_BODY_SIZE] = record.request_bytes
    if record.response_bytes is not None:
        out[attr.HTTP_RESPONSE_BODY_SIZE] = record.response_bytes
    if record.time_to_first_chunk is not None:
        out[attr.DOWNSTREAM_GEN_AI_TIME_TO_FIRST_CHUNK] = record.time_to_first_chunk
    if record.finish_reasons:
        out[attr.GEN_AI_RESPONSE_FINISH_REASONS] = record.finish_reasons
    if record.tokens_estimated:
        out[attr.DOWNSTREAM_TOKENS_ESTIMATED] = True
    return out


def as_int(value: object) -> int | None:
    """A token count from a provider payload, or ``None`` for anything that is not a count."""
    if type(value) is int:  # the usual case, without the bool and subclass checks
        return value if value >= 0 else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def usage_counts(usage: object) -> tuple[int | None, int | None, int | None, int | None]:
    """(input, output, cache-read, reasoning) tokens from an OpenAI- or Mistral-shaped usage object.

    Chat/legacy completions say ``prompt_tokens``/``completion_tokens``; the Responses API says
    ``input_tokens``/``output_tokens``; both nest the cache and reasoning details.
    """
    if usage is None:
        return None, None, None, None
    if not isinstance(usage, dict) and not getattr(usage, "__pydantic_extra__", None):
        return _declared_counts(usage, FIELDS[type(usage)])
    get = _getter(usage)
    inp = as_int(get("prompt_tokens"))
    if inp is None:
        inp = as_int(get("input_tokens"))
    out = as_int(get("completion_tokens"))
    if out is None:
        out = as_int(get("output_tokens"))
    details = get("prompt_tokens_details") or get("input_tokens_details")
    cached = as_int(_field(details, "cached_tokens")) if details is not None else None
    details = get("completion_tokens_details") or get("output_tokens_details")
    reasoning = as_int(_field(details, "reasoning_tokens")) if details is not None else None
    return inp, out, cached, reasoning


def _declared_counts(
    usage: Any, fields: frozenset[str]
) -> tuple[int | None, int | None, int | None, int | None]:
    """:func:`usage_counts` for a model without extra fields (the SDKs' own usage classes): the
    same rules, read as plain attribute access with no getter per name and no call per plain
    count, since this runs on every traced call."""
    value = usage.prompt_tokens if "prompt_tokens" in fields else None
    inp = value if type(value) is int and value >= 0 else as_int(value)
    if inp is None and "input_tokens" in fields:
        inp = as_int(usage.input_tokens)
    value = usage.completion_tokens if "completion_tokens" in fields else None
    out = value if type(value) is int and value >= 0 else as_int(value)
    if out is None and "output_tokens" in fields:
        out = as_int(usage.output_tokens)
    details = usage.prompt_tokens_details if "prompt_tokens_details" in fields else None
    if not details and "input_tokens_details" in fields:
        details = usage.input_tokens_details
    cached = as_int(_field(details, "cached_tokens")) if details is not None else None
    details = usage.completion_tokens_details if "completion_tokens_details" in fields else None
    if not details and "output_tokens_details" in fields:
        details = usage.output_tokens_details
    reasoning = as_int(_field(details, "reasoning_tokens")) if details is not None else None
    return inp, out, cached, reasoning


class _DeclaredFields(dict[type, frozenset[str]]):
    """Declared field names per SDK model class, computed on the first lookup of a class.

    Probing a pydantic model for an attribute it lacks raises inside its ``__getattr__``, which
    costs microseconds; checking a per-class set first keeps result and chunk reads to plain
    attribute access. A dict with ``__missing__`` makes the lookup of a known class (every chunk of
    a stream) a plain subscript, with no Python call.
    """

    def __missing__(self, cls: type) -> frozenset[str]:
        declared = getattr(cls, "model_fields", None)
        if isinstance(declared, Mapping):
            known = frozenset(declared)
        else:
            known = frozenset(name for name in dir(cls) if not name.startswith("_"))
        self[cls] = known
        return known


FIELDS = _DeclaredFields()
"""``FIELDS[cls]``: the declared field names of ``cls`` (see :class:`_DeclaredFields`)."""


def _getter(obj: object) -> Any:
    """``name -> value or None`` for a dict, a pydantic model (declared or extra fields) or any
    object, without raising."""
    if isinstance(obj, dict):
        return obj.get
    fields = FIELDS[type(obj)]
    extra = getattr(obj, "__pydantic_extra__", None)

    def get(name: str) -> Any:
        if name in fields:
            return getattr(obj, name, None)
        return extra.get(name) if isinstance(extra, dict) else None

    return get


def _field(obj: object, name: str) -> Any:
    """``_getter(obj)(name)`` for a single read, without making the getter."""
    if isinstance(obj, dict):
        return obj.get(name)
    if name in FIELDS[type(obj)]:
        return getattr(obj, name, None)
    extra = getattr(obj, "__pydantic_extra__", None)
    return extra.get(name) if isinstance(extra, dict) else None
