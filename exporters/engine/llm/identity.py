"""Which card a model name is priced as: a name is priced as its own generation.

A model EcoLogits lists is found by its exact name first, so it prices exactly as EcoLogits; then
the name lower-cased, without ``org/``, a Bedrock vendor prefix or a fine-tune's wrapping, and
without, one by one, suffixes that name an API version, a channel or a way of serving
(``-v1:0``, ``-latest``, ``-preview``, ``:free``, ``-8192``, ``-q4_k_m``); then a dated name
(``-2407``, ``-2024-08-06``, ``-20241022``, ``-08-2024``) takes its family's newest card dated at
or before it, never the undated or ``-latest`` alias (which may be a newer generation); an
undated name takes the family's ``-latest`` card; then an open-weight spelling (``llama3.1:70b``)
is matched, or an undated alias of a family known only by dated releases takes the newest;
anything else is estimated from a size class (flags ``model_estimated`` and
``model_size_class_<class>``).

Pure functions of the name and the loaded :class:`~.records.Registry` (``registry.py`` loads it,
builds its name indexes with :func:`index_names` and caches :func:`resolve` per name).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from typing import Final

from otel_downstream.exporters.engine.llm.records import Bounds, ModelSpec, Registry, Version

_MAX_NAME_CHARS: Final = 256
"""Longer names are not looked up (the suffix patterns would cost time in the name's length)."""

# Suffixes that name an API version, a release channel or a way of serving, not a model
# generation: AWS Bedrock's "-v1:0", "-v1" and context window ":200k" (a bare "-v2" may be a
# generation, as in "deepseek-v2"), Ollama-style ":0", "-latest", "-preview", "-exp",
# OpenRouter's routing variants (":free", ":thinking"), Groq's context length ("llama3-8b-8192",
# "mixtral-8x7b-32768") and quantisations ("-q4_k_m", "-gguf", "-gptq-int4", "-4bit").
_NOT_A_GENERATION: Final = (
    re.compile(r"-v\d+:\d+$|-v1$|:\d+$|:\d+k$"),
    re.compile(r"-(?:preview|latest|exp)$"),
    re.compile(r":(?:free|beta|thinking|extended|nitro|floor|online|exacto)$"),
    re.compile(r"-(?:2048|4096|8192|16384|32768|65536|131072)$"),
    re.compile(r"[-_:.](?:i?q\d(?:_[a-z0-9]+)*|gptq(?:-int\d)?|awq|gguf|int[48]|\d+bit|mlx)$"),
)
# Model-vendor prefixes of AWS Bedrock ids ("anthropic.claude-...", "us.meta.llama3-...",
# cross-region "apac."/"global." profiles) and of Azure AI catalogue names ("Cohere-command-r").
_VENDOR_PREFIX: Final = re.compile(
    r"^(?:(?:us-gov|apac|global|[a-z]{2})\.)?"
    r"(?:anthropic|meta|mistral|cohere|amazon|ai21|deepseek|openai|google)\."
    r"|^(?:cohere|ai21)-(?=[a-z])"
)
# An OpenAI fine-tune ("ft:gpt-4o-mini-2024-07-18:org::id") runs on its base model.
_FINE_TUNE: Final = re.compile(r"^ft:([^:]+):")
# A major version written "-4-0" ("claude-sonnet-4-0") is the major version ("claude-sonnet-4").
_MAJOR_ZERO: Final = re.compile(r"(?<=-\d)-0$")
# A release date or version at the end of a name, most specific first. Dated forms give an order
# (year, month, day); the others (OpenAI's MMDD, Vertex's 001, Google's preview MM-DD) do not.
_YMD: Final = re.compile(r"[-@](20\d\d)-(\d\d)-(\d\d)$")  # gpt-4o-2024-08-06
_YYYYMMDD: Final = re.compile(r"[-@](20\d\d)(\d\d)(\d\d)$")  # claude-3-5-sonnet-20241022
_MM_YYYY: Final = re.compile(r"-(\d\d)-(20\d\d)$")  # command-r-08-2024
_MM_DD: Final = re.compile(r"-(\d\d)-(\d\d)$")  # gemini-2.5-pro-preview-06-05
_FOUR: Final = re.compile(r"[-@](\d\d)(\d\d)$")  # mistral-large-2407 (YYMM), gpt-4-0613 (MMDD)
_THREE: Final = re.compile(r"[-@]\d{3}$")  # gemini-1.5-pro-002
# Tokens that name a serving variant, not a model, in open-weight names ("-instruct", "-hf", ":8b").
_VARIANT_TOKENS: Final = frozenset(
    (
        "instruct",
        "chat",
        "it",
        "hf",
        "turbo",
        "versatile",
        "fp8",
        "bf16",
        "fp16",
        "awq",
        "gguf",
        "latest",
        "meta",
        "preview",
        "instant",
        "specdec",
        "basic",
        "tput",
    )
)


def clean(model: str) -> str:
    """The name lower-cased, without ``org/``, a vendor prefix or a fine-tune's suffix.

    Only names with non-ASCII or unprintable characters are normalised (NFKC, without control
    and format characters), so a full-width, zero-width or NUL-padded spelling reads as the name
    it shows.
    """
    name = model
    if not (name.isascii() and name.isprintable()):
        name = unicodedata.normalize("NFKC", name)
        name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))
    name = name.strip().lower()
    tuned = _FINE_TUNE.match(name)
    if tuned is not None:
        name = tuned[1]
    return _VENDOR_PREFIX.sub("", name.rsplit("/", 1)[-1])


