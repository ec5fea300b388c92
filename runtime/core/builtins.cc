// The builtin entries (builtins.h). One instance of each per domain index,
// so that the domain is a constant of the code and never an argument an
// untrusted caller could choose.
#include "runtime/core/builtins.h"

#include <linux/filter.h>

#include <utility>

#include "cordon/cordon.h"
#include "runtime/audit/audit.h"
#include "runtime/base/check.h"
#include "runtime/code/code_region.h"
#include "runtime/domains/virtual.h"
#include "runtime/gates/call_counts.h"
#include "runtime/gates/gate_config.h"
#include "runtime/lockdown/filter_loader.h"
#include "runtime/signals/signals.h"

namespace cordon::core {
namespace {

using domains::EncodeStatus;
using domains::kTrustedDomain;
using gates::Config;

// Does nothing but enter, or (a0 kCountQuery) says how often entry a1 of
// the domain was called: the counts are the domain's own memory, and the
// audit stream's gate_calls records of domains other than the trusted one
// are made from these answers (docs/audit.md).
template <int D>
uint64_t BuiltinEnter(uint64_t a0, uint64_t a1, uint64_t, uint64_t, uint64_t) {
  if (a0 == kCountQuery && a1 < gates::kCountedIds)
    return gates::EntryCallCount(D, static_cast<uint32_t>(a1));
  // Not the trusted domain's heap (the runtime's), nor a key slot's (its
  // TLS template; virtual domains' rights are their own).
  if (D != kTrustedDomain && !domains::virt::IsSlot(D)) {
    if (a0 == kSetRights) return EncodeStatus(domains::SetHeapRightsInside(D, static_cast<int>(a1)));
    if (a0 == kGetRights) return static_cast<uint64_t>(domains::HeapRightsInside(D));
  }
  return 0;
}

template <int D>
uint64_t BuiltinAlloc(uint64_t size, uint64_t alignment, uint64_t, uint64_t, uint64_t) {
  if (Config().locked) return EncodeStatus(CORDON_E_LOCKED);
  return domains::HeapAllocInside(D, size, alignment);
}

template <int D>
uint64_t BuiltinFree(uint64_t ptr, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (Config().locked) return EncodeStatus(CORDON_E_LOCKED);
  return domains::HeapFreeInside(D, reinterpret_cast<void*>(ptr));
}

template <int D>
uint64_t BuiltinRealloc(uint64_t ptr, uint64_t size, uint64_t, uint64_t, uint64_t) {
  if (Config().locked) return EncodeStatus(CORDON_E_LOCKED);
  return domains::HeapReallocInside(D, reinterpret_cast<void*>(ptr), size);
}

template <int D>
uint64_t BuiltinRegister(uint64_t fn, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (Config().locked) return EncodeStatus(CORDON_E_LOCKED);
  return domains::RegisterInside(D, fn);
}

template <int D>
uint64_t BuiltinSignalAction(uint64_t sig, uint64_t mode, uint64_t flags, uint64_t, uint64_t) {
  return signals::InstallActionInside(D, sig, mode, flags);
}

template <int D>
uint64_t BuiltinLoadFilter(uint64_t program, uint64_t count, uint64_t, uint64_t, uint64_t) {
  return lockdown::LoadFilterInside(D, reinterpret_cast<const sock_filter*>(program), count);
}

// The code region's operations, and from audit::kFirstOp on the audit
// stream's (runtime/audit/), both the trusted domain's only.
template <int D>
uint64_t BuiltinCode(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
  // The code region's pages are filled under the trusted domain's key.
  if constexpr (D != kTrustedDomain) return EncodeStatus(CORDON_E_WRONG_DOMAIN);
  if (op >= audit::kFirstOp && op <= audit::kLastOp) return audit::RunInside(op, a0, a1, a2, a3);
  return code::RunInside(op, a0, a1, a2);
}

// Every unused table slot: a call to an unregistered id stops the process.
// The gate passes the id in the sixth argument register.
template <int D>
uint64_t Unregistered(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t id) {
  internal::DieWithNumbers("gate violation: call to unregistered entry id ", id, " of domain ",
                           static_cast<unsigned long long>(D));
}

template <int D>
domains::BuiltinEntries MakeEntries() {
  domains::BuiltinEntries e{};
  e.entry[domains::kBuiltinEnter] = reinterpret_cast<uint64_t>(&BuiltinEnter<D>);
  e.entry[domains::kBuiltinAlloc] = reinterpret_cast<uint64_t>(&BuiltinAlloc<D>);
  e.entry[domains::kBuiltinFree] = reinterpret_cast<uint64_t>(&BuiltinFree<D>);
  e.entry[domains::kBuiltinRealloc] = reinterpret_cast<uint64_t>(&BuiltinRealloc<D>);
  e.entry[domains::kBuiltinRegister] = reinterpret_cast<uint64_t>(&BuiltinRegister<D>);
  e.entry[domains::kBuiltinSignalAction] = reinterpret_cast<uint64_t>(&BuiltinSignalAction<D>);
  e.entry[domains::kBuiltinLoadFilter] = reinterpret_cast<uint64_t>(&BuiltinLoadFilter<D>);
  e.entry[domains::kBuiltinCode] = reinterpret_cast<uint64_t>(&BuiltinCode<D>);
  e.unregistered = reinterpret_cast<uint64_t>(&Unregistered<D>);
  return e;
}
static_assert(domains::kBuiltinCode + 1 == CORDON_BUILTIN_COUNT, "every builtin id has an entry");

template <int... Ds>
domains::BuiltinEntries EntriesFor(int d, std::integer_sequence<int, Ds...>) {
  domains::BuiltinEntries result{};
  ((d == Ds ? (void)(result = MakeEntries<Ds>()) : (void)0), ...);
  return result;
}

}  // namespace

domains::BuiltinEntries BuiltinsFor(int d) {
  return EntriesFor(d, std::make_integer_sequence<int, CORDON_MAX_DOMAINS>{});
}

}  // namespace cordon::core
