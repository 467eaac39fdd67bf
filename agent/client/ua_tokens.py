"""Our small token layer over ua-parser's device rules: what those rules miss or get wrong.

ua-parser (uap-core rules) names devices well but has no notion of *class*: it calls a Fire TV stick an
Android tablet and a Chromecast just a device, knows nothing of HTTP libraries, headless browsers or
uptime probes, and its feature-phone prefixes swallow strings such as ``libwww-perl``. Our rules are
plain uap-style device rules whose family is a class marker (``downstream:tv``): :data:`FIRST_RULES` go
before uap-core's rules (synthetic traffic, consoles, TVs, watches), :data:`LAST_RULES` after them (form
factor from platform tokens, for strings no uap rule names). One pass of ua-parser's Rust matcher then
answers everything, which keeps an uncached classification within tens of microseconds; Python's
``re`` needs about that much for each of these alternations alone.

Patterns use the Rust regex syntax (no look-around) and match case-insensitively.
"""

from __future__ import annotations

import re
from typing import Final

SYNTHETIC_BOT: Final = "bot"
SYNTHETIC_TEST: Final = "test"
MARKER: Final = "downstream:"
"""Prefix of the family our rules return; the rest is a device class or ``test``."""

# Synthetic tests and probes: uptime checks, load generators, lab performance tools, health checkers.
_TEST = (
    r"lighthouse|\bptst/|pingdom|uptimerobot|statuscake|synthetics|site24x7|uptimecheck|gtmetrix"
    r"|health-?check|kube-probe|googlehc/|newrelicpinger|catchpoint|gomezagent|checkly"
    r"|^(?:k6/|apachebench/|hey/|wrk/|locust/|jmeter|gatling|vegeta|siege/|prometheus/|blackbox)"
)

# Crawlers, link-preview fetchers, AI agents, headless automation and plain HTTP libraries.
_BOT = (
    # "...bot/", "bot-", "bots" at a word end; "Cubot" is a phone brand, not a crawler.
    r"(?:^|[^u]|[^c]u)bots?(?:[^a-z]|$)"
    r"|crawl|spider|slurp|scrapy|scraper|archiver|fetcher|externalhit|externalagent|mediapartners"
    r"|chatgpt-user|claude-web|anthropic-ai|cohere-ai|perplexity|qwantify|yandex"
    r"|^whatsapp/[0-9.]+ ?[a-z]?$|bingpreview|google-inspectiontool|googleother|google-extended|apis-google"
    r"|google web preview|headless|phantomjs|puppeteer|playwright|selenium|webdriver"
    r"|windowspowershell|https?://|zgrab|masscan|nmap|censys|expanse|superagent"
    r"|^(?:curl|wget|python|aiohttp|httpx|go-http-client|okhttp|java|apache-httpclient"
    r"|libwww-perl|lwp|axios|node-fetch|undici|node$|got |postmanruntime|insomnia|httpie"
    r"|guzzlehttp|ruby|faraday|dart/|rest-client|reqwest|restsharp|httpclient|deno/|bun/"
    r"|php/|wordpress|colly|mechanize|winhttp|feedparser|http_request"
    # package managers, cloud SDKs and CLIs: automated clients, not people at a screen
    r"|pip/|npm/|yarn/|pnpm/|conda/|uv/|poetry/|cargo/|docker/|containerd/|helm/|kubectl/"
    r"|terraform/|aws-cli/|aws-sdk|boto3/|botocore/|azsdk|google-api-|gcloud|urlgrabber"
    r"|debian apt|apt-http|yum/|nuget|apache-maven|gradle/|homebrew)"
)

_CONSOLE = r"playstation|xbox|nintendo|\bouya\b"

