// CPU features that decide how the gates scrub registers, and the XSAVE
// layout that signal frames use.
#ifndef CORDON_RUNTIME_HARDWARE_CPU_H_
#define CORDON_RUNTIME_HARDWARE_CPU_H_

namespace cordon::hw {

// AVX usable: CPUID AVX + OSXSAVE, and XCR0 enables SSE and AVX state.
bool CpuHasAvx();
// AVX-512 usable: AVX512F, and XCR0 enables opmask, ZMM_Hi256 and Hi16_ZMM.
bool CpuHasAvx512();
// RDFSBASE/WRFSBASE usable in user space: the kernel says so in AT_HWCAP2
// (HWCAP2_FSGSBASE, Linux 5.9+, not with nofsgsbase), not CPUID alone.
bool CpuHasFsgsbase();

// XSAVE (standard format) sizes and offsets, from CPUID leaf 0xD.
// The largest area any enabled-or-supported feature set needs.
unsigned XsaveMaxSize();
// Offset of the PKRU component (feature 9), or 0 if the CPU has none.
unsigned XsavePkruOffset();

}  // namespace cordon::hw

#endif
