"""Seed step 2 (run once, kept for provenance): built exporters/data/llm_model_cards.json, which is
hand-maintained since. Usage: ``python build_cards.py path/to/found.json`` (from
``collect_dropped_models.py``). The published sizes below cite their model cards one by one."""

import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[3]

found = json.loads(pathlib.Path(sys.argv[1]).read_text())
ECO_DATES = {
    "0.3.2": "2024-08-21",
    "0.5.2": "2024-11-29",
    "0.7.3": "2025-07-15",
    "0.8.2": "2025-08-16",
    "0.9.3": "2026-02-25",
    "0.10.2": "2026-06-04",
    "0.11.3": "2026-10-14",
}
ECO_URL = "https://github.com/genai-impact/ecologits/blob/v{v}/ecologits/data/models.json"
cards = []


def B(x):
    if isinstance(x, dict):
        return x if x["min"] != x["max"] else float(x["min"])
    return float(x)


def add(  # noqa: PLR0917 - a table of cards, one call per row
    provider,
    name,
    generation,
    arch,
    total,
    active,
    *,
    source,
    date,
    licence,
    estimated,
    aliases=(),
    warnings=(),
    via=None,
    note=None,
):
    c = {"provider": provider, "name": name, "aliases": list(aliases)}
    if generation:
        c["generation"] = generation
    c |= {
        "architecture": arch,
        "total_params_billion": B(total),
        "active_params_billion": B(active),
        "estimated": estimated,
        "warnings": list(warnings),
        "source": source,
        "source_date": date,
        "licence": licence,
    }
    if via:
        c["via"] = via
    if note:
        c["note"] = note
    cards.append(c)


PUB = "published figure, cited with attribution (a parameter count is a fact)"
ECO_LIC = "MPL-2.0 (EcoLogits data file)"

