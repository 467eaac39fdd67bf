"""The client's country for a request: trusted CDN header, else offline IP lookup, else ``ZZ``.

The country picks the grid intensity for the network and customer-device footprint. Headers are
only as trustworthy as the proxies that write them, so the CDN country header is read only when
configured, and ``X-Forwarded-For``/``Forwarded`` only through the configured number of trusted
proxies: the client is the entry that many hops from the right (with none, the TCP peer). The IP
goes to a user-supplied ``.mmdb`` database when given, then to the ``iptocc`` table shipped in its
wheel (offline, no network). Results are cached per IP. The IP is returned to the caller, which
records it only on opt-in (personal data).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from otel_downstream.agent import environment as env
from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.agent.client.headers import forwarded_chain, x_forwarded_for_chain
from otel_downstream.agent.countries import ISO_COUNTRIES
from otel_downstream.agent.faults import report_fault

__all__ = ["COUNTRY_HEADER_PRESETS", "CountryResolver", "CountryResult", "address_country"]

_logger = logging.getLogger("otel_downstream")

COUNTRY_HEADER_PRESETS: Final = {
    "cloudflare": "cf-ipcountry",
    "cloudfront": "cloudfront-viewer-country",
    "vercel": "x-vercel-ip-country",
    "appengine": "x-appengine-country",
}
"""Short names for the country headers of common CDNs and platforms."""

IP_CACHE_SIZE: Final = 8192
_MAX_TRUSTED_PROXIES: Final = 32
_MAX_IP_TEXT: Final = 64  # longest textual IPv6 with port and zone is well under this

SOURCE_HEADER: Final = "header"
SOURCE_GEOIP: Final = "geoip"
SOURCE_UNKNOWN: Final = "unknown"

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class CountryResult:
    """Where the client is, and how we know."""

    country: str
    """ISO 3166-1 alpha-2, upper case, or ``ZZ`` when unknown."""
    client_ip: str | None
    """The client address used (record only on opt-in: personal data)."""
    source: str
    """``header`` (trusted CDN header), ``geoip`` (IP lookup) or ``unknown``."""


_UNKNOWN: Final = CountryResult(UNKNOWN_COUNTRY, None, SOURCE_UNKNOWN)


def iso_country(value: object) -> str | None:
    """``value`` as an upper-case ISO alpha-2 code, or None (``XX``, ``T1`` Tor, ``EU``, junk)."""
    if not isinstance(value, str) or len(value) > 8:
        return None
    code = value.strip().upper()
    return code if code in ISO_COUNTRIES else None


def parse_ip(text: str | None) -> _IPAddress | None:
    """An address from a header entry or peer: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:443``,
    ``fe80::1%eth0``; IPv4-mapped IPv6 becomes IPv4. None for ``unknown``, ``_obfuscated``, junk."""
    if not text or len(text) > _MAX_IP_TEXT:
        return None
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or (close + 1 < len(text) and text[close + 1] != ":"):
            return None
        text = text[1:close]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_public(address: _IPAddress) -> bool:
    return address.is_global and not address.is_multicast


class CountryResolver:
    """Resolves the client country of requests; construct once per middleware, call per request."""

    def __init__(
        self,
        *,
        trusted_proxies: int = 0,
        country_header: str | None = None,
        geoip_path: str | None = None,
        use_builtin_geoip: bool = True,
    ) -> None:
        if isinstance(trusted_proxies, bool) or not isinstance(trusted_proxies, int):
            raise ValueError(f"trusted_proxies={trusted_proxies!r} must be an integer")
        if not 0 <= trusted_proxies <= _MAX_TRUSTED_PROXIES:
            raise ValueError(
                f"trusted_proxies={trusted_proxies!r} must be between 0 and {_MAX_TRUSTED_PROXIES}"
            )
        self.trusted_proxies = trusted_proxies
        self.country_header = _header_name(country_header)
        self._lookups: list[Callable[[str], str | None]] = []
        if geoip_path:
            self._lookups.append(_mmdb_lookup(geoip_path))
        if use_builtin_geoip:
            builtin = _iptocc_lookup()
            if builtin is not None:
                self._lookups.append(builtin)
        # Parsing the address and testing it against the reserved ranges costs more than the table
        # lookup itself, so the cache holds the whole answer per address as written.
        self._by_address_text = lru_cache(maxsize=IP_CACHE_SIZE)(self._resolve_text)

    @classmethod
    def from_env(cls, **overrides: Any) -> CountryResolver:
        """Arguments given here win over ``OTEL_DOWNSTREAM_*`` variables, which win over defaults."""
        readers: dict[str, Callable[[], Any]] = {
            "trusted_proxies": lambda: env.env_int(env.OTEL_DOWNSTREAM_TRUSTED_PROXIES, 0),
            "country_header": lambda: env.env_str(env.OTEL_DOWNSTREAM_COUNTRY_HEADER, "") or None,
            "geoip_path": lambda: env.env_str(env.OTEL_DOWNSTREAM_GEOIP_DB, "") or None,
            "use_builtin_geoip": lambda: env.env_bool(env.OTEL_DOWNSTREAM_BUILTIN_GEOIP, True),
        }
        unknown = set(overrides) - set(readers)
        if unknown:
            raise TypeError(f"CountryResolver.from_env got unknown arguments {sorted(unknown)}")
        # A variable is read only when no argument replaces it, so a bad value of an overridden
        # variable does not stop construction.
        settings = {
            name: overrides[name] if name in overrides else read() for name, read in readers.items()
        }
        return cls(**settings)

    def resolve(self, headers: Mapping[str, str], peer_ip: str | None) -> CountryResult:
        """Country of the request with ``headers`` (lower-case names) from TCP peer ``peer_ip``."""
        try:
            client_ip, code = self._by_address_text(self._client_text(headers, peer_ip))
            if self.country_header is not None:
                from_header = iso_country(headers.get(self.country_header))
                if from_header is not None:
                    return CountryResult(from_header, client_ip, SOURCE_HEADER)
            if code is None:
                return CountryResult(UNKNOWN_COUNTRY, client_ip, SOURCE_UNKNOWN)
            return CountryResult(code, client_ip, SOURCE_GEOIP)
        except Exception as exc:
            report_fault("country", exc)
            return _UNKNOWN

    def _client_text(self, headers: Mapping[str, str], peer_ip: str | None) -> str | None:
        hops = self.trusted_proxies
        if hops:
            chain = _proxy_chain(headers)
            if chain is not None and len(chain) >= hops:
                # Each trusted proxy appended the address it saw; entries left of that are the
                # client's own claims and can be forged.
                return chain[-hops]
        # No proxies trusted, or the chain is shorter than configured (the request came around the
        # proxies, e.g. a direct health check): the TCP peer is the client.
        return peer_ip

    def _resolve_text(self, text: str | None) -> tuple[str | None, str | None]:
        """(normalised client IP, country or None) for an address as written; cached per text."""
        address = parse_ip(text)
        if address is None:
            return None, None
        client_ip = str(address)
        if not _is_public(address):
            return client_ip, None
        for lookup in self._lookups:
            code = lookup(client_ip)
            if code is not None:
                return client_ip, code
        return client_ip, None


def _proxy_chain(headers: Mapping[str, str]) -> list[str | None] | None:
    # X-Forwarded-For first: nearly every proxy writes it, so a client-sent one is overwritten or
    # appended to; a client-sent Forwarded passes untouched through proxies that do not speak it.
    xff = headers.get("x-forwarded-for")
    if xff and xff.strip():
        return x_forwarded_for_chain(xff)
    forwarded = headers.get("forwarded")
    if forwarded and forwarded.strip():
        return forwarded_chain(forwarded)
    return None


def _header_name(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    name = value.strip().lower()
    name = COUNTRY_HEADER_PRESETS.get(name, name)
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in name):
        raise ValueError(
            f"country_header={value!r} is not a header name; use e.g. CF-IPCountry or one of "
            f"{', '.join(sorted(COUNTRY_HEADER_PRESETS))}"
        )
    return name


def _iptocc_lookup() -> Callable[[str], str | None] | None:
    try:
        import iptocc
    except ImportError:
        _logger.warning(
            "otel-downstream: iptocc is not installed, so countries come only from headers or a "
            "GeoIP database; install otel-downstream[geoip]"
        )
        return None

    def lookup(ip: str) -> str | None:
        return iso_country(iptocc.country_code(ip))

    return lookup


def _mmdb_lookup(path: str) -> Callable[[str], str | None]:
    """A reader for a MaxMind/DB-IP/IPinfo ``.mmdb`` file; a bad file is a configuration error."""
    try:
        import maxminddb
    except ImportError:
        raise ValueError(
            f"geoip_path={path!r} needs the maxminddb package; install otel-downstream[geoip]"
        ) from None
    try:
        reader = maxminddb.open_database(path)
    except FileNotFoundError:
        raise ValueError(f"geoip_path={path!r}: no such GeoIP database file") from None
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ValueError(f"geoip_path={path!r} is not a readable .mmdb database: {exc}") from None

    def lookup(ip: str) -> str | None:
        try:
            record = reader.get(ip)
        except ValueError:  # an IPv6 address asked of an IPv4-only database
            return None
        return _country_of_record(record)

    return lookup


def _country_of_record(record: object) -> str | None:
    """ISO code from a GeoIP2/GeoLite2/DB-IP record (``country.iso_code``) or IPinfo's flat one."""
    if not isinstance(record, Mapping):
        return None
    country = record.get("country")
    if isinstance(country, Mapping):
        return iso_country(country.get("iso_code"))
    if isinstance(country, str):
        return iso_country(country)
    return iso_country(record.get("country_code"))


