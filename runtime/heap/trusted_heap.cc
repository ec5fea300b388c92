// TrustedHeap implementation (see trusted_heap.h).
#include "runtime/heap/trusted_heap.h"

#include <immintrin.h>
#include <sched.h>

#include <cstring>
#include <limits>

namespace cordon::heap {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint16_t kClassSize[24] = {16,  32,  48,  64,  80,  96,  112, 128,  160,  192,  224,  256,
                                     320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048};
constexpr unsigned kClassCount = sizeof kClassSize / sizeof kClassSize[0];

enum : uint8_t { kFreePage = 0, kSlabPage = 1, kLargeHead = 2, kLargeTail = 3 };

// The smallest class that holds size bytes at the given alignment. Classes
// that are powers of two are naturally aligned inside a page-aligned slab.
std::optional<unsigned> ClassFor(size_t size, size_t alignment) {
  for (unsigned c = 0; c < kClassCount; ++c) {
    const size_t s = kClassSize[c];
    if (s < size) continue;
    if (alignment <= TrustedHeap::kMinAlign || ((s & (s - 1)) == 0 && s % alignment == 0)) return c;
  }
  return std::nullopt;
}

}  // namespace

struct TrustedHeap::PageDesc {
  uint8_t kind;
  uint8_t cls;
  uint16_t used;
  uint32_t pages;  // run length, on a large head
  uint32_t next;   // partial-slab list links
  uint32_t prev;
  uint64_t bits[4];  // allocated objects of a slab
};

