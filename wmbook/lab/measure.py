"""Measuring cost: wall-clock time, peak memory and parameter counts.

The book's working-memory claims are measured with these (first on page 4.1,
section 4.1.3).
"""
from __future__ import annotations

import gc
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from torch import nn

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_in_turns(fns: dict[str, Callable[[], object]], rounds: int, *, warmup: int = 0,
                  min_seconds: float = 0.005, rotate: bool = True,
                  clock: Callable[[], float] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in turn in every round: ``{name: [seconds]}``.

    Interleaving puts the functions compared under the same machine load in each round, so a
    ratio is best taken round by round, ``median(a[r] / b[r])``, and a time as the median of
    the rounds (pages 2.2, 3.1–3.3, 4.2, 5.2). ``clock`` defaults to :func:`time.thread_time`,
    the CPU time of the calling thread: with torch on one thread (``wmbook.threads(1)``) it is
    the work done, however busy a shared machine is.

    After ``warmup`` untimed rounds (with ``min_seconds`` > 0, one or two untimed calls of each
    function measure how often to call it, which also warms it up). With ``rotate`` each round starts with the next function,
    so a cost that hits whichever runs first stays out of the medians. A function faster than
    ``min_seconds`` is called once untimed in every round (the others have evicted its data
    from the CPU's caches), then about ``min_seconds`` worth of times (at most 20), and the
    time per call is averaged.
    """
    if rounds < 1 or warmup < 0 or min_seconds < 0:
        raise ValueError(f"need rounds >= 1, warmup >= 0, min_seconds >= 0; got {rounds}, {warmup}, {min_seconds}")
    clock = clock or time.thread_time

    def once(fn: Callable[[], object]) -> float:
        t0 = clock()
        fn()
        return clock() - t0

    for _ in range(warmup):
        for fn in fns.values():
            fn()
    calls = {name: 1 for name in fns}
    if min_seconds > 0:
        for name, fn in fns.items():
            t = once(fn)  # the first call may pay one-off costs: if it was short, call again
            if t < 10 * min_seconds:
                t = once(fn)
            calls[name] = min(20, max(1, round(min_seconds / max(t, 1e-6))))
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        k = r % len(names) if rotate else 0
        for name in names[k:] + names[:k]:
            fn = fns[name]
            if calls[name] > 1:
                fn()
            t0 = clock()
            for _ in range(calls[name]):
                fn()
            seconds[name].append((clock() - t0) / calls[name])
    return seconds


def round_sig(x: float, digits: int = 2) -> float:
    """``x`` rounded to ``digits`` significant figures (timings: two, see the README's rules).

    >>> round_sig(153.5), round_sig(0.0123456), round_sig(1345.2)
    (150.0, 0.012, 1300.0)
    """
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    return float(f"{x:.{digits}g}")


def format_sig(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant figures as text, without exponent or spurious zeros.

    >>> format_sig(153.5), format_sig(2.04), format_sig(1345.2), format_sig(0.0123)
    ('150', '2.0', '1,300', '0.012')
    """
    import math

    r = round_sig(x, digits)
    if r == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(r))), 0)
    return f"{r:,.{decimals}f}"


def _status_kib(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if m is None:
        raise RuntimeError(f"{field} not found in {_STATUS}")
    return int(m.group(1))


def _release_free_memory() -> None:
    """Make glibc hand freed memory back to the system, so RSS tracks live tensors.

    glibc raises its mmap threshold after big blocks are freed and then serves
    later big tensors from memory it already holds, which hides them from the
    resident size. Fixing the threshold (``mallopt(M_MMAP_THRESHOLD, 128 KiB)``)
    and trimming the heap (``malloc_trim(0)``) before each measurement undo
    that; they change how memory is obtained, never results.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # -3 = M_MMAP_THRESHOLD
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the measurement may undercount reused memory


def can_measure_peak_memory() -> bool:
    """Peak-memory measurement needs Linux's /proc (Colab and most servers have it)."""
    return sys.platform.startswith("linux") and _STATUS.exists() and os.access(_CLEAR_REFS, os.W_OK)


def peak_memory(fn: Callable[[], object]) -> int:
    """Extra resident memory (bytes) that ``fn()`` needed at its peak.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``), runs ``fn``
    and reads ``VmHWM`` minus the resident size before the call. Freed memory is
    handed back to the system first (see ``_release_free_memory``), so the
    number tracks the tensors the call creates; it has a resolution of a few
    kB and includes the result. Linux only: elsewhere it raises ``RuntimeError`` (check
    :func:`can_measure_peak_memory` first).
    """
    if not can_measure_peak_memory():
        raise RuntimeError(
            "peak_memory needs Linux's /proc/self/status and /proc/self/clear_refs; "
            f"this is {sys.platform}. Run the page on Linux or Colab to measure memory."
        )
    gc.collect()
    _release_free_memory()
    _CLEAR_REFS.write_text("5")  # reset VmHWM to the current resident size
    before = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    return max(0, peak - before) * 1024


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def kv_cache_bytes(n_layers: int, n_kv_heads: int, d_head: int, n_tokens: int = 1,
                   batch: int = 1, bytes_per_value: int = 2) -> int:
    r"""Bytes of the key–value cache: :math:`2 \cdot L \cdot H_{kv} \cdot d_\text{head} \cdot n \cdot B \cdot b`.

    The factor 2 is for keys and values; ``bytes_per_value`` is 2 for fp16/bf16,
    4 for fp32. GPT-2 small (12 layers, 12 heads of 64) holds 36 KiB per token
    in fp16. Measured against real caches on pages 3.3 and 4.3.
    """
    for name, v in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("d_head", d_head),
                    ("n_tokens", n_tokens), ("batch", batch), ("bytes_per_value", bytes_per_value)):
        if v < 0 or int(v) != v:
            raise ValueError(f"{name} must be a non-negative integer, got {v}")
    return 2 * n_layers * n_kv_heads * d_head * n_tokens * batch * bytes_per_value
