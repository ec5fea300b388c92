// TrustedHeap implementation (see trusted_heap.h).
//
// Locking. A slab page belongs to one slot (PageDesc::owner) from the moment
// it becomes a slab until it is free again, and both changes happen under
// that slot's lock and the page-map lock. So a thread that holds slot S's
// lock and reads "slab of S" in a descriptor knows the page stays so; one
// that holds the page-map lock and reads "not a slab" knows that too. Free
// and BlockSize read the descriptor first without a lock, take the lock
// that the reading names, and read it again; they decide nothing on the
// first reading. Lock order: a slot's lock, then the page-map lock.
#include "runtime/heap/trusted_heap.h"

#include <immintrin.h>
#include <sched.h>

#include <cstring>
#include <limits>
#include <new>

namespace cordon::heap {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint16_t kClassSize[TrustedHeap::kClassCount] = {
    16,  32,  48,  64,  80,  96,   112,  128,  160,  192,  224,  256,  320,  384,
    448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096};
// Pages a slab of each class spans: one up to 2 KiB, four above.
constexpr uint32_t SlabPages(unsigned cls) {
  return kClassSize[cls] <= 2048 ? 1 : 4;
}
constexpr size_t KeptPages() {
  size_t n = 0;
  for (unsigned c = 0; c < TrustedHeap::kClassCount; ++c) n += SlabPages(c);
  return n;
}
static_assert(KeptPages() == TrustedHeap::kKeptPagesPerSlot, "kKeptPagesPerSlot is one slab a class");

// The smallest class for each size in 16-byte steps (index (size + 15) / 16).
struct ClassTable {
  uint8_t of[TrustedHeap::kMaxSmall / 16 + 1];
  constexpr ClassTable() : of() {
    unsigned c = 0;
    for (unsigned i = 0; i <= TrustedHeap::kMaxSmall / 16; ++i) {
      while (kClassSize[c] < i * 16) ++c;
      of[i] = static_cast<uint8_t>(c);
    }
  }
};
constexpr ClassTable kClassOf;

// Per class: objects in a page, and ceil(2^32 / size), so that the slot of
// an offset in a page is a multiply and a shift (a division costs more than
// the rest of a free). Exact for offsets below 2^20.
struct ClassMath {
  uint16_t capacity[TrustedHeap::kClassCount];
  uint64_t inverse[TrustedHeap::kClassCount];
  constexpr ClassMath() : capacity(), inverse() {
    for (unsigned c = 0; c < TrustedHeap::kClassCount; ++c) {
      capacity[c] = static_cast<uint16_t>(SlabPages(c) * TrustedHeap::kPageSize / kClassSize[c]);
      inverse[c] = ((uint64_t{1} << 32) + kClassSize[c] - 1) / kClassSize[c];
    }
  }
};
constexpr ClassMath kMath;

// The slot of the object at in_slab (from the slab's first page) in a slab
// of class cls, or kNone if no object starts there.
inline uint32_t SlotOf(unsigned cls, size_t in_slab) {
  const auto slot = static_cast<uint32_t>((in_slab * kMath.inverse[cls]) >> 32);
  if (slot * size_t{kClassSize[cls]} != in_slab || slot >= kMath.capacity[cls]) return kNone;
  return slot;
}

enum : uint8_t {
  kFreePage = 0,
  kSlabPage = 1,
  kLargeHead = 2,
  kLargeTail = 3,
  kLargeFreeing = 4,  // a large head being wiped by Free: a second free is a double free
  kMetaPage = 5,      // the thread-slot table
  kSlabTail = 6,      // a later page of a multi-page slab: pages is the distance to its first
};

// The smallest class that holds size bytes at the given alignment. Classes
// that are powers of two are naturally aligned inside a page-aligned slab.
std::optional<unsigned> ClassFor(size_t size, size_t alignment) {
  if (alignment <= TrustedHeap::kMinAlign) return kClassOf.of[(size + 15) / 16];
  for (unsigned c = kClassOf.of[(size + 15) / 16]; c < TrustedHeap::kClassCount; ++c) {
    const size_t s = kClassSize[c];
    if ((s & (s - 1)) == 0 && s % alignment == 0) return c;
  }
  return std::nullopt;
}

// Zeroes a small block (a multiple of 16 bytes, 16-aligned) inline: for the
// common sizes a call to memset costs more than the stores.
inline void WipeSmall(void* p, size_t size) {
  auto* v = static_cast<__m128i*>(p);
  const __m128i zero = _mm_setzero_si128();
  for (size_t i = 0; i < size / 16; ++i) {
    _mm_store_si128(v + i, zero);
    asm("" : : "r"(v) : "memory");  // keeps the loop from becoming a call to memset
  }
}

template <typename T>
T Load(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_ACQUIRE);
}
template <typename T>
void Store(T& field, T value) {
  __atomic_store_n(&field, value, __ATOMIC_RELEASE);
}

}  // namespace

