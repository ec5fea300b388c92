// Gate-call counts per entry point (call_counts.h).
// PLACEHOLDER until the gates count calls: every count reads 0.
#include "runtime/gates/call_counts.h"

namespace cordon::gates {

uint64_t EntryCallCount(int, uint32_t) { return 0; }

}  // namespace cordon::gates
