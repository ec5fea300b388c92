// CPU features that decide how the gates scrub registers.
#ifndef CORDON_RUNTIME_HARDWARE_CPU_H_
#define CORDON_RUNTIME_HARDWARE_CPU_H_

namespace cordon::hw {

// AVX usable: CPUID AVX + OSXSAVE, and XCR0 enables SSE and AVX state.
bool CpuHasAvx();
// AVX-512 usable: AVX512F, and XCR0 enables opmask, ZMM_Hi256 and Hi16_ZMM.
bool CpuHasAvx512();

}  // namespace cordon::hw

#endif
