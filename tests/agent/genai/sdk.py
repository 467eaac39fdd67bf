"""The installed SDKs' names, whichever layout they use (so the same tests run on old and new SDKs).

openai 1.x/2.x use ``httpx``, 3.x ``httpx2``; mistralai 3.x lives in ``mistralai.client``, 1.x/2.x in
``mistralai``.
"""

from __future__ import annotations

from typing import Any

try:
    import httpx2 as http
except ImportError:  # openai < 3
    import httpx as http  # type: ignore[no-redef]

try:
    from mistralai.client import Mistral, errors, models
    from mistralai.client.basesdk import BaseSDK
    from mistralai.client.chat import Chat
    from mistralai.client.utils.eventstreaming import EventStream, EventStreamAsync

    MODERN_SDK = True
    SDKError: Any = errors.SDKError
    HTTPValidationError: Any = errors.HTTPValidationError
except ImportError:  # mistralai 1.x/2.x
    from mistralai import Mistral, models  # type: ignore[no-redef,attr-defined]
    from mistralai.basesdk import BaseSDK  # type: ignore[no-redef]
    from mistralai.chat import Chat  # type: ignore[no-redef]

    try:
        from mistralai.utils.eventstreaming import (  # type: ignore[no-redef]
            EventStream,
            EventStreamAsync,
        )

        MODERN_SDK = True
    except ImportError:  # mistralai 1.0.x streams are bare generators
        MODERN_SDK = False
        from types import AsyncGeneratorType as EventStreamAsync  # type: ignore[assignment]
        from types import GeneratorType as EventStream  # type: ignore[assignment]

    SDKError = models.SDKError
    HTTPValidationError = models.HTTPValidationError

__all__ = [
    "MODERN_SDK",
    "BaseSDK",
    "Chat",
    "EventStream",
    "EventStreamAsync",
    "HTTPValidationError",
    "Mistral",
    "SDKError",
    "http",
    "models",
]
