"""Device class of an HTTP client from its User-Agent, for the customer-device footprint.

The class (smartphone, tablet, desktop, tv, console, wearable, bot, unknown) picks the device power
profile; ``bot`` also marks synthetic traffic (``user_agent.synthetic.type``) so crawlers and probes are
not counted as people. The maintained ``ua-parser`` rules name the device; our token layer
(:mod:`.ua_tokens`) turns names into a class and covers what the rules do not know (consoles, TVs,
watches, HTTP libraries, headless browsers, uptime probes).

This runs on the request path, so results are cached per distinct string (bounded), strings are cut to
:data:`MAX_UA_LENGTH` characters before parsing and before becoming cache keys, and nothing here ever
raises into the host application.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from otel_downstream.agent.client import ua_tokens
from otel_downstream.agent.faults import report_fault

__all__ = ["CACHE_SIZE", "MAX_UA_LENGTH", "DeviceInfo", "cache_info", "classify", "warm_up"]

MAX_UA_LENGTH: Final = 512
"""Real user agents are under ~400 characters; longer ones are cut so parsing time stays bounded."""

CACHE_SIZE: Final = 4096
"""Distinct user agents remembered; a flood of random strings evicts old ones instead of growing."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the user agent says about the client."""

    device_class: str
    """One of ``attributes.DEVICE_CLASSES``."""
    synthetic_type: str | None = None
    """``"bot"`` (crawler, HTTP library, headless browser), ``"test"`` (probe, load test) or None."""


UNKNOWN: Final = DeviceInfo("unknown")
_BOT: Final = DeviceInfo("bot", ua_tokens.SYNTHETIC_BOT)
_TEST: Final = DeviceInfo("bot", ua_tokens.SYNTHETIC_TEST)
_BY_CLASS: Final = {
    name: DeviceInfo(name)
    for name in ("smartphone", "tablet", "desktop", "tv", "console", "wearable", "unknown")
}

# ua-parser device families (lower case) that settle the class on their own.
_TABLET_FAMILIES: Final = ("ipad", "kindle", "generic tablet", "blackberry playbook", "hp touchpad")
_PHONE_FAMILIES: Final = ("iphone", "ipod", "generic smartphone", "generic feature phone")

_resolver_lock = threading.Lock()
_resolver: Any = None


def _build_resolver() -> Any:
    """ua-parser's best resolver over our first rules + uap-core's device rules + our last rules."""
    from ua_parser import BestAvailableResolver, load_lazy_builtins
    from ua_parser.lazy import DeviceMatcher

    user_agents, oses, devices = load_lazy_builtins()
    first = [DeviceMatcher(regex, "i", family, "", "") for regex, family in ua_tokens.FIRST_RULES]
    last = [DeviceMatcher(regex, "i", family, "", "") for regex, family in ua_tokens.LAST_RULES]
    return BestAvailableResolver((user_agents, oses, [*first, *devices, *last]))


def _device(ua: str) -> tuple[str, str]:
    """(family, brand) in lower case from the combined device rules; empty strings when none match."""
    global _resolver
    resolver = _resolver
    if resolver is None:
        with _resolver_lock:
            if _resolver is None:
                # Loading and compiling the rules costs ~0.5 s: paid once, never at import time.
                _resolver = _build_resolver()
            resolver = _resolver
    from ua_parser import Domain

    if not ua.isascii():
        # The Rust matcher needs valid UTF-8; lone surrogates (undecodable header bytes) become "?".
        ua = ua.encode("utf-8", "replace").decode("utf-8")
    device = resolver(ua, Domain.DEVICE).device
    if device is None:
        return "", ""
    return device.family.lower(), (device.brand or "").lower()


def _classify_uncached(ua: str) -> DeviceInfo:
    family, brand = _device(ua)
    if family.startswith(ua_tokens.MARKER):
        kind = family[len(ua_tokens.MARKER) :]
        if kind == ua_tokens.SYNTHETIC_TEST:
            return _TEST
        return _BOT if kind == "bot" else _BY_CLASS[kind]
    if not family:
        return UNKNOWN
    if family == "spider":
        return _BOT
    if (
        family.startswith(_TABLET_FAMILIES)
        or brand == "generic_android_tablet"
        or "surface" in family
    ):
        return _BY_CLASS["tablet"]
    android = ua_tokens.android_form(ua.lower())
    if android is not None:
        return _BY_CLASS[android]
    if family.startswith(_PHONE_FAMILIES):
        return _BY_CLASS["smartphone"]
    if family == "mac":
        return _BY_CLASS["desktop"]
    if family in ("ios-device", "other") or not brand:
        # "ios-device" is an Apple app's HTTP stack: phone, tablet or Mac cannot be told apart.
        return UNKNOWN
    # uap-core names thousands of handset models by brand; anything branded left is a handset.
    return _BY_CLASS["smartphone"]


@lru_cache(maxsize=CACHE_SIZE)
def _classify_cached(ua: str) -> DeviceInfo:
    return _classify_uncached(ua)


def classify(user_agent: str | None) -> DeviceInfo:
    """Device class and synthetic type of ``user_agent``; ``unknown`` when missing or on any fault."""
    try:
        if not user_agent or user_agent.isspace():
            return UNKNOWN
        if len(user_agent) > MAX_UA_LENGTH:
            user_agent = user_agent[:MAX_UA_LENGTH]
        return _classify_cached(user_agent)
    except Exception as exc:
        report_fault("device_class", exc)
        return UNKNOWN


def warm_up() -> None:
    """Load the parser rules now (about half a second) instead of on the first request."""
    try:
        _device("Mozilla/5.0")
    except Exception as exc:
        report_fault("device_class", exc)


def cache_info() -> tuple[int, int, int]:
    """(hits, misses, current size) of the classification cache, for diagnostics and tests."""
    info = _classify_cached.cache_info()
    return info.hits, info.misses, info.currsize
