r"""The C allocator's handling of large blocks, which decides how much of a CPU step is page faults.

glibc's ``malloc`` serves every block above its mmap threshold (128 KiB at start, raised to at
most 32 MiB as the process frees such blocks) with a fresh ``mmap`` and returns it to the kernel
on ``free``. PyTorch's CPU allocator calls ``malloc`` for each tensor, so a training step whose
tensors outgrow 32 MiB (a ``[1024, 14541]`` 1vsAll score matrix is 57 MiB, RESCAL's looked-up
``[256, 512 * 512]`` relation rows 256 MiB) maps, zero-fills and unmaps every one of them again
at every step: the kernel's page faults can then cost as much as the arithmetic (steps up to
1.95x slower in ``benchmarks/results/allocator.md``).

:func:`keep_freed_memory` turns that off for the process: with ``M_MMAP_MAX = 0`` every block
comes from the heap, and with ``M_TRIM_THRESHOLD`` at its maximum the heap keeps what is freed, so
after its first steps a step finds its memory already mapped. It is what
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`` in the environment does, or, more
thoroughly, a caching allocator such as jemalloc or tcmalloc preloaded with ``LD_PRELOAD``.

The ``gnnns`` command line calls it at start unless ``GNNNS_MALLOC=system``;
``benchmarks/allocator.py`` measures both settings.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

SETTINGS = ("keep", "system")
_kept = False


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for the next allocation instead of unmapping it.

    The price is memory: the process holds on to its peak heap rather than giving large blocks
    back between steps: on the registry's configs 1.06-1.89x the peak resident memory, for
    steps 1.0-1.95x faster (``benchmarks/results/allocator.md``). It changes future
    allocations only, and nothing at all where it cannot apply.

    Returns:
        :obj:`True` when it was applied: Linux with glibc and no allocator preloaded. Otherwise
        (macOS, Windows, musl, jemalloc or tcmalloc in ``LD_PRELOAD``) :obj:`False`.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if "malloc" in os.environ.get("LD_PRELOAD", ""):  # jemalloc, tcmalloc: they manage this themselves
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    global _kept
    _kept = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
    return _kept


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` was applied in this process (run records report it)."""
    return _kept


def apply_setting(value: str | None = None) -> bool:
    """Apply ``GNNNS_MALLOC`` (or :obj:`value`): ``keep`` (the default) calls
    :func:`keep_freed_memory`, ``system`` leaves the allocator alone. Returns whether memory is kept.

    Raises:
        ValueError: for any other value, naming the variable.
    """
    setting = (os.environ.get("GNNNS_MALLOC", "keep") if value is None else value).strip().lower()
    if setting not in SETTINGS:
        raise ValueError(f"GNNNS_MALLOC must be one of {', '.join(SETTINGS)}; got {setting!r}")
    return keep_freed_memory() if setting == "keep" else False
