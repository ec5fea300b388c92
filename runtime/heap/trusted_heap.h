// TrustedHeap: the allocator behind each domain's heap.
//
// It manages an arena of pages reserved and tagged at initialisation, so it
// never makes a system call. All of its metadata (this object, the page
// descriptors, the free-page map and the per-thread heaps) lives out of
// band, in the domain's own memory, so no untrusted write can steer a
// trusted write, and a double free or a foreign pointer is found before
// anything changes.
//
// Small blocks (up to 4 KiB) come from slabs of 28 size classes, one page
// each up to 2 KiB and four pages above (so that the 3 KiB block libcrypto
// makes for each signature is neither a page run under the shared lock nor
// a whole page to wipe); larger or more strictly aligned blocks are runs of
// whole pages, first fit from the lowest free page, so freed pages are the next ones used and the
// memory touched stays as small as the peak in use. Each thread slot (see
// EnableThreadSlots) has its own slab pages and its own lock, so threads do
// not contend on small blocks; pages come from, and go back to, one shared
// page map under a second lock. The locks are spinlocks because a futex wait
// would be a system call on trusted memory.
//
// Zeroing: every block handed out is zero, and a block is wiped when it is
// freed (so a freed secret does not stay in memory). Each byte is therefore
// written once per use: fresh pages are zero already and are never cleared
// again, and nothing is cleared at allocation.
#ifndef CORDON_RUNTIME_HEAP_TRUSTED_HEAP_H_
#define CORDON_RUNTIME_HEAP_TRUSTED_HEAP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace cordon::heap {

enum class HeapError { kInvalidArgument, kNoMemory, kDoubleFree, kInvalidPointer };

// A pointer or an error, never both.
struct AllocResult {
  void* ptr = nullptr;
  std::optional<HeapError> error;
  bool ok() const { return !error.has_value(); }
};

struct HeapStats {
  size_t arena_bytes = 0;
  size_t pages_in_use = 0;  // slab pages holding blocks plus large-run pages
  size_t live_blocks = 0;
  size_t live_bytes = 0;  // sum of block sizes handed out (class-rounded)
};

// Which thread slot the calling thread is in, from something untrusted code
// cannot change (the domain uses the trusted stack the thread runs on), or
// any value >= the slot count for "none" (the shared slot is used). The slot
// only chooses whose slab pages a small block comes from: each slot has its
// own lock, so a wrong answer costs contention, never correctness.
using ThreadSlotFn = uint32_t (*)(uintptr_t context);

class TrustedHeap {
 public:
  static constexpr size_t kPageSize = 4096;
  static constexpr size_t kMaxSmall = 4096;  // the largest block a slab holds
  static constexpr size_t kMinAlign = 16;
  static constexpr unsigned kClassCount = 28;
  // A slot keeps at most one empty slab a class: this many pages.
  static constexpr size_t kKeptPagesPerSlot = 24 * 1 + 4 * 4;

  // Bytes of metadata that must follow the TrustedHeap object for an arena
  // of arena_bytes (a multiple of kPageSize).
  static size_t MetadataBytes(size_t arena_bytes);

  // Builds a heap in place: `this` must be followed by MetadataBytes(arena)
  // bytes of zeroed memory. The arena must be zeroed and page-aligned.
  TrustedHeap(void* arena, size_t arena_bytes);
  TrustedHeap(const TrustedHeap&) = delete;
  TrustedHeap& operator=(const TrustedHeap&) = delete;

  // Gives each of `slots` thread slots its own slab pages and lock; slot_of
  // says which slot the calling thread is in. The slot table takes the
  // lowest pages of the arena (about 200 bytes a slot). Call once, before
  // any allocation and before other threads use the heap; false (and
  // nothing changed) if it was called already, blocks were allocated, or the
  // table would take more than an eighth of the arena.
  bool EnableThreadSlots(ThreadSlotFn slot_of, uintptr_t context, uint32_t slots);

  AllocResult Allocate(size_t size, size_t alignment = kMinAlign);
  // Failure leaves ptr valid and unchanged. ptr == nullptr allocates.
  AllocResult Reallocate(void* ptr, size_t size);
  // nullptr is a no-op. Errors change nothing.
  std::optional<HeapError> Free(void* ptr);

  // The usable size of a live block, or nullopt if ptr is not one.
  std::optional<size_t> BlockSize(const void* ptr);
  bool Contains(const void* ptr) const;
  void* arena() const { return arena_; }
  size_t arena_bytes() const { return arena_bytes_; }
  // Exact when no other thread is allocating or freeing.
  HeapStats Stats();

  // Pages of the arena ever handed out (the high-water mark of the page
  // map): with lowest-first reuse this bounds the resident memory the heap
  // has touched.
  size_t PagesTouched();

 private:
  struct PageDesc;
  struct Slot;
  class Guard;

  uint32_t SlotIndex();  // 0: the shared slot; i + 1: thread slot i
  AllocResult AllocateSmall(Slot& s, uint32_t slot_index, unsigned cls);
  AllocResult SmallFallback(uint32_t slot_index, unsigned cls, size_t size);
  uint32_t NewSlabPage(Slot& s, uint32_t slot_index, unsigned cls);
  AllocResult AllocateLarge(size_t pages, size_t align_pages);
  AllocResult TakeRun(size_t first, size_t pages);
  void ReleaseEmptyPages();
  void ReleaseSlabPage(Slot& s, unsigned cls, uint32_t page, bool kept);
  void SlabPageChanged(Slot& s, unsigned cls, uint32_t page, bool was_full);
  std::optional<HeapError> FreeLarge(size_t page, size_t offset);
  std::optional<size_t> FindRun(size_t pages, size_t align_pages) const;
  size_t NextFree(size_t from) const;
  size_t NextUsed(size_t from, size_t limit) const;
  void MarkPages(size_t first, size_t count, bool free);
  std::optional<size_t> SmallBlockSize(const PageDesc* h, size_t in_slab) const;
  bool StillInSlab(size_t page, uint8_t kind, uint32_t dist, size_t head, uint32_t owner) const;
  void PushPartial(Slot& s, unsigned cls, uint32_t page);
  void RemovePartial(Slot& s, unsigned cls, uint32_t page);
  Slot& SlotAt(uint32_t index);
  PageDesc* Desc(size_t page) const;
  uint64_t* FreeMap() const;

  // The shared page map, large runs and the shared slot's pages.
  std::atomic<bool> lock_{false};
  unsigned char* arena_;
  size_t arena_bytes_;
  size_t page_count_;
  size_t lowest_free_ = 0;  // every page below it is in use
  size_t high_water_ = 0;   // every page at or above it was never used
  size_t pages_in_use_ = 0;
  size_t large_blocks_ = 0;
  size_t large_bytes_ = 0;
  ThreadSlotFn slot_of_ = nullptr;
  uintptr_t slot_context_ = 0;
  uint32_t slot_count_ = 0;  // thread slots, besides the shared one
  size_t slot_table_pages_ = 0;
  Slot* slots_ = nullptr;  // slot_count_ + 1 entries; [0] is the shared slot
  alignas(64) unsigned char shared_slot_[256];
};

}  // namespace cordon::heap

#endif
