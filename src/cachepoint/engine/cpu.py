"""What this CPU can do natively. Machines of one kind differ (one has AMX, the next no AVX-512 at all),
and the fastest encoding follows: bf16 is native only with AVX512_BF16 or AMX, and emulated (several
times slower) without them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    return bool(BF16_FLAGS & (cpu_flags() if flags is None else flags))
