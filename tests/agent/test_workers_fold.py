"""Folding the files of dead workers, and reading every worker's files for a scrape.

A file that holds nothing yet (being created) or cannot be read (a worker killed while creating
it) must never fail a scrape nor make a worker leave its group.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from otel_downstream.agent import environment as env
from otel_downstream.agent.faults import fault_counts, reset_faults
from otel_downstream.agent.workers import fold as wf
from otel_downstream.agent.workers import group as wg


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    base = tmp_path / "tmp"
    base.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))
    monkeypatch.delenv(env.PROMETHEUS_MULTIPROC_DIR, raising=False)
    monkeypatch.delenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, raising=False)
    monkeypatch.delenv(wg.OWN_DIR, raising=False)
    reset_faults()
    yield base
    reset_faults()


def _group_path(tmp: Path) -> Path:
    return tmp / f"otel-downstream-{os.getuid()}-127.0.0.1-9464"


def _sums(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.multiprocess import MultiProcessCollector

    with wf.scrape_files(str(path)) as files:
        metrics = MultiProcessCollector.merge(files, accumulate=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in metrics for s in m.samples}


def _dead_worker_files(path: Path, first_pid: int, n: int) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    for i in range(n):
        pid = first_pid + i
        assert not psutil.pid_exists(pid)
        for kind, name, value in (
            ("counter", "c_total", 1.5 + i),
            ("histogram", "h_bucket", 2.0),
            ("gauge_max", "g", float(i)),
        ):
            f = MmapedDict(str(path / f"{kind}_{pid}.db"))
            key = mmap_key(name.split("_")[0], name, ["a"], ["x"], "help")
            f.write_value(key, value, 0.0)
            f.close()


def test_files_of_dead_workers_are_folded_and_the_sums_stay_exact(tmp: Path) -> None:
    """Recycled workers leave files; a new member folds them into one file per kind, so a scrape
    reads a bounded number of files, and every sum is what it was."""
    path = _group_path(tmp)
    group = wg.WorkerGroup(str(path), "test", owned=True)
    group.enter(master=os.getppid())  # a live master: what follows is a fold, not a stale wipe
    first = 4_000_000  # above any pid_max in use here
    _dead_worker_files(path, first, 10)
    before = _sums(path)
    assert before[("c_total", (("a", "x"),))] == sum(1.5 + i for i in range(10))
    try:
        wg.WorkerGroup(str(path), "test", owned=True).enter(master=os.getppid())
        assert _sums(path) == before
        names = sorted(p.name for p in path.glob("*.db"))
        assert names == ["counter_folded1.db", "gauge_max_folded1.db", "histogram_folded1.db"]
        _dead_worker_files(path, first + 100, 10)  # more recycling, another member joins
        before = _sums(path)
        wg.WorkerGroup(str(path), "test", owned=True).enter(master=os.getppid())
        assert _sums(path) == before
        assert len(list(path.glob("*.db"))) == 3
    finally:
        (path / f"master-{os.getppid()}").unlink()
        group.leave()
    assert not path.exists()


def _collected(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics = wf.GroupCollector(str(path)).collect()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in metrics for s in m.samples}


def test_a_file_being_created_reads_as_empty_never_an_error(tmp: Path) -> None:
    """prometheus-client opens a new worker's file, then sizes it, outside our lock: a scrape in
    between finds a file shorter than its header. It holds nothing yet: read as empty."""
    path = _group_path(tmp)
    path.mkdir(mode=0o700)
    _dead_worker_files(path, 4_000_000, 1)
    expected = _collected(path)
    (path / "counter_4000500.db").write_bytes(b"")
    (path / "histogram_4000501.db").write_bytes(b"\x10\0\0")
    assert _collected(path) == expected
    assert wf.read_values(str(path / "counter_4000500.db")) == []
    assert fault_counts() == {}, "nothing is wrong: a file being created"


def test_a_file_that_cannot_be_read_is_left_out_of_a_scrape_and_counted_once(
    tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _group_path(tmp)
    path.mkdir(mode=0o700)
    _dead_worker_files(path, 4_000_000, 2)
    expected = _collected(path)
    bad = path / "counter_4000600.db"
    bad.write_bytes(b"\xff\xff\0\0" + b"\0" * 60)  # "used" far beyond the file: damaged
    assert _collected(path) == expected
    assert _collected(path) == expected
    assert fault_counts() == {wf.UNREADABLE: 1}
    assert caplog.text.count("holds no readable value") == 1


def test_an_unreadable_file_of_a_dead_worker_is_set_aside_and_the_fold_goes_on(
    tmp: Path,
) -> None:
    """A worker SIGKILLed between opening its file and sizing it leaves an empty file; a damaged
    one cannot be read either. The fold sets such a file aside (it holds no readable value) and
    folds the rest; the new member stays in the group."""
    path = _group_path(tmp)
    group = wg.WorkerGroup(str(path), "test", owned=True)
    group.enter(master=os.getppid())
    first = 4_000_000
    try:
        _dead_worker_files(path, first, 10)
        before = _sums(path)
        (path / "counter_4000900.db").write_bytes(b"")
        (path / "counter_4000901.db").write_bytes(b"\xff\xff\0\0" + b"\0" * 60)
        wg.WorkerGroup(str(path), "test", owned=True).enter(master=os.getppid())
        assert _sums(path) == before
        names = sorted(p.name for p in path.glob("*.db"))
        assert names == ["counter_folded1.db", "gauge_max_folded1.db", "histogram_folded1.db"]
        assert (path / "counter_4000901.db.unreadable").exists()
        assert fault_counts().get(wf.UNREADABLE, 0) >= 1
    finally:
        (path / f"master-{os.getppid()}").unlink()
        group.leave()
    assert not path.exists()


def test_a_fold_that_fails_never_makes_a_worker_leave_its_group(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: str, live: set[int]) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(wg, "fold", broken)
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "true")
    group = wg.join("127.0.0.1", 9464)
    assert group is not None, "still a member: the files are read as they are"
    assert fault_counts() == {"agent.workers.fold": 1}
    group.leave()
