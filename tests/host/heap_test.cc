// TrustedHeap tests on plain memory: the allocator needs no PKU, so its
// logic is tested here, fast and under the sanitizers.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "runtime/heap/trusted_heap.h"

using cordon::heap::HeapError;
using cordon::heap::TrustedHeap;

namespace {

class HeapFixture : public ::testing::Test {
 protected:
  static constexpr size_t kArena = size_t{4} << 20;
  void SetUp() override {
    meta_bytes_ = sizeof(TrustedHeap) + TrustedHeap::MetadataBytes(kArena);
    meta_ = mmap(nullptr, meta_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    // Map one page more than needed and start the arena on an odd page, so
    // that alignment beyond a page is never satisfied by luck.
    mapping_ = mmap(nullptr, kArena + 2 * TrustedHeap::kPageSize, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(meta_, MAP_FAILED);
    ASSERT_NE(mapping_, MAP_FAILED);
    auto a = reinterpret_cast<uintptr_t>(mapping_);
    if ((a / TrustedHeap::kPageSize) % 2 == 0) a += TrustedHeap::kPageSize;
    arena_ = reinterpret_cast<void*>(a);
    heap_ = new (meta_) TrustedHeap(arena_, kArena);
  }
  void TearDown() override {
    heap_->~TrustedHeap();
    munmap(meta_, meta_bytes_);
    munmap(mapping_, kArena + 2 * TrustedHeap::kPageSize);
  }
  void* Alloc(size_t n, size_t align = 16) {
    auto r = heap_->Allocate(n, align);
    EXPECT_TRUE(r.ok()) << "size " << n;
    return r.ptr;
  }
  bool AllZero(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    return std::all_of(b, b + n, [](unsigned char c) { return c == 0; });
  }

  void* meta_ = nullptr;
  void* arena_ = nullptr;
  void* mapping_ = nullptr;
  size_t meta_bytes_ = 0;
  TrustedHeap* heap_ = nullptr;
};

TEST_F(HeapFixture, AllocatesInsideTheArenaAndFreesBack) {
  void* p = Alloc(100);
  EXPECT_TRUE(heap_->Contains(p));
  EXPECT_EQ(heap_->BlockSize(p), 112u);
  EXPECT_EQ(heap_->Stats().live_blocks, 1u);
  EXPECT_FALSE(heap_->Free(p).has_value());
  EXPECT_EQ(heap_->Stats().live_blocks, 0u);
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
}

TEST_F(HeapFixture, ZeroAndHugeSizesAreErrorsThatChangeNothing) {
  const auto before = heap_->Stats();
  EXPECT_EQ(heap_->Allocate(0).error, HeapError::kInvalidArgument);
  EXPECT_EQ(heap_->Allocate(SIZE_MAX).error, HeapError::kNoMemory);
  EXPECT_EQ(heap_->Allocate(kArena + 1).error, HeapError::kNoMemory);
  EXPECT_EQ(heap_->Allocate(64, 3).error, HeapError::kInvalidArgument);
  EXPECT_EQ(heap_->Allocate(64, 0).error, HeapError::kInvalidArgument);
  const auto after = heap_->Stats();
  EXPECT_EQ(before.live_blocks, after.live_blocks);
  EXPECT_EQ(before.pages_in_use, after.pages_in_use);
}

TEST_F(HeapFixture, DoubleFreeAndForeignPointersAreRefused) {
  void* a = Alloc(40);
  void* b = Alloc(40);
  EXPECT_FALSE(heap_->Free(a).has_value());
  EXPECT_EQ(heap_->Free(a), HeapError::kDoubleFree);
  EXPECT_EQ(heap_->Free(static_cast<char*>(b) + 1), HeapError::kInvalidPointer);
  int local;
  EXPECT_EQ(heap_->Free(&local), HeapError::kInvalidPointer);
  void* big = Alloc(3 * TrustedHeap::kPageSize);
  EXPECT_EQ(heap_->Free(static_cast<char*>(big) + TrustedHeap::kPageSize), HeapError::kInvalidPointer);
  EXPECT_FALSE(heap_->Free(big).has_value());
  EXPECT_EQ(heap_->Free(big), HeapError::kDoubleFree);
  EXPECT_EQ(heap_->Stats().live_blocks, 1u) << "only b is live";
  EXPECT_FALSE(heap_->Free(nullptr).has_value());
}

TEST_F(HeapFixture, BlocksAreZeroEvenAfterReuse) {
  void* p = Alloc(256);
  memset(p, 0x5a, 256);
  ASSERT_FALSE(heap_->Free(p).has_value());
  void* q = Alloc(256);
  EXPECT_EQ(p, q) << "same slot reused";
  EXPECT_TRUE(AllZero(q, 256));
  void* big = Alloc(20000);
  memset(big, 0x77, 20000);
  ASSERT_FALSE(heap_->Free(big).has_value());
  void* big2 = Alloc(20000);
  EXPECT_TRUE(AllZero(big2, 20000));
}

// Blocks over 2 KiB come from four-page slabs and may cross pages: any
// address inside a slab names it, whichever page it is on, and only an
// object's start may be freed, once.
TEST_F(HeapFixture, MultiPageSlabsCheckEveryPointer) {
  std::vector<char*> blocks;
  for (int i = 0; i < 12; ++i) blocks.push_back(static_cast<char*>(Alloc(3000)));
  for (char* p : blocks) EXPECT_EQ(heap_->BlockSize(p), 3072u);
  // The second block of a slab starts at 3072 and runs into the slab's
  // second page: pointers there, and into a later page, are not objects.
  char* first = blocks[0];
  EXPECT_EQ(blocks[1], first + 3072);
  const auto before = heap_->Stats();
  EXPECT_EQ(heap_->Free(first + 4096), HeapError::kInvalidPointer);
  EXPECT_EQ(heap_->Free(first + 3 * 4096 + 16), HeapError::kInvalidPointer);
  EXPECT_FALSE(heap_->BlockSize(first + 4096).has_value());
  EXPECT_EQ(heap_->Stats().live_blocks, before.live_blocks);
  memset(blocks[1], 0x5a, 3000);
  ASSERT_FALSE(heap_->Free(blocks[1]).has_value());
  EXPECT_EQ(heap_->Free(blocks[1]), HeapError::kDoubleFree);
  EXPECT_FALSE(heap_->BlockSize(blocks[1]).has_value());
  // Wiped when freed: the next block there is zero.
  char* again = static_cast<char*>(Alloc(3000));
  EXPECT_EQ(again, blocks[1]);
  EXPECT_TRUE(AllZero(again, 3072));
  blocks[1] = again;
  for (char* p : blocks) ASSERT_FALSE(heap_->Free(p).has_value());
  EXPECT_EQ(heap_->Stats().live_blocks, 0u);
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
}

TEST_F(HeapFixture, AlignmentIsHonoured) {
  for (size_t align : {16u, 32u, 64u, 256u, 1024u, 2048u, 4096u, 8192u, 65536u}) {
    for (size_t size : {1u, 24u, 100u, 3000u, 5000u}) {
      void* p = Alloc(size, align);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << "align " << align << " size " << size;
      EXPECT_GE(*heap_->BlockSize(p), size);
    }
  }
}

TEST_F(HeapFixture, ReallocKeepsDataAndFailsWithoutHarm) {
  auto* p = static_cast<unsigned char*>(Alloc(100));
  for (int i = 0; i < 100; ++i) p[i] = static_cast<unsigned char>(i);
  auto grown = heap_->Reallocate(p, 9000);
  ASSERT_TRUE(grown.ok());
  auto* g = static_cast<unsigned char*>(grown.ptr);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(g[i], i);
  EXPECT_TRUE(AllZero(g + 100, 8900));
  EXPECT_EQ(heap_->Reallocate(g, SIZE_MAX).error, HeapError::kNoMemory);
  EXPECT_EQ(heap_->Reallocate(g, 0).error, HeapError::kInvalidArgument);
  EXPECT_EQ(g[42], 42) << "block intact after failed realloc";
  auto shrunk = heap_->Reallocate(g, 8500);  // still needs all 3 pages
  ASSERT_TRUE(shrunk.ok());
  EXPECT_EQ(shrunk.ptr, g) << "a shrink within the last page stays in place";
  EXPECT_FALSE(heap_->Free(shrunk.ptr).has_value());
  EXPECT_EQ(heap_->Reallocate(shrunk.ptr, 10).error, HeapError::kDoubleFree);
}

TEST_F(HeapFixture, ExhaustionIsReportedAndRecoverable) {
  std::vector<void*> blocks;
  while (true) {
    auto r = heap_->Allocate(64 * 1024);
    if (!r.ok()) {
      EXPECT_EQ(r.error, HeapError::kNoMemory);
      break;
    }
    blocks.push_back(r.ptr);
  }
  EXPECT_EQ(blocks.size(), kArena / (64 * 1024));
  for (void* b : blocks) ASSERT_FALSE(heap_->Free(b).has_value());
  EXPECT_TRUE(heap_->Allocate(kArena).ok()) << "the whole arena coalesces back";
}

// Random operations against a model: blocks never overlap, stay inside the
// arena, keep their contents, and every free succeeds exactly once.
TEST_F(HeapFixture, RandomOperationsMatchAModel) {
  std::mt19937_64 rng(12345);
  std::map<uintptr_t, std::pair<size_t, unsigned char>> live;  // addr -> (size, fill)
  for (int step = 0; step < 200000; ++step) {
    const bool alloc = live.empty() || rng() % 100 < 55;
    if (alloc) {
      const size_t size = rng() % 10 == 0 ? 1 + rng() % 40000 : 1 + rng() % 2048;
      const size_t align = size_t{16} << (rng() % 4);
      auto r = heap_->Allocate(size, align);
      if (!r.ok()) {
        ASSERT_EQ(r.error, HeapError::kNoMemory);
        continue;
      }
      const auto a = reinterpret_cast<uintptr_t>(r.ptr);
      ASSERT_EQ(a % align, 0u);
      ASSERT_TRUE(AllZero(r.ptr, size));
      auto next = live.lower_bound(a);
      if (next != live.end()) {
        ASSERT_GE(next->first, a + size) << "overlaps the next block";
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second.first, a) << "overlaps the previous block";
      }
      const auto fill = static_cast<unsigned char>(rng() | 1);
      memset(r.ptr, fill, size);
      live[a] = {size, fill};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      const auto* p = reinterpret_cast<const unsigned char*>(it->first);
      ASSERT_EQ(p[0], it->second.second);
      ASSERT_EQ(p[it->second.first - 1], it->second.second);
      ASSERT_FALSE(heap_->Free(reinterpret_cast<void*>(it->first)).has_value());
      ASSERT_EQ(heap_->Free(reinterpret_cast<void*>(it->first)), HeapError::kDoubleFree);
      live.erase(it);
    }
  }
  EXPECT_EQ(heap_->Stats().live_blocks, live.size());
}

TEST_F(HeapFixture, ThreadsAllocateAndFreeConcurrently) {
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::pair<unsigned char*, size_t>> mine;
      for (int i = 0; i < 20000; ++i) {
        if (mine.size() < 64 && rng() % 2 == 0) {
          const size_t n = 1 + rng() % 3000;
          auto r = heap_->Allocate(n);
          if (!r.ok()) continue;
          memset(r.ptr, t + 1, n);
          mine.emplace_back(static_cast<unsigned char*>(r.ptr), n);
        } else if (!mine.empty()) {
          auto [p, n] = mine.back();
          mine.pop_back();
          if (p[0] != t + 1 || p[n - 1] != t + 1) failures.fetch_add(1);
          if (heap_->Free(p).has_value()) failures.fetch_add(1);
        }
      }
      for (auto [p, n] : mine) {
        if (heap_->Free(p).has_value()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(heap_->Stats().live_blocks, 0u);
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
}

// A loop of one large allocation and one free reuses the same lowest pages:
// the memory the heap has ever touched stays at what one block needs, not
// the arena (before, the search moved on and touched every page once).
TEST_F(HeapFixture, FreedPagesAreTheNextOnesUsed) {
  void* first = Alloc(16384);
  ASSERT_FALSE(heap_->Free(first).has_value());
  for (int i = 0; i < 5000; ++i) {
    void* p = Alloc(16384);
    ASSERT_EQ(p, first) << "iteration " << i;
    memset(p, 0xa5, 16384);
    ASSERT_FALSE(heap_->Free(p).has_value());
  }
  EXPECT_EQ(heap_->PagesTouched(), 4u);
  // A hole below is filled first, whatever was allocated after it (page
  // runs: blocks over TrustedHeap::kMaxSmall).
  void* a = Alloc(16384);
  void* b = Alloc(16384);
  ASSERT_FALSE(heap_->Free(a).has_value());
  EXPECT_EQ(Alloc(8192), a);
  EXPECT_EQ(Alloc(8192), static_cast<char*>(a) + 8192);
  EXPECT_GT(b, a);
}

// Random churn of 300 live blocks: the pages touched stay within the peak of
// pages in use (plus one kept empty slab a size class).
TEST_F(HeapFixture, TouchedMemoryIsBoundedByThePeakInUse) {
  std::mt19937 rng(99);
  std::vector<void*> live(300, nullptr);
  size_t peak = 0;
  for (int i = 0; i < 200000; ++i) {
    const size_t k = rng() % live.size();
    ASSERT_FALSE(heap_->Free(live[k]).has_value());
    live[k] = Alloc(16 + rng() % 6000);
    peak = std::max(peak, heap_->Stats().pages_in_use);
  }
  EXPECT_LE(heap_->PagesTouched(), peak + TrustedHeap::kKeptPagesPerSlot + 8) << "peak " << peak;
  for (void* p : live) ASSERT_FALSE(heap_->Free(p).has_value());
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
  EXPECT_EQ(heap_->Stats().live_blocks, 0u);
}

// Small blocks leave one empty slab page per class for the next allocation;
// an allocation that needs every page gets them back.
TEST_F(HeapFixture, KeptEmptySlabPagesComeBackWhenTheArenaIsNeeded) {
  std::vector<void*> small;
  for (size_t size = 16; size <= TrustedHeap::kMaxSmall; size += 16) small.push_back(Alloc(size));
  for (void* p : small) ASSERT_FALSE(heap_->Free(p).has_value());
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
  auto whole = heap_->Allocate(kArena);
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(AllZero(whole.ptr, kArena));
  EXPECT_FALSE(heap_->Free(whole.ptr).has_value());
}

// Thread slots: each thread gets its own slab pages; blocks freed by another
// thread go back to their owner's pages; the checks stay exact.
uint32_t TestSlot(uintptr_t) {
  static std::atomic<uint32_t> next{0};
  thread_local uint32_t mine = next.fetch_add(1);
  return mine;
}

TEST_F(HeapFixture, ThreadSlotsAreRefusedOnceInUse) {
  void* p = Alloc(32);
  EXPECT_FALSE(heap_->EnableThreadSlots(&TestSlot, 0, 4)) << "blocks exist";
  ASSERT_FALSE(heap_->Free(p).has_value());
  EXPECT_FALSE(heap_->EnableThreadSlots(&TestSlot, 0, 1000000)) << "the table would take over an eighth";
  EXPECT_FALSE(heap_->EnableThreadSlots(nullptr, 0, 4));
  EXPECT_TRUE(heap_->EnableThreadSlots(&TestSlot, 0, 4));
  EXPECT_FALSE(heap_->EnableThreadSlots(&TestSlot, 0, 4)) << "only once";
  int local;
  EXPECT_EQ(heap_->Free(arena_), HeapError::kInvalidPointer) << "the slot table is no block";
  EXPECT_EQ(heap_->Free(&local), HeapError::kInvalidPointer);
  EXPECT_FALSE(heap_->BlockSize(arena_).has_value());
}

TEST_F(HeapFixture, ThreadSlotsShareNoPagesAndFreeAcrossThreads) {
  ASSERT_TRUE(heap_->EnableThreadSlots(&TestSlot, 0, 8));
  constexpr int kThreads = 4;
  std::vector<std::vector<void*>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) made[t].push_back(heap_->Allocate(48).ptr);
    });
  }
  for (auto& th : threads) th.join();
  std::set<uintptr_t> pages[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    for (void* p : made[t]) {
      ASSERT_NE(p, nullptr);
      pages[t].insert(reinterpret_cast<uintptr_t>(p) / TrustedHeap::kPageSize);
    }
  }
  for (int a = 0; a < kThreads; ++a) {
    for (int b = a + 1; b < kThreads; ++b) {
      for (uintptr_t pg : pages[a]) EXPECT_EQ(pages[b].count(pg), 0u) << "threads " << a << " and " << b;
    }
  }
  // Every block freed by another thread than the one that allocated it,
  // each freed twice at once by two threads: exactly one free succeeds.
  std::atomic<int> ok{0}, doubles{0}, other{0};
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto& victims = made[(t / 2 + 1) % kThreads];  // threads 2k and 2k+1 free the same blocks
      for (void* p : victims) {
        const auto e = heap_->Free(p);
        if (!e)
          ok.fetch_add(1);
        else if (*e == HeapError::kDoubleFree)
          doubles.fetch_add(1);
        else
          other.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 2 * 300);
  EXPECT_EQ(doubles.load(), 2 * 300);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(heap_->Stats().live_blocks, 2u * 300) << "the blocks of the two threads nobody freed";
}

