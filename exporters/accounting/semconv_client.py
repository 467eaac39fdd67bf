"""What a span from another language says about its client and bodies, in semantic conventions.

Our middleware writes ``downstream.device.class`` and ``geo.country.iso_code``; where a span lacks
them, this module derives them as the middleware would have, with its own code (the public
``otel_downstream.agent.client`` API: the same user-agent classifier and offline address lookup,
the one way into the agent's client info, docs/architecture.md rule 4):

- the device class from ``user_agent.original`` (older ``http.user_agent``), ``bot`` when
  ``user_agent.synthetic.type`` is set;
- the country from ``geo.country.iso_code`` (ours or a Collector's ``geoip`` processor), validated,
  else the offline lookup of ``client.address`` (older ``http.client_ip``, then the peer
  ``network.peer.address``, ``net.sock.peer.addr``, ``net.peer.ip``);
- a body size from a captured ``content-length`` header, where no size attribute is present.

A bad value costs the field, never the span: it is counted as an unknown kind (the ``unknown``
list the caller passes) and ignored. The order of the names is in ``agent/attributes.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

from otel_downstream.agent import attributes as A
from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.agent.client import address_country
from otel_downstream.agent.client import classify as classify_user_agent
from otel_downstream.agent.countries import ISO_COUNTRIES
from otel_downstream.exporters.accounting.labels import normalize_country, normalize_device_class

UNKNOWN_CONTENT_LENGTH: Final = "content_length"
"""A captured ``content-length`` header that is not one plain byte count: ignored."""
UNKNOWN_USER_AGENT: Final = "user_agent"
"""A user agent that is not a string: ignored (no device class from it)."""
UNKNOWN_CLIENT_ADDRESS: Final = "client_address"
"""A client address that is not an IP address (a domain name, a socket path, junk): ignored."""
INVALID_COUNTRY: Final = "invalid_country"
INVALID_DEVICE_CLASS: Final = "device_class"

_KNOWN_DEVICE_CLASSES: Final = frozenset(A.DEVICE_CLASSES) - {"unknown"}

_MAX_HEADER_VALUES: Final = 16
"""A captured header with more values than this is not a body size (serve refuses arrays >1024)."""
_MAX_LENGTH_DIGITS: Final = 13  # 1e12, span_inputs.MAX_BODY_BYTES, has 13 digits
_MAX_HEADER_TEXT: Final = 256  # one line of a few identical counts; longer is not a length
_MAX_ZONE: Final = 32  # an interface name or number (Linux allows 15 characters)


def header_length(value: object, upper: float) -> float | None:
    """The byte count a captured ``content-length`` header gives, or ``None`` if it gives none.

    The conventions record a header as an array of strings (one per field line); some SDKs give a
    plain string, and Node's gives the number an application set. Accepted: values that are all
    the same count of ASCII digits, as separate values (``["5", "5"]``) or comma-joined
    (``"5, 5"``), since RFC 9110 8.6 lets a recipient take a list of identical values; at most
    ``upper`` bytes. Differing values give none. The work is bounded: at most 16 values of at most
    256 characters each."""
    if isinstance(value, (str, int, float)):
        values: Sequence[object] = (value,)
    elif isinstance(value, Sequence):
        values = value
    else:
        return None
    if not values or len(values) > _MAX_HEADER_VALUES:
        return None
    found: int | None = None
    for entry in values:
        if isinstance(entry, bool):
            return None
        if isinstance(entry, int):
            counts: list[int] = [entry]
        elif isinstance(entry, float):
            if not entry.is_integer():  # also false for NaN and the infinities
                return None
            counts = [int(entry)]
        elif isinstance(entry, str) and len(entry) <= _MAX_HEADER_TEXT:
            counts = []
            for part in entry.split(","):
                digits = part.strip(" \t")
                if not (0 < len(digits) <= _MAX_LENGTH_DIGITS and digits.isascii()):
                    return None
                if not digits.isdigit():
                    return None
                counts.append(int(digits))
        else:
            return None
        for count in counts:
            if found is None:
                found = count
            elif count != found:
                return None
    if found is None or not 0 <= found <= upper:
        return None
    return float(found)


def header_size(
    attributes: Mapping[str, object], header: str, upper: float, unknown: list[str]
) -> float | None:
    """The body size the captured ``header`` gives; a bad one is ignored and counted as
    ``content_length``; ``None`` without one."""
    value = attributes.get(header)
    if value is None:
        return None
    size = header_length(value, upper)
    if size is None:
        unknown.append(UNKNOWN_CONTENT_LENGTH)
    return size


def device_class(attributes: Mapping[str, object], unknown: list[str]) -> str | None:
    """Ours (``downstream.device.class``), else ``bot`` for a synthetic user agent, else the class
    the middleware's classifier gives the user agent, else ``None``. An invalid value of ours is
    counted (``device_class``) and the user agent decides."""
    device = _ours(
        attributes.get(A.DOWNSTREAM_DEVICE_CLASS),
        _KNOWN_DEVICE_CLASSES,
        normalize_device_class,
        unknown_value="unknown",
        reason=INVALID_DEVICE_CLASS,
        unknown=unknown,
    )
    if device is not None:
        return device
    if attributes.get(A.USER_AGENT_SYNTHETIC_TYPE) is not None:
        return "bot"
    agent = _first_string(attributes, A.USER_AGENT_NAMES, UNKNOWN_USER_AGENT, unknown)
    # classify() cuts the string to MAX_UA_LENGTH before parsing or caching it.
    return None if agent is None else classify_user_agent(agent).device_class


def country(attributes: Mapping[str, object], unknown: list[str]) -> str | None:
    """Ours or a Collector's (``geo.country.iso_code``), else the offline lookup of the client
    address (the middleware's), else ``None``. An invalid code is counted (``invalid_country``)
    and the address decides; a private, loopback, reserved or scoped address is no country."""
    code = _ours(
        attributes.get(A.GEO_COUNTRY_ISO_CODE),
        ISO_COUNTRIES,
        normalize_country,
        unknown_value=UNKNOWN_COUNTRY,
        reason=INVALID_COUNTRY,
        unknown=unknown,
    )
    if code is not None:
        return code
    address = _first_string(attributes, A.CLIENT_ADDRESS_NAMES, UNKNOWN_CLIENT_ADDRESS, unknown)
    if address is None:
        return None
    code, usable = _address_country(address)
    if not usable:
        unknown.append(UNKNOWN_CLIENT_ADDRESS)
    return None if code == UNKNOWN_COUNTRY else code


def _ours(
    value: object,
    known: frozenset[str],
    normalize: Callable[[object], tuple[str, bool]],
    *,
    unknown_value: str,
    reason: str,
    unknown: list[str],
) -> str | None:
    """A value our middleware writes (one of ``known``, as is) or its normalized form;
    ``None`` when absent, ``unknown_value`` or invalid (counted as ``reason``)."""
    if value is None:
        return None
    if type(value) is str and value in known:  # as the middleware writes it
        return value
    normal, valid = normalize(value)
    if not valid:
        unknown.append(reason)
    elif normal != unknown_value:
        return normal
    return None


def _first_string(
    attributes: Mapping[str, object], names: Sequence[str], reason: str, unknown: list[str]
) -> str | None:
    """The value of the first of ``names`` present, if a string; one that is not is counted
    (``reason``) and gives ``None``, as does none present."""
    for field in names:
        value = attributes.get(field)
        if value is None:
            continue
        if isinstance(value, str):
            return value
        unknown.append(reason)
        return None
    return None


def _address_country(address: str) -> tuple[str, bool]:
    """:func:`address_country`, with one rule for a zone id (``fe80::1%eth0``, ``[…%eth0]:443``).

    A zone id says which of the host's links an address is on: the address is scoped to that host
    (link-local in practice), seen from inside it, so it names no country, whatever the digits
    before it. It is still an IP address when those digits parse, IPv4 or IPv6 alike: no country
    and not counted as ``client_address`` (like a link-local address without a zone id); the
    request counts as an unknown ``country``. An empty or odd zone id, or digits that do not parse,
    is no IP address (counted)."""
    cut = address.find("%")
    if cut < 0:
        return address_country(address)
    end = address.find("]", cut)
    end = len(address) if end < 0 else end
    zone = address[cut + 1 : end]
    if not (0 < len(zone) <= _MAX_ZONE and zone.isascii() and _plain(zone)):
        return UNKNOWN_COUNTRY, False
    _, usable = address_country(address[:cut] + address[end:])
    return UNKNOWN_COUNTRY, usable


def _plain(zone: str) -> bool:
    return all(c.isalnum() or c in "-_." for c in zone)