# --- Mistral AI: published sizes (override EcoLogits where Mistral published a figure) ---------
MISTRAL_PUB = {
    "mistral-large-2407": (
        "Mistral Large 2 (24.07)",
        "dense",
        123,
        123,
        "https://mistral.ai/news/mistral-large-2407",
        "2024-07-24",
        ["mistral-large-2"],
        'Mistral AI: "Mistral Large 2 has 123 billion parameters"; the model of Mistral\'s 2025 lifecycle analysis',
    ),
    "mistral-large-2411": (
        "Mistral Large 2.1 (24.11)",
        "dense",
        123,
        123,
        "https://huggingface.co/mistralai/Mistral-Large-Instruct-2411",
        "2024-11-18",
        ["mistral-large-instruct-2411"],
        "123 B dense, the Mistral Large 2 architecture with an updated post-training",
    ),
    "open-mistral-nemo": (
        "Mistral NeMo 12B",
        "dense",
        12.2,
        12.2,
        "https://mistral.ai/news/mistral-nemo",
        "2024-07-18",
        ["mistral-nemo", "mistral-nemo-instruct"],
        "12 B (12.2 B on the Hugging Face card); Apache-2.0 weights",
    ),
    "open-mistral-nemo-2407": (
        "Mistral NeMo 12B",
        "dense",
        12.2,
        12.2,
        "https://mistral.ai/news/mistral-nemo",
        "2024-07-18",
        [],
        None,
    ),
    "open-mistral-7b": (
        "Mistral 7B",
        "dense",
        7.3,
        7.3,
        "https://mistral.ai/news/announcing-mistral-7b",
        "2023-09-27",
        ["mistral-7b", "mistral-7b-instruct"],
        "7.3 B; Apache-2.0 weights",
    ),
    "mistral-tiny": (
        "Mistral 7B",
        "dense",
        7.3,
        7.3,
        "https://mistral.ai/news/la-plateforme",
        "2023-12-11",
        [],
        "La Plateforme launch: mistral-tiny serves Mistral 7B Instruct",
    ),
    "mistral-tiny-2312": (
        "Mistral 7B",
        "dense",
        7.3,
        7.3,
        "https://mistral.ai/news/la-plateforme",
        "2023-12-11",
        [],
        "La Plateforme launch: mistral-tiny serves Mistral 7B Instruct",
    ),
    "mistral-small-2312": (
        "Mixtral 8x7B",
        "moe",
        46.7,
        12.9,
        "https://mistral.ai/news/la-plateforme",
        "2023-12-11",
        [],
        "La Plateforme launch: mistral-small serves Mixtral 8x7B (46.7 B total, 12.9 B active per token, https://mistral.ai/news/mixtral-of-experts); EcoLogits 0.8.2 listed it at 23.6 B dense",
    ),
    "open-mixtral-8x7b": (
        "Mixtral 8x7B",
        "moe",
        46.7,
        12.9,
        "https://mistral.ai/news/mixtral-of-experts",
        "2023-12-11",
        ["mixtral-8x7b", "mixtral-8x7b-instruct", "mixtral-8x7b-32768"],
        "46.7 B total, 12.9 B used per token; Apache-2.0 weights",
    ),
    "open-mixtral-8x22b": (
        "Mixtral 8x22B",
        "moe",
        140.6,
        39.1,
        "https://mistral.ai/news/mixtral-8x22b",
        "2024-04-17",
        ["mixtral-8x22b", "mixtral-8x22b-instruct"],
        "141 B total, 39 B active (140.6 / 39.1 per the weights, as EcoLogits lists them)",
    ),
    "open-mixtral-8x22b-2404": (
        "Mixtral 8x22B",
        "moe",
        140.6,
        39.1,
        "https://mistral.ai/news/mixtral-8x22b",
        "2024-04-17",
        [],
        None,
    ),
    "codestral-2405": (
        "Codestral 22B (24.05)",
        "dense",
        22.2,
        22.2,
        "https://mistral.ai/news/codestral",
        "2024-05-29",
        ["codestral-22b"],
        "22 B (22.2 B on the Hugging Face card)",
    ),
    "open-codestral-mamba": (
        "Codestral Mamba 7B",
        "dense",
        7.3,
        7.3,
        "https://mistral.ai/news/codestral-mamba",
        "2024-07-16",
        ["codestral-mamba-2407", "codestral-mamba"],
        "7.3 B (a Mamba2 state-space model, priced with the transformer regression like any other)",
    ),
    "mistral-small-2409": (
        "Mistral Small 2 (24.09)",
        "dense",
        22.2,
        22.2,
        "https://mistral.ai/news/september-24-release",
        "2024-09-17",
        ["mistral-small-instruct-2409"],
        "22 B (22.2 B on the Hugging Face card); EcoLogits 0.8.2 listed it at 23.6 B",
    ),
    "mistral-small-2501": (
        "Mistral Small 3 (25.01)",
        "dense",
        23.6,
        23.6,
        "https://mistral.ai/news/mistral-small-3",
        "2025-01-30",
        ["mistral-small-24b-instruct-2501"],
        "24 B (23.6 B on the Hugging Face card); Apache-2.0 weights",
    ),
    "mistral-small-2503": (
        "Mistral Small 3.1 (25.03)",
        "dense",
        24.0,
        24.0,
        "https://mistral.ai/news/mistral-small-3-1",
        "2025-03-17",
        ["mistral-small-3.1-24b-instruct-2503"],
        "24 B with its vision encoder",
    ),
    "mistral-small-2506": (
        "Mistral Small 3.2 (25.06)",
        "dense",
        24.0,
        24.0,
        "https://huggingface.co/mistralai/Mistral-Small-3.2-24B-Instruct-2506",
        "2025-06-20",
        ["mistral-small-3.2-24b-instruct-2506"],
        "24 B with its vision encoder",
    ),
    "ministral-8b-2410": (
        "Ministral 8B (24.10)",
        "dense",
        8.02,
        8.02,
        "https://mistral.ai/news/ministraux",
        "2024-10-16",
        ["ministral-8b-instruct-2410"],
        "8.02 B on the Hugging Face card",
    ),
    "ministral-3b-2410": (
        "Ministral 3B (24.10)",
        "dense",
        3.0,
        3.0,
        "https://mistral.ai/news/ministraux",
        "2024-10-16",
        [],
        "3 B as named by Mistral AI (weights not released); EcoLogits 0.8.2 listed 3.32 B, the size of the later Ministral 3 3B",
    ),
    "pixtral-12b-2409": (
        "Pixtral 12B",
        "dense",
        12.4,
        12.4,
        "https://mistral.ai/news/pixtral-12b",
        "2024-09-11",
        ["pixtral-12b", "pixtral-12b-latest"],
        "12 B decoder + 0.4 B vision encoder",
    ),
    "pixtral-large-2411": (
        "Pixtral Large (24.11)",
        "dense",
        124.0,
        124.0,
        "https://mistral.ai/news/pixtral-large",
        "2024-11-18",
        ["pixtral-large-latest", "mistral-large-pixtral-2411", "pixtral-large-instruct-2411"],
        "123 B decoder + 1 B vision encoder",
    ),
    "mistral-saba-2502": (
        "Mistral Saba",
        "dense",
        24.0,
        24.0,
        "https://mistral.ai/news/mistral-saba",
        "2025-02-17",
        ["mistral-saba-latest"],
        "24 B",
    ),
    "magistral-small-2506": (
        "Magistral Small (25.06)",
        "dense",
        23.6,
        23.6,
        "https://mistral.ai/news/magistral",
        "2025-06-10",
        [],
        "24 B (23.6 B on the Hugging Face card), built on Mistral Small 3.1",
    ),
    "devstral-small-2505": (
        "Devstral Small (25.05)",
        "dense",
        23.6,
        23.6,
        "https://mistral.ai/news/devstral",
        "2025-05-21",
        [],
        "24 B (23.6 B on the Hugging Face card)",
    ),
}
multimodal = {"pixtral-12b-2409", "pixtral-large-2411", "mistral-small-2503", "mistral-small-2506"}
done = set()
for name, (gen, arch, tot, act, src, date, aliases, note) in MISTRAL_PUB.items():
    add(
        "mistralai",
        name,
        gen,
        arch,
        tot,
        act,
        source=src,
        date=date,
        licence=PUB,
        estimated=False,
        aliases=aliases,
        warnings=["model-arch-multimodal"] if name in multimodal else [],
        note=note,
    )
    done.add(name)
    done.update(aliases)