TEST_F(HeapFixture, ThreadSlotsUnderConcurrentChurn) {
  ASSERT_TRUE(heap_->EnableThreadSlots(&TestSlot, 0, 8));
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::atomic<void*>> exchange(64);
  for (auto& e : exchange) e.store(nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 40000; ++i) {
        // Hand blocks between threads through a shared table: a block is
        // freed by whichever thread takes it out.
        const size_t k = rng() % exchange.size();
        // Sizes from every kind: one-page slabs, four-page slabs, page runs.
        const size_t kind = rng() % 8;
        const size_t n = kind == 0 ? 4097 + rng() % 9000 : kind == 1 ? 2049 + rng() % 2048 : 1 + rng() % 2048;
        auto r = heap_->Allocate(n);
        if (!r.ok()) {
          failures.fetch_add(1);
          continue;
        }
        if (!AllZero(r.ptr, n)) failures.fetch_add(1);
        memset(r.ptr, 0x40 + t, n);
        void* old = exchange[k].exchange(r.ptr);
        if (old != nullptr && heap_->Free(old).has_value()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& e : exchange) {
    if (void* p = e.load(); p != nullptr && heap_->Free(p).has_value()) failures.fetch_add(1);
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(heap_->Stats().live_blocks, 0u);
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
}

// ---- Attacks on the four-page slabs (review of "four-page slabs for 2-4 KiB classes") ----

// Before the change a 2049-4096 byte block was a one-page run: it could be
// had while any page was free. Now it needs four contiguous free pages, and
// AllocateSmall has no fallback, so an arena that is half free refuses a
// 3 KiB block (while a one-page run of the same memory would fit).
TEST_F(HeapFixture, AttackFourPageSlabNeedsNoContiguousRunWhenPagesAreFree) {
  constexpr size_t kPages = kArena / TrustedHeap::kPageSize;
  std::vector<void*> blocks;
  for (size_t i = 0; i < 2 * kPages; ++i) blocks.push_back(Alloc(2048));  // one-page slabs, 2 a page
  ASSERT_EQ(heap_->Stats().pages_in_use, kPages);
  // Free both blocks of every other page: half the arena is free, in one-page holes.
  for (size_t i = 0; i < blocks.size(); ++i) {
    const size_t page = (reinterpret_cast<uintptr_t>(blocks[i]) - reinterpret_cast<uintptr_t>(arena_)) /
                        TrustedHeap::kPageSize;
    if (page % 2 == 1) {
      ASSERT_FALSE(heap_->Free(blocks[i]).has_value());
      blocks[i] = nullptr;
    }
  }
  ASSERT_LE(heap_->Stats().pages_in_use, kPages / 2 + 1);
  auto r = heap_->Allocate(3072);  // libcrypto's 3 KiB block
  EXPECT_TRUE(r.ok()) << "3 KiB refused with " << kPages / 2 << " free pages";
  if (r.ok()) ASSERT_FALSE(heap_->Free(r.ptr).has_value());
  auto a = heap_->Allocate(100, 4096);  // a page-aligned small block: class 4096, also a four-page slab
  EXPECT_TRUE(a.ok()) << "page-aligned 100 bytes refused with half the arena free";
  if (a.ok()) ASSERT_FALSE(heap_->Free(a.ptr).has_value());
  for (void* p : blocks)
    if (p) ASSERT_FALSE(heap_->Free(p).has_value());
}

// A four-page slab kept empty by one class is not given back for another
// class's slab: AllocateLarge releases kept pages before failing, but
// AllocateSmall does not, so Allocate(3000) fails where Allocate(16384)
// of the very same pages succeeds.
TEST_F(HeapFixture, AttackKeptEmptySlabsAreNotReleasedForASmallBlock) {
  constexpr size_t kPages = kArena / TrustedHeap::kPageSize;
  void* k = Alloc(4096);                     // class 4096: a four-page slab at pages 0-3
  ASSERT_FALSE(heap_->Free(k).has_value());  // kept empty
  auto rest = heap_->Allocate((kPages - 4) * TrustedHeap::kPageSize);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(heap_->Stats().pages_in_use, kPages - 4) << "the kept slab is not counted in use";
  auto r = heap_->Allocate(3000);  // class 3072: needs a four-page slab
  EXPECT_TRUE(r.ok()) << "refused although "
                      << heap_->Stats().arena_bytes / TrustedHeap::kPageSize - heap_->Stats().pages_in_use
                      << " pages are not in use";
  if (r.ok()) ASSERT_FALSE(heap_->Free(r.ptr).has_value());
  ASSERT_FALSE(heap_->Free(rest.ptr).has_value());
}

// EnableThreadSlots resets the high-water mark: the pages touched before it
// are forgotten.
TEST_F(HeapFixture, AttackEnableThreadSlotsForgetsPagesTouched) {
  void* p = Alloc(5 * TrustedHeap::kPageSize);
  ASSERT_FALSE(heap_->Free(p).has_value());
  ASSERT_EQ(heap_->PagesTouched(), 5u);
  ASSERT_TRUE(heap_->EnableThreadSlots(&TestSlot, 0, 4));
  EXPECT_GE(heap_->PagesTouched(), 4u) << "five pages were touched (one now holds the slot table)";
}

// Races between frees of tail-page pointers and the slab being released and
// its pages reused (by other slots' slabs and by page runs). Interior
// pointers (never a block start) must always be refused, and every block
// handed out must be zero and not overlap a live one.
TEST_F(HeapFixture, AttackTailPagePointersRaceSlabReuse) {
  ASSERT_TRUE(heap_->EnableThreadSlots(&TestSlot, 0, 8));
  constexpr int kThreads = 4;
  std::atomic<int> failures{0}, bad_interior{0};
  std::atomic<bool> stop{false};
  std::vector<std::atomic<void*>> exchange(16);
  for (auto& e : exchange) e.store(nullptr);
  const uintptr_t base = reinterpret_cast<uintptr_t>(arena_);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t + 7);
      for (int i = 0; i < 60000; ++i) {
        const size_t k = rng() % exchange.size();
        const size_t kind = rng() % 4;
        const size_t n = kind == 0   ? 4097 + rng() % 12000
                         : kind == 3 ? 1 + rng() % 2048
                                     : 2049 + rng() % 2048;
        const size_t align = rng() % 8 == 0 ? 4096 : 16;
        auto r = heap_->Allocate(n, align);
        if (!r.ok()) continue;
        if (!AllZero(r.ptr, n)) failures.fetch_add(1);
        if (align == 4096 && reinterpret_cast<uintptr_t>(r.ptr) % 4096 != 0) failures.fetch_add(1);
        memset(r.ptr, 0x40 + t, n);
        void* old = exchange[k].exchange(r.ptr);
        if (old != nullptr && heap_->Free(old).has_value()) failures.fetch_add(1);
      }
    });
  }
  // A hostile thread: interior pointers into the first 64 pages (tails of
  // four-page slabs come and go there), offsets that are never a block start.
  threads.emplace_back([&] {
    std::mt19937 rng(1234);
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t page = rng() % 64;
      const size_t off = (rng() % 4096) | 8;  // odd multiple of 8: no block starts there
      void* p = reinterpret_cast<void*>(base + page * TrustedHeap::kPageSize + off);
      if (!heap_->Free(p).has_value()) bad_interior.fetch_add(1);
      if (heap_->BlockSize(p).has_value()) bad_interior.fetch_add(1);
      // Page starts of slab tails are block starts only for class 4096;
      // for a 2560 slab, page 1's start (offset 4096) is inside block 1.
    }
  });
  for (int t = 0; t < kThreads; ++t) threads[t].join();
  stop.store(true);
  threads.back().join();
  for (auto& e : exchange) {
    if (void* p = e.load(); p != nullptr && heap_->Free(p).has_value()) failures.fetch_add(1);
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad_interior.load(), 0);
  EXPECT_EQ(heap_->Stats().live_blocks, 0u);
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
}

