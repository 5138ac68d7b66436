"""What the CPU's flags decide: bf16 autocast where matrix instructions take bf16, and int8 timings only where
int8 dot products exist (a reference kernel otherwise runs torchao's int8 18x slower than fp32)."""

from __future__ import annotations

import pytest

from nichetune import hardware

AVX2 = {"sse2", "avx", "avx2", "fma"}


@pytest.mark.parametrize(("flags", "bf16", "int8"), [
    (AVX2, False, False),                                          # the AMD EPYC this suite was measured on
    (AVX2 | {"avx512f", "avx512_vnni"}, False, True),              # Cascade Lake
    (AVX2 | {"avx_vnni"}, False, True),                            # Alder Lake
    (AVX2 | {"avx512_bf16", "avx512_vnni"}, True, True),           # Zen 4, Cooper Lake
    (AVX2 | {"amx_bf16", "amx_int8", "amx_tile"}, True, True),     # Sapphire Rapids
    ({"fp", "asimd", "asimddp"}, False, True),                     # an ARM CPU is not judged on x86 flags
    (set(), False, True),                                          # no /proc/cpuinfo
])
def test_cpu_flags_decide_bf16_and_int8(monkeypatch, flags, bf16, int8):
    monkeypatch.setattr(hardware, "_cpu_flags", lambda: frozenset(flags))
    assert hardware.cpu_has_fast_bf16() is bf16 and hardware.cpu_has_int8_dot() is int8


def test_flags_are_read_from_the_flags_line_only(monkeypatch, tmp_path):
    """A model name mentioning a flag (or the 'bugs' line) is not a flag."""
    text = "model name\t: Imaginary avx512_bf16 Edition\nflags\t\t: fpu sse2 avx2\nbugs\t\t: avx_vnni\n"
    real_path = hardware.Path
    monkeypatch.setattr(hardware, "Path", lambda p: real_path(tmp_path / "cpuinfo") if p == "/proc/cpuinfo" else
                        real_path(p))
    (tmp_path / "cpuinfo").write_text(text)
    hardware._cpu_flags.cache_clear()
    try:
        assert hardware._cpu_flags() == {"fpu", "sse2", "avx2"}
        assert not hardware.cpu_has_fast_bf16() and not hardware.cpu_has_int8_dot()
    finally:
        hardware._cpu_flags.cache_clear()
