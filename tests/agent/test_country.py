"""Client country: CDN header, trusted proxy chains, offline lookup, .mmdb databases, hostile input."""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_downstream.agent.client.country import (
    ISO_COUNTRIES,
    CountryResolver,
    CountryResult,
    iso_country,
    parse_ip,
)
from otel_downstream.agent.client.headers import (
    EnvironHeaders,
    asgi_headers,
    forwarded_chain,
    headers_from_asgi,
    headers_from_environ,
    peer_from_asgi,
    peer_from_environ,
    x_forwarded_for_chain,
)
from otel_downstream.agent.faults import fault_counts

# Public addresses whose country the built-in table knows (checked against iptocc directly below).
GB_IP = "81.2.69.160"
US_IP = "8.8.8.8"
DE_IP = "5.9.0.1"
IE_V6 = "2a00:1450:4001::1"


def test_reference_addresses_are_what_the_table_says() -> None:
    import iptocc

    assert iptocc.country_code(GB_IP) == "GB"
    assert iptocc.country_code(US_IP) == "US"
    assert iptocc.country_code(DE_IP) == "DE"
    assert iptocc.country_code(IE_V6) == "IE"


# --- peer address only ------------------------------------------------------------------------
def test_peer_address_is_looked_up_offline() -> None:
    resolver = CountryResolver()
    assert resolver.resolve({}, GB_IP) == CountryResult("GB", GB_IP, "geoip")
    assert resolver.resolve({}, IE_V6) == CountryResult("IE", IE_V6, "geoip")


@pytest.mark.parametrize(
    "peer",
    [
        "10.1.2.3",
        "192.168.0.10",
        "172.16.5.4",
        "127.0.0.1",
        "::1",
        "169.254.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "192.0.2.1",  # documentation
        "240.0.0.1",  # reserved
        "224.0.0.1",  # multicast
        "fe80::1%eth0",  # link-local with zone id
        "fd00::1",
        "2001:db8::1",
        "0.0.0.0",
    ],
)
def test_non_public_addresses_are_zz_but_keep_the_ip(peer: str) -> None:
    result = CountryResolver().resolve({}, peer)
    assert result.country == "ZZ"
    assert result.source == "unknown"
    assert result.client_ip is not None


@pytest.mark.parametrize(
    "peer", [None, "", "garbage", "999.1.1.1", "1.2.3", "::ffff:zz", "1.2.3.4.5", "x" * 5000]
)
def test_malformed_peer_is_zz_without_ip(peer: str | None) -> None:
    assert CountryResolver().resolve({}, peer) == CountryResult("ZZ", None, "unknown")


def test_ipv4_mapped_ipv6_peer_is_looked_up_as_ipv4() -> None:
    assert CountryResolver().resolve({}, f"::ffff:{US_IP}") == CountryResult("US", US_IP, "geoip")


def test_builtin_table_can_be_switched_off() -> None:
    result = CountryResolver(use_builtin_geoip=False).resolve({}, GB_IP)
    assert result == CountryResult("ZZ", GB_IP, "unknown")


# --- proxy chains -----------------------------------------------------------------------------
def test_without_trusted_proxies_forwarding_headers_are_ignored() -> None:
    headers = {"x-forwarded-for": GB_IP, "forwarded": f"for={DE_IP}"}
    assert CountryResolver().resolve(headers, US_IP) == CountryResult("US", US_IP, "geoip")


def test_one_trusted_proxy_takes_the_rightmost_entry_not_a_forged_one() -> None:
    # The client forged "GB"; the one proxy appended the address it really saw.
    headers = {"x-forwarded-for": f"{GB_IP}, {DE_IP}"}
    result = CountryResolver(trusted_proxies=1).resolve(headers, "10.0.0.5")
    assert result == CountryResult("DE", DE_IP, "geoip")