# --- A span's client address (the accounting, in process and in `serve`) -------------------------

_span_resolver_lock = threading.Lock()
_span_resolver: CountryResolver | None = None


def _address_resolver() -> CountryResolver:
    """The offline lookup the middleware uses (``OTEL_DOWNSTREAM_GEOIP_DB``, then ``iptocc``), built
    once. No trusted-proxy count and no country header: a span's address is already the client."""
    global _span_resolver
    resolver = _span_resolver
    if resolver is None:
        with _span_resolver_lock:
            if _span_resolver is None:
                try:
                    _span_resolver = CountryResolver.from_env(
                        trusted_proxies=0, country_header=None
                    )
                except ValueError as exc:  # an unreadable OTEL_DOWNSTREAM_GEOIP_DB
                    report_fault("country", exc)
                    _logger.warning("otel-downstream: %s; using the built-in lookup only", exc)
                    _span_resolver = CountryResolver(trusted_proxies=0, geoip_path=None)
            resolver = _span_resolver
    return resolver


def address_country(address: str) -> tuple[str, bool]:
    """``(country, usable)`` of a client address as a span records it (``client.address``).

    The country is an ISO alpha-2 code, or ``ZZ`` when the address is private, loopback, reserved
    or not in the lookup. ``usable`` is ``False`` when ``address`` is no IP address at all (a domain
    name, a socket path, junk, more than 64 characters): nothing was looked up. Same parser, same
    public-address rule and same lookup as the middleware's :class:`CountryResolver`; answers are
    cached per address text in its bounded cache (``IP_CACHE_SIZE`` entries, never exported).
    """
    if len(address) > _MAX_IP_TEXT:  # refused before it could become a cache key
        return UNKNOWN_COUNTRY, False
    try:
        client_ip, code = _address_resolver()._by_address_text(address)
    except Exception as exc:
        report_fault("country", exc)
        return UNKNOWN_COUNTRY, True
    if client_ip is None:
        return UNKNOWN_COUNTRY, False
    return (UNKNOWN_COUNTRY if code is None else code), True