struct TrustedHeap::PageDesc {
  uint8_t kind;  // read without a lock (Load), written under the locks (Store)
  uint8_t cls;
  uint16_t used;
  uint32_t owner;  // the slot of a slab page; read like kind
  uint32_t pages;  // run length, on a large head; distance to the first page, on a slab tail (read like kind)
  uint32_t next;   // partial-slab list links
  uint32_t prev;
  uint64_t bits[4];  // allocated objects of a slab
};

struct alignas(64) TrustedHeap::Slot {
  std::atomic<bool> lock{false};
  // The two counters are kept apart: side by side, the compiler updates
  // them with one 16-byte load and store, and the next operation's load
  // then waits for two 8-byte stores that cannot be forwarded to it.
  size_t live_blocks = 0;
  uint32_t partial_head[kClassCount];
  size_t live_bytes = 0;
  size_t empty_pages = 0;  // pages of slabs kept with no block (at most one slab a class, at its list head)
  Slot() {
    for (auto& h : partial_head) h = kNone;
  }
};

namespace {

// Waits for a held lock; out of line, so that the uncontended path is one
// exchange and the callers keep few registers.
[[gnu::noinline, gnu::cold]] void WaitForLock(std::atomic<bool>& lock) {
  for (unsigned spins = 0; lock.exchange(true, std::memory_order_acquire); ++spins) {
    while (lock.load(std::memory_order_relaxed)) {
      // sched_yield touches no user memory, so it is safe on trusted data.
      if (++spins % 256 == 0)
        sched_yield();
      else
        _mm_pause();
    }
  }
}

}  // namespace

