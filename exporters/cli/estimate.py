"""``otel-downstream estimate``: what-if footprints for a transfer, a device session or an LLM call.

Sub-commands ``transfer``, ``device`` and ``llm`` take one case as flags; ``--batch`` reads one JSON
case per line from stdin (``{"kind": "transfer", "bytes": 1e6, ...}``, the flags' names in
snake_case) and writes one JSON result per line, in order. A bad case is reported as
``{"line": n, "error": "field=value: expected ..."}`` and the rest still run; the exit code is 1
when any line failed. Bad input never prints a traceback, and every line is strict JSON: a result
that is not finite is that line's error, never ``Infinity``.

Figures are in base units; ``energy_j``, ``co2e_g`` and ``water_l`` are always
``{"value", "low", "high"}`` (low = high = value for a method without a range), in every kind,
single or batch. Everything is computed by the same code the exporter uses
(:class:`~otel_downstream.exporters.engine.engine.Engine`), with the runtime's defaults, so
``transfer`` (``--country``, ``--device-class``, ``--embodied``) prints what the middleware records
for one request of that many body bytes; the whole co2.js model for the same bytes is under
``co2js``. A provider the engine does not know is refused with the closest known names (or priced
as the runtime prices it with ``--allow-unknown``); an unknown model is priced as the runtime prices
it (estimated from its size class) with a warning naming the closest known models.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any, Final, TextIO

from otel_downstream.exporters.cli import estimate_cases
from otel_downstream.exporters.footprint import InputError

KINDS: Final = ("transfer", "device", "llm")


def _grid_arg(text: str) -> tuple[str, str]:
    segment, sep, value = text.partition("=")
    if not sep or not segment or not value:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected SEGMENT=VALUE, e.g. device=FRA or network=350"
        )
    return segment.strip(), value.strip()


def _common(parser: argparse.ArgumentParser, *, hydro_evaporation: bool) -> None:
    """Flags several kinds share; ``hydro_evaporation`` for the kinds priced by country water."""
    if hydro_evaporation:
        parser.add_argument(
            "--hydro-evaporation",
            action=argparse.BooleanOptionalAction,
            help="count hydropower reservoir evaporation in water (default: on)",
        )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Figures use the flags given and the built-in defaults, as a service with no settings "
        "would record them; OTEL_DOWNSTREAM_* variables are not read (pass --embodied, "
        "--method, ... to match a service configured otherwise)."
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="read JSON cases (one per line, with a 'kind') from stdin; write JSON lines",
    )
    sub = parser.add_subparsers(dest="kind", metavar="KIND")

    t = sub.add_parser(
        "transfer",
        help="one request's body bytes: what the middleware records (and the whole co2.js model)",
    )
    t.add_argument(
        "--bytes", type=float, required=True, dest="bytes", help="request + response body bytes"
    )
    t.add_argument("--country", help="ISO alpha-2/alpha-3 of the customer (default: unknown, ZZ)")
    t.add_argument(
        "--device-class",
        help="smartphone, tablet, desktop, tv, console, wearable, bot, unknown (default)",
    )
    t.add_argument("--embodied", action="store_true", help="add embodied carbon (default: off)")
    t.add_argument("--datacenter", action="store_true", help="add the SWD data-centre segment")
    t.add_argument("--method", default="swd-v4", help="swd-v4 (default), swd-v3 or onebyte")
    t.add_argument("--green", action="store_true", help="the hosting is green (co2.js `green`)")
    co2js = t.add_argument_group("the whole co2.js model only (the 'co2js' part of the result)")
    co2js.add_argument("--per-visit", action="store_true", help="perVisit instead of perByte")
    co2js.add_argument(
        "--green-hosting-factor", type=float, help="share of green hosting energy, 0..1 (swd-v4)"
    )
    co2js.add_argument(
        "--grid-intensity",
        type=_grid_arg,
        action="append",
        default=[],
        metavar="SEGMENT=VALUE",
        help="per segment (device, network, dataCenter): gCO2e/kWh or a country code; repeatable",
    )
    co2js.add_argument("--first-visit", type=float, help="share of first-time visits (per visit)")
    co2js.add_argument("--return-visit", type=float, help="share of returning visits (per visit)")
    co2js.add_argument(
        "--reload-ratio", type=float, help="share of data reloaded on a return visit"
    )
    _common(t, hydro_evaporation=True)

    d = sub.add_parser("device", help="a customer device: per byte (swd-v4) or watts x seconds")
    d.add_argument("--device-class", required=True, help="smartphone, tablet, desktop, tv, ...")
    d.add_argument("--country", help="ISO alpha-2/alpha-3 of the customer (default: world)")
    d.add_argument("--method", default="swd-v4", help="swd-v4 (default, needs --bytes) or time")
    d.add_argument("--bytes", type=float, dest="bytes", help="bytes transferred (swd-v4)")
    d.add_argument("--seconds", type=float, help="engagement seconds (time)")
    d.add_argument("--embodied", action="store_true", help="add embodied device carbon")
    d.add_argument("--desktop-laptop-share", type=float, help="laptop share of 'desktop', 0..1")
    _common(d, hydro_evaporation=True)

    m = sub.add_parser("llm", help="one LLM API call")
    m.add_argument("--provider", required=True, help="openai, mistral_ai, anthropic, ...")
    m.add_argument("--model", required=True, help="model name as the API reports it")
    m.add_argument("--input-tokens", type=int, required=True)
    m.add_argument(
        "--output-tokens", type=int, help="required unless an embedding (by operation or model)"
    )
    m.add_argument("--latency", type=float, dest="latency_s", help="request latency, seconds")
    m.add_argument("--zone", help="electricity zone of the provider's data centre")
    m.add_argument("--method", default="ecologits-prefill", help="ecologits-prefill (default), ...")
    m.add_argument(
        "--operation",
        help="gen_ai.operation.name, e.g. chat or embeddings (priced as one forward pass)",
    )
    m.add_argument("--embodied", action="store_true", help="include embodied hardware carbon")
    m.add_argument(
        "--allow-unknown",
        action="store_true",
        help="price a provider the engine does not know as the runtime does (default data "
        "centre, flag provider_unknown) instead of refusing it",
    )
    _common(m, hydro_evaporation=False)


def _case_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The flags as a batch-style case, so both paths share one evaluator."""
    case = {
        k: v
        for k, v in vars(args).items()
        if k not in {"command", "batch", "json", "kind"} and v is not None
    }
    if args.kind == "transfer":
        given = dict(case.pop("grid_intensity", []))
        if given:  # an empty mapping is not "no override" for every method (OneByte rejects it)
            case["grid_intensity"] = given
    for flag in ("embodied", "datacenter", "allow_unknown", "per_visit", "green"):
        if case.get(flag) is False:  # store_true flags left off: the case's own default
            del case[flag]
    case["kind"] = args.kind
    return case


