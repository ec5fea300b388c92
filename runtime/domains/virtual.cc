// Virtual domains (virtual.h, docs/virtual-domains.md): the set-up of the
// keys, the directory and the key slots; a domain's region; the slots'
// entry (residency, loads, evictions, rights); and the caller's side of a
// call, which picks a slot and goes on until the call has run.
#include "runtime/domains/virtual.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <x86intrin.h>

#include <atomic>
#include <cstring>
#include <new>
#include <utility>

#include "runtime/base/check.h"
#include "runtime/hardware/memory_guard.h"
#include "runtime/hardware/pkey.h"
#include "runtime/hardware/readback.h"
#include "runtime/hardware/smaps.h"
#include "runtime/heap/trusted_heap.h"

// Zeroes [low, its own stack pointer): the stack below its caller's frame
// but for its return address. A function of its own, in assembly: no
// compiler-made frame or red zone below the stack pointer is live.
extern "C" void cordon_internal_clear_stack_below(uint64_t low);
asm(R"(
        .text
        .p2align 4
        .type cordon_internal_clear_stack_below, @function
cordon_internal_clear_stack_below:
        movq %rsp, %rcx
        subq %rdi, %rcx
        jbe 1f
        xorl %eax, %eax
        rep stosb
1:      ret
        .size cordon_internal_clear_stack_below, . - cordon_internal_clear_stack_below
)");