class TrustedHeap::Guard {
 public:
  explicit Guard(std::atomic<bool>& lock) : lock_(lock) {
    if (__builtin_expect(lock_.exchange(true, std::memory_order_acquire), false)) WaitForLock(lock_);
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
  static_assert(sizeof(Slot) <= sizeof shared_slot_, "the shared slot lives in shared_slot_");
  slots_ = new (shared_slot_) Slot();
  // The descriptors are not written: the metadata is zero (the
  // constructor's contract), and an all-zero descriptor is a free page
  // (its list links are only read once it is a slab, which sets them).
  // Writing them would touch 48 bytes a page of the arena, about 200
  // pages of metadata for a 64 MiB heap, at cordon_init().
  static_assert(kFreePage == 0, "a zero descriptor is a free page");
  MarkPages(0, page_count_, true);
}

TrustedHeap::PageDesc* TrustedHeap::Desc(size_t page) const {
  auto* base = reinterpret_cast<PageDesc*>(const_cast<TrustedHeap*>(this) + 1);
  return base + page;
}

uint64_t* TrustedHeap::FreeMap() const {
  return reinterpret_cast<uint64_t*>(Desc(page_count_));
}

TrustedHeap::Slot& TrustedHeap::SlotAt(uint32_t index) {
  return index == 0 ? *reinterpret_cast<Slot*>(shared_slot_) : slots_[index];
}

bool TrustedHeap::EnableThreadSlots(ThreadSlotFn slot_of, uintptr_t context, uint32_t slots) {
  if (slot_of_ == nullptr) ReleaseEmptyPages();  // the shared slot's kept pages
  Guard guard(lock_);
  if (slot_of == nullptr || slots == 0 || slot_of_ != nullptr || pages_in_use_ != 0 ||
      SlotAt(0).live_blocks != 0) {
    return false;
  }
  // Entry 0 of the table is unused: slot i of the caller is entry i + 1.
  const size_t bytes = (size_t{slots} + 1) * sizeof(Slot);
  const size_t pages = (bytes + kPageSize - 1) / kPageSize;
  if (pages > page_count_ / 8) return false;
  MarkPages(0, pages, false);
  for (size_t p = 0; p < pages; ++p) Store(Desc(p)->kind, static_cast<uint8_t>(kMetaPage));
  slots_ = reinterpret_cast<Slot*>(arena_);
  for (uint32_t i = 1; i <= slots; ++i) new (&slots_[i]) Slot();
  lowest_free_ = pages;
  high_water_ = high_water_ > pages ? high_water_ : pages;
  slot_table_pages_ = pages;
  slot_count_ = slots;
  slot_context_ = context;
  slot_of_ = slot_of;
  return true;
}

uint32_t TrustedHeap::SlotIndex() {
  if (slot_of_ == nullptr) return 0;
  const uint32_t s = slot_of_(slot_context_);
  return s < slot_count_ ? s + 1 : 0;
}

bool TrustedHeap::Contains(const void* ptr) const {
  const auto* p = static_cast<const unsigned char*>(ptr);
  return p >= arena_ && p < arena_ + arena_bytes_;
}

void TrustedHeap::MarkPages(size_t first, size_t count, bool free) {
  uint64_t* map = FreeMap();
  size_t p = first;
  const size_t end = first + count;
  while (p < end) {
    const size_t bit = p % 64;
    const size_t n = end - p < 64 - bit ? end - p : 64 - bit;
    const uint64_t mask = (n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1)) << bit;
    if (free)
      map[p / 64] |= mask;
    else
      map[p / 64] &= ~mask;
    p += n;
  }
  if (free) {
    if (first < lowest_free_) lowest_free_ = first;
  } else {
    if (end > high_water_) high_water_ = end;
    if (first == lowest_free_) lowest_free_ = NextFree(end);
  }
}

// The first free page at or after from (page_count_ if none).
size_t TrustedHeap::NextFree(size_t from) const {
  const uint64_t* map = FreeMap();
  if (from >= page_count_) return page_count_;
  size_t w = from / 64;
  uint64_t bits = map[w] & (~uint64_t{0} << (from % 64));
  const size_t words = (page_count_ + 63) / 64;
  while (bits == 0) {
    if (++w == words) return page_count_;
    bits = map[w];
  }
  const size_t p = w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
  return p < page_count_ ? p : page_count_;
}

// The first page in use in [from, limit), or limit.
size_t TrustedHeap::NextUsed(size_t from, size_t limit) const {
  const uint64_t* map = FreeMap();
  size_t p = from;
  while (p < limit) {
    const uint64_t used = ~map[p / 64] & (~uint64_t{0} << (p % 64));
    if (used != 0) {
      const size_t q = p / 64 * 64 + static_cast<size_t>(__builtin_ctzll(used));
      return q < limit ? q : limit;
    }
    p = (p / 64 + 1) * 64;
  }
  return limit;
}

// First fit from the lowest free page.
std::optional<size_t> TrustedHeap::FindRun(size_t pages, size_t align_pages) const {
  // Alignment is of the absolute address, and the arena is only page-aligned:
  // round up in absolute page numbers, then convert back to an index.
  const size_t base_page = reinterpret_cast<uintptr_t>(arena_) / kPageSize;
  auto align_up = [&](size_t p) {
    return (base_page + p + align_pages - 1) / align_pages * align_pages - base_page;
  };
  size_t p = lowest_free_;
  while (true) {
    p = NextFree(p);
    if (p + pages > page_count_) return std::nullopt;
    const size_t a = align_pages == 1 ? p : align_up(p);
    if (a != p) {  // the aligned page must be free too
      p = a;
      continue;
    }
    const size_t q = NextUsed(p, p + pages);
    if (q == p + pages) return p;
    p = q;
  }
}