def test_two_trusted_proxies_take_the_second_entry_from_the_right() -> None:
    # forged, real client (seen by the CDN), CDN edge (seen by the load balancer)
    headers = {"x-forwarded-for": f"{GB_IP}, {US_IP}, 10.0.0.9"}
    result = CountryResolver(trusted_proxies=2).resolve(headers, "10.0.0.5")
    assert result == CountryResult("US", US_IP, "geoip")


def test_chain_shorter_than_trusted_count_falls_back_to_peer() -> None:
    headers = {"x-forwarded-for": GB_IP}
    result = CountryResolver(trusted_proxies=2).resolve(headers, DE_IP)
    assert result == CountryResult("DE", DE_IP, "geoip")


@pytest.mark.parametrize("entry", ["unknown", "garbage", "", "_hidden", "300.1.1.1"])
def test_unparseable_trusted_entry_is_zz(entry: str) -> None:
    headers = {"x-forwarded-for": f"{GB_IP}, {entry}"}
    result = CountryResolver(trusted_proxies=1).resolve(headers, US_IP)
    assert result == CountryResult("ZZ", None, "unknown")


def test_xff_entries_with_ports_and_brackets() -> None:
    resolver = CountryResolver(trusted_proxies=1)
    assert resolver.resolve({"x-forwarded-for": f"{GB_IP}:51234"}, "10.0.0.1").country == "GB"
    v6 = {"x-forwarded-for": f"[{IE_V6}]:443"}
    assert resolver.resolve(v6, "10.0.0.1") == CountryResult("IE", IE_V6, "geoip")


def test_forwarded_header_with_quoted_ipv6_and_port() -> None:
    headers = {"forwarded": f'for={GB_IP};proto=https, for="[{IE_V6}]:4711";by=_proxy'}
    result = CountryResolver(trusted_proxies=1).resolve(headers, "10.0.0.1")
    assert result == CountryResult("IE", IE_V6, "geoip")
    two = CountryResolver(trusted_proxies=2).resolve(headers, "10.0.0.1")
    assert two == CountryResult("GB", GB_IP, "geoip")


def test_forwarded_obfuscated_identifier_is_zz() -> None:
    headers = {"forwarded": "for=_abc123;proto=https"}
    assert CountryResolver(trusted_proxies=1).resolve(headers, US_IP).country == "ZZ"


@pytest.mark.parametrize(
    "value",
    [
        "for=2001:db8::1",  # IPv6 must be quoted
        'for="[2001:db8::1]',  # unterminated quote
        "for 1.2.3.4",
        "for=1.2.3.4 extra",
        "=1.2.3.4",
        "for=1.2.3.4;;proto",
    ],
)
def test_invalid_forwarded_is_ignored_and_peer_used(value: str) -> None:
    assert forwarded_chain(value) is None
    result = CountryResolver(trusted_proxies=1).resolve({"forwarded": value}, DE_IP)
    assert result == CountryResult("DE", DE_IP, "geoip")


def test_forwarded_chain_parsing() -> None:
    assert forwarded_chain('for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]"') == [
        "192.0.2.60",
        "[2001:db8::1]",
    ]
    assert forwarded_chain("proto=https, FOR=1.2.3.4") == [None, "1.2.3.4"]
    assert forwarded_chain('for="\\"quoted\\""') == ['"quoted"']
    assert x_forwarded_for_chain(" 1.1.1.1 ,, 2.2.2.2") == ["1.1.1.1", None, "2.2.2.2"]


def test_x_forwarded_for_wins_over_forwarded() -> None:
    headers = {"x-forwarded-for": DE_IP, "forwarded": f"for={GB_IP}"}
    assert CountryResolver(trusted_proxies=1).resolve(headers, None).country == "DE"


# --- CDN country header -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("configured", "header"),
    [
        ("CF-IPCountry", "cf-ipcountry"),
        ("cloudflare", "cf-ipcountry"),
        ("CloudFront-Viewer-Country", "cloudfront-viewer-country"),
        ("cloudfront", "cloudfront-viewer-country"),
        ("X-Country-Code", "x-country-code"),
        ("Fastly-Client-Country", "fastly-client-country"),
    ],
)
def test_configured_country_header_wins(configured: str, header: str) -> None:
    resolver = CountryResolver(country_header=configured)
    result = resolver.resolve({header: "fr"}, US_IP)
    assert result == CountryResult("FR", US_IP, "header")


