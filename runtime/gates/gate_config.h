// C++ view of the gate config page and of the gate entry symbols (gate.S).
#ifndef CORDON_RUNTIME_GATES_GATE_CONFIG_H_
#define CORDON_RUNTIME_GATES_GATE_CONFIG_H_

#include <cstddef>
#include <cstdint>

#include "runtime/gates/gate_abi.h"

namespace cordon::gates {

struct DomainConfig {
  uint32_t pkru;
  uint32_t nrecords;
  uint64_t stride;
  uint64_t records;
  uint64_t table;
  uint64_t boot;
  uint64_t state;
  uint64_t region_start;
  uint64_t region_end;
};
static_assert(offsetof(DomainConfig, pkru) == DCFG_PKRU);
static_assert(offsetof(DomainConfig, nrecords) == DCFG_NRECORDS);
static_assert(offsetof(DomainConfig, stride) == DCFG_STRIDE);
static_assert(offsetof(DomainConfig, records) == DCFG_RECORDS);
static_assert(offsetof(DomainConfig, table) == DCFG_TABLE);
static_assert(offsetof(DomainConfig, boot) == DCFG_BOOT);
static_assert(offsetof(DomainConfig, state) == DCFG_STATE);
static_assert(offsetof(DomainConfig, region_start) == DCFG_REGION_START);
static_assert(offsetof(DomainConfig, region_end) == DCFG_REGION_END);
static_assert(sizeof(DomainConfig) == CFG_DOMAIN_STRIDE);

inline constexpr uint32_t kMaxTaggedRanges = 64;

struct GateConfig {
  uint32_t untrusted_pkru;
  uint32_t locked;
  uint32_t wide_scrub;
  uint32_t domain_count;
  uint32_t sigbuf_pages;
  uint32_t xstate_size;
  uint32_t pkru_offset;
  uint32_t signal_altstack;
  uint64_t xfeatures;
  uint64_t code_start;  // 0 when the process has no code region
  uint64_t code_end;
  uint32_t mxcsr_mask;
  uint32_t altstack_pages;
  DomainConfig domains[CORDON_MAX_DOMAINS];
  // The runtime's own "block every signal" set: the one rt_sigprocmask set
  // the lockdown's filter lets through untrapped on kernels that write
  // frames anywhere (docs/signals.md).
  uint64_t signal_block_all;
  // 1 when the lockdown refuses with EPERM (CORDON_VIOLATION_ERRNO_FOR_TESTS)
  // rather than stopping the process; read by the runtime's clone, which
  // refuses what the filter's clone rules refuse (runtime/signals).
  uint32_t violation_errno;
  // Memory outside the runtime's regions that carried a domain's key at
  // lockdown (the program tagged it with cordon_domain_pkey()): trusted
  // memory that IsUntrustedRange() refuses like the regions.
  uint32_t tagged_count;
  struct TaggedRange {
    uint64_t start, end;
  } tagged[kMaxTaggedRanges];
  // The lockdown's violation handler (kill mode), or 0: a seccomp SIGSYS is
  // always handed to it from here, never through the program's handler
  // table, which lives in memory untrusted code can write.
  uint64_t violation_handler;
  // The audit stream (runtime/audit/): its state in the trusted domain's
  // heap, or 0 when there is no stream, and its descriptor, which the
  // lockdown's filter guards. Set once, at cordon_init().
  uint64_t audit_state;
  int32_t audit_fd;
  // How far below the fs base cordon_tls_records[trusted domain] lies (set
  // up with the stream, from the initial thread): untrusted code finds its
  // record index there without a pointer that untrusted memory holds.
  uint64_t tls_slot_below;
  // Virtual domains (domains/virtual.h), 0 until the first one is made:
  // the guarded block that holds the directory and then the domains'
  // regions, one every vstride bytes from vregions; how many exist; the
  // keys; and the physical domains they run on (the key slots).
  struct Virtual {
    uint64_t block;     // the directory, at the start of the block
    uint64_t vregions;  // region 0
    uint64_t vstride;
    uint64_t table_bytes;  // each region starts with its entry table
    uint32_t count;
    uint32_t capacity;
    int32_t parking_key;
    int32_t directory_key;
    uint32_t nslots;
    uint8_t slot_domain[CORDON_MAX_DOMAINS];  // slot -> physical domain index
    uint8_t slot_plus1[CORDON_MAX_DOMAINS];   // physical domain index -> its slot + 1, 0 if none
    uint64_t heap_bytes;
  } virt;
};
static_assert(offsetof(GateConfig, locked) == CFG_LOCKED);
static_assert(offsetof(GateConfig, wide_scrub) == CFG_WIDE_SCRUB);
static_assert(offsetof(GateConfig, domain_count) == CFG_DOMAIN_COUNT);
static_assert(offsetof(GateConfig, sigbuf_pages) == CFG_SIGBUF_PAGES);
static_assert(offsetof(GateConfig, xstate_size) == CFG_XSTATE_SIZE);
static_assert(offsetof(GateConfig, pkru_offset) == CFG_PKRU_OFFSET);
static_assert(offsetof(GateConfig, xfeatures) == CFG_XFEATURES);
static_assert(offsetof(GateConfig, code_start) == CFG_CODE_START);
static_assert(offsetof(GateConfig, code_end) == CFG_CODE_END);
static_assert(offsetof(GateConfig, signal_altstack) == CFG_SIGNAL_ALTSTACK);
static_assert(offsetof(GateConfig, mxcsr_mask) == CFG_MXCSR_MASK);
static_assert(offsetof(GateConfig, altstack_pages) == CFG_ALTSTACK_PAGES);
static_assert(offsetof(GateConfig, domains) == CFG_DOMAINS);
static_assert(offsetof(GateConfig, signal_block_all) == CFG_SIGNAL_BLOCK_ALL);
static_assert(offsetof(GateConfig, audit_state) == CFG_AUDIT_STATE);
static_assert(sizeof(GateConfig) <= CFG_SIZE);

// The per-thread record at the top of each trusted stack (gate_abi.h).
struct ThreadRecord {
  uint64_t saved_rsp;
  uint32_t busy;
  uint32_t owner;
  uint64_t reserved0;
  uint64_t callout_rsp;
  uint64_t signal_frame;
  uint64_t caller_fs;  // the fs base of the gate's caller, restored on the way out
  uint64_t signal_fs;  // the interrupted fs base while a signal handler runs
  uint64_t tcb;        // the record's trusted TCB: its fs base inside the domain
  // Gate calls made on this record, by entry id (the last two: the
  // pass-generated gates' bucket, a spare). Written by the gates only,
  // by the thread that holds the record; read by call_counts.cc.
  uint64_t calls[REC_COUNT_SLOTS];

