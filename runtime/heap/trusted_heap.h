// TrustedHeap: the allocator behind each domain's heap.
//
// It manages an arena of pages reserved and tagged at initialisation, so it
// never makes a system call. All of its metadata (this object, the page
// descriptors and the free-page map) lives out of band, in the domain's own
// memory, so no untrusted write can steer a trusted write, and a double free
// or a foreign pointer is found before anything changes.
//
// Small blocks (up to 2 KiB) come from one-page slabs of 24 size classes;
// larger or more strictly aligned blocks are runs of whole pages. Blocks are
// zeroed when freed, so every block handed out is zero. One lock serialises
// the heap; it is a spinlock because a futex wait would be a system call on
// trusted memory.
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
  size_t pages_in_use = 0;  // slab pages plus large-run pages
  size_t live_blocks = 0;
  size_t live_bytes = 0;  // sum of block sizes handed out (class-rounded)
};

class TrustedHeap {
 public:
  static constexpr size_t kPageSize = 4096;
  static constexpr size_t kMaxSmall = 2048;
  static constexpr size_t kMinAlign = 16;

  // Bytes of metadata that must follow the TrustedHeap object for an arena
  // of arena_bytes (a multiple of kPageSize).
  static size_t MetadataBytes(size_t arena_bytes);

  // Builds a heap in place: `this` must be followed by MetadataBytes(arena)
  // bytes of zeroed memory. The arena must be zeroed and page-aligned.
  TrustedHeap(void* arena, size_t arena_bytes);
  TrustedHeap(const TrustedHeap&) = delete;
  TrustedHeap& operator=(const TrustedHeap&) = delete;

  AllocResult Allocate(size_t size, size_t alignment = kMinAlign);
  // Failure leaves ptr valid and unchanged. ptr == nullptr allocates.
  AllocResult Reallocate(void* ptr, size_t size);
  // nullptr is a no-op. Errors change nothing.
  std::optional<HeapError> Free(void* ptr);

  // The usable size of a live block, or nullopt if ptr is not one.
  std::optional<size_t> BlockSize(const void* ptr);
  bool Contains(const void* ptr) const;
  HeapStats Stats();

 private:
  struct PageDesc;
  class Guard;

  AllocResult AllocateSmall(unsigned cls);
  AllocResult AllocateLarge(size_t pages, size_t align_pages);
  std::optional<size_t> FindRun(size_t pages, size_t align_pages) const;
  void MarkPages(size_t first, size_t count, bool free);
  std::optional<size_t> BlockSizeLocked(const void* ptr) const;
  void PushPartial(unsigned cls, uint32_t page);
  void RemovePartial(unsigned cls, uint32_t page);
  PageDesc* Desc(size_t page) const;
  uint64_t* FreeMap() const;

  std::atomic<bool> lock_{false};
  unsigned char* arena_;
  size_t arena_bytes_;
  size_t page_count_;
  size_t search_hint_ = 0;
  uint32_t partial_head_[24];
  size_t pages_in_use_ = 0;
  size_t live_blocks_ = 0;
  size_t live_bytes_ = 0;
};

}  // namespace cordon::heap

#endif