def test_country_header_is_ignored_unless_configured() -> None:
    assert CountryResolver().resolve({"cf-ipcountry": "FR"}, US_IP).country == "US"


@pytest.mark.parametrize("value", ["XX", "T1", "EU", "ZZ", "", "  ", "FRA", "F", "12", "é", "A1"])
def test_invalid_country_header_falls_through_to_lookup(value: str) -> None:
    result = CountryResolver(country_header="CF-IPCountry").resolve({"cf-ipcountry": value}, DE_IP)
    assert result == CountryResult("DE", DE_IP, "geoip")


def test_iso_country() -> None:
    assert len(ISO_COUNTRIES) == 250  # 249 assigned + XK
    assert iso_country(" gb ") == "GB"
    assert iso_country("XK") == "XK"
    assert iso_country("UK") is None  # not ISO (GB is)
    assert iso_country(None) is None


# --- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-1, 33, "2", 1.5, True])
def test_bad_trusted_proxies_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        CountryResolver(trusted_proxies=bad)  # type: ignore[arg-type]


def test_bad_header_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="country_header='CF IPCountry'"):
        CountryResolver(country_header="CF IPCountry")


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("OTEL_DOWNSTREAM_COUNTRY_HEADER", "cloudflare")
    resolver = CountryResolver.from_env()
    assert resolver.trusted_proxies == 1
    assert resolver.country_header == "cf-ipcountry"
    assert CountryResolver.from_env(trusted_proxies=0).trusted_proxies == 0  # argument wins
    monkeypatch.setenv("OTEL_DOWNSTREAM_TRUSTED_PROXIES", "two")
    with pytest.raises(ValueError, match="OTEL_DOWNSTREAM_TRUSTED_PROXIES='two'"):
        CountryResolver.from_env()
    with pytest.raises(TypeError, match="nonsense"):
        CountryResolver.from_env(trusted_proxies=0, nonsense=1)


# --- .mmdb databases --------------------------------------------------------------------------
class _U16(int):
    pass


class _U32(int):
    pass


class _U64(int):
    pass


def _encode(value: object) -> bytes:
    """MaxMind DB data-section encoding (spec 2.0) of str, dict, list and typed unsigned ints."""

    def control(type_: int, size: int) -> bytes:
        extended = type_ > 7
        head = (0 if extended else type_) << 5
        if size < 29:
            out = bytes([head | size])
        elif size < 285:
            out = bytes([head | 29, size - 29])
        else:
            out = bytes([head | 30]) + struct.pack(">H", size - 285)
        return out[:1] + (bytes([type_ - 7]) if extended else b"") + out[1:]

    if isinstance(value, str):
        raw = value.encode()
        return control(2, len(raw)) + raw
    if isinstance(value, dict):
        body = b"".join(_encode(k) + _encode(v) for k, v in value.items())
        return control(7, len(value)) + body
    if isinstance(value, list):
        return control(11, len(value)) + b"".join(_encode(v) for v in value)
    if isinstance(value, (_U16, _U32, _U64)):
        # libmaxminddb checks metadata types exactly (node_count is uint32, and so on).
        type_ = {_U16: 5, _U32: 6, _U64: 9}[type(value)]
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return control(type_, len(raw)) + raw
    raise TypeError(value)


