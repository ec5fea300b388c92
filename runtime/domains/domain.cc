// Domain creation and thread records. The builtin entries' code is above
// this layer (core/builtins.cc); CreateDomain puts what it is given in the table.
#include "runtime/domains/domain.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>

#include "runtime/base/check.h"
#include "runtime/hardware/memory_guard.h"
#include "runtime/hardware/pkey.h"
#include "runtime/hardware/readback.h"
#include "runtime/hardware/smaps.h"

namespace cordon::domains {
namespace {

using gates::Config;

constexpr size_t kPage = 4096;
constexpr size_t RoundUp(size_t v, size_t to) {
  return (v + to - 1) / to * to;
}

DomainState* StateOf(int d) {
  return reinterpret_cast<DomainState*>(Config().domains[d].state);
}

// The heap's thread slot of the calling thread, inside domain d: the index
// of the record slot whose trusted stack it runs on (the gate gives each
// record's stack to one thread at a time and refuses nested entries, and
// the stack pointer of trusted code is the gate's). Beyond the records (the
// bootstrap record) the heap uses its shared slot. The heap takes the slot
// only as a choice of which slab pages to use: each slot has its own lock,
// so even a wrong answer could cost contention, never correctness.
uint32_t HeapThreadSlot(uintptr_t d) {
  const auto& c = Config().domains[d];
  const auto sp = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  const uint64_t first_slot = gates::SlotOfRecord(c.records, c.stride);
  if (c.stride == 0 || sp < first_slot) return UINT32_MAX;
  const uint64_t index = (sp - first_slot) / c.stride;
  return index < c.nrecords ? static_cast<uint32_t>(index) : UINT32_MAX;
}

}  // namespace

int StatusFromHeapError(heap::HeapError e) {
  switch (e) {
    case heap::HeapError::kInvalidArgument:
      return CORDON_E_INVALID_ARGUMENT;
    case heap::HeapError::kNoMemory:
      return CORDON_E_NO_MEMORY;
    case heap::HeapError::kDoubleFree:
      return CORDON_E_DOUBLE_FREE;
    case heap::HeapError::kInvalidPointer:
      return CORDON_E_INVALID_POINTER;
  }
  return CORDON_E_INVALID_ARGUMENT;
}

uint64_t HeapAllocInside(int d, size_t size, size_t alignment) {
  const auto r = StateOf(d)->heap->Allocate(size, alignment);
  if (!r.ok()) return EncodeStatus(StatusFromHeapError(*r.error));
  return reinterpret_cast<uint64_t>(r.ptr);
}

uint64_t HeapFreeInside(int d, void* ptr) {
  const auto err = StateOf(d)->heap->Free(ptr);
  return err ? EncodeStatus(StatusFromHeapError(*err)) : 0;
}

uint64_t HeapReallocInside(int d, void* ptr, size_t size) {
  const auto r = StateOf(d)->heap->Reallocate(ptr, size);
  if (!r.ok()) return EncodeStatus(StatusFromHeapError(*r.error));
  return reinterpret_cast<uint64_t>(r.ptr);
}

uint64_t RegisterInside(int d, uint64_t fn) {
  if (fn == 0) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  DomainState* s = StateOf(d);
  uint32_t id = s->next_entry.load();
  do {
    if (id >= CORDON_TABLE_SIZE) return EncodeStatus(CORDON_E_TABLE_FULL);
  } while (!s->next_entry.compare_exchange_weak(id, id + 1));
  __atomic_store_n(&s->table[id], fn, __ATOMIC_RELEASE);
  return id;
}

int SetRootInside(int d, void* root) {
  void* expected = nullptr;
  // Once: a second set-up (or a racing one) must not move the root that
  // the domain's code already trusts.
  if (!StateOf(d)->root.compare_exchange_strong(expected, root)) return CORDON_E_ROOT_SET;
  return CORDON_OK;
}

void* RootInside(int d) {
  return StateOf(d)->root.load(std::memory_order_acquire);
}

Span HeapSpan(int d, const cordon_options& opts) {
  Layout l;
  if (!Exists(d) || !ComputeLayout(opts, SlotBufferPages(), &l)) return {0, 0};
  const uint64_t start = Config().domains[d].region_start + l.state_bytes + l.records_bytes;
  return {start, start + l.heap_bytes};
}

int SetHeapRightsInside(int d, int rights) {
  if (rights != CORDON_RIGHTS_NONE && rights != CORDON_RIGHTS_READ && rights != CORDON_RIGHTS_READ_WRITE)
    return CORDON_E_INVALID_ARGUMENT;
  DomainState* s = StateOf(d);
  const int prot = rights == CORDON_RIGHTS_READ_WRITE ? PROT_READ | PROT_WRITE
                   : rights == CORDON_RIGHTS_READ     ? PROT_READ
                                                      : PROT_NONE;
  // The heap object and its metadata sit in the state pages, before the
  // arena: only the blocks change. One mprotect: its return implies the
  // kernel's TLB shootdown on every CPU that runs this process.
  if (hw::SysPkeyMprotectWithToken(s->heap->arena(), s->heap->arena_bytes(), prot, KeyOf(d), TokenOf(d)) != 0)
    return CORDON_E_SYSCALL;
  s->revoked.store(static_cast<uint32_t>(CORDON_RIGHTS_READ_WRITE ^ rights));
  return CORDON_OK;
}

int HeapRightsInside(int d) {
  return static_cast<int>(CORDON_RIGHTS_READ_WRITE ^ StateOf(d)->revoked.load());
}

size_t SlotBufferPages() {
  return size_t{Config().sigbuf_pages} + Config().altstack_pages;
}

size_t SlotTcbOffset() {
  return (SLOT_READONLY_PAGES + SlotBufferPages()) * kPage;
}

size_t SlotStackOffset(size_t buffer_pages) {
  return (SLOT_READONLY_PAGES + buffer_pages) * kPage + TcbAreaBytes() + SLOT_GUARD_PAGES * kPage;
}

size_t SlotStackOffset() {
  return SlotStackOffset(SlotBufferPages());
}

bool ComputeLayout(const cordon_options& opts, size_t buffer_pages, Layout* out) {
  if (opts.max_threads == 0 || opts.max_threads > 4096) return false;
  if (opts.stack_size < 16 * 1024 || opts.stack_size > (size_t{1} << 30)) return false;
  if (opts.heap_size < 64 * 1024 || opts.heap_size > (size_t{1} << 40)) return false;
  Layout l{};
  l.heap_bytes = RoundUp(opts.heap_size, kPage);
  l.state_bytes = RoundUp(RoundUp(sizeof(DomainState), 64) + sizeof(heap::TrustedHeap) +
                              heap::TrustedHeap::MetadataBytes(l.heap_bytes),
                          kPage);
  // Each slot: the signal-return pages (gate_abi.h), the TCB area, a guard
  // page, the stack, and at its top the record with its call counts (which
  // do not come out of the stack the options ask for).
  l.stride = SlotStackOffset(buffer_pages) + RoundUp(opts.stack_size + REC_SIZE, kPage);
  l.nrecords = opts.max_threads;
  l.records_bytes = (l.nrecords + 1) * l.stride;
  l.total = l.state_bytes + l.records_bytes + l.heap_bytes;
  if (l.total > hw::kGuard) return false;  // must fit the block the lockdown reserves for it
  *out = l;
  return true;
}

Expected<int> CreateDomain(const cordon_options& options, const DomainSetup& setup) {
  cordon_options opts = options;
  if (setup.heap_bytes != 0) opts.heap_size = setup.heap_bytes;
  Layout l;
  if (!ComputeLayout(opts, SlotBufferPages(), &l)) return Error{{}, CORDON_E_INVALID_ARGUMENT};
  const int d = static_cast<int>(Config().domain_count) + 1;
  if (d >= CORDON_MAX_DOMAINS) return Error{{}, CORDON_E_TOO_MANY_DOMAINS};

  // Reserve first: it is the step most likely to fail, and it needs no key.
  // Two aligned kGuard blocks, the lower one an empty guard (see
  // hardware/memory_guard.h); untouched reserved memory costs no RAM.
  const uint64_t upper = hw::ReserveGuardedBlocks();
  if (upper == 0) return Error{{}, CORDON_E_NO_MEMORY};
  auto* base = reinterpret_cast<unsigned char*>(upper);
  // Trusted memory never goes into a core dump (the lockdown also makes
  // the process non-dumpable).
  (void)madvise(base, l.total, MADV_DONTDUMP);

  // pkey_alloc with rights 0 opens the new key for this thread only, which
  // is what lets it fill the region before the gate call below closes it.
  const int key = hw::SysPkeyAlloc(0, 0);
  if (key < 0) {
    hw::ReleaseGuardedBlocks(upper);
    return Error{{}, key == -ENOSPC ? CORDON_E_NO_KEYS : CORDON_E_NO_PKU};
  }
  if (std::string why = hw::CheckAllocatedKey(key); !why.empty()) {
    hw::ReleaseGuardedBlocks(upper);
    return hw::Unprotected(why);
  }
  // Tag everything now, guard pages excepted, so that no system call on the
  // region is ever needed again (the lockdown forbids them).
  bool tagged = hw::SysPkeyMprotect(base, l.state_bytes, PROT_READ | PROT_WRITE, key) == 0;
  unsigned char* slots = base + l.state_bytes;
  // The signal-return pages and the TCB area, which follows them.
  const size_t sigbuf = SlotTcbOffset() - kPage + TcbAreaBytes();
  const size_t stack_offset = SlotStackOffset();
  for (uint32_t i = 0; tagged && i <= l.nrecords; ++i) {
    // The read-only page stays key 0 and zero: rt_sigreturn reads the head
    // of a frame there after it has loaded the untrusted PKRU (signals.cc).
    unsigned char* slot = slots + i * l.stride;
    tagged =
        mprotect(slot, kPage, PROT_READ) == 0 &&
        hw::SysPkeyMprotect(slot + kPage, sigbuf, PROT_READ | PROT_WRITE, key) == 0 &&
        hw::SysPkeyMprotect(slot + stack_offset, l.stride - stack_offset, PROT_READ | PROT_WRITE, key) == 0;
  }
  unsigned char* arena = slots + l.records_bytes;
  tagged = tagged && hw::SysPkeyMprotect(arena, l.heap_bytes, PROT_READ | PROT_WRITE, key) == 0;
  if (!tagged) {
    hw::ReleaseGuardedBlocks(upper);
    (void)hw::SysPkeyFree(key);
    return Error{{}, CORDON_E_SYSCALL};
  }
  // Read back before the first write into the region: the calls may have
  // been faked (hardware/readback.h).
  if (std::string why = hw::CheckKeyed(upper, upper + l.total, key, "the trusted domain's memory");
      !why.empty()) {
    hw::ReleaseGuardedBlocks(upper);
    (void)hw::SysPkeyFree(key);
    return hw::Unprotected(why);
  }

  auto* state = new (base) DomainState{{}, {CORDON_BUILTIN_COUNT}, nullptr, nullptr, 0, {nullptr}, {0}, {}};
  auto* heap_place = base + RoundUp(sizeof(DomainState), 64);
  state->heap = new (heap_place) heap::TrustedHeap(arena, l.heap_bytes);
  // The TLS template in the domain's own memory, where untrusted code
  // cannot change what later threads' TCBs are built from; and the
  // domain's own canary (the low byte zero, as glibc's, against string
  // reads and writes that run over it).
  const TlsTemplate* tls = ProcessTlsTemplate(nullptr);
  const auto tls_copy = tls == nullptr ? heap::AllocResult{} : state->heap->Allocate(tls->Bytes());
  if (tls == nullptr || !tls_copy.ok() ||
      hw::RawSyscall3(SYS_getrandom, reinterpret_cast<long>(&state->canary), sizeof state->canary, 0) !=
          sizeof state->canary) {
    hw::ReleaseGuardedBlocks(upper);
    (void)hw::SysPkeyFree(key);
    return Error{{}, tls == nullptr ? CORDON_E_NO_FSGSBASE : CORDON_E_NO_MEMORY};
  }
  memcpy(tls_copy.ptr, tls, tls->Bytes());
  state->tls = static_cast<const TlsTemplate*>(tls_copy.ptr);
  state->canary &= ~uint64_t{0xff};
  // Each record gets its own slab pages and lock; for a heap too small for
  // the slot table the heap keeps one shared slot.
  (void)state->heap->EnableThreadSlots(&HeapThreadSlot, static_cast<uintptr_t>(d), l.nrecords);
  const BuiltinEntries b = setup.builtins_for(d);
  for (auto& slot : state->table) slot = b.unregistered;
  for (uint32_t id = 0; id < CORDON_BUILTIN_COUNT; ++id) {
    CORDON_CHECK(b.entry[id] != 0, "a builtin entry is missing");
    state->table[id] = b.entry[id];
  }

  const auto record_addr = [&](uint32_t i) {
    return gates::RecordOfSlot(reinterpret_cast<uint64_t>(slots + i * l.stride), l.stride);
  };
  for (uint32_t i = 0; i <= l.nrecords; ++i) {
    auto* rec = reinterpret_cast<gates::ThreadRecord*>(record_addr(i));
    rec->saved_rsp = record_addr(i);  // free
  }
  memcpy(state->signal_token, setup.signal_token, sizeof state->signal_token);
  const bool updated = gates::UpdateConfig([&](gates::GateConfig& c) {
    auto& dc = c.domains[d];
    dc.pkru = hw::WithPermission(c.untrusted_pkru, key, hw::Permission::kReadWrite);
    if (setup.extra_key != hw::kNoKey)
      dc.pkru = hw::WithPermission(dc.pkru, setup.extra_key, hw::Permission::kReadWrite);
    dc.nrecords = l.nrecords;
    dc.stride = l.stride;
    dc.records = record_addr(0);
    dc.table = reinterpret_cast<uint64_t>(state->table);
    dc.boot = record_addr(l.nrecords);
    dc.state = reinterpret_cast<uint64_t>(state);
    dc.region_start = reinterpret_cast<uint64_t>(base);
    dc.region_end = reinterpret_cast<uint64_t>(base + l.total);
    c.domain_count = static_cast<uint32_t>(d);
  });
  CORDON_CHECK(updated, "cannot change the protection of the gate config page");

  // The first call through the new gate attaches this thread and, on the
  // way out, loads the untrusted PKRU: the thread no longer holds the key.
  (void)gates::GateFor(d)(0, 0, 0, 0, 0, kBuiltinEnter);
  CORDON_CHECK(hw::ReadPkru() == Config().untrusted_pkru, "the gate did not drop the domain's rights");
  return d;
}

gates::ThreadRecord* RecordForStack(int d, const void* sp) {
  const auto& c = Config().domains[d];
  const auto a = reinterpret_cast<uint64_t>(sp);
  const uint64_t first_slot = gates::SlotOfRecord(c.records, c.stride);  // record 0's slot
  if (c.stride == 0 || a < first_slot) return nullptr;
  const uint64_t index = (a - first_slot) / c.stride;
  if (index >= c.nrecords) return nullptr;  // beyond the records, or the bootstrap stack
  const uint64_t slot = first_slot + index * c.stride;
  const uint64_t record = gates::RecordOfSlot(slot, c.stride);
  if (a < slot + SlotStackOffset() || a >= record) return nullptr;  // not the stack
  auto* rec = reinterpret_cast<gates::ThreadRecord*>(record);
  return rec->InUse() ? rec : nullptr;
}

Position PositionFor(int d) {
  const uint32_t pkru = hw::ReadPkru();
  if (pkru == Config().untrusted_pkru) return Position::kUntrusted;
  if (Exists(d) && pkru == Config().domains[d].pkru) return Position::kInside;
  return Position::kElsewhere;
}

int Current() {
  const uint32_t pkru = hw::ReadPkru();
  if (pkru == Config().untrusted_pkru) return CORDON_DOMAIN_UNTRUSTED;
  for (int d = 1; d <= static_cast<int>(Config().domain_count); ++d) {
    if (Config().domains[d].pkru == pkru) return d;
  }
  return CORDON_DOMAIN_UNKNOWN;
}

int KeyOf(int d) {
  if (!Exists(d)) return hw::kNoKey;
  uint32_t diff = Config().domains[d].pkru ^ Config().untrusted_pkru;
  // A key slot's PKRU also grants the virtual domains' directory key.
  if (Config().virt.slot_plus1[d] != 0) diff &= ~(3u << (2 * Config().virt.directory_key));
  return diff == 0 ? hw::kNoKey : __builtin_ctz(diff) / 2;
}

int DomainOf(const void* addr) {
  const auto a = reinterpret_cast<uint64_t>(addr);
  for (int d = 1; d <= static_cast<int>(Config().domain_count); ++d) {
    if (a >= Config().domains[d].region_start && a < Config().domains[d].region_end) return d;
  }
  return CORDON_DOMAIN_UNTRUSTED;
}

bool IsUntrustedRange(const void* addr, size_t len) {
  const auto a = reinterpret_cast<uint64_t>(addr);
  // An empty range still names an address: one inside trusted memory is
  // not an untrusted pointer (a later read of another length would reach it).
  if (len == 0) len = 1;
  uint64_t end;
  if (__builtin_add_overflow(a, len, &end)) return false;
  for (int d = 1; d <= static_cast<int>(Config().domain_count); ++d) {
    const auto& c = Config().domains[d];
    if (a < c.region_end && end > c.region_start) return false;
  }
  // The code region holds pages that are being filled and checked, and
  // code that no one may write: from its header, at the start of the
  // guarded block it was reserved in (code/code_region.h), to its last page.
  if (Config().code_start != 0) {
    const uint64_t header = Config().code_start & ~(hw::kGuard - 1);
    if (a < Config().code_end && end > header) return false;
  }
  const uint32_t tagged =
      Config().tagged_count < gates::kMaxTaggedRanges ? Config().tagged_count : gates::kMaxTaggedRanges;
  for (uint32_t i = 0; i < tagged; ++i) {
    if (a < Config().tagged[i].end && end > Config().tagged[i].start) return false;
  }
  // The virtual domains' block: their directory and regions
  // (domains/virtual.h), whatever is mapped there.
  if (Config().virt.nslots != 0 && a < Config().virt.block + hw::kGuard && end > Config().virt.block)
    return false;
  // The config page itself is never a valid target for a trusted write.
  const auto cfg = reinterpret_cast<uint64_t>(&Config());
  return !(a < cfg + CFG_SIZE && end > cfg);
}

bool SealEntryTables(std::string* why) {
  static_assert(offsetof(DomainState, table) % 4096 == 0 && sizeof(DomainState::table) % 4096 == 0);
  for (int d = 1; Exists(d); ++d) {
    auto* table = StateOf(d)->table;
    const int key = KeyOf(d);
    if (hw::SysPkeyMprotect(table, sizeof(DomainState::table), PROT_READ, key) != 0) {
      *why = "cannot make domain " + std::to_string(d) + "'s entry table read-only: " + strerror(errno);
      return false;
    }
    // Read back: a filter installed before may fake the call.
    const auto maps = hw::MappingsIn(reinterpret_cast<uintptr_t>(table),
                                     reinterpret_cast<uintptr_t>(table) + sizeof(DomainState::table));
    bool sealed = maps.has_value() && !maps->empty();
    for (const auto& m : maps.value_or(std::vector<hw::MappingInfo>{})) {
      sealed = sealed && m.perms.compare(0, 3, "r--") == 0 && m.pkey == key;
    }
    if (!sealed) {
      *why =
          "domain " + std::to_string(d) + "'s entry table is not read-only under its key after pkey_mprotect";
      return false;
    }
  }
  return true;
}

// Record r of domain d gets a fresh TCB for thread tid, in its slot's TCB
// area, and names it for the gates. Everything it is computed from is
// trusted: the read-only config page and the domain's state.
void InstallTrustedTcb(int d, gates::ThreadRecord* r, uint32_t tid) {
  const auto& c = Config();
  const DomainState* s = StateOf(d);
  auto* slot = reinterpret_cast<unsigned char*>(
      gates::SlotOfRecord(reinterpret_cast<uint64_t>(r), c.domains[d].stride));
  unsigned char* area = slot + (SLOT_READONLY_PAGES + c.sigbuf_pages + c.altstack_pages) * kPage;
  r->tcb = BuildTrustedTcb(*s->tls, area, tid, s->canary);
}

bool ThreadAlive(uint32_t tid) {
  const long pid = hw::RawSyscall3(SYS_getpid, 0, 0, 0);
  return hw::RawSyscall3(SYS_tgkill, pid, static_cast<long>(tid), 0) != -ESRCH;
}

}  // namespace cordon::domains