_TV = (
    r"smart-?tv|hbbtv|netcast|web0s|webos\.?tv|\broku|appletv|apple tv|tvos|bravia|crkey"
    r"|chromecast|android ?tv|google ?tv|\bmibox|nettv|philipstv|inettvbrowser|aquosbrowser"
    r"|\bdtv\b|vidaa|\bstb\b|set-top|opera tv|\btv safari|firetv|fire tv|\btivo|smartcast"
    r"|; aft[a-z]{1,6}(?: build|\))"  # Amazon Fire TV model codes (AFTMM, AFTKA, AFTR, ...)
    r"|\btpm\d{3}[a-z]\b"  # TP Vision (Philips) Android TV models (TPM181E, TPM191E, ...)
)

_WEARABLE = (
    r"watch ?os|watchkit|apple watch|(?:^|[^.a-z])watch(?:\b|\d)|smartwatch|wear ?os|android wear"
    r"|galaxy watch|ticwatch|moto 360|gear live|fossil gen|\bsm-r\d{3}|\bsm-l(?:3[0-3]|50|70)\d"
    r"|android 4\.4w"
)

# Tablets and e-readers (their browsers and power draw are tablet-like).
_TABLET = (
    r"ipad|tablet(?:$|[^ ]| [^p])|kindle|silk|playbook|hp-tablet|touchpad|tolino|kobo|\bnook\b"
    r"|pocketbook"
)

# Laptops whose user agent says Android (Android apps on ChromeOS).
_LAPTOP = r"pixelbook|chromebook"

_PHONE = (
    r"iphone|ipod|mobile|phone|blackberry|bb10|symbian|series ?[46]0|midp|cldc|kaios|opera mini"
    r"|opera mobi|webos/|palm|j2me|up\.browser|windows ce|iemobile|nokia|samsung-|sonyericsson"
    r"|maemo|meego|bada|tizen|harmonyos"
)

_DESKTOP = (
    r"windows nt|windows 9|win9[58]|windows xp|macintosh|mac os x|x11|\bcros\b|linux|freebsd"
    r"|openbsd|netbsd|sunos|ubuntu|fedora|electron/|\bwindows\b|\bwin(?:32|64)\b|mac_p(?:ower)?pc"
)

FIRST_RULES: Final = (
    (_TEST, MARKER + SYNTHETIC_TEST),
    (_BOT, MARKER + "bot"),
    (_CONSOLE, MARKER + "console"),
    (_TV, MARKER + "tv"),
    (_WEARABLE, MARKER + "wearable"),
    (_TABLET, MARKER + "tablet"),
    (_LAPTOP, MARKER + "desktop"),
)
"""(regex, family) rules that outrank uap-core's device rules."""

LAST_RULES: Final = (
    (_PHONE, MARKER + "smartphone"),
    (_DESKTOP, MARKER + "desktop"),
)
"""(regex, family) rules for strings that no uap-core device rule names."""

# Python-side checks, run only on strings a uap-core rule already named (short, cheap patterns).
_ANDROID_TABLET_MODEL = re.compile(
    r"\bsm-[tpx]\d{3}|\bgt-p\d{4}|\bgt-n[58]\d{3}|lenovo tb|pixel tablet|nexus (?:7|9|10)\b"
    r"|\bkf[a-z]{2,6}\b|xoom|mediapad|matepad|redmi pad|xiaomi pad|mi pad|\bpmp\d{4}|\bnovo ?\d"
    r"|(?:^|[^a-z])tab(?:[^a-z]|let)|\bmid(?:\d|\b)"  # "Galaxy Tab", "Lemon_Tab", "MID7015"
)
_BROWSER_ENGINE = re.compile(r"safari|gecko")


def android_form(lower: str) -> str | None:
    """Phone or tablet for an Android string (lower case), None when it is not Android.

    Android browsers send ``Mobile`` on phones and omit it on tablets; app HTTP stacks (Dalvik) never
    send it, and most of those are phones unless the model code is a known tablet line.
    """
    if "android" not in lower:
        return None
    if _ANDROID_TABLET_MODEL.search(lower):
        return "tablet"
    if "mobile" in lower or "opera mini" in lower:
        return "smartphone"
    if _BROWSER_ENGINE.search(lower) and not lower.startswith("dalvik/"):
        return "tablet"
    return "smartphone"