def write_mmdb(path: Path, networks: dict[str, object]) -> None:
    """A real IPv6 MaxMind DB (24-bit records) mapping each network to its record."""
    data = b""
    leaves: list[tuple[str, int]] = []
    for network, record in networks.items():
        net = ipaddress.ip_network(network)
        bits = format(int(net.network_address), f"0{net.max_prefixlen}b")[: net.prefixlen]
        if net.version == 4:
            bits = "0" * 96 + bits  # IPv4 lives at ::a.b.c.d in an IPv6 tree
        leaves.append((bits, len(data)))
        data += _encode(record)
    tree: list[list[object]] = [[None, None]]
    for bits, offset in leaves:
        node = 0
        for depth, bit in enumerate(bits):
            side = int(bit)
            if depth == len(bits) - 1:
                tree[node][side] = ("data", offset)
            else:
                if not isinstance(tree[node][side], int):
                    tree.append([None, None])
                    tree[node][side] = len(tree) - 1
                node = tree[node][side]  # type: ignore[assignment]
    count = len(tree)

    def value(rec: object) -> int:
        if rec is None:
            return count
        if isinstance(rec, tuple):
            return count + 16 + rec[1]
        return rec  # type: ignore[return-value]

    body = b"".join(
        value(left).to_bytes(3, "big") + value(right).to_bytes(3, "big") for left, right in tree
    )
    metadata = {
        "node_count": _U32(count),
        "record_size": _U16(24),
        "ip_version": _U16(6),
        "database_type": "Test-Country",
        "languages": ["en"],
        "binary_format_major_version": _U16(2),
        "binary_format_minor_version": _U16(0),
        "build_epoch": _U64(int(time.time())),
        "description": {"en": "otel-downstream test database"},
    }
    path.write_bytes(body + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + _encode(metadata))


@pytest.fixture
def mmdb(tmp_path: Path) -> Path:
    path = tmp_path / "country.mmdb"
    write_mmdb(
        path,
        {
            "81.2.69.0/24": {"country": {"iso_code": "NZ", "names": {"en": "New Zealand"}}},
            "5.9.0.0/16": {"country": "JP"},  # IPinfo-style flat record
            "2a00:1450::/32": {"country_code": "CA"},
            "203.0.113.0/24": {"country": {"iso_code": "XX"}},  # junk code in the database
        },
    )
    return path


def test_mmdb_file_is_read_with_maxminddb(mmdb: Path) -> None:
    import maxminddb

    with maxminddb.open_database(str(mmdb)) as reader:
        assert reader.get(GB_IP) == {"country": {"iso_code": "NZ", "names": {"en": "New Zealand"}}}


def test_mmdb_database_is_asked_before_the_builtin_table(mmdb: Path) -> None:
    resolver = CountryResolver(geoip_path=str(mmdb))
    assert resolver.resolve({}, GB_IP) == CountryResult("NZ", GB_IP, "geoip")
    assert resolver.resolve({}, DE_IP).country == "JP"
    assert resolver.resolve({}, IE_V6).country == "CA"
    # Not in the file: the built-in table answers.
    assert resolver.resolve({}, US_IP).country == "US"


def test_mmdb_only_without_builtin_table(mmdb: Path) -> None:
    resolver = CountryResolver(geoip_path=str(mmdb), use_builtin_geoip=False)
    assert resolver.resolve({}, US_IP) == CountryResult("ZZ", US_IP, "unknown")
    assert resolver.resolve({}, "203.0.113.7").country == "ZZ"  # documentation range anyway


def test_missing_mmdb_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mmdb"
    with pytest.raises(ValueError, match=r"geoip_path=.*nope\.mmdb.*no such GeoIP database file"):
        CountryResolver(geoip_path=str(missing))


def test_corrupt_mmdb_file_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mmdb"
    corrupt.write_bytes(b"this is not a MaxMind database" * 10)
    with pytest.raises(ValueError, match=r"corrupt\.mmdb.*is not a readable \.mmdb database"):
        CountryResolver(geoip_path=str(corrupt))


def test_geoip_db_from_env(monkeypatch: pytest.MonkeyPatch, mmdb: Path) -> None:
    monkeypatch.setenv("OTEL_DOWNSTREAM_GEOIP_DB", str(mmdb))
    assert CountryResolver.from_env().resolve({}, GB_IP).country == "NZ"


