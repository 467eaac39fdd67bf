"""The worker group's directory: where it is, who may use it, when it is wiped, when it goes.

The servers themselves are in tests/e2e/test_prefork_servers.py; here the directory's rules are
driven directly, in a private temporary directory (``tempfile.tempdir``, with no
``$XDG_RUNTIME_DIR`` and no usable home: the last of the bases tried). Folding and reading the
files: test_workers_fold.py.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from otel_downstream.agent import environment as env
from otel_downstream.agent.workers import detect, directory
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
    monkeypatch.delenv("_OTEL_DOWNSTREAM_OWN_MULTIPROC_DIR", raising=False)
    yield base


def _name(tmp: Path, n: int = 0) -> Path:
    """The group's directory for 127.0.0.1:9464 in ``tmp``: the ``n``-th alternative."""
    name = f"otel-downstream-{os.getuid()}-127.0.0.1-9464"
    return tmp / (f"{name}.{n}" if n else name)


def _start_time(pid: int) -> str:
    return f"{psutil.Process(pid).create_time():.3f}"


def test_a_single_process_stays_single(tmp: Path) -> None:
    assert detect.detect_server() is None
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


def test_a_symlink_planted_at_the_name_is_skipped(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp / "victim"
    victim.mkdir()
    _name(tmp).symlink_to(victim)
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "true")
    group = wg.join("127.0.0.1", 9464)
    assert group is not None
    assert group.path == str(_name(tmp, 1)), "the next name, the same for every worker"
    assert not any(victim.iterdir())
    group.leave()
    assert not _name(tmp, 1).exists()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory another user owns")
def test_a_directory_of_another_user_is_refused(tmp: Path) -> None:
    path = _name(tmp)
    path.mkdir(mode=0o777)
    os.chown(path, 65534, 65534)
    with pytest.raises(directory.UnsafeDirectory):
        wg.WorkerGroup(str(path), "test", owned=True).enter()
    assert not any(path.iterdir())


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory another user owns")
def test_a_name_squatted_by_another_user_is_skipped_the_same_way_by_every_worker(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another local user creates the predictable name first: the group takes the next name, and
    every worker (each computing it on its own) agrees on it, so aggregation goes on."""
    tmp.chmod(0o1777)  # a shared temporary directory, as /tmp is
    for n in (0, 1):
        _name(tmp, n).mkdir(mode=0o777)
        os.chown(_name(tmp, n), 65534, 65534)
    monkeypatch.setenv(env.OTEL_DOWNSTREAM_MULTIPROCESS, "true")
    first = wg.join("127.0.0.1", 9464)
    assert first is not None
    assert first.path == str(_name(tmp, 2))
    assert directory.group_dir("127.0.0.1", 9464, create=False) == first.path
    second = wg.WorkerGroup(first.path, "test", owned=True)
    second.enter()
    assert not any(_name(tmp, 0).iterdir()), "the squatter's directory is left alone"
    second.leave()
    first.leave()
    assert not _name(tmp, 2).exists()
    for n in range(2, directory.ALTERNATIVES):
        _name(tmp, n).mkdir()
        os.chown(_name(tmp, n), 65534, 65534)
    assert wg.join("127.0.0.1", 9464) is None, "every name taken: single-process mode"


def test_a_private_runtime_dir_is_preferred_then_a_home_cache(
    tmp_path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    expected = runtime / _name(tmp).name
    assert directory.group_dir("127.0.0.1", 9464, create=False) is None
    assert directory.group_dir("127.0.0.1", 9464) == str(expected)
    expected.rmdir()
    runtime.chmod(0o755)  # not private: the next base, a home of ours
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    monkeypatch.setenv("HOME", str(home))
    assert directory.group_dir("127.0.0.1", 9464) == str(tmp / _name(tmp).name), "no ~/.cache"
    (tmp / _name(tmp).name).rmdir()
    (home / ".cache").mkdir(mode=0o755)
    path = Path(str(directory.group_dir("127.0.0.1", 9464)))
    assert path == home / ".cache" / "otel-downstream" / _name(tmp).name
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


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
    path = _name(tmp)
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
    path = _name(tmp)
    group = wg.WorkerGroup(str(path), "test", owned=True)
    group.enter(master=os.getppid())
    (path / "counter_1.db").write_bytes(b"\0" * 8)
    group.leave()
    assert (path / "counter_1.db").exists()
    again = wg.WorkerGroup(str(path), "test", owned=True)
    again.enter(master=os.getppid())
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


def test_at_exit_a_worker_frees_the_port_writes_everything_then_leaves() -> None:
    """atexit runs last-registered first: configure()'s hook runs before the accounting's own
    (registered at import), so it flushes (held amounts too) itself before leaving the group."""
    from otel_downstream.agent import pipeline

    calls: list[str] = []

    class Fake:
        def close_listener(self) -> None:
            calls.append("close the port")

        def flush(self, *, release: bool = False) -> None:
            calls.append(f"flush release={release}")

        def leave(self) -> None:
            calls.append("leave")

    fake: Any = Fake()
    pipeline._leave_at_exit(fake, fake, fake)
    assert calls == ["close the port", "flush release=True", "leave"]