class TrustedHeap::Guard {
 public:
  explicit Guard(std::atomic<bool>& lock) : lock_(lock) {
    for (unsigned spins = 0; lock_.exchange(true, std::memory_order_acquire); ++spins) {
      while (lock_.load(std::memory_order_relaxed)) {
        // sched_yield touches no user memory, so it is safe on trusted data.
        if (++spins % 256 == 0)
          sched_yield();
        else
          _mm_pause();
      }
    }
  }
  ~Guard() { lock_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool>& lock_;
};

size_t TrustedHeap::MetadataBytes(size_t arena_bytes) {
  const size_t pages = arena_bytes / kPageSize;
  return pages * sizeof(PageDesc) + (pages + 63) / 64 * sizeof(uint64_t);
}

TrustedHeap::TrustedHeap(void* arena, size_t arena_bytes)
    : arena_(static_cast<unsigned char*>(arena)),
      arena_bytes_(arena_bytes / kPageSize * kPageSize),
      page_count_(arena_bytes / kPageSize) {
  for (auto& h : partial_head_) h = kNone;
  for (size_t p = 0; p < page_count_; ++p) {
    *Desc(p) = PageDesc{kFreePage, 0, 0, 0, kNone, kNone, {0, 0, 0, 0}};
  }
  MarkPages(0, page_count_, true);
}

TrustedHeap::PageDesc* TrustedHeap::Desc(size_t page) const {
  auto* base = reinterpret_cast<PageDesc*>(const_cast<TrustedHeap*>(this) + 1);
  return base + page;
}

uint64_t* TrustedHeap::FreeMap() const {
  return reinterpret_cast<uint64_t*>(Desc(page_count_));
}

bool TrustedHeap::Contains(const void* ptr) const {
  const auto* p = static_cast<const unsigned char*>(ptr);
  return p >= arena_ && p < arena_ + arena_bytes_;
}

void TrustedHeap::MarkPages(size_t first, size_t count, bool free) {
  uint64_t* map = FreeMap();
  for (size_t p = first; p < first + count; ++p) {
    if (free)
      map[p / 64] |= uint64_t{1} << (p % 64);
    else
      map[p / 64] &= ~(uint64_t{1} << (p % 64));
  }
}

std::optional<size_t> TrustedHeap::FindRun(size_t pages, size_t align_pages) const {
  const uint64_t* map = FreeMap();
  auto is_free = [&](size_t p) { return (map[p / 64] >> (p % 64)) & 1; };
  // Alignment is of the absolute address, and the arena is only page-aligned:
  // round up in absolute page numbers, then convert back to an index.
  const size_t base_page = reinterpret_cast<uintptr_t>(arena_) / kPageSize;
  auto align_up = [&](size_t p) {
    return (base_page + p + align_pages - 1) / align_pages * align_pages - base_page;
  };
  // Two passes: from the hint, then from the start.
  for (size_t pass = 0; pass < 2; ++pass) {
    size_t p = align_up(pass == 0 ? search_hint_ : 0);
    const size_t limit = pass == 0 ? page_count_ : search_hint_ + pages;
    while (p + pages <= page_count_ && p < limit) {
      if (align_pages == 1 && p % 64 == 0 && map[p / 64] == 0) {  // skip full words fast
        p += 64;
        continue;
      }
      size_t n = 0;
      while (n < pages && is_free(p + n)) ++n;
      if (n == pages) return p;
      p = align_up(p + n + 1);
    }
  }
  return std::nullopt;
}

AllocResult TrustedHeap::AllocateLarge(size_t pages, size_t align_pages) {
  const auto first = FindRun(pages, align_pages);
  if (!first) return {nullptr, HeapError::kNoMemory};
  MarkPages(*first, pages, false);
  *Desc(*first) = PageDesc{kLargeHead, 0, 0, static_cast<uint32_t>(pages), kNone, kNone, {0, 0, 0, 0}};
  for (size_t p = *first + 1; p < *first + pages; ++p) Desc(p)->kind = kLargeTail;
  search_hint_ = *first + pages;
  pages_in_use_ += pages;
  live_blocks_ += 1;
  live_bytes_ += pages * kPageSize;
  return {arena_ + *first * kPageSize, std::nullopt};
}

void TrustedHeap::PushPartial(unsigned cls, uint32_t page) {
  PageDesc* d = Desc(page);
  d->prev = kNone;
  d->next = partial_head_[cls];
  if (d->next != kNone) Desc(d->next)->prev = page;
  partial_head_[cls] = page;
}

void TrustedHeap::RemovePartial(unsigned cls, uint32_t page) {
  PageDesc* d = Desc(page);
  if (d->prev != kNone)
    Desc(d->prev)->next = d->next;
  else
    partial_head_[cls] = d->next;
  if (d->next != kNone) Desc(d->next)->prev = d->prev;
  d->next = d->prev = kNone;
}

AllocResult TrustedHeap::AllocateSmall(unsigned cls) {
  const size_t size = kClassSize[cls];
  const unsigned capacity = static_cast<unsigned>(kPageSize / size);
  uint32_t page = partial_head_[cls];
  if (page == kNone) {
    const auto run = FindRun(1, 1);
    if (!run) return {nullptr, HeapError::kNoMemory};
    page = static_cast<uint32_t>(*run);
    MarkPages(page, 1, false);
    *Desc(page) = PageDesc{kSlabPage, static_cast<uint8_t>(cls), 0, 1, kNone, kNone, {0, 0, 0, 0}};
    PushPartial(cls, page);
    pages_in_use_ += 1;
  }
  PageDesc* d = Desc(page);
  for (unsigned w = 0; w < 4; ++w) {
    const uint64_t free_bits = ~d->bits[w];
    if (free_bits == 0) continue;
    const unsigned slot = w * 64 + static_cast<unsigned>(__builtin_ctzll(free_bits));
    if (slot >= capacity) break;
    d->bits[w] |= uint64_t{1} << (slot % 64);
    if (++d->used == capacity) RemovePartial(cls, page);
    live_blocks_ += 1;
    live_bytes_ += size;
    return {arena_ + page * kPageSize + slot * size, std::nullopt};
  }
  return {nullptr, HeapError::kNoMemory};  // unreachable: partial pages have room
}

AllocResult TrustedHeap::Allocate(size_t size, size_t alignment) {
  if (size == 0 || alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return {nullptr, HeapError::kInvalidArgument};
  }
  if (size > arena_bytes_ || alignment > arena_bytes_) return {nullptr, HeapError::kNoMemory};
  Guard guard(lock_);
  if (size <= kMaxSmall) {
    if (const auto cls = ClassFor(size, alignment)) return AllocateSmall(*cls);
  }
  const size_t pages = (size + kPageSize - 1) / kPageSize;
  const size_t align_pages = alignment <= kPageSize ? 1 : alignment / kPageSize;
  return AllocateLarge(pages, align_pages);
}

std::optional<size_t> TrustedHeap::BlockSizeLocked(const void* ptr) const {
  if (!Contains(ptr)) return std::nullopt;
  const size_t offset = static_cast<size_t>(static_cast<const unsigned char*>(ptr) - arena_);
  const size_t page = offset / kPageSize;
  const PageDesc* d = Desc(page);
  if (d->kind == kLargeHead && offset % kPageSize == 0) return d->pages * kPageSize;
  if (d->kind != kSlabPage) return std::nullopt;
  const size_t size = kClassSize[d->cls];
  const size_t in_page = offset % kPageSize;
  if (in_page % size != 0) return std::nullopt;
  const size_t slot = in_page / size;
  if (!((d->bits[slot / 64] >> (slot % 64)) & 1)) return std::nullopt;
  return size;
}

std::optional<size_t> TrustedHeap::BlockSize(const void* ptr) {
  Guard guard(lock_);
  return BlockSizeLocked(ptr);
}

std::optional<HeapError> TrustedHeap::Free(void* ptr) {
  if (ptr == nullptr) return std::nullopt;
  if (!Contains(ptr)) return HeapError::kInvalidPointer;
  Guard guard(lock_);
  const size_t offset = static_cast<size_t>(static_cast<unsigned char*>(ptr) - arena_);
  const size_t page = offset / kPageSize;
  PageDesc* d = Desc(page);
  if (d->kind == kLargeHead) {
    if (offset % kPageSize != 0) return HeapError::kInvalidPointer;
    const size_t pages = d->pages;
    memset(ptr, 0, pages * kPageSize);
    d->kind = kFreePage;
    d->pages = 0;
    for (size_t p = page + 1; p < page + pages; ++p) Desc(p)->kind = kFreePage;
    MarkPages(page, pages, true);
    pages_in_use_ -= pages;
    live_blocks_ -= 1;
    live_bytes_ -= pages * kPageSize;
    return std::nullopt;
  }
  if (d->kind == kFreePage) return HeapError::kDoubleFree;  // the whole run was freed
  if (d->kind != kSlabPage) return HeapError::kInvalidPointer;
  const unsigned cls = d->cls;
  const size_t size = kClassSize[cls];
  const size_t in_page = offset % kPageSize;
  if (in_page % size != 0 || in_page / size >= kPageSize / size) return HeapError::kInvalidPointer;
  const size_t slot = in_page / size;
  const uint64_t bit = uint64_t{1} << (slot % 64);
  if (!(d->bits[slot / 64] & bit)) return HeapError::kDoubleFree;
  memset(ptr, 0, size);
  const bool was_full = d->used == kPageSize / size;
  d->bits[slot / 64] &= ~bit;
  d->used -= 1;
  live_blocks_ -= 1;
  live_bytes_ -= size;
  if (was_full) PushPartial(cls, static_cast<uint32_t>(page));
  if (d->used == 0) {  // every object is zero again: give the page back
    RemovePartial(cls, static_cast<uint32_t>(page));
    d->kind = kFreePage;
    MarkPages(page, 1, true);
    pages_in_use_ -= 1;
  }
  return std::nullopt;
}

AllocResult TrustedHeap::Reallocate(void* ptr, size_t size) {
  if (ptr == nullptr) return Allocate(size);
  if (size == 0) return {nullptr, HeapError::kInvalidArgument};
  std::optional<size_t> old_size;
  {
    Guard guard(lock_);
    old_size = BlockSizeLocked(ptr);
  }
  if (!old_size) return {nullptr, Contains(ptr) ? HeapError::kDoubleFree : HeapError::kInvalidPointer};
  if (size <= *old_size && (*old_size <= kMaxSmall ? size > *old_size / 2 : size > *old_size - kPageSize)) {
    // Fits and is not much smaller: keep it, but clear the dropped tail so
    // that the zero-when-free invariant holds when it grows again.
    memset(static_cast<unsigned char*>(ptr) + size, 0, *old_size - size);
    return {ptr, std::nullopt};
  }
  AllocResult fresh = Allocate(size);
  if (!fresh.ok()) return fresh;
  memcpy(fresh.ptr, ptr, size < *old_size ? size : *old_size);
  (void)Free(ptr);
  return fresh;
}

HeapStats TrustedHeap::Stats() {
  Guard guard(lock_);
  return HeapStats{arena_bytes_, pages_in_use_, live_blocks_, live_bytes_};
}

}  // namespace cordon::heap