def _fail(message: str) -> int:
    print(f"otel-downstream estimate: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.batch:
        if args.kind is not None:
            return _fail("--batch reads cases from stdin; give no KIND with it")
        return run_batch(sys.stdin, sys.stdout)
    if args.kind is None:
        return _fail("choose transfer, device or llm (or --batch)")
    try:
        result = estimate_cases.evaluate(_case_from_args(args))
        text = json.dumps(result, indent=2, allow_nan=False) if args.json else render(result)
    except (InputError, ValueError, TypeError) as exc:
        return _fail(str(exc))
    if result.get("warning"):
        print(f"otel-downstream estimate: warning: {result['warning']}", file=sys.stderr)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        _silence_stdout()
    return 0


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run_batch(lines: Iterable[str], out: TextIO) -> int:
    """Evaluate each JSON line; an error object for a bad line; exit 1 if any line failed."""
    failed = False
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
            text = json.dumps(estimate_cases.evaluate(case), allow_nan=False)
        except json.JSONDecodeError as exc:
            text, failed = _error_line(n, f"invalid JSON: {exc.msg}"), True
        except (InputError, ValueError, TypeError) as exc:  # allow_nan=False raises ValueError
            text, failed = _error_line(n, str(exc)), True
        except Exception as exc:  # a bug must not hide the other lines' results
            text, failed = _error_line(n, f"internal error: {exc!r}"), True
        try:
            out.write(text + "\n")
            out.flush()
        except BrokenPipeError:
            _silence_stdout()
            return 1 if failed else 0
    return 1 if failed else 0


def _error_line(n: int, message: str) -> str:
    return json.dumps({"line": n, "error": message})


# --- human-readable output ------------------------------------------------------------------------
_UNITS: Final[tuple[tuple[str, str, Callable[[float], str]], ...]] = (
    ("energy_j", "energy", lambda v: _si(v, "J")),
    ("co2e_g", "CO2e", lambda v: _si(v, "g")),
    ("water_l", "water", lambda v: _si(v, "L")),
)


_PREFIXES: Final = (
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "µ"),
    (1e-9, "n"),
    (1e-12, "p"),
    (1e-15, "f"),
)