# --- every other model an older EcoLogits release listed and 0.11.3 dropped --------------------
GEN = {}
SKIP = {
    "mistralai|mistral-small",  # an undated alias: follows mistral-small-latest like the API
}
for key, v in sorted(found.items()):
    provider, name = key.split("|")
    if key in SKIP or name in done:
        continue
    if provider == "google":
        if f"google_genai|{name}" in found:
            continue
        provider = "google_genai"
    warnings = list(v["warn"])
    ranged = isinstance(B(v["active"]), dict) or isinstance(B(v["total"]), dict)
    if ranged and "model-arch-not-released" not in warnings:
        warnings.insert(0, "model-arch-not-released")
    est = "model-arch-not-released" in warnings
    note = None
    if provider == "mistralai" and name.startswith(("mistral-large-2402",)):
        est = True
        warnings = ["model-arch-not-released"]
        note = "Mistral Large (24.02): size not published; EcoLogits 0.7.3 used 123 B, the size of its successor"
    if provider == "mistralai" and name == "mistral-small-2402":
        est = True
        warnings = ["model-arch-not-released"]
        note = "Mistral Small (24.02): size not published; EcoLogits 0.7.3 priced it at 23.6 B, the size of Mistral Small 3"
    if provider == "mistralai" and name.startswith(
        ("codestral-2411", "codestral-2412", "codestral-2501")
    ):
        est = True
        warnings = ["model-arch-not-released"]
        note = "Codestral 25.01: size not published; EcoLogits priced it as Codestral 22B"
    src = (v["src"] or [ECO_URL.format(v=v["v"])])[0]
    extra = {"claude-3-5-sonnet-20241022": ["claude-3-5-sonnet-v2"]}.get(name, [])
    add(
        provider,
        name,
        None,
        v["arch"],
        v["total"],
        v["active"],
        source=src,
        aliases=extra,
        date=ECO_DATES[v["v"]],
        licence=ECO_LIC if est else "published figure as listed by EcoLogits (MPL-2.0 data file)",
        estimated=est,
        warnings=warnings,
        via=f"EcoLogits {v['v']} data/models.json ({ECO_URL.format(v=v['v'])})",
        note=note,
    )

# --- OpenAI: dated names EcoLogits never listed (closed: EcoLogits' ranges for the same generation)
E11 = "EcoLogits 0.11.3 data/models.json (" + ECO_URL.format(v="0.11.3") + ")"
NR = ["model-arch-not-released"]
NRM = ["model-arch-not-released", "model-arch-multimodal"]
for name in ("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", "gpt-3.5-turbo-16k-0613"):
    add(
        "openai",
        name,
        "GPT-3.5 Turbo",
        "dense",
        {"min": 20, "max": 70},
        {"min": 20, "max": 70},
        source="https://platform.openai.com/docs/models/gpt-3-5-turbo",
        date="2026-10-14",
        licence=ECO_LIC,
        estimated=True,
        warnings=NR,
        via=E11,
        note="size not published; the range EcoLogits 0.11.3 gives gpt-3.5-turbo (EcoLogits 0.3.2 listed this name with it)",
    )