# --- header helpers ---------------------------------------------------------------------------
def test_headers_from_asgi_lowercases_and_joins_repeats() -> None:
    raw = [
        (b"X-Forwarded-For", b"1.1.1.1"),
        (b"x-forwarded-for", b"2.2.2.2"),
        (b"CF-IPCountry", b"de"),
        (b"User-Agent", b"\xff\xfebinary"),
    ]
    headers = headers_from_asgi(raw)
    assert headers["x-forwarded-for"] == "1.1.1.1,2.2.2.2"
    assert headers["cf-ipcountry"] == "de"
    assert headers["user-agent"] == "\xff\xfebinary"


def test_headers_from_environ() -> None:
    environ = {
        "HTTP_X_FORWARDED_FOR": "1.1.1.1, 2.2.2.2",
        "HTTP_CF_IPCOUNTRY": "de",
        "CONTENT_TYPE": "text/plain",
        "REMOTE_ADDR": "10.0.0.1",
        "wsgi.input": object(),
    }
    headers = headers_from_environ(environ)
    assert headers == {
        "x-forwarded-for": "1.1.1.1, 2.2.2.2",
        "cf-ipcountry": "de",
        "content-type": "text/plain",
    }
    assert peer_from_environ(environ) == "10.0.0.1"
    assert peer_from_environ({}) is None
    assert peer_from_asgi({"client": ("127.0.0.1", 5000)}) == "127.0.0.1"
    assert peer_from_asgi({"client": None}) is None


def test_middleware_views_read_what_the_public_readers_read() -> None:
    """The lazy views the middlewares use and the public dicts follow the one rule: repeated lines
    joined with a bare comma (Cookie with "; "), CGI names winning over HTTP_CONTENT_*."""
    repeated = [
        (b"x-forwarded-for", b"1.1.1.1"),
        (b"cookie", b"a=1"),
        (b"x-forwarded-for", b"2.2.2.2"),
        (b"cookie", b"b=2"),
    ]
    expected = {"x-forwarded-for": "1.1.1.1,2.2.2.2", "cookie": "a=1; b=2"}
    assert dict(asgi_headers(repeated)) == headers_from_asgi(repeated) == expected
    single = [(b"user-agent", b"\xffua"), (b"host", b"shop.example")]
    view = asgi_headers(single)
    assert (
        dict(view) == headers_from_asgi(single) == {"user-agent": "\xffua", "host": "shop.example"}
    )
    assert view.get("absent") is None
    assert asgi_headers(None) == {}
    environ = {
        "HTTP_X_FORWARDED_FOR": "1.1.1.1,2.2.2.2",
        "CONTENT_LENGTH": "5",
        "HTTP_CONTENT_LENGTH": "7",
        "REMOTE_ADDR": "10.0.0.1",
        "wsgi.input": object(),
    }
    expected = {"x-forwarded-for": "1.1.1.1,2.2.2.2", "content-length": "5"}
    assert dict(EnvironHeaders(environ)) == headers_from_environ(environ) == expected


def test_parse_ip_forms() -> None:
    assert parse_ip("[2001:db8::1]:4711") == ipaddress.ip_address("2001:db8::1")
    assert parse_ip(" 1.2.3.4:80 ") == ipaddress.ip_address("1.2.3.4")
    assert parse_ip("[2001:db8::1]junk") is None
    assert parse_ip("fe80::1%eth0") is not None


# --- never raise ------------------------------------------------------------------------------
_header_names = st.sampled_from(
    ["x-forwarded-for", "forwarded", "cf-ipcountry", "x-country-code", "user-agent"]
)
_header_values = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=20)), max_size=6).map(
        ", ".join
    ),
    st.builds(lambda ip: f'for="[{ip}]:80"', st.ip_addresses(v=6)),
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(_header_names, _header_values, max_size=5),
    peer=st.one_of(st.none(), st.text(max_size=50), st.ip_addresses().map(str)),
    trusted=st.integers(min_value=0, max_value=3),
)
def test_random_headers_never_raise(
    headers: dict[str, str], peer: str | None, trusted: int
) -> None:
    before = fault_counts().get("country", 0)
    resolver = _RESOLVERS[trusted]
    result = resolver.resolve(headers, peer)
    assert result.country == "ZZ" or result.country in ISO_COUNTRIES
    assert len(result.country) == 2 and result.country.isupper()
    assert result.source in ("header", "geoip", "unknown")
    assert fault_counts().get("country", 0) == before