  // In use: a thread runs on this record's stack (or is suspended in a
  // callback or a signal handler it left it for).
  bool InUse() const {
    return __atomic_load_n(&saved_rsp, __ATOMIC_ACQUIRE) != reinterpret_cast<uint64_t>(this);
  }
};
static_assert(offsetof(ThreadRecord, busy) == REC_BUSY);
static_assert(offsetof(ThreadRecord, owner) == REC_OWNER);
static_assert(offsetof(ThreadRecord, saved_rsp) == REC_SAVED_RSP);
static_assert(offsetof(ThreadRecord, callout_rsp) == REC_CALLOUT_RSP);
static_assert(offsetof(ThreadRecord, signal_frame) == REC_SIGNAL_FRAME);
static_assert(offsetof(ThreadRecord, caller_fs) == REC_CALLER_FS);
static_assert(offsetof(ThreadRecord, signal_fs) == REC_SIGNAL_FS);
static_assert(offsetof(ThreadRecord, tcb) == REC_TCB);
static_assert(offsetof(ThreadRecord, calls) == REC_COUNTS);
static_assert(REC_SIZE % 16 == 0, "the record is the initial stack pointer");

// Where a record sits in its slot (gate_abi.h): the one computation of it,
// for every C++ path that goes between the two.
inline uint64_t RecordOfSlot(uint64_t slot, uint64_t stride) {
  return slot + stride - REC_SIZE;
}
inline uint64_t SlotOfRecord(uint64_t record, uint64_t stride) {
  return record + REC_SIZE - stride;
}

// The outbound gate's target description (CALLOUT_* in gate_abi.h).
struct CalloutTarget {
  uint64_t fn;
  ThreadRecord* record;
};
static_assert(offsetof(CalloutTarget, fn) == CALLOUT_FN);
static_assert(offsetof(CalloutTarget, record) == CALLOUT_RECORD);
static_assert(sizeof(ThreadRecord) == REC_SIZE);

}  // namespace cordon::gates

