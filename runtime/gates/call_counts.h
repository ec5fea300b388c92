// Gate-call counts per entry point, for the audit stream (docs/audit.md,
// "gate_calls"). The gates count every call of a registered entry in the
// calling thread's record, in the domain's memory; this sums them.
#ifndef CORDON_RUNTIME_GATES_CALL_COUNTS_H_
#define CORDON_RUNTIME_GATES_CALL_COUNTS_H_

#include <cstdint>

namespace cordon::gates {

// Calls of entry `id` of `domain` since cordon_init(), summed over every
// thread record of the domain (threads that exited included). Called from
// inside the domain (its records are its memory). 0 for an unknown domain
// or id.
uint64_t EntryCallCount(int domain, uint32_t id);

}  // namespace cordon::gates

#endif
