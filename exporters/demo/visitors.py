"""Who visits the demo shop: device classes with real User-Agent strings, countries with addresses.

Shares are rough, for illustration (mobile about half of web traffic, bots about a tenth); every
User-Agent is one the classifier maps to its class and every address one the offline ``iptocc``
table places in its country (tests hold both), so the summary's breakdowns are what the
middleware really resolved.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ASSETS", "COUNTRIES", "DEVICES", "MISTRAL_MODELS", "OPENAI_MODELS"]

DEVICES: Final[dict[str, tuple[float, tuple[str, ...]]]] = {
    # class: (share of visitors, real User-Agent strings)
    "smartphone": (
        0.48,
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/125.0.6422.113 Mobile Safari/537.36",
        ),
    ),
    "desktop": (
        0.28,
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/125.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        ),
    ),
    "tablet": (
        0.07,
        (
            "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
        ),
    ),
    "tv": (
        0.03,
        (
            "Mozilla/5.0 (SMART-TV; LINUX; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "94.0.4606.31/7.0 TV Safari/537.36",
            "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/87.0.4280.88 Safari/537.36 WebAppManager",
        ),
    ),
    "console": (
        0.02,
        (
            "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox Series X) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/48.0.2564.82 Safari/537.36 Edge/20.02",
        ),
    ),
    "wearable": (
        0.02,
        (
            "Mozilla/5.0 (Linux; Android 11; Galaxy Watch4) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/110.0.0.0 Mobile Safari/537.36",
        ),
    ),
    "bot": (
        0.10,
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
            "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
            "+https://openai.com/gptbot",
        ),
    ),
}

COUNTRIES: Final[dict[str, tuple[float, str]]] = {
    # ISO code: (share of visitors, a public address iptocc maps to it)
    "US": (0.22, "8.8.8.8"),
    "IN": (0.14, "61.0.0.1"),
    "DE": (0.10, "217.160.0.1"),
    "GB": (0.09, "81.2.69.142"),
    "FR": (0.09, "80.67.169.12"),
    "BR": (0.09, "177.0.0.1"),
    "JP": (0.08, "27.0.0.1"),
    "ZA": (0.05, "41.0.0.1"),
    "AU": (0.05, "1.1.1.1"),
    "PL": (0.05, "31.0.0.1"),
    "NO": (0.04, "84.208.0.1"),
}

OPENAI_MODELS: Final = (("gpt-4o-mini", 0.7), ("gpt-4o", 0.3))
MISTRAL_MODELS: Final = (("mistral-small-latest", 0.7), ("mistral-large-latest", 0.3))
ASSETS: Final = ("/static/app.js", "/static/app.css", "/static/hero.webp", "/static/font.woff2")
