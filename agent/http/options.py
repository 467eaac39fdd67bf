"""Options shared by the WSGI and ASGI middleware, resolved once at construction.

Each option goes argument → ``OTEL_DOWNSTREAM_*`` environment variable → default, and is read when the
middleware is built, never per request and never at import. Bad values raise here, at construction,
with a message naming the variable, so a typo never surfaces as a fault on the request path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from otel_downstream.agent import environment as env

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

DEFAULT_EXCLUDED_PATHS: tuple[str, ...] = ()
DEFAULT_ENGAGEMENT_PATH = "/.well-known/downstream/engagement"


class DeviceInfoLike(Protocol):
    """What the middleware reads from a classifier's answer (``device_class.DeviceInfo``)."""

    @property
    def device_class(self) -> str: ...

    @property
    def synthetic_type(self) -> str | None: ...


class CountryResultLike(Protocol):
    """What the middleware reads from a country answer (``country.CountryResult``)."""

    @property
    def country(self) -> str: ...

    @property
    def client_ip(self) -> str | None: ...


class CountryResolverLike(Protocol):
    """Anything with ``country.CountryResolver.resolve``'s shape."""

    def resolve(self, headers: Mapping[str, str], peer_ip: str | None) -> CountryResultLike: ...


Classifier = Callable[[str | None], DeviceInfoLike]


@dataclass(frozen=True)
class HTTPOptions:
    """Resolved middleware configuration; one instance per middleware, shared by all requests."""

    tracer_provider: TracerProvider | None
    excluded_paths: frozenset[str]
    capture_user_agent: bool
    capture_client_ip: bool
    trust_trace_context: bool
    engagement_beacon: bool
    engagement_path: str
    classifier: Classifier
    country_resolver: CountryResolverLike

    def is_excluded(self, path: str) -> bool:
        """Exact match or below an excluded prefix ending in ``/``; cheap enough for every request."""
        if not self.excluded_paths:
            return False
        if path in self.excluded_paths:
            return True
        return any(p.endswith("/") and path.startswith(p) for p in self.excluded_paths)


def _paths(value: str | Iterable[str], source: str) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out: set[str] = set()
    for raw in items:
        path = raw.strip()
        if not path:
            continue
        if not path.startswith("/"):
            raise ValueError(f"{source}: excluded path {path!r} must start with '/'")
        out.add(path)
    return frozenset(out)


def _engagement_path(value: str, source: str) -> str:
    path = value.strip()
    if not path.startswith("/") or len(path) > 512:
        raise ValueError(
            f"{source}={value!r} must be an absolute path such as {DEFAULT_ENGAGEMENT_PATH}"
        )
    return path


def build_options(
    *,
    tracer_provider: TracerProvider | None = None,
    excluded_paths: str | Iterable[str] | None = None,
    trusted_proxies: int | None = None,
    country_header: str | None = None,
    capture_user_agent: bool | None = None,
    capture_client_ip: bool | None = None,
    trust_trace_context: bool | None = None,
    engagement_beacon: bool | None = None,
    engagement_path: str | None = None,
    classifier: Classifier | None = None,
    country_resolver: CountryResolverLike | None = None,
) -> HTTPOptions:
    """Resolve every option (argument → environment → default); raise ``ValueError`` on bad config."""
    if excluded_paths is None:
        raw = os.environ.get(env.OTEL_DOWNSTREAM_HTTP_EXCLUDED_PATHS, "")
        paths = _paths(raw, env.OTEL_DOWNSTREAM_HTTP_EXCLUDED_PATHS)
    else:
        paths = _paths(excluded_paths, "excluded_paths")
    if engagement_path is None:
        path = _engagement_path(
            env.env_str(env.OTEL_DOWNSTREAM_ENGAGEMENT_PATH, DEFAULT_ENGAGEMENT_PATH),
            env.OTEL_DOWNSTREAM_ENGAGEMENT_PATH,
        )
    else:
        path = _engagement_path(engagement_path, "engagement_path")
    if classifier is None:
        from otel_downstream.agent.client.device_class import classify

        classifier = classify
    if country_resolver is None:
        country_resolver = _default_resolver(trusted_proxies, country_header)
    elif trusted_proxies is not None or country_header is not None:
        raise ValueError("pass trusted_proxies/country_header to your country_resolver, not both")
    return HTTPOptions(
        tracer_provider=tracer_provider,
        excluded_paths=paths,
        capture_user_agent=_flag(capture_user_agent, env.OTEL_DOWNSTREAM_HTTP_CAPTURE_USER_AGENT),
        capture_client_ip=_flag(capture_client_ip, env.OTEL_DOWNSTREAM_HTTP_CAPTURE_CLIENT_IP),
        trust_trace_context=_flag(
            trust_trace_context, env.OTEL_DOWNSTREAM_HTTP_TRUST_TRACE_CONTEXT
        ),
        engagement_beacon=_flag(engagement_beacon, env.OTEL_DOWNSTREAM_ENGAGEMENT_BEACON),
        engagement_path=path,
        classifier=classifier,
        country_resolver=country_resolver,
    )


def _flag(value: bool | None, name: str) -> bool:
    return env.env_bool(name, False) if value is None else bool(value)


class _MemoResolver:
    """Memoise the built-in resolver on the few inputs it reads (peer, forwarding headers, the CDN
    header): most requests come from clients seen moments ago, and parsing an address costs
    more than the rest of the request path. Bounded in entries and in key size."""

    __slots__ = ("_cache", "_header", "_proxies", "_resolver")

    MAX_ENTRIES = 4096
    MAX_KEY_CHARS = 256

    def __init__(self, resolver: Any) -> None:
        self._resolver = resolver
        self._header: str | None = getattr(resolver, "country_header", None)
        # Without trusted proxies the resolver never reads the forwarding headers: neither do we.
        self._proxies = getattr(resolver, "trusted_proxies", 1) != 0
        self._cache: dict[tuple[str | None, ...], CountryResultLike] = {}

    def resolve(self, headers: Mapping[str, str], peer_ip: str | None) -> CountryResultLike:
        header = self._header
        key: tuple[str | None, ...]
        if self._proxies:
            key = (
                peer_ip,
                headers.get("x-forwarded-for"),
                headers.get("forwarded"),
                headers.get(header) if header else None,
            )
        else:
            key = (peer_ip, headers.get(header) if header else None)
        cache = self._cache
        found = cache.get(key)
        if found is None:
            found = self._resolver.resolve(headers, peer_ip)
            if sum(len(part) for part in key if part) <= self.MAX_KEY_CHARS:
                if len(cache) >= self.MAX_ENTRIES:
                    cache.clear()
                cache[key] = found
        return found


def _default_resolver(
    trusted_proxies: int | None, country_header: str | None
) -> CountryResolverLike:
    from otel_downstream.agent.client.country import CountryResolver

    overrides: dict[str, Any] = {}
    if trusted_proxies is not None:
        if isinstance(trusted_proxies, bool) or not isinstance(trusted_proxies, int):
            raise ValueError(f"trusted_proxies={trusted_proxies!r} must be an integer >= 0")
        if trusted_proxies < 0:
            raise ValueError(f"trusted_proxies={trusted_proxies!r} must be >= 0")
        overrides["trusted_proxies"] = trusted_proxies
    if country_header is not None:
        overrides["country_header"] = country_header
    return _MemoResolver(CountryResolver.from_env(**overrides))