namespace cordon::domains::virt {
namespace {

using gates::Config;

constexpr size_t kPage = 4096;
constexpr uint32_t kMaxSlots = CORDON_MAX_DOMAINS - 1;
constexpr uint64_t kMagic = 0x6e69616d6f647676;  // "vvdomain"
constexpr size_t kTableBytes = CORDON_TABLE_SIZE * sizeof(uint64_t);
constexpr size_t kHeaderBytes = 64;  // VHeader, then the heap object
constexpr size_t kSlotHeapBytes = size_t{1} << 20;

constexpr size_t RoundUp(size_t v, size_t to) {
  return (v + to - 1) / to * to;
}

// ---- The directory: memory of the directory key, which only the slots'
// PKRUs grant (read and write); untrusted code and every other domain have
// no access. Nothing in it is secret; it says where things are. ----

struct alignas(64) SlotState {
  std::atomic<uint32_t> resident;  // virtual domain index + 1, 0 when empty
  std::atomic<uint32_t> changing;  // a load or eviction is under way: enter nothing
  std::atomic<uint32_t> pinned;
  std::atomic<uint32_t> epoch;  // one more at every change of resident
};

// One per record of each slot: only the thread holding the record writes
// it (active), or the loader reads it.
struct alignas(64) RecordState {
  // The thread id (the kernel's) of the thread running a virtual domain's
  // call (or an operation on it) on the record, 0 otherwise.
  std::atomic<uint32_t> active;
  uint32_t epoch;  // the slot epoch the record's stack and TCB were cleaned for
  uint32_t dirty;  // the record ran a domain's code since it was cleaned
};

struct Directory {
  std::atomic<uint32_t> lock;
  uint32_t sealed;       // the lockdown made every entry table read-only
  uint32_t max_threads;  // records per slot
  SlotState slots[kMaxSlots];
  uint8_t slot_of[kMaxVirtual];  // slot + 1, 0 when parked
  uint8_t revoked[kMaxVirtual];  // CORDON_RIGHTS_READ_WRITE ^ rights (zero: all rights)
};

size_t DirectoryBytes(uint32_t max_threads) {
  return RoundUp(RoundUp(sizeof(Directory), 64) + size_t{kMaxSlots} * max_threads * sizeof(RecordState),
                 kPage);
}

Directory& Dir() {
  return *reinterpret_cast<Directory*>(Config().virt.block);
}
RecordState& Rec(uint32_t slot, uint32_t idx) {
  auto* base = reinterpret_cast<RecordState*>(Config().virt.block + RoundUp(sizeof(Directory), 64));
  return base[size_t{slot} * Dir().max_threads + idx];
}

// The lock word holds its owner's thread id: a thread that takes it again
// (from a signal handler) stops the process. A holder that no longer
// exists (a fork while another thread was loading a domain: the child has
// its memory, not the thread) left the directory half changed: fatal.
void Lock(Directory& dir, uint32_t tid) {
  for (unsigned spins = 0;; ++spins) {
    uint32_t holder = 0;
    if (dir.lock.compare_exchange_weak(holder, tid, std::memory_order_acquire)) return;
    // This thread holds it already: a signal handler that calls a virtual
    // domain while its thread was loading or evicting one. Waiting would
    // never end.
    if (holder == tid) {
      internal::Die(
          "virtual domains: a signal handler called a virtual domain (or changed one) while its own thread "
          "was loading, evicting or changing the rights of one; this would wait forever; process stopped");
    }
    if (spins < 64) {
      _mm_pause();
      continue;
    }
    if (spins % 1024 == 0 && holder != 0 && !ThreadAlive(holder)) {
      internal::Die(
          "virtual domains: the directory's lock is held by a thread that no longer exists (a fork while "
          "another thread was loading a virtual domain?); the child cannot tell what it changed; process "
          "stopped");
    }
    (void)hw::RawSyscall3(SYS_sched_yield, 0, 0, 0);
  }
}
void Unlock(Directory& dir) {
  dir.lock.store(0, std::memory_order_release);
}

// ---- A virtual domain's region: its entry table (ids 0 and 1 hold the
// magic and the index, which a load reads back), then its data. ----

struct VHeader {
  std::atomic<uint32_t> next_entry;
  uint32_t index;
  std::atomic<void*> root;
  heap::TrustedHeap* heap;
};
static_assert(sizeof(VHeader) <= kHeaderBytes);

uint64_t* Table(uint32_t v) {
  return reinterpret_cast<uint64_t*>(RegionStart(v));
}
unsigned char* Data(uint32_t v) {
  return reinterpret_cast<unsigned char*>(RegionStart(v) + Config().virt.table_bytes);
}
size_t DataBytes() {
  return Config().virt.vstride - Config().virt.table_bytes;
}
VHeader* Header(uint32_t v) {
  return reinterpret_cast<VHeader*>(Data(v));
}

int ProtOf(uint32_t rights) {
  switch (rights) {
    case CORDON_RIGHTS_READ_WRITE:
      return PROT_READ | PROT_WRITE;
    case CORDON_RIGHTS_READ:
      return PROT_READ;
    default:
      return PROT_NONE;
  }
}
uint32_t RightsOf(const Directory& dir, uint32_t v) {
  return CORDON_RIGHTS_READ_WRITE ^ dir.revoked[v];
}

int SlotKey(uint32_t slot) {
  return KeyOf(Config().virt.slot_domain[slot]);
}

// Moves v's pages to key, keeping their protection: the table read-only
// once sealed, the data as its rights say. With the token of slot domain
// s (the lockdown's filter allows exactly this shape: RetagKeys(), the
// regions). Under the directory's lock. A failure leaves the region's
// tags unknown: fatal.
void Retag(int s, uint32_t v, int key) {
  const Directory& dir = Dir();
  const uint64_t* token = TokenOf(s);
  const int table_prot = dir.sealed ? PROT_READ : PROT_READ | PROT_WRITE;
  if (hw::SysPkeyMprotectWithToken(Table(v), Config().virt.table_bytes, table_prot, key, token) != 0 ||
      hw::SysPkeyMprotectWithToken(Data(v), DataBytes(), ProtOf(RightsOf(dir, v)), key, token) != 0) {
    internal::DieWithNumbers("virtual domains: pkey_mprotect failed while moving virtual domain ", v,
                             " to key ", static_cast<unsigned long long>(key));
  }
}

// Sets changing on slot and waits until no record but self (UINT32_MAX:
// none) is active there. False, with changing cleared, if one stays
// active: a thread inside the domain for long (blocked, or in a callback).
bool Quiesce(uint32_t slot, uint32_t self) {
  Directory& dir = Dir();
  dir.slots[slot].changing.store(1, std::memory_order_seq_cst);
  for (uint32_t j = 0; j < dir.max_threads; ++j) {
    if (j == self) continue;
    for (unsigned spins = 0;; ++spins) {
      const uint32_t tid = Rec(slot, j).active.load(std::memory_order_seq_cst);
      // A thread that no longer exists runs nothing (a fork child has
      // only the forking thread).
      if (tid == 0 || (spins == 200 && !ThreadAlive(tid))) break;
      if (spins >= 2000) {
        dir.slots[slot].changing.store(0, std::memory_order_release);
        return false;
      }
      if (spins < 200) {
        _mm_pause();
      } else {
        (void)hw::RawSyscall3(SYS_sched_yield, 0, 0, 0);
      }
    }
  }
  return true;
}

// Parks the resident of slot (under the lock, quiesced).
void ParkResident(int s, uint32_t slot) {
  Directory& dir = Dir();
  const uint32_t old = dir.slots[slot].resident.load(std::memory_order_relaxed);
  if (old == 0) return;
  Retag(s, old - 1, Config().virt.parking_key);
  dir.slot_of[old - 1] = 0;
  dir.slots[slot].resident.store(0, std::memory_order_release);
  dir.slots[slot].epoch.fetch_add(1, std::memory_order_relaxed);
}

enum class LoadResult { kLoaded, kElsewhere, kBusy, kPinned };

// Inside slot domain s: makes v its resident, evicting the one before.
LoadResult Load(int s, uint32_t slot, uint32_t v, uint32_t self, uint32_t tid, uint32_t* where) {
  Directory& dir = Dir();
  Lock(dir, tid);
  const uint32_t at = dir.slot_of[v];
  if (at != 0) {
    Unlock(dir);
    if (at - 1 == slot) return LoadResult::kLoaded;
    *where = at - 1;
    return LoadResult::kElsewhere;
  }
  SlotState& ss = dir.slots[slot];
  if (ss.pinned.load(std::memory_order_relaxed) != 0 && ss.resident.load(std::memory_order_relaxed) != 0) {
    Unlock(dir);
    return LoadResult::kPinned;
  }
  if (!Quiesce(slot, self)) {
    Unlock(dir);
    return LoadResult::kBusy;
  }
  ParkResident(s, slot);
  Retag(s, v, SlotKey(slot));
  // Read back through the key: the pages are v's, on this slot's key (a
  // faked re-tag faults here, inside the slot, and stops the process).
  const volatile uint64_t* table = Table(v);
  if (table[0] != kMagic || table[1] != v) {
    internal::DieWithNumbers("virtual domains: the region loaded for virtual domain ", v,
                             " is not that domain's");
  }
  dir.slot_of[v] = static_cast<uint8_t>(slot + 1);
  ss.epoch.fetch_add(1, std::memory_order_relaxed);
  ss.resident.store(v + 1, std::memory_order_release);
  ss.changing.store(0, std::memory_order_release);
  Unlock(dir);
  return LoadResult::kLoaded;
}

// Record index of slot domain s.
gates::ThreadRecord* RecordAt(int s, uint32_t index) {
  const auto& c = Config().domains[s];
  return reinterpret_cast<gates::ThreadRecord*>(c.records + uint64_t{index} * c.stride);
}

// The record (index self of slot domain s) this thread runs on; its stack
// below the caller's frame, its signal-return pages and its TCB held
// another domain's data if the record ran code of the slot's previous
// resident: cleaned once per change of resident, before the new one's code
// runs on it, by the thread itself (no other thread's stack is touched).
// The stack last (ClearStackBelow): the calls before it leave frames there.
void CleanRecord(int s, uint32_t self) {
  const auto& c = Config().domains[s];
  const uint64_t slot_base = gates::SlotOfRecord(c.records, c.stride) + uint64_t{self} * c.stride;
  gates::ThreadRecord* rec = RecordAt(s, self);
  if (__atomic_load_n(&rec->signal_frame, __ATOMIC_ACQUIRE) == 0) {
    memset(reinterpret_cast<void*>(slot_base + SLOT_READONLY_PAGES * kPage), 0,
           size_t{Config().sigbuf_pages} * kPage);
  }
  // A fresh TCB: the domain's thread-local data goes; the row of record
  // indices the gate copied in stays (nested gate calls read it).
  uint32_t row[CORDON_MAX_DOMAINS];
  memcpy(row, cordon_tls_records, sizeof row);
  InstallTrustedTcb(s, rec, rec->owner);
  memcpy(cordon_tls_records, row, sizeof row);
}

uint64_t StackLow(int s, uint32_t self) {
  const auto& c = Config().domains[s];
  return gates::SlotOfRecord(c.records, c.stride) + uint64_t{self} * c.stride + SlotStackOffset();
}

uint32_t RecordIndex(int s) {
  const auto& c = Config().domains[s];
  const auto sp = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  const uint64_t first = gates::SlotOfRecord(c.records, c.stride);
  const uint64_t index = sp >= first ? (sp - first) / c.stride : ~uint64_t{0};
  if (index >= c.nrecords) internal::Die("virtual domains: a slot's entry ran off its records' stacks");
  return static_cast<uint32_t>(index);
}

uint64_t RegisterInside(uint32_t v, uint64_t fn) {
  if (fn == 0) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  VHeader* h = Header(v);
  uint32_t id = h->next_entry.load();
  do {
    if (id >= CORDON_TABLE_SIZE) return EncodeStatus(CORDON_E_TABLE_FULL);
  } while (!h->next_entry.compare_exchange_weak(id, id + 1));
  __atomic_store_n(&Table(v)[id], fn, __ATOMIC_RELEASE);
  return id;
}

// What a resident domain runs: an entry, or an operation on its memory.
uint64_t Dispatch(uint32_t slot, uint32_t tid, uint32_t v, uint32_t id, uint64_t a0, uint64_t a1, uint64_t a2,
                  uint64_t a3, uint64_t a4) {
  if (id < CORDON_TABLE_SIZE) {
    const uint64_t fn = id >= CORDON_BUILTIN_COUNT ? __atomic_load_n(&Table(v)[id], __ATOMIC_ACQUIRE) : 0;
    if (fn == 0) {
      internal::DieWithNumbers("gate violation: call to unregistered entry id ", id, " of virtual domain ",
                               static_cast<unsigned long long>(kFirstHandle + v));
    }
    return reinterpret_cast<cordon_entry_fn>(fn)(a0, a1, a2, a3, a4);
  }
  const bool locked = Config().locked != 0;
  switch (id) {
    case kOpAlloc:
      return locked ? EncodeStatus(CORDON_E_LOCKED) : AllocInside(v, a0, a1);
    case kOpFree:
      return locked ? EncodeStatus(CORDON_E_LOCKED) : FreeInside(v, reinterpret_cast<void*>(a0));
    case kOpRealloc:
      return locked ? EncodeStatus(CORDON_E_LOCKED) : ReallocInside(v, reinterpret_cast<void*>(a0), a1);
    case kOpRegister:
      return locked ? EncodeStatus(CORDON_E_LOCKED) : RegisterInside(v, a0);
    case kOpPin: {
      Directory& dir = Dir();
      Lock(dir, tid);
      uint32_t pinned = 0;
      for (uint32_t s = 0; s < Config().virt.nslots; ++s) pinned += dir.slots[s].pinned.load() != 0 ? 1 : 0;
      int status = CORDON_OK;
      if (dir.slots[slot].pinned.load() == 0) {
        if (pinned + 1 >= Config().virt.nslots) {
          status = CORDON_E_NO_KEYS;  // one key stays for the rest
        } else {
          dir.slots[slot].pinned.store(1);
        }
      }
      Unlock(dir);
      return EncodeStatus(status);
    }
    default:
      break;
  }
  internal::DieWithNumbers("virtual domains: unknown operation ", id);
}

// Operations that need no residency, under the directory's lock.
uint64_t Operate(int s, uint32_t slot, uint32_t self, uint32_t tid, uint32_t v, uint32_t id, uint64_t a0) {
  Directory& dir = Dir();
  const auto& cfg = Config().virt;
  switch (id) {
    case kOpUnpin:
    case kOpEvict:
    case kOpKey:
    case kOpRights:
    case kOpSetRights:
    case kOpSealAll:
      break;
    default:
      internal::DieWithNumbers("virtual domains: unknown operation ", id);
  }
  if (id == kOpSetRights && a0 != CORDON_RIGHTS_NONE && a0 != CORDON_RIGHTS_READ &&
      a0 != CORDON_RIGHTS_READ_WRITE) {
    return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  }
  Lock(dir, tid);
  const uint32_t at = dir.slot_of[v];
  uint64_t result = EncodeStatus(CORDON_OK);
  switch (id) {
    case kOpUnpin:
      if (at != 0) dir.slots[at - 1].pinned.store(0);
      break;
    case kOpEvict:
      if (at == 0) break;
      if (dir.slots[at - 1].pinned.load() != 0 || !Quiesce(at - 1, at - 1 == slot ? self : UINT32_MAX)) {
        result = EncodeStatus(CORDON_E_BUSY);
        break;
      }
      ParkResident(s, at - 1);
      dir.slots[at - 1].changing.store(0, std::memory_order_release);
      break;
    case kOpKey:
      result = static_cast<uint64_t>(at != 0 ? SlotKey(at - 1) : cfg.parking_key);
      break;
    case kOpRights:
      result = RightsOf(dir, v);
      break;
    case kOpSetRights: {
      dir.revoked[v] = static_cast<uint8_t>(CORDON_RIGHTS_READ_WRITE ^ a0);
      const int key = at != 0 ? SlotKey(at - 1) : cfg.parking_key;
      if (hw::SysPkeyMprotectWithToken(Data(v), DataBytes(), ProtOf(static_cast<uint32_t>(a0)), key,
                                       TokenOf(s)) != 0) {
        internal::DieWithNumbers(
            "virtual domains: pkey_mprotect failed while changing the rights of "
            "virtual domain ",
            v);
      }
      break;
    }
    case kOpSealAll:
      dir.sealed = 1;
      for (uint32_t w = 0; w < cfg.count; ++w) {
        const int key = dir.slot_of[w] != 0 ? SlotKey(dir.slot_of[w] - 1) : cfg.parking_key;
        if (hw::SysPkeyMprotectWithToken(Table(w), cfg.table_bytes, PROT_READ, key, TokenOf(s)) != 0) {
          result = EncodeStatus(CORDON_E_SYSCALL);
          break;
        }
      }
      break;
    default:
      break;
  }
  Unlock(dir);
  return result;
}

// The slots' entry (virtual.h): the gate calls it with the caller's four
// register arguments and the call block.
template <int S>
uint64_t SlotEntry(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t block_word) {
  auto* block = reinterpret_cast<CallBlock*>(block_word);
  // The slot writes the answer there: never into memory its PKRU lets it
  // write but untrusted code's does not, which is its own region and the
  // virtual domains' block (the directory, the resident's region). Other
  // trusted memory faults under the slot's PKRU, as does an unmapped
  // address: the process stops.
  const auto& own = Config().domains[S];
  if (block_word < kPage || block_word % alignof(CallBlock) != 0 || block_word > UINT64_MAX - sizeof *block ||
      Meets(block_word, block_word + sizeof *block) ||
      (block_word < own.region_end && block_word + sizeof *block > own.region_start)) {
    internal::Die("gate violation: a virtual domain call's block is not in untrusted memory");
  }
  // Read once: the caller may change the block meanwhile.
  const uint32_t v = __atomic_load_n(&block->vdomain, __ATOMIC_RELAXED);
  const uint32_t id = __atomic_load_n(&block->id, __ATOMIC_RELAXED);
  const uint64_t a4 = __atomic_load_n(&block->a4, __ATOMIC_RELAXED);
  const auto& cfg = Config().virt;
  if (v >= cfg.count || (id >= CORDON_TABLE_SIZE && (id < kOpFirst || id > kOpLast))) {
    internal::DieWithNumbers("gate violation: virtual domain call to domain ",
                             static_cast<unsigned long long>(kFirstHandle) + v, ", id ", id);
  }
  const uint32_t slot = cfg.slot_plus1[S] - 1u;
  const uint32_t self = RecordIndex(S);
  // The kernel's thread id, and the record must be this thread's own. Why:
  // the gate lets a thread claim any free record (its index comes from
  // untrusted TLS). On another thread's record, a call looks idle to a
  // loader (Quiesce) once either thread has exited, and the owner may
  // return into a callback the other one left: the slot would be re-tagged
  // under the running call, and the call resumed with another domain
  // resident. One system call per call of a virtual domain.
  const auto tid = static_cast<uint32_t>(hw::RawSyscall3(SYS_gettid, 0, 0, 0));
  if (RecordAt(S, self)->owner != tid) {
    internal::Die("gate violation: a thread entered a virtual domain's key slot on another thread's record");
  }
  Directory& dir = Dir();
  const auto answer = [&](Outcome o, uint32_t where = 0) {
    __atomic_store_n(&block->where, where, __ATOMIC_RELAXED);
    __atomic_store_n(&block->outcome, static_cast<uint32_t>(o), __ATOMIC_RELEASE);
  };
  if (id > kOpPin) {  // operations without residency
    const uint64_t r = Operate(S, slot, self, tid, v, id, a0);
    answer(kRan);
    return r;
  }
  RecordState& me = Rec(slot, self);
  for (int attempt = 0;; ++attempt) {
    me.active.store(tid, std::memory_order_seq_cst);
    if (dir.slots[slot].changing.load(std::memory_order_seq_cst) == 0 &&
        dir.slots[slot].resident.load(std::memory_order_acquire) == v + 1) {
      break;
    }
    me.active.store(0, std::memory_order_release);
    uint32_t where = 0;
    const LoadResult lr = attempt < 8 ? Load(S, slot, v, self, tid, &where) : LoadResult::kBusy;
    if (lr == LoadResult::kElsewhere) {
      answer(kElsewhere, where);
      return 0;
    }
    if (lr == LoadResult::kBusy || lr == LoadResult::kPinned) {
      answer(kBusy, lr == LoadResult::kPinned ? kBusyPinned : kBusyInUse);
      return 0;
    }
  }
  const uint32_t epoch = dir.slots[slot].epoch.load(std::memory_order_relaxed);
  if (me.epoch != epoch) {
    if (me.dirty != 0) {
      CleanRecord(S, self);
      // Everything below this frame, up to the return address this call
      // pushes: nothing of the last resident stays where the new one's code
      // will run.
      cordon_internal_clear_stack_below(StackLow(S, self));
    }
    me.epoch = epoch;
    me.dirty = 0;
  }
  me.dirty = 1;
  const uint64_t r = Dispatch(slot, tid, v, id, a0, a1, a2, a3, a4);
  me.active.store(0, std::memory_order_release);
  answer(kRan);
  return r;
}

template <int... Ss>
uint64_t SlotEntryFor(int d, std::integer_sequence<int, Ss...>) {
  uint64_t fn = 0;
  ((d == Ss ? (void)(fn = reinterpret_cast<uint64_t>(&SlotEntry<Ss>)) : (void)0), ...);
  return fn;
}

// ---- Set-up (before lockdown, untrusted code). ----

std::vector<int> g_slot_domains;

Expected<void> SetUp(const cordon_options& opts, DomainSetup slot_setup) {
  if (opts.virtual_heap_size < 64 * 1024 || opts.virtual_heap_size > (size_t{256} << 20)) {
    return Error{"virtual_heap_size must be 64 KiB to 256 MiB", CORDON_E_INVALID_ARGUMENT};
  }
  const size_t heap_bytes = RoundUp(opts.virtual_heap_size, kPage);
  const size_t table_bytes = RoundUp(kTableBytes, kPage);
  const size_t state_bytes =
      RoundUp(kHeaderBytes + sizeof(heap::TrustedHeap) + heap::TrustedHeap::MetadataBytes(heap_bytes), kPage);
  const size_t stride = table_bytes + state_bytes + heap_bytes;
  const size_t dir_bytes = DirectoryBytes(opts.max_threads);
  // The parking key and the directory's key: allocated closed (the
  // calling thread's PKRU keeps denying them, as every untrusted PKRU).
  const int parking = hw::SysPkeyAlloc(0, PKEY_DISABLE_ACCESS);
  if (parking < 0) return Error{"no protection key left for the parking key", CORDON_E_NO_KEYS};
  const int dkey = hw::SysPkeyAlloc(0, PKEY_DISABLE_ACCESS);
  const auto fail = [&](Error e, uint64_t block) -> Error {
    if (block != 0) hw::ReleaseGuardedBlocks(block);
    (void)hw::SysPkeyFree(parking);
    if (dkey >= 0) (void)hw::SysPkeyFree(dkey);
    return e;
  };
  if (dkey < 0) return fail({"no protection key left for the directory", CORDON_E_NO_KEYS}, 0);
  for (const int k : {parking, dkey}) {
    if (std::string why = hw::CheckAllocatedKey(k); !why.empty()) return fail(hw::Unprotected(why), 0);
  }
  const uint64_t block = hw::ReserveGuardedBlocks();
  if (block == 0) return fail({"cannot reserve the virtual domains' address space", CORDON_E_NO_MEMORY}, 0);
  auto* dir_mem = reinterpret_cast<unsigned char*>(block);
  if (mprotect(dir_mem, dir_bytes, PROT_READ | PROT_WRITE) != 0) return fail({{}, CORDON_E_SYSCALL}, block);
  (void)madvise(dir_mem, dir_bytes, MADV_DONTDUMP);
  auto* dir = new (dir_mem) Directory{};
  dir->max_threads = opts.max_threads;
  if (hw::SysPkeyMprotect(dir_mem, dir_bytes, PROT_READ | PROT_WRITE, dkey) != 0)
    return fail({{}, CORDON_E_SYSCALL}, block);
  if (std::string why = hw::CheckKeyed(block, block + dir_bytes, dkey, "the virtual domains' directory");
      !why.empty()) {
    return fail(hw::Unprotected(why), block);
  }
  // The slots: every key left, each a physical domain of the runtime's.
  g_slot_domains.clear();
  slot_setup.extra_key = dkey;
  slot_setup.heap_bytes = kSlotHeapBytes;
  while (g_slot_domains.size() < kMaxSlots) {
    const auto created = CreateDomain(opts, slot_setup);
    if (!created.ok()) {
      if (created.status() == CORDON_E_NO_KEYS || created.status() == CORDON_E_TOO_MANY_DOMAINS) break;
      return fail(created.failure(), block);  // the slots made so far stay (domains are never freed)
    }
    const int d = created.value();
    const auto n = static_cast<uint8_t>(g_slot_domains.size());
    if (!gates::UpdateConfig([&](gates::GateConfig& c) {
          c.virt.slot_domain[n] = static_cast<uint8_t>(d);
          c.virt.slot_plus1[d] = static_cast<uint8_t>(n + 1);
        })) {
      return fail({{}, CORDON_E_SYSCALL}, block);
    }
    const uint64_t fn = SlotEntryFor(d, std::make_integer_sequence<int, CORDON_MAX_DOMAINS>{});
    const uint64_t id = gates::GateFor(d)(fn, 0, 0, 0, 0, kBuiltinRegister);
    CORDON_CHECK(id == kSlotEntryId, "a key slot's entry did not get its id");
    g_slot_domains.push_back(d);
  }
  if (g_slot_domains.empty()) {
    return fail(
        {"no protection key left to run virtual domains on: make fewer physical domains", CORDON_E_NO_KEYS},
        block);
  }
  const bool updated = gates::UpdateConfig([&](gates::GateConfig& c) {
    c.virt.block = block;
    c.virt.vregions = block + dir_bytes;
    c.virt.vstride = stride;
    c.virt.table_bytes = table_bytes;
    c.virt.heap_bytes = heap_bytes;
    c.virt.count = 0;
    c.virt.capacity =
        static_cast<uint32_t>(std::min<uint64_t>(kMaxVirtual, (hw::kGuard - dir_bytes) / stride));
    c.virt.parking_key = parking;
    c.virt.directory_key = dkey;
    c.virt.nslots = static_cast<uint32_t>(g_slot_domains.size());
  });
  CORDON_CHECK(updated, "cannot change the protection of the gate config page");
  return {};
}

// Picks the slot to load a domain into: the least recently used one (as
// the callers saw it: a hint in their memory; the slots decide).
std::atomic<uint64_t> g_last_use[kMaxSlots];
std::atomic<uint8_t> g_where[kMaxVirtual];  // slot + 1: where a call last ran

// The slots this thread is inside now (its calls in progress).
thread_local uint32_t t_inside_slots = 0;

uint32_t Victim(uint32_t nslots, uint32_t skip) {
  uint32_t best = 0;
  uint64_t oldest = ~uint64_t{0};
  for (uint32_t s = 0; s < nslots; ++s) {
    if ((skip & (1u << s)) != 0) continue;
    const uint64_t t = g_last_use[s].load(std::memory_order_relaxed);
    if (t < oldest) {
      oldest = t;
      best = s;
    }
  }
  return best;
}

void Touch(uint32_t slot) {
  // Written only when it moved on, so that threads sharing a slot do not
  // keep writing one line.
  const uint64_t now = __rdtsc();
  if (now - g_last_use[slot].load(std::memory_order_relaxed) > 4096)
    g_last_use[slot].store(now, std::memory_order_relaxed);
}

}  // namespace

uint64_t RegionStart(uint32_t index) {
  return Config().virt.vregions + uint64_t{index} * Config().virt.vstride;
}

Expected<int> Create(const cordon_options& opts, DomainSetup slot_setup) {
  if (!Enabled()) {
    if (auto set = SetUp(opts, slot_setup); !set.ok()) return set.failure();
  }
  const auto& cfg = Config().virt;
  if (cfg.count >= cfg.capacity) return Error{{}, CORDON_E_TOO_MANY_DOMAINS};
  const uint32_t v = cfg.count;
  auto* region = reinterpret_cast<unsigned char*>(RegionStart(v));
  if (mprotect(region, cfg.vstride, PROT_READ | PROT_WRITE) != 0) return Error{{}, CORDON_E_SYSCALL};
  (void)madvise(region, cfg.vstride, MADV_DONTDUMP);
  // Written under key 0 during set-up (nothing secret yet), then parked.
  auto* table = reinterpret_cast<uint64_t*>(region);
  table[0] = kMagic;
  table[1] = v;
  unsigned char* data = region + cfg.table_bytes;
  auto* header = new (data) VHeader{{CORDON_BUILTIN_COUNT}, v, {nullptr}, nullptr};
  unsigned char* arena = region + cfg.vstride - cfg.heap_bytes;
  header->heap = new (data + kHeaderBytes) heap::TrustedHeap(arena, cfg.heap_bytes);
  if (hw::SysPkeyMprotect(region, cfg.vstride, PROT_READ | PROT_WRITE, cfg.parking_key) != 0) {
    memset(region, 0, cfg.table_bytes + kPage);
    (void)mprotect(region, cfg.vstride, PROT_NONE);
    return Error{{}, CORDON_E_SYSCALL};
  }
  if (!gates::UpdateConfig([&](gates::GateConfig& c) { c.virt.count = v + 1; })) {
    return Error{{}, CORDON_E_SYSCALL};
  }
  return kFirstHandle + static_cast<int>(v);
}

std::vector<int> SlotDomains() {
  return g_slot_domains;
}

uint64_t Call(uint32_t index, uint32_t id, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4) {
  const auto& cfg = Config().virt;
  CallBlock block{index, id, a4, kNotRun, 0};
  uint32_t where = g_where[index].load(std::memory_order_relaxed);
  const uint32_t all_slots = cfg.nslots >= 32 ? ~0u : (1u << cfg.nslots) - 1;
  uint32_t pinned = 0;  // slots that answered: pinned to another domain
  for (unsigned attempt = 0;; ++attempt) {
    // A slot this thread is inside already (a callback or a signal handler
    // that left a virtual domain's call) cannot take another entry: the
    // gate would stop the process as a nested entry.
    if (where != 0 && (where > cfg.nslots || (t_inside_slots & (1u << (where - 1))) != 0)) where = 0;
    const uint32_t slot = where != 0 ? where - 1 : Victim(cfg.nslots, t_inside_slots);
    __atomic_store_n(&block.outcome, kNotRun, __ATOMIC_RELAXED);
    t_inside_slots |= 1u << slot;
    const uint64_t r = gates::GateFor(cfg.slot_domain[slot])(
        a0, a1, a2, a3, reinterpret_cast<uint64_t>(&block), kSlotEntryId);
    t_inside_slots &= ~(1u << slot);
    switch (__atomic_load_n(&block.outcome, __ATOMIC_ACQUIRE)) {
      case kRan:
        if (id < CORDON_TABLE_SIZE || id <= kOpPin) {
          g_where[index].store(static_cast<uint8_t>(slot + 1), std::memory_order_relaxed);
          Touch(slot);
        }
        return r;
      case kElsewhere:
        where = __atomic_load_n(&block.where, __ATOMIC_RELAXED) + 1;
        if (where <= cfg.nslots && (t_inside_slots & (1u << (where - 1))) != 0) {
          internal::Die(
              "virtual domains: a callback or signal handler called into a virtual domain that runs on the "
              "key "
              "of the virtual domain call it interrupted; it cannot be entered until that call returns "
              "(pin one of them, docs/virtual-domains.md); process stopped");
        }
        break;
      case kBusy:
        g_last_use[slot].store(__rdtsc(), std::memory_order_relaxed);  // try another first
        pinned = __atomic_load_n(&block.where, __ATOMIC_RELAXED) == kBusyPinned ? pinned | (1u << slot)
                                                                                : pinned & ~(1u << slot);
        // A callback or signal handler inside a call on every unpinned
        // slot: nothing this thread can do frees one, and waiting for
        // another thread to unpin one could be forever. Like entering the
        // slot it interrupted (above): the program's error, said so.
        if (t_inside_slots != 0 && (pinned | t_inside_slots) == all_slots) {
          internal::Die(
              "virtual domains: a callback or signal handler called a virtual domain that is not resident "
              "while every key slot it could load it into is pinned or runs the call it interrupted; it "
              "would wait forever (pin fewer domains, docs/virtual-domains.md); process stopped");
        }
        where = 0;
        if (attempt >= 4 * cfg.nslots) (void)sched_yield();
        break;
      default:
        internal::Die("virtual domains: a key slot did not answer a call");
    }
  }
}

int CurrentIndex() {
  const uint32_t pkru = hw::ReadPkru();
  const auto& cfg = Config().virt;
  for (uint32_t s = 0; s < cfg.nslots; ++s) {
    if (Config().domains[cfg.slot_domain[s]].pkru == pkru) {
      const uint32_t r = Dir().slots[s].resident.load(std::memory_order_acquire);
      return r == 0 ? -1 : static_cast<int>(r - 1);
    }
  }
  return -1;
}

uint64_t AllocInside(uint32_t index, size_t size, size_t alignment) {
  const auto r = Header(index)->heap->Allocate(size, alignment);
  if (!r.ok()) return EncodeStatus(StatusFromHeapError(*r.error));
  return reinterpret_cast<uint64_t>(r.ptr);
}

uint64_t FreeInside(uint32_t index, void* ptr) {
  const auto err = Header(index)->heap->Free(ptr);
  return err ? EncodeStatus(StatusFromHeapError(*err)) : 0;
}

uint64_t ReallocInside(uint32_t index, void* ptr, size_t size) {
  const auto r = Header(index)->heap->Reallocate(ptr, size);
  if (!r.ok()) return EncodeStatus(StatusFromHeapError(*r.error));
  return reinterpret_cast<uint64_t>(r.ptr);
}

int SetRootInside(uint32_t index, void* root) {
  void* expected = nullptr;
  if (!Header(index)->root.compare_exchange_strong(expected, root)) return CORDON_E_ROOT_SET;
  return CORDON_OK;
}

void* RootInside(uint32_t index) {
  return Header(index)->root.load(std::memory_order_acquire);
}

int IndexOf(const void* addr) {
  const auto& cfg = Config().virt;
  const auto a = reinterpret_cast<uint64_t>(addr);
  if (cfg.nslots == 0 || a < cfg.vregions) return -1;
  const uint64_t i = (a - cfg.vregions) / cfg.vstride;
  return i < cfg.count ? static_cast<int>(i) : -1;
}

bool Meets(uint64_t a, uint64_t end) {
  const auto& cfg = Config().virt;
  return cfg.nslots != 0 && a < cfg.block + hw::kGuard && end > cfg.block;
}

Span BlockSpan() {
  const auto& cfg = Config().virt;
  return cfg.nslots == 0 ? Span{0, 0} : Span{cfg.block, cfg.block + hw::kGuard};
}

Span RegionsSpan() {
  const auto& cfg = Config().virt;
  return cfg.count == 0 ? Span{0, 0} : Span{cfg.vregions, RegionStart(cfg.count)};
}

std::vector<int> RetagKeys() {
  std::vector<int> keys;
  const auto& cfg = Config().virt;
  if (cfg.nslots == 0) return keys;
  keys.push_back(cfg.parking_key);
  for (uint32_t s = 0; s < cfg.nslots; ++s) keys.push_back(SlotKey(s));
  return keys;
}

bool SealTables(std::string* why) {
  if (Config().virt.count == 0) return true;
  const uint64_t r = Call(0, kOpSealAll, 0, 0, 0, 0, 0);
  if (IsStatus(r)) {
    *why = "cannot make the virtual domains' entry tables read-only";
    return false;
  }
  if (std::string bad = CheckTags(true); !bad.empty()) {
    *why = bad;
    return false;
  }
  return true;
}

std::string CheckTags(bool sealed) {
  const auto& cfg = Config().virt;
  if (cfg.nslots == 0) return {};
  const auto maps = hw::MappingsIn(cfg.block, cfg.block + hw::kGuard);
  if (!maps) return "cannot read /proc/self/smaps to check the virtual domains' keys";
  const std::vector<int> keys = RetagKeys();
  const uint64_t regions_end = RegionStart(cfg.count);
  for (const hw::MappingInfo& m : *maps) {
    if (m.start < cfg.vregions) {
      if (m.pkey != cfg.directory_key || m.perms.compare(0, 3, "rw-") != 0)
        return "the virtual domains' directory is not on its key";
      continue;
    }
    if (m.start >= regions_end) {
      if (m.perms.compare(0, 3, "---") != 0) return "memory after the virtual domains' regions is accessible";
      continue;
    }
    bool known = false;
    for (const int k : keys) known |= m.pkey == k;
    if (!known) return "a virtual domain's pages carry a key that is neither the parking key nor a slot's";
    if (sealed && (m.start - cfg.vregions) % cfg.vstride < cfg.table_bytes &&
        m.perms.compare(0, 3, "r--") != 0) {
      return "a virtual domain's entry table is not read-only after the lockdown sealed it";
    }
    if (m.end > regions_end) return "a virtual domain's mapping runs past the regions";
  }
  return {};
}

}  // namespace cordon::domains::virt
