// Gate config page access, gate symbol tables and the gate-site table.
#include "runtime/gates/gate_config.h"

#include <sys/mman.h>

extern "C" {
__thread uint32_t cordon_tls_records[CORDON_MAX_DOMAINS] __attribute__((tls_model(CORDON_TLS_MODEL))) = {
    ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u};

struct RawSite {
  int32_t relative;
  uint32_t info;
};
extern const RawSite __start_cordon_gate_sites[];
extern const RawSite __stop_cordon_gate_sites[];

// Three self-relative offsets (gate_abi.h, REWIND_SIZE). gate.S always
// contributes entries; the pass plugin's gates add theirs.
struct RawRewind {
  int32_t first, last, resume;
};
static_assert(sizeof(RawRewind) == REWIND_SIZE);
extern const RawRewind __start_cordon_signal_rewinds[];
extern const RawRewind __stop_cordon_signal_rewinds[];

// Written by the pass plugin (compiler-pass/GateAsm.cpp); absent, and so
// null, in programs without CORDON_TRUSTED functions.
struct RawEntry {
  int32_t gate;
  int32_t body;
  int32_t name;
  uint32_t domain;
};
extern const RawEntry __start_cordon_entries[] __attribute__((weak, visibility("hidden")));
extern const RawEntry __stop_cordon_entries[] __attribute__((weak, visibility("hidden")));
// The section CORDON_TRUSTED puts functions in until the plugin moves them.
extern const char __start_cordon_trusted_unprocessed[] __attribute__((weak, visibility("hidden")));
extern const char __stop_cordon_trusted_unprocessed[] __attribute__((weak, visibility("hidden")));

#define CORDON_DECLARE_GATES(v)                                                              \
  uint64_t cordon_gate_##v##_1(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_2(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_3(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_4(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_5(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_6(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_7(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_8(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_9(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);  \
  uint64_t cordon_gate_##v##_10(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t); \
  uint64_t cordon_gate_##v##_11(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t); \
  uint64_t cordon_gate_##v##_12(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t); \
  uint64_t cordon_gate_##v##_13(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t); \
  uint64_t cordon_gate_##v##_14(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t); \
  uint64_t cordon_gate_##v##_15(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
CORDON_DECLARE_GATES(avx)
CORDON_DECLARE_GATES(avx512)

#define CORDON_DECLARE_CALLOUT(v, d)                                                  \
  uint64_t cordon_callout_##v##_##d(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, \
                                    const cordon::gates::CalloutTarget*);
#define CORDON_DECLARE_CALLOUTS(v) \
  CORDON_DECLARE_CALLOUT(v, 1)     \
  CORDON_DECLARE_CALLOUT(v, 2)     \
  CORDON_DECLARE_CALLOUT(v, 3)     \
  CORDON_DECLARE_CALLOUT(v, 4)     \
  CORDON_DECLARE_CALLOUT(v, 5)     \
  CORDON_DECLARE_CALLOUT(v, 6)     \
  CORDON_DECLARE_CALLOUT(v, 7)     \
  CORDON_DECLARE_CALLOUT(v, 8)     \
  CORDON_DECLARE_CALLOUT(v, 9)     \
  CORDON_DECLARE_CALLOUT(v, 10)    \
  CORDON_DECLARE_CALLOUT(v, 11)    \
  CORDON_DECLARE_CALLOUT(v, 12)    \
  CORDON_DECLARE_CALLOUT(v, 13)    \
  CORDON_DECLARE_CALLOUT(v, 14)    \
  CORDON_DECLARE_CALLOUT(v, 15)
CORDON_DECLARE_CALLOUTS(avx)
CORDON_DECLARE_CALLOUTS(avx512)
}

namespace cordon::gates {

#define CORDON_GATE_TABLE(v)                                                                     \
  {                                                                                              \
    nullptr, cordon_gate_##v##_1, cordon_gate_##v##_2, cordon_gate_##v##_3, cordon_gate_##v##_4, \
        cordon_gate_##v##_5, cordon_gate_##v##_6, cordon_gate_##v##_7, cordon_gate_##v##_8,      \
        cordon_gate_##v##_9, cordon_gate_##v##_10, cordon_gate_##v##_11, cordon_gate_##v##_12,   \
        cordon_gate_##v##_13, cordon_gate_##v##_14, cordon_gate_##v##_15                         \
  }
const GateFn kAvxGates[CORDON_MAX_DOMAINS] = CORDON_GATE_TABLE(avx);
const GateFn kAvx512Gates[CORDON_MAX_DOMAINS] = CORDON_GATE_TABLE(avx512);

#define CORDON_CALLOUT_TABLE(v)                                                                              \
  {                                                                                                          \
    nullptr, cordon_callout_##v##_1, cordon_callout_##v##_2, cordon_callout_##v##_3, cordon_callout_##v##_4, \
        cordon_callout_##v##_5, cordon_callout_##v##_6, cordon_callout_##v##_7, cordon_callout_##v##_8,      \
        cordon_callout_##v##_9, cordon_callout_##v##_10, cordon_callout_##v##_11, cordon_callout_##v##_12,   \
        cordon_callout_##v##_13, cordon_callout_##v##_14, cordon_callout_##v##_15                            \
  }
const CalloutFn kAvxCallouts[CORDON_MAX_DOMAINS] = CORDON_CALLOUT_TABLE(avx);
const CalloutFn kAvx512Callouts[CORDON_MAX_DOMAINS] = CORDON_CALLOUT_TABLE(avx512);

GateConfig& MutableConfigForUpdate() {
  return *reinterpret_cast<GateConfig*>(cordon_gate_config);
}

bool SetConfigWritable(bool writable) {
  return mprotect(cordon_gate_config, CFG_SIZE, writable ? PROT_READ | PROT_WRITE : PROT_READ) == 0;
}

size_t SiteCount() {
  return static_cast<size_t>(__stop_cordon_gate_sites - __start_cordon_gate_sites);
}

Site SiteAt(size_t index) {
  const RawSite& raw = __start_cordon_gate_sites[index];
  const auto address = reinterpret_cast<uintptr_t>(&raw.relative) + static_cast<intptr_t>(raw.relative);
  return Site{address, static_cast<int>(raw.info & 0xff), static_cast<int>((raw.info >> 8) & 0xff),
              ((raw.info >> 16) & 1) != 0};
}

namespace {
uintptr_t Resolve(const int32_t& field) {
  return reinterpret_cast<uintptr_t>(&field) + static_cast<intptr_t>(field);
}
}  // namespace

size_t RewindCount() {
  return static_cast<size_t>(__stop_cordon_signal_rewinds - __start_cordon_signal_rewinds);
}

Rewind RewindAt(size_t index) {
  const RawRewind& raw = __start_cordon_signal_rewinds[index];
  return Rewind{Resolve(raw.first), Resolve(raw.last), Resolve(raw.resume)};
}

size_t GeneratedEntryCount() {
  if (__start_cordon_entries == nullptr) return 0;
  return static_cast<size_t>(__stop_cordon_entries - __start_cordon_entries);
}

GeneratedEntry GeneratedEntryAt(size_t index) {
  const RawEntry& raw = __start_cordon_entries[index];
  return GeneratedEntry{Resolve(raw.gate), Resolve(raw.body),
                        reinterpret_cast<const char*>(Resolve(raw.name)), static_cast<int>(raw.domain)};
}

bool HasUngatedTrustedCode() {
  return __start_cordon_trusted_unprocessed != __stop_cordon_trusted_unprocessed;
}

}  // namespace cordon::gates
