"""Build a generated C source with the system compiler, cache the library on disk, load it.

* Compiler: ``$CC``, else gcc, cc or clang on the PATH; none: :func:`available` is False.
* Flags: ``-O3 -march=native`` (the library is built for this CPU, and the CPU's flags
  are part of the cache key), ``-mprefer-vector-width=256`` on x86 (256-bit accesses:
  masked 512-bit bf16 stores overlap and fail store forwarding), ``-fno-math-errno`` (so
  that sqrtf vectorises), ``-ffp-contract=off`` (no FMA: every operation rounds as torch's
  eager one) and ``-fopenmp``.
* OpenMP: the object is compiled with ``-fopenmp`` and linked against torch's own
  ``torch/lib/libgomp.so.1`` (rpath set), never a second OpenMP runtime: the kernel's
  parallel regions then use the thread pool torch's intra-op parallelism uses, and
  ``torch.set_num_threads`` is the one setting. Without a bundled libgomp (a torch built
  otherwise), the compiler's own ``-fopenmp`` runtime is linked.
* Cache: ``$OPTIMLAB_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/optimlab/kernels`` (by default
  ``~/.cache/optimlab/kernels``). A library's name is the hash of its source, the
  compiler's path and version, the flags, the runtime it links and the CPU's flags. It is
  written under a temporary name in the cache folder and moved into place with
  ``os.replace`` (atomic), so processes that build the same kernel at once (pytest-xdist
  workers, DDP ranks) each end with a complete library and never load a partial one.
* Trust: loading a library runs its code, so a library is loaded only where nobody else
  could have written it, as ssh treats its keys: the cache folder and the file owned by
  this user and writable by nobody else (no group or other write bit). Anything else (a
  shared folder another user can write, a world-writable file, a file of another owner)
  is never loaded: the kernel is built again into a private folder
  (``$XDG_CACHE_HOME/optimlab/private-kernels``, mode 0700), with a warning naming the
  path that was refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import torch

VERSION = "1"  # bump when the templates change in ways the source hash would not show
_PROBE = "int optimlab_probe(void) { int n = 0;\n#pragma omp parallel reduction(+:n)\n" \
         "n += 1;\nreturn n; }\n"


class BuildError(RuntimeError):
    """The C compiler failed on a generated kernel (the message has its output)."""


@functools.cache
def compiler() -> str | None:
    """The C compiler's path, or None."""
    for name in (os.environ.get("CC"), "gcc", "cc", "clang"):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


@functools.cache
def _compiler_version(path: str) -> str:
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def torch_openmp() -> Path | None:
    """torch's bundled OpenMP runtime, if its build has one."""
    path = Path(torch.__file__).parent / "lib" / "libgomp.so.1"
    return path if path.exists() else None


def flags() -> list[str]:
    """The compile flags (see the module docstring for why each)."""
    machine = platform.machine().lower()
    result = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math",
              "-ffp-contract=off", "-fPIC", "-fopenmp", "-std=gnu11", "-w"]
    if machine in ("x86_64", "amd64", "i686", "i386"):
        result.insert(2, "-mprefer-vector-width=256")
    return result


@functools.cache
def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.split(":")[0].strip() in ("flags", "Features"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() + platform.machine()


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "optimlab"


def cache_dir() -> Path:
    """Where built kernels are kept (``$OPTIMLAB_KERNEL_CACHE`` may point anywhere)."""
    configured = os.environ.get("OPTIMLAB_KERNEL_CACHE")
    if configured:
        return Path(configured)
    return _user_cache() / "kernels"


def private_dir() -> Path:
    """The folder kernels are rebuilt in when the cache cannot be trusted: this user's
    own, mode 0700 (a fresh temporary folder if even that one is not trustworthy)."""
    folder = _user_cache() / "private-kernels"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if untrusted(folder) is not None:
        with contextlib.suppress(OSError):  # not ours: the check below says so
            os.chmod(folder, 0o700)
    if untrusted(folder) is not None:
        return Path(tempfile.mkdtemp(prefix="optimlab-kernels-"))  # 0700, ours
    return folder


def untrusted(path: Path) -> str | None:
    """Why the library or folder at ``path`` may not be loaded from, or None: as ssh
    with its keys, it must be owned by this user and writable by nobody else."""
    info = os.stat(path)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


_warned: set[str] = set()


def _refuse(path: Path, reason: str, instead: Path) -> None:
    if str(path) not in _warned:
        _warned.add(str(path))
        warnings.warn(f"optimlab: not loading kernels from {path}: {reason}; building them "
                      f"in the private folder {instead} instead", RuntimeWarning,
                      stacklevel=4)


def _trusted_folder() -> Path:
    """The cache folder, created (0700) if missing; the private one where it is not
    trustworthy."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    reason = untrusted(folder)
    if reason is None:
        return folder
    private = private_dir()
    _refuse(folder, reason, private)
    return private


def cache_key(source: str) -> str:
    cc = compiler() or ""
    parts = [VERSION, source, cc, _compiler_version(cc) if cc else "", " ".join(flags()),
             str(torch_openmp()), _cpu_flags()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


#: libraries this process compiled (not loaded from the cache): tests count rebuilds
builds: list[tuple[Path, float]] = []


def library(source: str) -> Path:
    """The path of the built library of ``source``: from the cache, or compiled now."""
    cc = compiler()
    if cc is None:
        raise BuildError("no C compiler (set $CC, or install gcc)")
    folder = _trusted_folder()
    target = folder / f"{cache_key(source)}.so"
    if target.exists():
        reason = untrusted(target)
        if reason is None:
            return target
        private = private_dir()
        _refuse(target, reason, private)
        folder, target = private, private / target.name
        if target.exists() and untrusted(target) is None:
            return target
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as work:
        c_file, obj, lib = (Path(work) / name for name in ("kernel.c", "kernel.o", "kernel.so"))
        c_file.write_text(source)
        _run([cc, *flags(), "-c", str(c_file), "-o", str(obj)], source, folder)
        runtime = torch_openmp()
        link = [str(runtime), f"-Wl,-rpath,{runtime.parent}"] if runtime else ["-fopenmp"]
        _run([cc, "-shared", str(obj), "-o", str(lib), *link], source, folder)
        os.chmod(lib, 0o755)  # whatever the umask: a group-writable library is not loaded
        os.replace(c_file, target.with_suffix(".c"))  # kept beside it, to read
        os.replace(lib, target)
    builds.append((target, time.perf_counter() - start))
    return target


def _run(command: list[str], source: str, folder: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        kept = folder / f"failed-{hashlib.sha256(source.encode()).hexdigest()[:12]}.c"
        kept.write_text(source)
        raise BuildError(f"{' '.join(command)} failed (source kept at {kept}):\n"
                         f"{done.stderr[-4000:]}")


@functools.cache
def load(path: Path) -> ctypes.CDLL:
    """The library at ``path``, loaded once per process."""
    return ctypes.CDLL(str(path))


@functools.cache
def available() -> bool:
    """Whether kernels can be built here: a C compiler that builds and links an OpenMP
    probe against torch's runtime (the probe is cached like any kernel)."""
    if compiler() is None:
        return False
    try:
        lib = load(library(_PROBE))
        return lib.optimlab_probe() >= 1
    except (BuildError, OSError):
        return False
