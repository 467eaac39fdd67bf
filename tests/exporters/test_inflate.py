"""Request bodies inflate correctly, within the cap, and in time linear in their size."""

from __future__ import annotations

import gzip
import time
import zlib

import pytest

from otel_downstream.exporters.otlp.inflate import BodyError, inflate

CAP = 1 << 20
EMPTY_MEMBER = gzip.compress(b"", mtime=0)


def test_several_members_concatenate() -> None:
    parts = [b"alpha " * 100, b"", b"beta", bytes(range(256)) * 50]
    body = b"".join(gzip.compress(p) for p in parts)
    assert inflate(body, "gzip", CAP) == b"".join(parts)


def test_a_member_larger_than_the_read_chunks_inflates() -> None:
    data = bytes(range(256)) * 40_000  # ~10 MB of input members spans many reads
    incompressible = zlib.compress(data, 0)  # stored blocks: compressed size ~ input size
    assert inflate(incompressible, "deflate", 16 << 20) == data
    assert inflate(gzip.compress(data, 0) + gzip.compress(b"x"), "gzip", 16 << 20) == data + b"x"


def test_trailing_garbage_after_gzip_members_is_400() -> None:
    with pytest.raises(BodyError) as info:
        inflate(gzip.compress(b"payload") + b"garbage!", "gzip", CAP)
    assert info.value.status == 400


def test_trailing_bytes_after_deflate_is_400() -> None:
    with pytest.raises(BodyError, match="trailing bytes") as info:
        inflate(zlib.compress(b"payload") + b"x", "deflate", CAP)
    assert info.value.status == 400


@pytest.mark.parametrize("cut", [1, 5, 12])
def test_truncated_last_member_is_400(cut: int) -> None:
    body = gzip.compress(b"first") + gzip.compress(b"second" * 100)
    with pytest.raises(BodyError, match=r"truncated|corrupt") as info:
        inflate(body[:-cut], "gzip", CAP)
    assert info.value.status == 400


def test_output_over_the_cap_is_413_across_members() -> None:
    body = gzip.compress(b"a" * (CAP // 2)) * 3
    with pytest.raises(BodyError) as info:
        inflate(body, "gzip", CAP)
    assert info.value.status == 413
    assert inflate(gzip.compress(b"a" * CAP), "gzip", CAP) == b"a" * CAP


def test_raw_and_zlib_deflate_are_both_accepted() -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    packed = raw.compress(b"hello") + raw.flush()
    assert inflate(packed, "deflate", CAP) == b"hello"
    assert inflate(zlib.compress(b"hello"), "deflate", CAP) == b"hello"


def _inflate_seconds(members: int) -> float:
    body = EMPTY_MEMBER * members
    started = time.perf_counter()
    assert inflate(body, "gzip", CAP) == b""
    return time.perf_counter() - started


def test_many_empty_members_inflate_in_linear_time() -> None:
    # 8 MiB of 20-byte members took 32 s when each member copied the rest of the body.
    members_4mib = (4 << 20) // len(EMPTY_MEMBER)
    small = min(_inflate_seconds(members_4mib) for _ in range(2))
    large = min(_inflate_seconds(2 * members_4mib) for _ in range(2))
    assert large < 3.0
    assert large / small < 3.0


def test_output_is_charged_in_small_pieces_as_it_is_produced() -> None:
    """``serve`` charges inflated bytes to its shared budget while inflating: a thousand small
    bombs must not each hold the cap before the budget hears of them."""
    body = gzip.compress(b"\x00" * (32 * 1024 * 1024))
    pieces: list[int] = []

    def charge(size: int) -> None:
        pieces.append(size)
        if sum(pieces) > 4 * 1024 * 1024:
            raise MemoryError("budget")  # what the budget's refusal stands for here

    with pytest.raises(MemoryError):
        inflate(body, "gzip", 64 * 1024 * 1024, charge)
    assert max(pieces) <= 1024 * 1024
    assert sum(pieces) <= 5 * 1024 * 1024


def test_stepped_output_still_inflates_whole_streams() -> None:
    """Output held back by the step is asked for after the input ends, not called truncated."""
    data = bytes(range(256)) * 40_000 + b"\x00" * (8 * 1024 * 1024)
    for encoding, packed in (
        ("gzip", gzip.compress(data)),
        ("deflate", zlib.compress(data)),
        ("gzip", gzip.compress(data) + gzip.compress(b"tail")),
    ):
        charged: list[int] = []
        out = inflate(packed, encoding, 64 * 1024 * 1024, charged.append)
        assert out.startswith(data) and sum(charged) == len(out)
