"""Who the client of a request is: user agent, device class, synthetic type, country and address.

Apart from the request core because the engagement beacon describes its client the same way without
a request span, and because the classifier and the resolver are user-replaceable: their faults are
contained here, once, for both.
"""

from __future__ import annotations

from collections.abc import Mapping

from otel_downstream.agent.attributes import UNKNOWN_COUNTRY
from otel_downstream.agent.faults import report_fault
from otel_downstream.agent.http.options import HTTPOptions

__all__ = ["describe_client"]


def describe_client(
    options: HTTPOptions, headers: Mapping[str, str], peer_ip: str | None, component: str
) -> tuple[str | None, str, str | None, str, str | None]:
    """User agent, device class, synthetic type, country and client IP of a request.

    Guarded: a failing classifier gives ``unknown`` and no synthetic type, a failing resolver the
    unknown country; either fault is counted under ``component``. A plain tuple: this runs on
    every request.
    """
    ua = headers.get("user-agent")
    try:
        info = options.classifier(ua)
        device_class, synthetic = info.device_class, info.synthetic_type
    except Exception as exc:
        report_fault(component, exc)
        device_class, synthetic = "unknown", None
    try:
        found = options.country_resolver.resolve(headers, peer_ip)
        country, client_ip = found.country, found.client_ip
    except Exception as exc:
        report_fault(component, exc)
        country, client_ip = UNKNOWN_COUNTRY, None
    return ua, device_class, synthetic, country, client_ip
