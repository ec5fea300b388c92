// The last step of the lockdown, run inside the trusted domain: the
// seccomp filter, built in untrusted memory with a placeholder, gets the
// runtime's token inside trusted memory and is loaded for every thread.
#ifndef CORDON_RUNTIME_LOCKDOWN_FILTER_LOADER_H_
#define CORDON_RUNTIME_LOCKDOWN_FILTER_LOADER_H_

#include <linux/filter.h>

#include <cstdint>

namespace cordon::lockdown {

// The words the filter is built with; LoadFilterInside() replaces them with
// the token inside trusted memory, so libseccomp never sees the token.
inline constexpr uint64_t kPlaceholderToken[2] = {0xc0de5161c0de5160ull, 0xc0de5163c0de5162ull};

// A builtin (domains::kBuiltinLoadFilter), run inside domain d: copies the
// filter into d's memory, puts d's token in place of the placeholder, and
// loads it for every thread (TSYNC). Once only. Returns 0 or an encoded
// status.
uint64_t LoadFilterInside(int d, const sock_filter* program, uint64_t count);

}  // namespace cordon::lockdown

#endif