// Straddling objects: interior pointers at each page boundary of every
// four-page class are refused, block starts are found, and a free wipes the
// whole object across the boundary.
TEST_F(HeapFixture, AttackStraddlingObjectsAcrossTailPages) {
  for (size_t size : {2560u, 3072u, 3584u, 4096u}) {
    std::vector<unsigned char*> b;
    for (size_t i = 0; i < 16384 / size; ++i) b.push_back(static_cast<unsigned char*>(Alloc(size)));
    for (size_t i = 1; i < b.size(); ++i) ASSERT_EQ(b[i], b[0] + i * size) << size;
    for (auto* p : b) memset(p, 0xcc, size);
    for (size_t pg = 1; pg < 4; ++pg) {
      unsigned char* q = b[0] + pg * 4096;
      if (pg * 4096 % size == 0) continue;  // a block starts there
      EXPECT_FALSE(heap_->BlockSize(q).has_value()) << size << " page " << pg;
      EXPECT_EQ(heap_->Free(q), HeapError::kInvalidPointer) << size << " page " << pg;
    }
    // the unused end of the slab
    unsigned char* end = b[0] + b.size() * size;
    if (end < b[0] + 16384) {
      EXPECT_EQ(heap_->Free(end), HeapError::kInvalidPointer) << size;
      EXPECT_FALSE(heap_->BlockSize(end).has_value()) << size;
    }
    for (auto* p : b) EXPECT_EQ(heap_->BlockSize(p), size);
    ASSERT_FALSE(heap_->Free(b[1]).has_value());
    EXPECT_EQ(heap_->Free(b[1]), HeapError::kDoubleFree);
    EXPECT_TRUE(AllZero(b[1], size));
    auto again = heap_->Allocate(size);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.ptr, b[1]);
    EXPECT_TRUE(AllZero(again.ptr, size));
    for (auto* p : b) ASSERT_FALSE(heap_->Free(p).has_value());
  }
  EXPECT_EQ(heap_->Stats().live_blocks, 0u);
  EXPECT_EQ(heap_->Stats().pages_in_use, 0u);
}

}  // namespace