_RESOLVERS = [CountryResolver(trusted_proxies=n, country_header="CF-IPCountry") for n in range(4)]


def test_wrong_header_type_is_a_counted_fault_not_an_exception() -> None:
    before = fault_counts().get("country", 0)
    result = CountryResolver(trusted_proxies=1).resolve({"x-forwarded-for": 42}, US_IP)  # type: ignore[dict-item]
    assert result == CountryResult("ZZ", None, "unknown")
    assert fault_counts()["country"] == before + 1


# --- header helpers against real servers ---------------------------------------------------------
def _send(port: int, headers: list[tuple[str, str]]) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/")
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        assert response.status == 200
    finally:
        conn.close()


# A client forges one X-Forwarded-For line; the proxy in front appends a second line with the
# address it saw. Both servers must hand us one chain, in order.
_FORGED_THEN_REAL = [
    ("X-Forwarded-For", GB_IP),
    ("X-Forwarded-For", DE_IP),
    ("CF-IPCountry", "jp"),
    ("User-Agent", "curl/8.4.0"),
]


def test_wsgi_environ_from_a_real_server_resolves_through_one_proxy() -> None:
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    seen: list[dict[str, object]] = []

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        seen.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _send(server.server_port, _FORGED_THEN_REAL)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    environ = seen[0]
    headers = headers_from_environ(environ)
    assert x_forwarded_for_chain(headers["x-forwarded-for"]) == [GB_IP, DE_IP]
    peer = peer_from_environ(environ)
    assert peer == "127.0.0.1"
    assert CountryResolver(trusted_proxies=1).resolve(headers, peer) == CountryResult(
        "DE", DE_IP, "geoip"
    )
    with_cdn = CountryResolver(trusted_proxies=1, country_header="cloudflare")
    assert with_cdn.resolve(headers, peer) == CountryResult("JP", DE_IP, "header")
    assert CountryResolver().resolve(headers, peer) == CountryResult("ZZ", "127.0.0.1", "unknown")


@pytest.mark.parametrize("proxy_headers", [False, True])
def test_asgi_scope_from_uvicorn_resolves_through_one_proxy(proxy_headers: bool) -> None:
    import asyncio
    import threading

    import uvicorn

    scopes: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: Callable[..., object]) -> None:
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[misc]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[misc]

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        ws="none",
        log_level="warning",
        proxy_headers=proxy_headers,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        _send(port, _FORGED_THEN_REAL)
    finally:
        server.should_exit = True
        thread.join(10)
    scope = scopes[0]
    headers = headers_from_asgi(scope["headers"])  # type: ignore[arg-type]
    assert x_forwarded_for_chain(headers["x-forwarded-for"]) == [GB_IP, DE_IP]
    assert headers["user-agent"] == "curl/8.4.0"
    peer = peer_from_asgi(scope)
    assert CountryResolver(trusted_proxies=1).resolve(headers, peer) == CountryResult(
        "DE", DE_IP, "geoip"
    )
    assert CountryResolver(trusted_proxies=2).resolve(headers, peer).country == "GB"
    if proxy_headers:
        # uvicorn (on by default for proxies on 127.0.0.1) already put the address the proxy saw
        # in scope["client"]: with such a server, keep trusted_proxies at 0.
        assert peer == DE_IP
        assert CountryResolver().resolve(headers, peer) == CountryResult("DE", DE_IP, "geoip")
    else:
        assert peer == "127.0.0.1"
        assert CountryResolver().resolve(headers, peer).country == "ZZ"
