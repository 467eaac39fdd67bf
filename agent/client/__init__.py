"""What a request says about its client: device class from the User-Agent, country from trusted
headers or an offline lookup, and the header readers both middlewares share.

Public: the names in ``__all__``, for use outside the middleware (a log pipeline, a batch job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_downstream.agent.lazy import lazy_exports

__all__ = [
    "CountryResolver",
    "CountryResult",
    "DeviceInfo",
    "address_country",
    "classify",
    "headers_from_asgi",
    "headers_from_environ",
    "peer_from_asgi",
    "peer_from_environ",
    "warm_up",
]

_WHERE = {
    "CountryResolver": "country",
    "CountryResult": "country",
    "DeviceInfo": "device_class",
    "address_country": "country",
    "classify": "device_class",
    "warm_up": "device_class",
    "headers_from_asgi": "headers",
    "headers_from_environ": "headers",
    "peer_from_asgi": "headers",
    "peer_from_environ": "headers",
}

if TYPE_CHECKING:
    from otel_downstream.agent.client.country import (
        CountryResolver,
        CountryResult,
        address_country,
    )
    from otel_downstream.agent.client.device_class import DeviceInfo, classify, warm_up
    from otel_downstream.agent.client.headers import (
        headers_from_asgi,
        headers_from_environ,
        peer_from_asgi,
        peer_from_environ,
    )

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