size_t TrustedHeap::PagesTouched() {
  Guard guard(lock_);
  return high_water_ - slot_table_pages_;
}

void TrustedHeap::ReleaseEmptyPages() {
  for (uint32_t i = 0; i <= slot_count_; ++i) {
    Slot& s = SlotAt(i);
    Guard guard(s.lock);
    for (unsigned cls = 0; cls < kClassCount; ++cls) {
      const uint32_t head = s.partial_head[cls];
      if (head != kNone && Desc(head)->used == 0) ReleaseSlabPage(s, cls, head, /*kept=*/true);
    }
  }
}

// Caller holds s's lock; the page is empty (all zero) and in s's list;
// kept says whether it was the class's kept empty page.
void TrustedHeap::ReleaseSlabPage(Slot& s, unsigned cls, uint32_t page, bool kept) {
  const uint32_t span = SlabPages(cls);
  RemovePartial(s, cls, page);
  if (kept) s.empty_pages -= span;
  Guard map_guard(lock_);
  for (uint32_t i = 1; i < span; ++i) {
    Store(Desc(page + i)->kind, static_cast<uint8_t>(kFreePage));
    Store(Desc(page + i)->pages, uint32_t{0});
  }
  Store(Desc(page)->kind, static_cast<uint8_t>(kFreePage));
  MarkPages(page, span, true);
  pages_in_use_ -= span;
}

AllocResult TrustedHeap::AllocateLarge(size_t pages, size_t align_pages) {
  std::optional<size_t> first;
  for (int attempt = 0; attempt < 2 && !first; ++attempt) {
    // Before failing, the empty slab pages the slots keep go back to the map.
    if (attempt == 1) ReleaseEmptyPages();
    Guard guard(lock_);
    first = FindRun(pages, align_pages);
    if (first) return TakeRun(*first, pages);
  }
  return {nullptr, HeapError::kNoMemory};
}

// Caller holds the page-map lock; [first, first + pages) is free.
AllocResult TrustedHeap::TakeRun(size_t first, size_t pages) {
  MarkPages(first, pages, false);
  PageDesc* head = Desc(first);
  head->pages = static_cast<uint32_t>(pages);
  for (size_t p = first + 1; p < first + pages; ++p) Store(Desc(p)->kind, static_cast<uint8_t>(kLargeTail));
  Store(head->kind, static_cast<uint8_t>(kLargeHead));
  pages_in_use_ += pages;
  large_blocks_ += 1;
  large_bytes_ += pages * kPageSize;
  return {arena_ + first * kPageSize, std::nullopt};
}

void TrustedHeap::PushPartial(Slot& s, unsigned cls, uint32_t page) {
  PageDesc* d = Desc(page);
  d->prev = kNone;
  d->next = s.partial_head[cls];
  if (d->next != kNone) Desc(d->next)->prev = page;
  s.partial_head[cls] = page;
}

void TrustedHeap::RemovePartial(Slot& s, unsigned cls, uint32_t page) {
  PageDesc* d = Desc(page);
  if (d->prev != kNone)
    Desc(d->prev)->next = d->next;
  else
    s.partial_head[cls] = d->next;
  if (d->next != kNone) Desc(d->next)->prev = d->prev;
  d->next = d->prev = kNone;
}

