// Gate-call counts per entry point, for the audit stream (docs/audit.md,
// "gate_calls"). The gates count every call of an entry in the calling
// thread's record, in the domain's memory (gate_abi.h, REC_COUNTS;
// docs/gates.md, "Call counts"); this sums them.
#ifndef CORDON_RUNTIME_GATES_CALL_COUNTS_H_
#define CORDON_RUNTIME_GATES_CALL_COUNTS_H_

#include <cstdint>

#include "runtime/gates/gate_abi.h"

namespace cordon::gates {

// The id under which the pass-generated gates of a domain count their
// direct calls, all of them together (a generated gate calls its body
// without a table id; its entry's own id counts the calls that come
// through cordon_call()). One past the table's ids.
constexpr uint32_t kGeneratedGateCalls = REC_COUNT_GENERATED;
// Ids that have a count: 0 .. kGeneratedGateCalls.
constexpr uint32_t kCountedIds = kGeneratedGateCalls + 1;

// Calls of entry `id` of `domain` since cordon_init() (a fork child's
// include its parent's before the fork), summed over every thread record
// of the domain (threads that exited included: a reused record goes on
// counting). 0 for an unknown domain or id. Called with the domain's
// rights (its records are its memory: inside the domain); without them
// the process stops. Other threads may be counting meanwhile: each
// record's count is read once, atomically, so the sum is at least every
// call that returned before the read began.
uint64_t EntryCallCount(int domain, uint32_t id);

// fn(id, count) for each id of `domain` with a non-zero count, in id
// order (kGeneratedGateCalls last). Same conditions as EntryCallCount.
template <typename F>
void ForEachEntryCallCount(int domain, F&& fn) {
  for (uint32_t id = 0; id < kCountedIds; ++id) {
    if (const uint64_t n = EntryCallCount(domain, id); n != 0) fn(id, n);
  }
}

}  // namespace cordon::gates

#endif