for name in (
    "gpt-4-0314",
    "gpt-4-32k",
    "gpt-4-32k-0314",
    "gpt-4-32k-0613",
    "gpt-4-vision-preview",
    "gpt-4-1106-vision-preview",
):
    add(
        "openai",
        name,
        "GPT-4",
        "moe",
        1760,
        {"min": 176, "max": 528},
        source="https://platform.openai.com/docs/models/gpt-4",
        date="2026-10-14",
        licence=ECO_LIC,
        estimated=True,
        warnings=NRM,
        via=E11,
        note="size not published; the range EcoLogits 0.11.3 gives gpt-4 and gpt-4-0613",
    )
for name, gen, date in (
    ("o3", "o3", "2025-04-16"),
    ("o3-2025-04-16", "o3", "2025-04-16"),
    ("o3-pro", "o3-pro", "2025-06-10"),
    ("o3-pro-2025-06-10", "o3-pro", "2025-06-10"),
    ("o1-pro", "o1-pro", "2025-03-19"),
    ("o1-pro-2025-03-19", "o1-pro", "2025-03-19"),
):
    add(
        "openai",
        name,
        gen,
        "moe",
        440,
        {"min": 44, "max": 132},
        source="https://openai.com/index/introducing-o3-and-o4-mini/"
        if name.startswith("o3")
        else "https://platform.openai.com/docs/models/o1-pro",
        date=date,
        licence=ECO_LIC,
        estimated=True,
        warnings=NRM,
        via=E11,
        note="size not published; EcoLogits prices o1 with the gpt-4o range (440 B, 44-132 B active) and we take the same for this reasoning model (more tokens per answer, not more parameters per token)",
    )


# --- open-weight families served through OpenAI-compatible APIs ------------------------------
def ow(dev, name, gen, arch, tot, act, src, date, lic, aliases=(), warnings=(), note=None):  # noqa: PLR0917
    add(
        dev,
        name,
        gen,
        arch,
        tot,
        act,
        source=src,
        date=date,
        licence=f"published figure, cited with attribution (weights: {lic})",
        estimated=False,
        aliases=aliases,
        warnings=warnings,
        note=note,
    )


