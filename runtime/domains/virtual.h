// Virtual domains: more domains than the hardware has keys, on a stock
// kernel (docs/virtual-domains.md).
//
// The keys left after the physical domains become key slots: physical
// domains of the runtime's own (records, trusted stacks, TCBs, a gate),
// whose one registered entry (SlotEntry) runs the calls of whichever
// virtual domain is resident on the slot. A virtual domain is a region of
// its own: its entry table, then its data (a header and its heap). A
// resident domain's pages carry its slot's key; an evicted one's the
// parking key, which every PKRU denies. The directory (which domain is on
// which slot, who is inside, the rights) is memory of a key that only the
// slots' PKRUs grant. Calls come with a call block in the caller's memory,
// which the slot reads once and answers in (ran, or go to another slot).
#ifndef CORDON_RUNTIME_DOMAINS_VIRTUAL_H_
#define CORDON_RUNTIME_DOMAINS_VIRTUAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/base/expected.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"

namespace cordon::domains::virt {

// Handle of virtual domain 0; virtual domain i is kFirstHandle + i.
inline constexpr int kFirstHandle = CORDON_MAX_DOMAINS;
// The key slots' one entry id (their first user id).
inline constexpr uint32_t kSlotEntryId = CORDON_BUILTIN_COUNT;
// Most virtual domains, whatever the heap size (the directory's arrays).
inline constexpr uint32_t kMaxVirtual = 16384;

// Runtime operations on a virtual domain, in the call block's id (entry
// ids are below CORDON_TABLE_SIZE).
enum Op : uint32_t {
  kOpFirst = 0x10000,
  kOpAlloc = kOpFirst,  // a0 size, a1 alignment (before lockdown from untrusted code)
  kOpFree,              // a0 pointer
  kOpRealloc,           // a0 pointer, a1 size
  kOpRegister,          // a0 function
  kOpPin,
  kOpUnpin,
  kOpEvict,
  kOpKey,        // the key the domain's pages carry
  kOpSetRights,  // a0 rights
  kOpRights,
  kOpSealAll,  // at the lockdown: every domain's entry table read-only
  kOpLast = kOpSealAll,
};

// What the slot answers in the call block.
enum Outcome : uint32_t {
  kNotRun = 0,  // the slot never wrote: a fault of the runtime
  kRan = 1,
  kElsewhere = 2,  // resident on slot `where`: call there
  kBusy = 3,       // the slot could not be changed now: try another
};
// `where` of a kBusy answer: why.
inline constexpr uint32_t kBusyInUse = 0;   // a thread stayed inside its resident
inline constexpr uint32_t kBusyPinned = 1;  // its resident is pinned

// In the caller's (untrusted) memory, on its stack. The slot reads the
// request once and writes the outcome.
struct CallBlock {
  uint32_t vdomain;
  uint32_t id;
  uint64_t a4;
  uint32_t outcome;
  uint32_t where;
};

inline bool Enabled() {
  return gates::Config().virt.nslots != 0;
}
inline bool IsVirtual(int handle) {
  return handle >= kFirstHandle && static_cast<uint32_t>(handle - kFirstHandle) < gates::Config().virt.count;
}
inline bool IsSlot(int d) {
  return d >= 1 && d < CORDON_MAX_DOMAINS && gates::Config().virt.slot_plus1[d] != 0;
}

// Creates virtual domain (returns its handle), setting up the keys, the
// block and the slots the first time. Before lockdown, from untrusted code;
// the caller serialises. slot_setup: what CreateDomain needs for the slots
// (their builtins); it gets the directory key here.
Expected<int> Create(const cordon_options& opts, DomainSetup slot_setup);
// The physical domains made as key slots by the last Create (to name them).
std::vector<int> SlotDomains();

// A call to entry id (or an Op) of virtual domain index, from code outside
// every virtual domain: picks a slot, calls its gate, and goes on until the
// call has run (another slot, a miss that loads the domain).
uint64_t Call(uint32_t index, uint32_t id, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4);

// Inside a key slot: the virtual domain index resident on it (-1 if none or
// not inside a slot). Reads PKRU and the directory.
int CurrentIndex();
// Heap and root operations of virtual domain index, run inside it.
uint64_t AllocInside(uint32_t index, size_t size, size_t alignment);
uint64_t FreeInside(uint32_t index, void* ptr);
uint64_t ReallocInside(uint32_t index, void* ptr, size_t size);
int SetRootInside(uint32_t index, void* root);
void* RootInside(uint32_t index);

// The virtual domain whose region holds addr, or -1.
int IndexOf(const void* addr);
// Whether [a, end) meets the virtual domains' block (directory included).
bool Meets(uint64_t a, uint64_t end);
// Region of virtual domain index: [start, start + stride).
uint64_t RegionStart(uint32_t index);

// For the lockdown: the block (memory calls refused), the regions and the
// keys pkey_mprotect may name there, and the check that every region is
// parked or on a slot key, with its table read-only and the directory on
// its key (read back from smaps).
Span BlockSpan();  // domains::Span
Span RegionsSpan();
std::vector<int> RetagKeys();
bool SealTables(std::string* why);
// sealed: the tables must be read-only too. Empty when all is well.
std::string CheckTags(bool sealed);

}  // namespace cordon::domains::virt

#endif
