"""The C engine's kernel cache loads only a library it can trust, as ssh treats its keys.

A library planted in the cache (world-writable, or owned by another user) or a cache
folder others can write is never loaded: the kernel is built again in the user's private
folder (mode 0700), and the warning names the refused path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from optimlab import ckernel
from optimlab.ckernel import build

pytestmark = pytest.mark.skipif(not ckernel.available(), reason="no C compiler")

# a library whose one function says where it came from: a planted file is garbage, so
# loading it would fail, and a rebuilt one answers 42
SOURCE = "int optimlab_cache_test(void) { return 42; }\n"


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the configured cache, the user's cache home), both fresh."""
    shared, home = tmp_path / "shared", tmp_path / "home"
    monkeypatch.setenv("OPTIMLAB_KERNEL_CACHE", str(shared))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.setattr(build, "_warned", set())
    return shared, home


def _plant(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    planted = folder / f"{build.cache_key(SOURCE)}.so"
    planted.write_bytes(b"not a library: loading it would run whatever it holds")
    return planted


def _rebuilt_privately(home: Path, refused: Path) -> Path:
    """The library built anew in the private folder, with a warning naming ``refused``."""
    with pytest.warns(RuntimeWarning, match=f"not loading kernels from {refused}: "):
        path = build.library(SOURCE)
    private = home / "optimlab" / "private-kernels"
    assert path.parent == private and path.name == f"{build.cache_key(SOURCE)}.so"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert build.load(path).optimlab_cache_test() == 42
    return path


def test_a_trusted_cache_is_used_and_its_libraries_loaded(caches: tuple[Path, Path]) -> None:
    shared, _ = caches
    path = build.library(SOURCE)
    assert path.parent == shared and build.untrusted(path) is None
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700
    assert build.library(SOURCE) == path  # loaded from the cache, not rebuilt


def test_a_world_writable_library_is_not_loaded(caches: tuple[Path, Path]) -> None:
    shared, home = caches
    planted = _plant(shared)
    os.chmod(planted, 0o666)
    _rebuilt_privately(home, planted)
    assert planted.read_bytes().startswith(b"not a library")  # left as it was


def test_a_group_writable_cache_folder_is_not_used(caches: tuple[Path, Path]) -> None:
    shared, home = caches
    planted = _plant(shared)
    os.chmod(shared, 0o775)
    _rebuilt_privately(home, shared)
    assert planted.read_bytes().startswith(b"not a library")


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                    reason="giving a file to another user needs root")
def test_a_library_owned_by_another_user_is_not_loaded(caches: tuple[Path, Path]) -> None:
    shared, home = caches
    planted = _plant(shared)
    os.chmod(planted, 0o755)
    os.chown(planted, 12345, 12345)
    assert "uid 12345" in build.untrusted(planted)
    _rebuilt_privately(home, planted)