def slug(name: str) -> str:
    """A name as a flag suffix: ``mistral-large-2407`` -> ``mistral_large_2407``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def index_names(
    models: dict[tuple[str, str], ModelSpec], cards: dict[tuple[str, str], ModelSpec]
) -> tuple[dict[str, ModelSpec], dict[str, tuple[tuple[Version, str], ...]], dict[str, ModelSpec]]:
    """The name indexes of :class:`~.records.Registry`: ``lower``, ``dated``, ``families``."""
    lower: dict[str, ModelSpec] = {}
    dated: dict[str, list[tuple[Version, str]]] = {}
    families: dict[str, ModelSpec] = {}
    for (_, name), spec in (*models.items(), *cards.items()):  # registry first: EcoLogits wins
        low = name.lower()
        short = low.rsplit("/", 1)[-1]
        lower.setdefault(low, spec)
        lower.setdefault(short, spec)
        key = family_key(short)
        if key:
            families.setdefault(key, spec)
        split = _split_version(_strip_channel(short))
        if split is not None and split[1] is not None:
            dated.setdefault(split[0], []).append((split[1], short))
    return lower, {k: tuple(sorted(set(v))) for k, v in dated.items()}, families


def resolve(reg: Registry, provider_key: str, model: str) -> ModelSpec:
    """The model's own card; a dated name never takes a newer generation's card (module doc)."""
    exact = reg.models.get((provider_key, model))
    if exact is not None:
        return exact

    def find(cand: str) -> ModelSpec | None:
        return reg.models.get((provider_key, cand)) or reg.by_name.get(cand) or reg.lower.get(cand)

    if len(model) > _MAX_NAME_CHARS and len(model.strip()) > _MAX_NAME_CHARS:
        # no model is called that: estimated, in time bounded by the cap, not the name
        return _estimate(reg, provider_key, model, model.strip()[:_MAX_NAME_CHARS].lower())
    name = clean(model)
    stems = _stems(name)
    stripped = stems[-1]
    for cand in (model, *stems):
        spec = find(cand) if cand else None
        if spec is not None:
            return _found(spec, model)
    split = _split_version(stripped)
    if split is None and stripped:  # an undated name is an alias: the family's current card
        for cand in (f"{stripped}-latest", f"{name}-latest"):
            spec = find(cand)
            if spec is not None:
                return _found(spec, model)
    elif split is not None:
        spec = _same_generation(reg, split[0], split[1])
        if spec is not None:
            return _found(spec, model)
    key = family_key(stripped)
    spec = reg.families.get(key) if key else None
    if spec is None and split is None and stripped:
        spec = _newest_release(reg, stripped)
    if spec is not None:
        return _found(spec, model)
    return _estimate(reg, provider_key, model, name)


def _same_generation(reg: Registry, stem: str, version: Version | None) -> ModelSpec | None:
    """The card of a dated name's own generation: the family's newest release at or before it.

    A name older than every dated release we know, or a family whose only card is a moving
    alias (``-latest``), gets no card here (it is then looked up as an open-weight spelling or
    estimated): the family name alone may describe a newer generation. A version that gives no
    order (OpenAI's ``0613``, Vertex's ``002``) takes the undated family name.
    """
    siblings = reg.dated.get(stem, ())
    if version is not None and siblings:
        best = None
        for when, sibling in siblings:
            if when <= version:
                best = sibling
        return None if best is None else reg.lower[best]
    # a preview or experimental snapshot ("-preview-09-2025", "-exp-0801") of a family with no
    # card of its own is the family
    for cand in (stem, _strip_channel(stem)):
        spec = reg.by_name.get(cand) or reg.lower.get(cand)
        if spec is not None:
            return spec
    return None


def _newest_release(reg: Registry, stem: str) -> ModelSpec | None:
    """An undated alias of a family known only by dated releases names its newest one.

    ``claude-opus-4-1`` is ``claude-opus-4-1-20250805``; ``claude-sonnet-4-0`` and
    ``claude-opus-4.1`` (OpenRouter) are spelt the same way.
    """
    for cand in (stem, _MAJOR_ZERO.sub("", stem), stem.replace(".", "-")):
        siblings = reg.dated.get(cand)
        if siblings:
            return reg.lower[siblings[-1][1]]
    return None


def _found(spec: ModelSpec, model: str) -> ModelSpec:
    if spec.name == model:
        return spec
    flags = spec.flags
    card = f"model_card_{slug(spec.name)}"
    if card not in flags:
        flags = (*flags, card)
    return replace(spec, flags=(*flags, "model_name_normalised"))


def _strip_channel(name: str) -> str:
    """Without API-version and channel suffixes (``-v1:0``, ``-latest``, ``-preview``)."""
    return _stems(name)[-1]


def _stems(name: str) -> list[str]:
    """The name, then each shorter form as one suffix after another is taken off (at most 6)."""
    stems = [name]
    for _ in range(3):
        for suffix in _NOT_A_GENERATION:
            stem = suffix.sub("", stems[-1])
            if stem != stems[-1]:
                stems.append(stem)
    return stems


def _split_version(name: str) -> tuple[str, Version | None] | None:
    """(family stem, release date or None when the version gives no order), or None if undated."""
    m = _YMD.search(name) or _YYYYMMDD.search(name)
    if m is not None:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
        if 1 <= mo <= 12 and 1 <= d <= 31:
            return name[: m.start()], (y, mo, d)
    m = _MM_YYYY.search(name)
    if m is not None and 1 <= int(m[1]) <= 12:
        return name[: m.start()], (int(m[2]), int(m[1]), 0)
    m = _MM_DD.search(name)
    if m is not None:
        stem = name[: m.start()]
        return stem.removesuffix("-preview"), None
    m = _FOUR.search(name)
    if m is not None:
        yy, mm = int(m[1]), int(m[2])
        if 22 <= yy <= 39 and 1 <= mm <= 12:  # Mistral's YYMM (2407 = July 2024)
            return name[: m.start()], (2000 + yy, mm, 0)
        if 1 <= yy <= 12 and 1 <= mm <= 31:  # OpenAI's MMDD (0613): no year, no order
            return name[: m.start()], None
        return None
    m = _THREE.search(name)
    if m is not None:
        return name[: m.start()], None
    return None


def family_key(name: str) -> str:
    """How open-weight names are spelt across hosts, reduced: ``Meta-Llama-3.1-70B-Instruct``,
    ``llama3.1:70b`` and ``llama-3.1-70b-instruct-turbo`` all give ``llama-3-1-70b``."""
    s = re.sub(r"(?<=\d)p(?=\d)", ".", name.lower().rsplit("/", 1)[-1])  # Fireworks' "v3p1"
    # variant tokens go before letters and digits are split apart ("fp8" is one token)
    s = "-".join(t for t in re.split(r"[-._:\s]+", s) if t and t not in _VARIANT_TOKENS)
    tokens = [t for t in re.sub(r"(?<=[a-z])(?=\d)", "-", s).split("-") if t]
    # "llama-v3-1" is "llama-3-1": a lone "v" before a version number is not part of the name
    return "-".join(
        t
        for i, t in enumerate(tokens)
        if not (t == "v" and i + 1 < len(tokens) and tokens[i + 1].isdigit())
    )


def _word_start(name: str, at: int) -> bool:
    return at == 0 or not ("a" <= name[at - 1] <= "z")


def _estimate(reg: Registry, provider_key: str, model: str, name: str) -> ModelSpec:
    """Guess parameters from a size class named in the model name (flag: model_estimated)."""
    for cls in reg.size_classes:
        # a class word counts only at the start of a word: "gemini" is no "mini"
        m = next((m for m in cls.pattern.finditer(name) if _word_start(name, m.start())), None)
        if m is None:
            continue

        def pick(b: Bounds | str, m: re.Match[str] = m) -> Bounds:
            if isinstance(b, Bounds):
                return b
            size = float(m.group(int(b.strip("{}"))))
            return Bounds(size, size)

        total, active = pick(cls.total), pick(cls.active)
        if total.high <= 0 or active.high <= 0 or active.high > total.high:
            continue
        return ModelSpec(
            provider_key,
            model,
            total,
            active,
            None,
            None,
            ("model_estimated", f"model_size_class_{cls.name.replace('-', '_')}"),
        )
    raise AssertionError("llm_methods.json must end with a catch-all size class")
