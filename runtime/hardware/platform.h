// Where this process runs, in one line: the CPU model, its protection-key
// and XSAVE features, and the kernel. Printed by the demo, the benchmarks and
// the tests, because behaviour differs by CPU (XSAVEC, XSTATE_BV bit 9) and by
// kernel (signal-frame PKRU since 6.12), and a figure or a pass means little
// without saying where it was taken.
#ifndef CORDON_RUNTIME_HARDWARE_PLATFORM_H_
#define CORDON_RUNTIME_HARDWARE_PLATFORM_H_

#include <string>

namespace cordon::hw {

// CPUID leaf 0xD sub-leaf 1: XSAVEC (compacted XSAVE) is available.
bool CpuHasXsavec();

// QEMU's TCG (the PKU VM) announces itself in CPUID's hypervisor leaf.
// There each WRPKRU flushes the emulated TLB, so benchmarks say their
// times mean nothing.
bool UnderTcg();

// E.g. "AMD EPYC 7B13 (pku, ospke, xsavec), Linux 6.18.4 x86_64" or
// "QEMU TCG CPU version 2.5+ (pku, ospke), Linux 6.1.0-27-cloud-amd64 x86_64".
std::string DescribePlatform();

}  // namespace cordon::hw

#endif