L32 = "Llama 3.2 Community License"
ow(
    "meta",
    "llama-3.2-1b-instruct",
    "Llama 3.2 1B",
    "dense",
    1.23,
    1.23,
    "https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct",
    "2024-09-25",
    L32,
    ["llama-3.2-1b", "llama3.2:1b"],
)
ow(
    "meta",
    "llama-3.2-3b-instruct",
    "Llama 3.2 3B",
    "dense",
    3.21,
    3.21,
    "https://huggingface.co/meta-llama/Llama-3.2-3B-Instruct",
    "2024-09-25",
    L32,
    ["llama-3.2-3b", "llama3.2:3b", "llama3.2"],
)
ow(
    "meta",
    "llama-3.2-11b-vision-instruct",
    "Llama 3.2 11B Vision",
    "dense",
    10.6,
    10.6,
    "https://huggingface.co/meta-llama/Llama-3.2-11B-Vision-Instruct",
    "2024-09-25",
    L32,
    ["llama-3.2-11b-vision", "llama3.2-vision:11b", "llama3.2-vision"],
    ["model-arch-multimodal"],
)
ow(
    "meta",
    "llama-3.2-90b-vision-instruct",
    "Llama 3.2 90B Vision",
    "dense",
    88.8,
    88.8,
    "https://huggingface.co/meta-llama/Llama-3.2-90B-Vision-Instruct",
    "2024-09-25",
    L32,
    ["llama-3.2-90b-vision", "llama3.2-vision:90b"],
    ["model-arch-multimodal"],
)
ow(
    "meta",
    "llama-3.3-70b-instruct",
    "Llama 3.3 70B",
    "dense",
    70.6,
    70.6,
    "https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct",
    "2024-12-06",
    "Llama 3.3 Community License",
    [
        "llama-3.3-70b",
        "llama3.3:70b",
        "llama3.3",
        "llama-3.3-70b-versatile",
        "llama-3.3-70b-instruct-turbo",
    ],
)
ow(
    "meta",
    "llama-4-scout-17b-16e-instruct",
    "Llama 4 Scout",
    "moe",
    109,
    17,
    "https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "2025-04-05",
    "Llama 4 Community License",
    ["llama-4-scout", "llama4-scout", "llama4:scout", "llama-4-scout-17b-16e"],
    ["model-arch-multimodal"],
    "109 B total, 17 B active (16 experts)",
)
ow(
    "meta",
    "llama-4-maverick-17b-128e-instruct",
    "Llama 4 Maverick",
    "moe",
    400,
    17,
    "https://huggingface.co/meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    "2025-04-05",
    "Llama 4 Community License",
    [
        "llama-4-maverick",
        "llama4-maverick",
        "llama4:maverick",
        "llama-4-maverick-17b-128e",
        "llama-4-maverick-17b-128e-instruct-fp8",
    ],
    ["model-arch-multimodal"],
    "400 B total, 17 B active (128 experts)",
)
Q = "Apache-2.0 (Qwen license for the 72B models)"
for size, p, date, src in (
    ("0.5b", 0.49, "2024-06-07", "https://huggingface.co/Qwen/Qwen2-0.5B-Instruct"),
    ("1.5b", 1.54, "2024-06-07", "https://huggingface.co/Qwen/Qwen2-1.5B-Instruct"),
    ("7b", 7.62, "2024-06-07", "https://huggingface.co/Qwen/Qwen2-7B-Instruct"),
    ("72b", 72.7, "2024-06-07", "https://huggingface.co/Qwen/Qwen2-72B-Instruct"),
):
    ow(
        "alibaba",
        f"qwen2-{size}-instruct",
        f"Qwen2 {size.upper()}",
        "dense",
        p,
        p,
        src,
        date,
        Q,
        [f"qwen2-{size}", f"qwen2:{size}"],
    )
ow(
    "alibaba",
    "qwen2-57b-a14b-instruct",
    "Qwen2 57B-A14B",
    "moe",
    57.4,
    14.2,
    "https://huggingface.co/Qwen/Qwen2-57B-A14B-Instruct",
    "2024-06-07",
    Q,
    ["qwen2-57b-a14b"],
)
for size, p in (
    ("0.5b", 0.49),
    ("1.5b", 1.54),
    ("3b", 3.09),
    ("7b", 7.61),
    ("14b", 14.7),
    ("32b", 32.5),
    ("72b", 72.7),
):
    ow(
        "alibaba",
        f"qwen2.5-{size}-instruct",
        f"Qwen2.5 {size.upper()}",
        "dense",
        p,
        p,
        f"https://huggingface.co/Qwen/Qwen2.5-{size.upper()}-Instruct",
        "2024-09-19",
        Q,
        [f"qwen2.5-{size}", f"qwen2.5:{size}"]
        + (["qwen2.5-72b-instruct-turbo"] if size == "72b" else []),
    )
ow(
    "alibaba",
    "qwen2.5-coder-32b-instruct",
    "Qwen2.5-Coder 32B",
    "dense",
    32.5,
    32.5,
    "https://huggingface.co/Qwen/Qwen2.5-Coder-32B-Instruct",
    "2024-11-12",
    "Apache-2.0",
    ["qwen2.5-coder-32b", "qwen2.5-coder:32b"],
)
ow(
    "alibaba",
    "qwq-32b",
    "QwQ 32B",
    "dense",
    32.5,
    32.5,
    "https://huggingface.co/Qwen/QwQ-32B",
    "2025-03-06",
    "Apache-2.0",
    ["qwq", "qwq:32b"],
)
for size, p in (
    ("0.6b", 0.6),
    ("1.7b", 1.7),
    ("4b", 4.0),
    ("8b", 8.2),
    ("14b", 14.8),
    ("32b", 32.8),
):
    ow(
        "alibaba",
        f"qwen3-{size}",
        f"Qwen3 {size.upper()}",
        "dense",
        p,
        p,
        f"https://huggingface.co/Qwen/Qwen3-{size.upper()}",
        "2025-04-29",
        "Apache-2.0",
        [f"qwen3:{size}"],
    )
