// Domains: a protection key, a reserved and tagged region, a per-thread
// record pool with trusted stacks, an entry table and a heap.
//
// Everything a domain's code trusts lives in that domain's region (the
// DomainState at its start) or in the read-only gate config page; nothing
// is reached through memory that untrusted code can write.
#ifndef CORDON_RUNTIME_DOMAINS_DOMAIN_H_
#define CORDON_RUNTIME_DOMAINS_DOMAIN_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cordon/cordon.h"
#include "runtime/base/expected.h"
#include "runtime/domains/trusted_tls.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/pkey.h"
#include "runtime/heap/trusted_heap.h"

namespace cordon::domains {

// The trusted domain: the first one cordon_init() makes, whose code the
// runtime itself runs (the filter loader, signals, the code region, the
// alternate signal stacks); cordon_trusted_domain() after init.
inline constexpr int kTrustedDomain = CORDON_TRUSTED_DOMAIN;  // gate_abi.h

// Ids 0..CORDON_BUILTIN_COUNT-1 of every domain's table: the runtime's own
// entry points, reached through the same gate as the user's.
enum Builtin : uint32_t {
  kBuiltinEnter = 0,  // does nothing; the gate's exit drops the caller's rights
  kBuiltinAlloc = 1,
  kBuiltinFree = 2,
  kBuiltinRealloc = 3,
  kBuiltinRegister = 4,
  kBuiltinSignalAction = 5,  // signals::InstallActionInside
  kBuiltinLoadFilter = 6,    // lockdown::LoadFilterInside
  kBuiltinCode = 7,          // code::RunInside (the trusted domain only)
};

// The builtins' functions for one domain, by id, and the one every other
// slot gets (it stops the process). They call into the layers above this
// one (signals, code, lockdown), so core/builtins.cc makes them.
struct BuiltinEntries {
  uint64_t entry[CORDON_BUILTIN_COUNT];
  uint64_t unregistered;
};

// What CreateDomain takes from the layers above.
struct DomainSetup {
  BuiltinEntries (*builtins_for)(int d);  // core::BuiltinsFor
  const uint64_t* signal_token;           // signals::PendingToken(): two words
  // A second key the domain's PKRU grants read-write (hw::kNoKey: none):
  // the virtual domains' directory, for the key slots (domains/virtual.h).
  int extra_key = hw::kNoKey;
  size_t heap_bytes = 0;  // 0: the options' heap_size
};

// Lives at the start of the domain's region.
struct DomainState {
  uint64_t signal_token[2];  // DSTATE_SIGNAL_TOKEN: the gates' rt_sigreturn reads it
  std::atomic<uint32_t> next_entry;
  heap::TrustedHeap* heap;
  const TlsTemplate* tls;  // this domain's copy (trusted_tls.h), in its heap
  uint64_t canary;         // the stack protector's guard in its records' TCBs
  // The block the domain's own code finds its state by (cordon_domain_root):
  // set once, from inside, before the lockdown, so that no pointer to the
  // domain's state need be kept in untrusted memory.
  std::atomic<void*> root;
  // CORDON_RIGHTS_READ_WRITE ^ the heap's rights (cordon_domain_set_rights).
  std::atomic<uint32_t> revoked;
  // Entry functions, by id, on pages of their own: read-only from the
  // lockdown on (SealEntryTables), when no entry can be registered, so that
  // no write of trusted code can add one.
  alignas(4096) uint64_t table[CORDON_TABLE_SIZE];
};

static_assert(offsetof(DomainState, signal_token) == DSTATE_SIGNAL_TOKEN);

// Pages of signal-return buffer and alternate signal stack in each record
// slot: the signal layer's figures (signals::BufferPages()), read from the
// config page, where signals::Prepare() puts them before any domain exists.
size_t SlotBufferPages();
// Offset of the stack in each record slot: the read-only page, the
// signal-return buffer, the record's TCB area and the guard page come first
// (gate_abi.h).
size_t SlotStackOffset();
size_t SlotStackOffset(size_t buffer_pages);
// Offset of the TCB area (trusted_tls.h) in each record slot.
size_t SlotTcbOffset();

struct Layout {
  size_t state_bytes;  // DomainState + heap object + heap metadata
  size_t stride;       // guard page + stack
  uint32_t nrecords;   // per-thread records (the bootstrap one comes after)
  size_t records_bytes;
  size_t heap_bytes;
  size_t total;
};

// Checked options and the region layout they give, with buffer_pages
// (SlotBufferPages()) in each record slot; false when the options are out
// of range.
bool ComputeLayout(const cordon_options& opts, size_t buffer_pages, Layout* out);

// Allocates a key, reserves and tags the region, fills the state and config,
// then drops the calling thread's rights with one call through the gate.
// Returns the new domain's index, or an Error with its cordon_status.
// Caller serialises and checks the domain limit.
Expected<int> CreateDomain(const cordon_options& opts, const DomainSetup& setup);

// Builds a fresh trusted TCB (trusted_tls.h) in record r's slot of domain
// d for thread tid, and stores its thread pointer in the record. Inside d.
void InstallTrustedTcb(int d, gates::ThreadRecord* r, uint32_t tid);

// Makes every domain's entry table read-only (keeping its key) and reads
// the protection back; at the lockdown, after which no entry can be
// registered. *why says what failed.
bool SealEntryTables(std::string* why);

// Where the calling thread stands relative to domain d.
enum class Position { kUntrusted, kInside, kElsewhere };
Position PositionFor(int d);

inline bool Exists(int d) {
  return d >= 1 && d <= static_cast<int>(gates::Config().domain_count);
}
int Current();
// Domain d's protection key: the one PKRU field that differs from the
// untrusted PKRU (hw::kNoKey if none).
int KeyOf(int d);
// The runtime's token (DomainState::signal_token), which the lockdown's
// filter asks of rt_sigreturn, rt_sigaction and pkey_mprotect. Only code
// inside domain d can read it.
inline const uint64_t* TokenOf(int d) {
  return reinterpret_cast<const DomainState*>(gates::Config().domains[d].state)->signal_token;
}
int DomainOf(const void* addr);

// cordon_domain_set_root() and cordon_domain_root() for domain d, which the
// caller is inside (its PKRU grants d's key): the state is d's memory.
int SetRootInside(int d, void* root);
void* RootInside(int d);
bool IsUntrustedRange(const void* addr, size_t len);

// Results of gate calls that return a pointer or a status: statuses are the
// small negative numbers, which are never user-space addresses.
inline uint64_t EncodeStatus(int status) {
  return static_cast<uint64_t>(static_cast<int64_t>(status));
}
inline bool IsStatus(uint64_t v) {
  const auto s = static_cast<int64_t>(v);
  return s < 0 && s >= -4095;
}

// The cordon_status in a gate call's result (CORDON_OK for a value).
inline int StatusOf(uint64_t v) {
  return IsStatus(v) ? static_cast<int>(static_cast<int64_t>(v)) : CORDON_OK;
}

// Runs a builtin for domain d: through the gate from untrusted code,
// directly (inside()) from inside d, refused anywhere else.
template <typename Inside>
uint64_t RunFor(int d, uint32_t builtin, uint64_t a0, uint64_t a1, Inside inside, uint64_t a2 = 0,
                uint64_t a3 = 0) {
  switch (PositionFor(d)) {
    case Position::kUntrusted:
      return gates::GateFor(d)(a0, a1, a2, a3, 0, builtin);
    case Position::kInside:
      return inside();
    case Position::kElsewhere:
      break;
  }
  return EncodeStatus(CORDON_E_WRONG_DOMAIN);
}

// Domain d's heap arena, as its options lay it out (the lockdown's filter
// lets the domain move these pages on its key: cordon_domain_set_rights).
struct Span {
  uint64_t start, end;
};
Span HeapSpan(int d, const cordon_options& opts);
// Inside domain d: every thread's rights on its heap, at once (the page
// protection, on d's key); and the rights now.
int SetHeapRightsInside(int d, int rights);
int HeapRightsInside(int d);

// The cordon_status of a heap error.
int StatusFromHeapError(heap::HeapError e);

// Heap operations as run inside domain d (the caller must be inside d).
uint64_t HeapAllocInside(int d, size_t size, size_t alignment);
uint64_t HeapFreeInside(int d, void* ptr);
uint64_t HeapReallocInside(int d, void* ptr, size_t size);
uint64_t RegisterInside(int d, uint64_t fn);

// The busy record whose trusted stack holds sp, in domain d (the caller must
// be inside d); nullptr if sp is on no entry's trusted stack there.
gates::ThreadRecord* RecordForStack(int d, const void* sp);

// Whether thread tid of this process still exists (a signal 0 only
// checks; in a forked child, the parent's threads do not). Raw system
// calls: callable with a domain's rights.
bool ThreadAlive(uint32_t tid);

// pthread_atfork child handler: the forking thread re-attaches in the child.
void ResetThreadRecordsInChild();

}  // namespace cordon::domains

#endif