// A fresh slab page of class cls for slot s (caller holds s's lock), at
// the head of its list; kNone if the arena is full.
uint32_t TrustedHeap::NewSlabPage(Slot& s, uint32_t slot_index, unsigned cls) {
  const uint32_t span = SlabPages(cls);
  Guard map_guard(lock_);
  const auto run = FindRun(span, 1);
  if (!run) return kNone;
  const auto page = static_cast<uint32_t>(*run);
  MarkPages(page, span, false);
  for (uint32_t i = 1; i < span; ++i) {
    PageDesc* t = Desc(page + i);
    Store(t->pages, i);
    Store(t->owner, slot_index);
    Store(t->kind, static_cast<uint8_t>(kSlabTail));
  }
  PageDesc* d = Desc(page);
  d->cls = static_cast<uint8_t>(cls);
  d->used = 0;
  Store(d->owner, slot_index);
  d->pages = span;
  for (auto& w : d->bits) w = 0;
  Store(d->kind, static_cast<uint8_t>(kSlabPage));
  pages_in_use_ += span;
  PushPartial(s, cls, page);
  s.empty_pages += span;
  return page;
}

[[gnu::always_inline]] inline AllocResult TrustedHeap::AllocateSmall(Slot& s, uint32_t slot_index,
                                                                     unsigned cls) {
  Guard guard(s.lock);
  uint32_t page = s.partial_head[cls];
  if (__builtin_expect(page == kNone, false)) {
    page = NewSlabPage(s, slot_index, cls);
    if (page == kNone) return {nullptr, HeapError::kNoMemory};
  }
  PageDesc* d = Desc(page);
  if (d->used == 0) s.empty_pages -= SlabPages(cls);
  // A page on the list has a free object: the first clear bit (bits past
  // the capacity are never set, and the capacity is at least 2).
  unsigned w = 0;
  while (~d->bits[w] == 0) ++w;
  const unsigned slot = w * 64 + static_cast<unsigned>(__builtin_ctzll(~d->bits[w]));
  d->bits[w] |= uint64_t{1} << (slot % 64);
  if (++d->used == kMath.capacity[cls]) RemovePartial(s, cls, page);
  const size_t size = kClassSize[cls];
  s.live_blocks += 1;
  s.live_bytes += size;
  return {arena_ + size_t{page} * kPageSize + slot * size, std::nullopt};
}

// No slab for the class: first the empty slabs that the slots keep go back
// to the page map (no slot lock is held here), then, for a four-page class,
// whose slab needs four free pages in a row, the block becomes a page run
// (Free and BlockSize know both). Its alignment is at most a page.
AllocResult TrustedHeap::SmallFallback(uint32_t index, unsigned cls, size_t size) {
  ReleaseEmptyPages();
  AllocResult r = AllocateSmall(SlotAt(index), index, cls);
  if (r.ok() || SlabPages(cls) == 1) return r;
  return AllocateLarge((size + kPageSize - 1) / kPageSize, 1);
}

AllocResult TrustedHeap::Allocate(size_t size, size_t alignment) {
  if (__builtin_expect(alignment == kMinAlign && size - 1 < kMaxSmall, true)) {  // the common case
    const uint32_t index = SlotIndex();
    const unsigned cls = kClassOf.of[(size + 15) / 16];
    AllocResult r = AllocateSmall(SlotAt(index), index, cls);
    if (__builtin_expect(r.ok(), true)) return r;
    return SmallFallback(index, cls, size);
  }
  if (size == 0 || alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return {nullptr, HeapError::kInvalidArgument};
  }
  if (size > arena_bytes_ || alignment > arena_bytes_) return {nullptr, HeapError::kNoMemory};
  if (size <= kMaxSmall) {
    if (const auto cls = ClassFor(size, alignment)) {
      const uint32_t index = SlotIndex();
      AllocResult r = AllocateSmall(SlotAt(index), index, *cls);
      if (r.ok() || alignment > kPageSize) return r;
      return SmallFallback(index, *cls, size);
    }
  }
  const size_t pages = (size + kPageSize - 1) / kPageSize;
  const size_t align_pages = alignment <= kPageSize ? 1 : alignment / kPageSize;
  return AllocateLarge(pages, align_pages);
}

