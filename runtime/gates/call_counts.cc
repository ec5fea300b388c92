// Gate-call counts per entry point (call_counts.h): the sum of the
// per-record counts that the gates add to (gate_abi.h, REC_COUNTS).
#include "runtime/gates/call_counts.h"

#include "runtime/base/check.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/pkey.h"

namespace cordon::gates {

uint64_t EntryCallCount(int domain, uint32_t id) {
  const GateConfig& c = Config();
  if (domain < 1 || domain > static_cast<int>(c.domain_count) || domain >= CORDON_MAX_DOMAINS ||
      id >= kCountedIds) {
    return 0;
  }
  const DomainConfig& dc = c.domains[domain];
  // The domain's key is where its PKRU differs from the untrusted one;
  // the records can be read only if that key's access-disable bit is
  // clear. A read without it would fault on the domain's key: stop with
  // a message that says why instead.
  const uint32_t key_bits = dc.pkru ^ c.untrusted_pkru;
  if (key_bits == 0 || (hw::ReadPkru() & key_bits & 0x55555555u) != 0) {
    internal::DieWithNumbers("gate-call counts of domain ", static_cast<unsigned>(domain),
                             " read without that domain's rights; process stopped");
  }
  uint64_t sum = 0;
  for (uint32_t i = 0; i < dc.nrecords; ++i) {
    const auto* r = reinterpret_cast<const ThreadRecord*>(dc.records + i * dc.stride);
    // A record no thread ever claimed has counted nothing (its owner is
    // set before its first call and never cleared): skip it untouched.
    if (__atomic_load_n(&r->owner, __ATOMIC_ACQUIRE) == 0) continue;
    sum += __atomic_load_n(&r->calls[id], __ATOMIC_RELAXED);
  }
  return sum;
}

}  // namespace cordon::gates