extern "C" {
// Defined in gate.S: one page-aligned page.
extern unsigned char cordon_gate_config[CFG_SIZE];
}

namespace cordon::gates {

// The read-only config page. Trusted code reads its state only through
// here or through the domain's own memory, never through a pointer that
// untrusted code could overwrite.
inline const GateConfig& Config() {
  return *reinterpret_cast<const GateConfig*>(cordon_gate_config);
}
// Makes the page writable, runs fn on it, and makes it read-only again.
// Only during set-up (before lockdown). Returns false if mprotect failed.
template <typename F>
bool UpdateConfig(F&& fn);
bool SetConfigWritable(bool writable);
GateConfig& MutableConfigForUpdate();

// A gate: a0..a4 are the entry's arguments, id selects the entry.
using GateFn = uint64_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
// The gates, by variant and domain (index 0 is unused).
extern const GateFn kAvxGates[CORDON_MAX_DOMAINS];
extern const GateFn kAvx512Gates[CORDON_MAX_DOMAINS];

// The gate for a domain (1..15) in the variant the config selects.
inline GateFn GateFor(int domain) {
  return (Config().wide_scrub ? kAvx512Gates : kAvxGates)[domain & (CORDON_MAX_DOMAINS - 1)];
}

// An outbound gate: called from inside a domain, it runs target->fn(a0..a4)
// as untrusted code and returns its result.
using CalloutFn = uint64_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, const CalloutTarget*);
extern const CalloutFn kAvxCallouts[CORDON_MAX_DOMAINS];
extern const CalloutFn kAvx512Callouts[CORDON_MAX_DOMAINS];
inline CalloutFn CalloutFor(int domain) {
  return (Config().wide_scrub ? kAvx512Callouts : kAvxCallouts)[domain & (CORDON_MAX_DOMAINS - 1)];
}

// Gate sites from the cordon_gate_sites section.
struct Site {
  uintptr_t address;
  int kind;
  int domain;
  bool wide;
};
size_t SiteCount();
Site SiteAt(size_t index);

// Signal rewind windows (section cordon_signal_rewinds, gate_abi.h).
struct Rewind {
  uintptr_t first, last, resume;
};
size_t RewindCount();
Rewind RewindAt(size_t index);

// Entry points generated by the pass plugin (section cordon_entries).
struct GeneratedEntry {
  uintptr_t gate;
  uintptr_t body;
  const char* name;
  int domain;
};
size_t GeneratedEntryCount();
GeneratedEntry GeneratedEntryAt(size_t index);
// Whether code marked CORDON_TRUSTED was linked in without the pass plugin
// (it is then still in the section the annotation puts it in).
bool HasUngatedTrustedCode();

template <typename F>
bool UpdateConfig(F&& fn) {
  if (!SetConfigWritable(true)) return false;
  fn(MutableConfigForUpdate());
  return SetConfigWritable(false);
}

}  // namespace cordon::gates

extern "C" {
// TLS record index per domain (initially 0xffffffff: no record yet). The
// static library reads it local-exec (the main executable); libcordon.so
// (CORDON_SHARED) initial-exec, through a GOT slot that RELRO makes
// read-only before main (gate.S, TLS_BASE). Either way it sits in the
// static TLS block, which is what the trusted TCBs are built from.
#ifdef CORDON_SHARED
#define CORDON_TLS_MODEL "initial-exec"
#else
#define CORDON_TLS_MODEL "local-exec"
#endif
extern __thread uint32_t cordon_tls_records[CORDON_MAX_DOMAINS] __attribute__((tls_model(CORDON_TLS_MODEL)));
}

#endif