// The size of the live small block at in_slab in the slab whose first page
// is h (nullopt if it is not one). Caller holds the slab's slot lock.
std::optional<size_t> TrustedHeap::SmallBlockSize(const PageDesc* h, size_t in_slab) const {
  const uint32_t slot = SlotOf(h->cls, in_slab);
  if (slot == kNone || !((h->bits[slot / 64] >> (slot % 64)) & 1)) return std::nullopt;
  return kClassSize[h->cls];
}

// Whether page (of kind, and at distance dist from what its descriptor
// names as its slab's first page) is still so, in the slab of owner that
// starts at head: the caller holds owner's lock, under which that slab
// cannot change, and slabs do not overlap.
bool TrustedHeap::StillInSlab(size_t page, uint8_t kind, uint32_t dist, size_t head, uint32_t owner) const {
  const PageDesc* d = Desc(page);
  const PageDesc* h = Desc(head);
  return Load(d->kind) == kind && (kind == kSlabPage || Load(d->pages) == dist) &&
         Load(h->kind) == kSlabPage && Load(h->owner) == owner && dist < SlabPages(h->cls);
}

std::optional<size_t> TrustedHeap::BlockSize(const void* ptr) {
  if (!Contains(ptr)) return std::nullopt;
  const size_t offset = static_cast<size_t>(static_cast<const unsigned char*>(ptr) - arena_);
  const size_t page = offset / kPageSize;
  const PageDesc* d = Desc(page);
  while (true) {
    const uint8_t kind = Load(d->kind);
    if (kind == kSlabPage || kind == kSlabTail) {
      const uint32_t dist = kind == kSlabTail ? Load(d->pages) : 0;
      if (dist > page || (kind == kSlabTail && dist == 0)) continue;  // changing meanwhile
      const size_t head = page - dist;
      const uint32_t owner = Load(Desc(head)->owner);
      if (owner > slot_count_) continue;
      Guard guard(SlotAt(owner).lock);
      if (!StillInSlab(page, kind, dist, head, owner)) continue;  // changed meanwhile
      return SmallBlockSize(Desc(head), offset - head * kPageSize);
    }
    Guard guard(lock_);
    const uint8_t now = Load(d->kind);
    if (now == kSlabPage || now == kSlabTail) continue;  // became a slab meanwhile
    if (now == kLargeHead && offset % kPageSize == 0) return d->pages * kPageSize;
    return std::nullopt;
  }
}

std::optional<HeapError> TrustedHeap::FreeLarge(size_t page, size_t offset) {
  PageDesc* d = Desc(page);
  size_t pages;
  {
    Guard guard(lock_);
    const uint8_t kind = Load(d->kind);
    if (kind == kSlabPage || kind == kSlabTail) return HeapError::kNoMemory;  // caller retries: a slab now
    if (kind == kFreePage || kind == kLargeFreeing) return HeapError::kDoubleFree;  // the whole run was freed
    if (kind != kLargeHead || offset % kPageSize != 0) return HeapError::kInvalidPointer;
    // Claimed for wiping: a second free from here on is a double free, and
    // the pages stay out of the free map until they are zero.
    Store(d->kind, static_cast<uint8_t>(kLargeFreeing));
    pages = d->pages;
  }
  // Wiped without the lock, so that other threads' page-map work goes on.
  memset(arena_ + page * kPageSize, 0, pages * kPageSize);
  Guard guard(lock_);
  d->pages = 0;
  for (size_t p = page + 1; p < page + pages; ++p) Store(Desc(p)->kind, static_cast<uint8_t>(kFreePage));
  Store(d->kind, static_cast<uint8_t>(kFreePage));
  MarkPages(page, pages, true);
  pages_in_use_ -= pages;
  large_blocks_ -= 1;
  large_bytes_ -= pages * kPageSize;
  return std::nullopt;
}

