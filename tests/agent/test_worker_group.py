"""The worker group's directory: who may use it, when it is wiped, when it goes.

The servers themselves are in tests/e2e/test_prefork_servers.py; here the directory's rules are
driven directly, in a private temporary directory (``tempfile.tempdir``).
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from otel_downstream.agent import environment as env
from otel_downstream.agent import worker_group as wg


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    base = tmp_path / "tmp"
    base.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.delenv(env.PROMETHEUS_MULTIPROC_DIR, raising=False)
    monkeypatch.delenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, raising=False)
    monkeypatch.delenv("_OTEL_DOWNSTREAM_OWN_MULTIPROC_DIR", raising=False)
    yield base


def _start_time(pid: int) -> str:
    return f"{psutil.Process(pid).create_time():.3f}"


def test_a_single_process_stays_single(tmp: Path) -> None:
    assert wg.detect_server() is None
    assert wg.join("127.0.0.1", 9464) is None
    assert env.prometheus_multiproc_dir() is None
    assert not any(tmp.iterdir())


def test_forced_mode_makes_a_private_directory_and_the_last_one_out_removes_it(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "true")
    group = wg.join("127.0.0.1", 9464)
    assert group is not None
    path = Path(group.path)
    assert path == tmp / f"otel-downstream-{os.getuid()}-127.0.0.1-9464"
    assert os.environ[env.PROMETHEUS_MULTIPROC_DIR] == group.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert (path / f"member-{os.getpid()}").read_text() == _start_time(os.getpid())
    group.leave()
    assert not path.exists()
    assert env.prometheus_multiproc_dir() is None


def test_a_bad_mode_value_is_a_configuration_error(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "maybe")
    with pytest.raises(ValueError, match=env.OTEL_DOWNSTREAM_MULTIPROCESS):
        wg.join("127.0.0.1", 9464)


def test_a_symlink_planted_at_the_name_is_refused(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    victim = tmp / "victim"
    victim.mkdir()
    Path(wg.group_dir("127.0.0.1", 9464)).symlink_to(victim)
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "true")
    assert wg.join("127.0.0.1", 9464) is None  # single-process mode, said in the log
    assert "PROMETHEUS_MULTIPROC_DIR" in caplog.text
    assert env.prometheus_multiproc_dir() is None
    assert not any(victim.iterdir())


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory another user owns")
def test_a_directory_of_another_user_is_refused(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(wg.group_dir("127.0.0.1", 9464))
    path.mkdir(mode=0o777)
    os.chown(path, 65534, 65534)
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "true")
    assert wg.join("127.0.0.1", 9464) is None
    assert not any(path.iterdir())


def test_a_world_writable_parent_without_the_sticky_bit_is_refused(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp.chmod(0o777)
    try:
        monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "true")
        assert wg.join("127.0.0.1", 9464) is None
    finally:
        tmp.chmod(0o700)


def _stale_dir(tmp: Path, member_pid: int, member_start: str) -> Path:
    path = Path(wg.group_dir("127.0.0.1", 9464))
    path.mkdir(mode=0o700)
    (path / f"member-{member_pid}").write_text(member_start)
    (path / "counter_123.db").write_bytes(b"\0" * 8)
    return path


def test_files_stay_while_a_member_lives(tmp: Path) -> None:
    parent = os.getppid()  # alive for the whole test
    path = _stale_dir(tmp, parent, _start_time(parent))
    group = wg.WorkerGroup(str(path), "test", owned=True)
    group.enter()
    try:
        assert (path / "counter_123.db").exists(), "a live member's files are never wiped"
    finally:
        group.leave()
    assert path.exists(), "a member still lives: the directory stays"
    # That member goes without a word (as a SIGKILLed worker would): the watcher removes it all.
    (path / f"member-{parent}").unlink()
    deadline = time.monotonic() + 5
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists()


def test_a_directory_whose_members_are_dead_is_wiped(tmp: Path) -> None:
    parent = os.getppid()
    # The parent's pid, but another start time: a reused pid, so the member is dead.
    path = _stale_dir(tmp, parent, "12345.000")
    group = wg.WorkerGroup(str(path), "test", owned=True)
    group.enter()
    assert not (path / "counter_123.db").exists()
    assert not (path / f"member-{parent}").exists()
    group.leave()
    assert not path.exists()


def test_a_live_master_keeps_the_directory_for_the_next_worker(tmp: Path) -> None:
    """A recycled last worker (or a reload that stops the old workers first) leaves while the
    master lives: the files stay for the worker it starts next."""
    path = Path(wg.group_dir("127.0.0.1", 9464))
    group = wg.WorkerGroup(str(path), "test", owned=True)
    group.enter(leader=os.getppid())
    (path / "counter_1.db").write_bytes(b"\0" * 8)
    group.leave()
    assert (path / "counter_1.db").exists()
    again = wg.WorkerGroup(str(path), "test", owned=True)
    again.enter(leader=os.getppid())
    assert (path / "counter_1.db").exists(), "the master lives: not stale"
    # Tidy up: forget the master, then the last one out removes the directory.
    (path / f"master-{os.getppid()}").unlink()
    again.leave()
    assert not path.exists()


def test_a_user_directory_is_never_wiped_nor_removed(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "counter_999999.db").write_bytes(b"\0" * 8)
    monkeypatch.setenv(env.PROMETHEUS_MULTIPROC_DIR, str(mine))
    group = wg.join("127.0.0.1", 9464)
    assert group is not None
    assert not group.owned
    group.leave()
    assert (mine / "counter_999999.db").exists()
    assert os.environ[env.PROMETHEUS_MULTIPROC_DIR] == str(mine)


def test_a_process_joins_the_group_that_serves_its_port(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a detected worker, but its /metrics port belongs to a running group: it joins, so its
    figures are in that group's sums instead of lost on a busy port."""
    parent = os.getppid()
    path = _stale_dir(tmp, parent, _start_time(parent))  # a live member
    group = wg.join("127.0.0.1", 9464)
    assert group is not None
    assert group.server == "joined"
    assert os.environ[env.PROMETHEUS_MULTIPROC_DIR] == str(path)
    group.leave()
    assert (path / "counter_123.db").exists()
    (path / f"member-{parent}").unlink()  # that member goes: the watcher removes the directory
    deadline = time.monotonic() + 5
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists()


def _sums(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.multiprocess import MultiProcessCollector

    with wg.reading(str(path)) as files:
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
    path = Path(wg.group_dir("127.0.0.1", 9464))
    group = wg.WorkerGroup(str(path), "test", owned=True)
    group.enter(leader=os.getppid())  # a live master: what follows is a fold, not a stale wipe
    first = 4_000_000  # above any pid_max in use here
    _dead_worker_files(path, first, 10)
    before = _sums(path)
    assert before[("c_total", (("a", "x"),))] == sum(1.5 + i for i in range(10))
    try:
        wg.WorkerGroup(str(path), "test", owned=True).enter(leader=os.getppid())
        assert _sums(path) == before
        names = sorted(p.name for p in path.glob("*.db"))
        assert names == ["counter_folded1.db", "gauge_max_folded1.db", "histogram_folded1.db"]
        _dead_worker_files(path, first + 100, 10)  # more recycling, another member joins
        before = _sums(path)
        wg.WorkerGroup(str(path), "test", owned=True).enter(leader=os.getppid())
        assert _sums(path) == before
        assert len(list(path.glob("*.db"))) == 3
    finally:
        (path / f"master-{os.getppid()}").unlink()
        group.leave()
    assert not path.exists()
