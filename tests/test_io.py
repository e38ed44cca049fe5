"""Atomic writes: whole files or nothing, with the mode a plain open() gives."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from dlnd.io import atomic_write, atomic_write_text


def test_a_file_is_written_whole_with_the_usual_mode(tmp_path):
    atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a" / "b.txt").stat().st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path / "a") == ["b.txt"]


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.txt", fail)
    assert os.listdir(tmp_path) == []


def test_the_umask_is_never_changed(tmp_path, monkeypatch):
    """Probe: atomic_write read the umask by setting it to 0 for a moment, so another thread
    creating a file then got a world-writable one."""

    def no_umask(mask):
        raise AssertionError("os.umask was called")

    monkeypatch.setattr(os, "umask", no_umask)
    atomic_write_text(tmp_path / "x.txt", "fine")
    assert (tmp_path / "x.txt").read_text() == "fine"


def test_concurrent_writers_of_one_file_leave_one_whole_file(tmp_path):
    target = tmp_path / "shared.txt"
    texts = [str(i) * 10_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write_text, args=(target, t)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_text() in texts
    assert os.listdir(tmp_path) == ["shared.txt"]
