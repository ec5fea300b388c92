// Inspection of a live process: every executable mapping listed in
// /proc/PID/maps ([vsyscall] excepted: the kernel emulates it), with hits
// spanning adjacent mappings found, and symbols from the files behind them.
#ifndef CORDON_RUNTIME_INSPECTOR_PROCESS_H_
#define CORDON_RUNTIME_INSPECTOR_PROCESS_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "runtime/base/expected.h"
#include "runtime/inspector/inspect.h"

namespace cordon::inspector {

struct Mapping {
  uint64_t start, end, offset;
  std::string perms;  // "r-xp"
  std::string path;   // "[vdso]", "[anonymous]" or a file
};

// Every mapping of a process ("self" or a pid) but [vsyscall], in address
// order.
Expected<std::vector<Mapping>> AllMappings(const std::string& pid);
// The executable mappings of a process ("self" or a pid).
Expected<std::vector<Mapping>> ExecutableMappings(const std::string& pid);
// Those, every mapping that is not writable of a file that has an
// executable mapping (its constants, and its relocations once read-only),
// and the vDSO's data pages, in address order.
Expected<std::vector<Mapping>> CodeAndItsReadOnlyData(const std::string& pid);

// The files behind this process's executable mappings that have a
// non-empty section named `name`, read from their section headers (no
// symbols). A file that cannot be read any more (replaced since it was
// mapped) is passed over.
Expected<std::vector<std::string>> LoadedFilesWithSection(const std::string& name);

// Inspects them. Readable mappings of this process are read in place;
// execute-only ones, and every mapping of another process, through
// /proc/PID/mem. gate_sites are absolute addresses; with
// sites_from_files, the gate-site tables of the files behind the mappings
// count too (for another process). Symbols come from dladdr for this
// process, and from the files behind the mappings for another.
Expected<std::vector<Finding>> InspectProcess(const std::string& pid, const std::set<uint64_t>& gate_sites,
                                              bool sites_from_files, const Disassembler& dis);
// The same; with describe_gate_sites false, gate sites are classified by
// address alone, with no Capstone context (what cordon_init() does: the
// runtime's own gate sites are most of the hits in a process).
Expected<std::vector<Finding>> InspectProcess(const std::string& pid, const std::set<uint64_t>& gate_sites,
                                              bool sites_from_files, const Disassembler& dis,
                                              bool describe_gate_sites);

}  // namespace cordon::inspector

#endif