// ---- Called from the gate's attach path (gate.S). ----

namespace {

// Raw system calls: glibc's syscall() stores errno through fs, which
// untrusted code sets, and this runs with the domain's rights.
long RawSyscall3(long nr, long a, long b, long c) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

}  // namespace

// Inside domain d, on its bootstrap stack, with the bootstrap record held:
// claims a record for this thread and returns its index (or -1 if none is
// free). Records of threads that have exited are reclaimed here, so no exit
// hook is needed. Nothing here touches TLS (its address depends on the fs
// base, which untrusted code sets): the gate's slow path stores the index
// in the thread's TLS slot after it has left the domain.
extern "C" uint32_t cordon_internal_attach_thread(uint32_t d) {
  using namespace cordon;
  d &= CORDON_MAX_DOMAINS - 1;
  const auto& c = gates::Config().domains[d];
  const auto tid = static_cast<uint32_t>(RawSyscall3(SYS_gettid, 0, 0, 0));
  auto record = [&](uint32_t i) { return reinterpret_cast<gates::ThreadRecord*>(c.records + i * c.stride); };
  // A record claimed for a thread gets a fresh TCB for it (trusted_tls.h)
  // before the gate can load it: none of a previous owner's state stays,
  // but for the record's call counts, which are the domain's and go on
  // (docs/gates.md, "Call counts").
  auto claim = [&](uint32_t i) {
    __atomic_store_n(&record(i)->owner, tid, __ATOMIC_RELEASE);
    domains::InstallTrustedTcb(d, record(i), tid);
    return i;
  };
  for (uint32_t i = 0; i < c.nrecords; ++i) {
    if (__atomic_load_n(&record(i)->owner, __ATOMIC_ACQUIRE) == 0) return claim(i);
  }
  // Why a bounded wait: a thread that pthread_join() has seen end is
  // still alive for the kernel a little longer (it clears the joined tid
  // before the task is gone), so a program that starts a thread as the
  // last one ends would find every record taken. Only when no record is
  // free; a process that really has too many threads waits this long once.
  for (int round = 0; round < 2000; ++round) {
    for (uint32_t i = 0; i < c.nrecords; ++i) {
      const uint32_t owner = __atomic_load_n(&record(i)->owner, __ATOMIC_ACQUIRE);
      if (!record(i)->InUse() && !domains::ThreadAlive(owner)) return claim(i);
    }
    (void)RawSyscall3(SYS_sched_yield, 0, 0, 0);
  }
  return ~0u;
}

namespace cordon::domains {

// In a forked child, the forking thread has a new thread id: let it attach
// afresh instead of using records owned by the parent's thread ids.
void ResetThreadRecordsInChild() {
  for (auto& index : cordon_tls_records) index = ~0u;
}

}  // namespace cordon::domains