std::optional<HeapError> TrustedHeap::Free(void* ptr) {
  if (ptr == nullptr) return std::nullopt;
  if (!Contains(ptr)) return HeapError::kInvalidPointer;
  const size_t offset = static_cast<size_t>(static_cast<unsigned char*>(ptr) - arena_);
  const size_t page = offset / kPageSize;
  const PageDesc* pd = Desc(page);
  while (true) {
    const uint8_t kind = Load(pd->kind);
    if (kind != kSlabPage && kind != kSlabTail) {
      const auto e = FreeLarge(page, offset);
      if (e != HeapError::kNoMemory) return e;
      continue;  // became a slab meanwhile
    }
    const uint32_t dist = kind == kSlabTail ? Load(pd->pages) : 0;
    if (dist > page || (kind == kSlabTail && dist == 0)) continue;  // changing meanwhile
    const size_t head = page - dist;
    PageDesc* d = Desc(head);
    const uint32_t owner = Load(d->owner);
    if (owner > slot_count_) continue;
    Slot& s = SlotAt(owner);
    Guard guard(s.lock);
    if (__builtin_expect(!StillInSlab(page, kind, dist, head, owner), false)) continue;  // changed
    const unsigned cls = d->cls;
    const uint32_t slot = SlotOf(cls, offset - head * kPageSize);
    if (slot == kNone) return HeapError::kInvalidPointer;
    const uint64_t bit = uint64_t{1} << (slot % 64);
    if (!(d->bits[slot / 64] & bit)) return HeapError::kDoubleFree;
    const size_t size = kClassSize[cls];
    if (size <= 256)
      WipeSmall(ptr, size);
    else
      memset(ptr, 0, size);
    const bool was_full = d->used == kMath.capacity[cls];
    d->bits[slot / 64] &= ~bit;
    d->used -= 1;
    s.live_blocks -= 1;
    s.live_bytes -= size;
    if (__builtin_expect(was_full, false)) {
      SlabPageChanged(s, cls, static_cast<uint32_t>(head), was_full);
    } else if (d->used == 0) {
      if (s.partial_head[cls] == static_cast<uint32_t>(head))
        s.empty_pages += SlabPages(cls);  // kept, see SlabPageChanged
      else
        SlabPageChanged(s, cls, static_cast<uint32_t>(head), false);
    }
    return std::nullopt;
  }
}

// After a free made a full slab page partial, or a partial one empty
// (caller holds s's lock).
void TrustedHeap::SlabPageChanged(Slot& s, unsigned cls, uint32_t page, bool was_full) {
  if (was_full) {
    // It goes to the head of the list; an empty page there goes back to
    // the map, so that a slot keeps at most one empty page a class.
    const uint32_t head = s.partial_head[cls];
    if (head != kNone && Desc(head)->used == 0) ReleaseSlabPage(s, cls, head, /*kept=*/true);
    PushPartial(s, cls, page);
  }
  if (Desc(page)->used != 0) return;
  if (s.partial_head[cls] == page) {
    // Kept (all zero) for the next allocation of the class: a loop of one
    // allocation and one free does not take and return a page each time.
    s.empty_pages += SlabPages(cls);
  } else {
    ReleaseSlabPage(s, cls, page, /*kept=*/false);
  }
}

AllocResult TrustedHeap::Reallocate(void* ptr, size_t size) {
  if (ptr == nullptr) return Allocate(size);
  if (size == 0) return {nullptr, HeapError::kInvalidArgument};
  const std::optional<size_t> old_size = BlockSize(ptr);
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
  HeapStats st{arena_bytes_, 0, 0, 0};
  size_t empty = 0;
  for (uint32_t i = 0; i <= slot_count_; ++i) {
    Slot& s = SlotAt(i);
    Guard guard(s.lock);
    st.live_blocks += s.live_blocks;
    st.live_bytes += s.live_bytes;
    empty += s.empty_pages;
  }
  Guard guard(lock_);
  st.pages_in_use = pages_in_use_ - empty;
  st.live_blocks += large_blocks_;
  st.live_bytes += large_bytes_;
  return st;
}

}  // namespace cordon::heap