ow(
    "alibaba",
    "qwen3-30b-a3b",
    "Qwen3 30B-A3B",
    "moe",
    30.5,
    3.3,
    "https://huggingface.co/Qwen/Qwen3-30B-A3B",
    "2025-04-29",
    "Apache-2.0",
    ["qwen3:30b", "qwen3:30b-a3b"],
    note="30.5 B total, 3.3 B active",
)
ow(
    "alibaba",
    "qwen3-235b-a22b",
    "Qwen3 235B-A22B",
    "moe",
    235,
    22,
    "https://huggingface.co/Qwen/Qwen3-235B-A22B",
    "2025-04-29",
    "Apache-2.0",
    ["qwen3:235b", "qwen3-235b-a22b-instruct-2507", "qwen3-235b-a22b-thinking-2507"],
    note="235 B total, 22 B active",
)
DS = "DeepSeek Model License / MIT"
ow(
    "deepseek",
    "deepseek-v2",
    "DeepSeek-V2",
    "moe",
    236,
    21,
    "https://huggingface.co/deepseek-ai/DeepSeek-V2",
    "2024-05-06",
    DS,
    ["deepseek-v2-chat", "deepseek-coder-v2", "deepseek-coder-v2-instruct"],
    note="236 B total, 21 B active per token (DeepSeek-Coder-V2 has the same architecture)",
)
ow(
    "deepseek",
    "deepseek-v2-lite",
    "DeepSeek-V2-Lite",
    "moe",
    15.7,
    2.4,
    "https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite",
    "2024-05-16",
    DS,
    ["deepseek-v2-lite-chat", "deepseek-coder-v2-lite-instruct"],
)
ow(
    "deepseek",
    "deepseek-v2.5",
    "DeepSeek-V2.5",
    "moe",
    236,
    21,
    "https://huggingface.co/deepseek-ai/DeepSeek-V2.5",
    "2024-09-05",
    DS,
    ["deepseek-v2.5-1210"],
)
ow(
    "deepseek",
    "deepseek-v3",
    "DeepSeek-V3",
    "moe",
    671,
    37,
    "https://huggingface.co/deepseek-ai/DeepSeek-V3",
    "2024-12-26",
    DS,
    ["deepseek-v3-0324", "deepseek-chat", "deepseek-v3.1", "deepseek-v3.2"],
    note="671 B total, 37 B active per token (plus a 14 B multi-token-prediction module not used for ordinary decoding). The deepseek-chat API name serves the current V3.x release, all of this architecture",
)
ow(
    "deepseek",
    "deepseek-r1",
    "DeepSeek-R1",
    "moe",
    671,
    37,
    "https://huggingface.co/deepseek-ai/DeepSeek-R1",
    "2025-01-20",
    "MIT",
    ["deepseek-r1-0528", "deepseek-reasoner", "deepseek-r1:671b"],
    note="the DeepSeek-V3 architecture: 671 B total, 37 B active; deepseek-reasoner is its API name",
)

names = {}
for c in cards:
    for n in [c["name"], *c["aliases"]]:
        assert n not in names, n
        names[n] = c
print(len(cards), "cards", len(names), "names")
doc = {
    "about": "Model cards for models that EcoLogits 0.11.3 (llm_models.json) does not list but people still call: older generations of the providers' models (dated names EcoLogits dropped), and open-weight families served through OpenAI-compatible APIs. Hand-maintained; never overrides a model llm_models.json lists. Each card gives parameters in billions (a number, or {min, max} when only a range is published or estimated), the architecture, whether the figure is an estimate (closed models), the source of the figure, its date (source_date: when the figure was published, i.e. the developer's announcement or model card, or the release of the EcoLogits version it comes from) and licence, and, for figures taken from an older EcoLogits release, which one (via). Closed models (estimated: true) carry the parameter ranges EcoLogits gives them or, for names EcoLogits never listed, the range it gives the same generation (the note says which). See docs/methodology-llm.md (Models).",
    "units": {
        "total_params_billion": "billion parameters (drives GPU count via memory)",
        "active_params_billion": "billion parameters active per token (drives energy and latency)",
    },
    "cards": cards,
}
with open(REPO / "exporters/data/llm_model_cards.json", "w") as f:
    f.write("{\n")
    f.write(f' "about": {json.dumps(doc["about"], ensure_ascii=False)},\n')
    f.write(f' "units": {json.dumps(doc["units"])},\n')
    f.write(' "cards": [\n')
    f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cards))
    f.write("\n ]\n}\n")