def _si(value: float, unit: str) -> str:
    """One rendering for every size: four significant digits and an SI prefix (``2.706 µL``,
    ``541.3 nL``), never an exponent within 1e-15 .. 1e15; 0 is ``0 L``."""
    if not value:
        return f"0 {unit}"
    factor, prefix = next((p for p in _PREFIXES if abs(value) >= p[0]), _PREFIXES[-1])
    return f"{value / factor:.4g} {prefix}{unit}"


def _quantity(value: Any, fmt: Callable[[float], str]) -> str:
    if isinstance(value, dict):
        if value["low"] == value["high"] == value["value"]:
            return fmt(value["value"])
        return f"{fmt(value['value'])}  (range {fmt(value['low'])} to {fmt(value['high'])})"
    return fmt(float(value))


def render(result: dict[str, Any], indent: str = "") -> str:
    """A few aligned lines per figure, segments indented below their total."""
    title = result.get("segment") or result.get("kind", "total")
    tags = [str(result.get("method", ""))]
    category_d = result.get("category_d")
    if result.get("kind") == "transfer":
        where = f"{result['geo_country_iso_code']}, {result['device_class']}"
        tags.append(f"as the middleware records it for {where}")
    if isinstance(category_d, bool):
        tags.append("Category D" if category_d else "not Category D")
    elif isinstance(category_d, dict):
        tags.append("whole model, as co2.js reports it")
    if result.get("rating"):
        tags.append(f"rating {result['rating']}")
    lines = [f"{indent}{title} ({', '.join(t for t in tags if t)})"]
    for key, label, fmt in _UNITS:
        if key in result:
            lines.append(f"{indent}  {label:<7}{_quantity(result[key], fmt)}")
    if result.get("embodied_co2e_g"):
        embodied = _si(result["embodied_co2e_g"], "g")
        lines.append(f"{indent}  {'':<7}of which embodied CO2e {embodied}")
    if result.get("flags"):
        lines.append(f"{indent}  {'flags':<7}{', '.join(result['flags'])}")
    if result.get("note") and title != "co2js":
        lines.append(f"{indent}  {'note':<7}{result['note']}")
    if result.get("warning"):
        lines.append(f"{indent}  warning {result['warning']}")
    if isinstance(category_d, dict):
        lines.append(f"{indent}  Category D (network + device):")
        for key, label, fmt in _UNITS:
            lines.append(f"{indent}    {label:<7}{_quantity(category_d[key], fmt)}")
    for name, part in (result.get("segments") or {}).items():
        lines.append(render({**part, "segment": name}, indent + "  "))
    if isinstance(result.get("co2js"), dict):
        lines.append(render({**result["co2js"], "segment": "co2js"}, indent + "  "))
    return "\n".join(lines)
