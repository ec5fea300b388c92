// The runtime's builtin entry points (domains::Builtin): the code behind
// ids 0..CORDON_BUILTIN_COUNT-1 of every domain's table. Here, at the top,
// because they call into every layer below: the heap and the table
// (domains), signal actions (signals), the filter loader (lockdown) and the
// code region (code).
#ifndef CORDON_RUNTIME_CORE_BUILTINS_H_
#define CORDON_RUNTIME_CORE_BUILTINS_H_

#include "runtime/domains/domain.h"

namespace cordon::core {

// The entries for domain d (1..CORDON_MAX_DOMAINS-1), each a function that
// runs inside d, on a trusted stack; for domains::DomainSetup.
domains::BuiltinEntries BuiltinsFor(int d);

// The enter builtin's first argument that asks for an entry's call count
// instead (the audit stream's gate_calls; the second argument is the id).
inline constexpr uint64_t kCountQuery = 0xc0c0c0c0a0d17ull;
// ... or that sets the rights on the domain's heap (the second argument: a
// CORDON_RIGHTS_* value), or asks for them (cordon_domain_set_rights).
inline constexpr uint64_t kSetRights = 0xc0c0c0c0a0d18ull;
inline constexpr uint64_t kGetRights = 0xc0c0c0c0a0d19ull;

}  // namespace cordon::core

#endif
