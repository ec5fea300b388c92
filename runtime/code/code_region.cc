// The code region (code_region.h, docs/code.md).
//
// Everything here that decides runs inside the trusted domain and keeps its
// state in the region's header, under the trusted key: the page table, the
// lock, and the pattern scan's result (FirstPattern allocates nothing).
// Untrusted code supplies only integers and a source pointer, which is
// checked to lie outside every trusted range before it is read.
#include "runtime/code/code_region.h"

#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>

#include "cordon/cordon.h"
#include "runtime/audit/audit.h"
#include "runtime/audit/sha256.h"
#include "runtime/base/check.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/memory_guard.h"
#include "runtime/hardware/pkey.h"
#include "runtime/inspector/patterns.h"

namespace cordon::code {
namespace {

using domains::EncodeStatus;

constexpr uint64_t kPage = 4096;
constexpr uint8_t kFill = 0xcc;  // INT3: a jump past the code traps

// One byte per code page. A block is a head page, body pages, then its
// guard page; only the head's byte says what the block is doing.
enum PageState : uint8_t {
  kFree = 0,
  kBody = 1,
  kGuardPage = 2,
  kReserved = 3,   // head: not executable
  kBusy = 4,       // head: a thread is publishing or releasing the block
  kPublished = 5,  // head: read+execute
};

// Guard pages are structural: which pages of a block may become executable
// is never read from one writable byte. Besides its state byte, every page
// of a block has a link word (page index + 1; 0 is none): the head links
// to its guard page, and the body and guard pages link back to the head.
// A block's executable pages are [head, guard) only if the head's link
// names a page that is in the guard state and links back to that head, and
// a page is free only if its state and its link both say so. So no single
// write to the header (one byte or one word) can make a block reach over
// its guard, or hand out a page of another block; an inconsistent header
// stops the process.
//
// Layout: this fixed part (64 bytes), one state byte per code page, then
// (4-byte aligned) one link word per code page.
struct Header {
  std::atomic<uint32_t> lock;  // guards kFree pages becoming a block and back
  uint32_t hint;               // where the next search for free pages starts
};
constexpr uint64_t kHeaderFixed = 64;
static_assert(sizeof(Header) <= kHeaderFixed);

uint64_t RoundUp(uint64_t v, uint64_t to) {
  return (v + to - 1) / to * to;
}

// Where the link words start, from the header's start.
uint64_t LinksOffset(uint64_t pages) {
  return RoundUp(kHeaderFixed + pages, sizeof(uint32_t));
}

// Bytes of header in front of `pages` code pages.
uint64_t HeaderBytes(uint64_t pages) {
  return RoundUp(LinksOffset(pages) + pages * sizeof(uint32_t), kPage);
}

struct Region {
  Header* header;
  uint8_t* state;   // one per code page
  uint32_t* links;  // one per code page
  uint64_t first;   // address of code page 0
  uint32_t pages;
};

// From the read-only config page only.
bool Current(Region* r) {
  const gates::GateConfig& c = gates::Config();
  if (c.code_start == 0) return false;
  r->first = c.code_start;
  r->pages = static_cast<uint32_t>((c.code_end - c.code_start) / kPage);
  r->header = reinterpret_cast<Header*>(c.code_start - HeaderBytes(r->pages));
  r->state = reinterpret_cast<uint8_t*>(r->header) + kHeaderFixed;
  r->links = reinterpret_cast<uint32_t*>(reinterpret_cast<uint8_t*>(r->header) + LinksOffset(r->pages));
  return true;
}

uint8_t Load(const Region& r, uint32_t i) {
  return __atomic_load_n(&r.state[i], __ATOMIC_ACQUIRE);
}
void Store(const Region& r, uint32_t i, uint8_t v) {
  __atomic_store_n(&r.state[i], v, __ATOMIC_RELEASE);
}
constexpr uint32_t kNoLink = 0;
uint32_t LinkOf(const Region& r, uint32_t i) {
  return __atomic_load_n(&r.links[i], __ATOMIC_ACQUIRE);
}
void SetLink(const Region& r, uint32_t i, uint32_t to) {
  __atomic_store_n(&r.links[i], to + 1, __ATOMIC_RELEASE);
}
void ClearLink(const Region& r, uint32_t i) {
  __atomic_store_n(&r.links[i], kNoLink, __ATOMIC_RELEASE);
}
bool IsFree(const Region& r, uint32_t i) {
  return Load(r, i) == kFree && LinkOf(r, i) == kNoLink;
}

class Lock {
 public:
  explicit Lock(Header* h) : h_(h) {
    while (h_->lock.exchange(1, std::memory_order_acquire) != 0) sched_yield();
  }
  ~Lock() { h_->lock.store(0, std::memory_order_release); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  Header* h_;
};

// The page index of a block's head at addr, if addr is the start of a code
// page; the caller then checks the page's state.
bool PageIndex(const Region& r, uint64_t addr, uint32_t* index) {
  if (addr < r.first || (addr - r.first) % kPage != 0) return false;
  const uint64_t i = (addr - r.first) / kPage;
  if (i >= r.pages) return false;
  *index = static_cast<uint32_t>(i);
  return true;
}

// The number of pages that may become executable in the block at head
// (the guard page is the next one), from the link pair alone. A pair that
// does not hold means the header was written by something other than this
// code: the process stops rather than guess.
uint32_t BlockPages(const Region& r, uint32_t head) {
  const uint32_t link = LinkOf(r, head);
  const uint32_t guard = link - 1;
  if (link == kNoLink || guard <= head || guard >= r.pages || Load(r, guard) != kGuardPage ||
      LinkOf(r, guard) != head + 1) {
    internal::DieWithNumbers(
        "code region: the header does not hold together (a write to trusted memory changed it); process "
        "stopped: the block at page ",
        head, ", which is not its guard: page ", link - 1);
  }
  return guard - head;
}

// Takes the block at addr for this thread (its head becomes kBusy).
int Claim(const Region& r, uint64_t addr, uint32_t* head, uint8_t* was) {
  if (!PageIndex(r, addr, head)) return CORDON_E_INVALID_POINTER;
  for (uint8_t s : {kReserved, kPublished}) {
    uint8_t expected = s;
    if (__atomic_compare_exchange_n(&r.state[*head], &expected, kBusy, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      *was = s;
      return CORDON_OK;
    }
    if (expected == kBusy) return CORDON_E_BUSY;
  }
  return CORDON_E_INVALID_POINTER;
}

uint64_t Reserve(const Region& r, uint64_t bytes) {
  if (bytes == 0) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  if (bytes > r.pages * kPage) return EncodeStatus(CORDON_E_NO_MEMORY);
  const auto need = static_cast<uint32_t>(RoundUp(bytes, kPage) / kPage) + 1;  // and the guard page
  if (need > r.pages) return EncodeStatus(CORDON_E_NO_MEMORY);
  Lock lock(r.header);
  // First fit, from the hint round to it again.
  const uint32_t start = r.header->hint < r.pages ? r.header->hint : 0;
  uint32_t run = 0;
  for (uint32_t step = 0; step < r.pages + need; ++step) {
    const uint32_t i = (start + step) % r.pages;
    if (i == 0) run = 0;  // a run cannot wrap around
    run = IsFree(r, i) ? run + 1 : 0;
    if (run == need) {
      const uint32_t head = i + 1 - need;
      for (uint32_t k = head + 1; k < i; ++k) {
        SetLink(r, k, head);
        Store(r, k, kBody);
      }
      SetLink(r, i, head);
      Store(r, i, kGuardPage);
      SetLink(r, head, i);
      Store(r, head, kReserved);
      r.header->hint = i + 1;
      return r.first + head * kPage;
    }
  }
  return EncodeStatus(CORDON_E_NO_MEMORY);
}

// *hashed: how many bytes *digest covers (docs/audit.md, code_publish): the
// copy that was scanned, or the source when plainly unsafe code was
// refused before anything changed; 0 when nothing was read.
uint64_t Publish(const Region& r, uint64_t addr, uint64_t src, uint64_t len, char* digest, uint64_t* hashed) {
  uint32_t head;
  uint8_t was;
  if (const int s = Claim(r, addr, &head, &was); s != CORDON_OK) return EncodeStatus(s);
  const uint64_t bytes = BlockPages(r, head) * kPage;
  auto* code = reinterpret_cast<uint8_t*>(addr);
  const uint64_t* token = domains::TokenOf(domains::kTrustedDomain);
  // Whatever happens next, a failure leaves the block reserved and not
  // executable.
  auto finish = [&](int status) {
    if (hw::SysPkeyMprotectWithToken(code, bytes, PROT_NONE, hw::kDefaultKey, token) != 0) {
      status = CORDON_E_SYSCALL;  // the block stays busy: it is in no known state
    } else {
      Store(r, head, kReserved);
    }
    return EncodeStatus(status);
  };
  // Checked before anything changes. The source must be untrusted memory:
  // trusted code must not copy a secret into pages that untrusted code can
  // then read.
  const auto* source = reinterpret_cast<const uint8_t*>(src);
  int refusal = CORDON_OK;
  if (len == 0 || len > bytes || src == 0 || !domains::IsUntrustedRange(source, len)) {
    refusal = CORDON_E_INVALID_ARGUMENT;
  } else if (was == kPublished && inspector::FirstPattern(source, len).has_value()) {
    // Code that is plainly unsafe leaves the published code in place. (The
    // scan below is the one that counts: the source can change meanwhile.)
    refusal = CORDON_E_UNSAFE_CODE;
    if (audit::Enabled()) audit::Sha256Hex(source, len, digest);
    *hashed = len;
  }
  if (refusal != CORDON_OK) {
    Store(r, head, was);
    return EncodeStatus(refusal);
  }
  // Writable for the trusted key only: no untrusted thread can change the
  // bytes from here on, and none can run them (not executable).
  if (hw::SysPkeyMprotectWithToken(code, bytes, PROT_READ | PROT_WRITE,
                                   domains::KeyOf(domains::kTrustedDomain), token) != 0) {
    return finish(CORDON_E_SYSCALL);
  }
  memcpy(code, source, len);
  memset(code + len, kFill, bytes - len);
  if (audit::Enabled()) audit::Sha256Hex(code, len, digest);
  *hashed = len;
  // Every byte offset of every page that will be executable; the pages
  // around the block are never executable, so nothing spans its ends.
  if (inspector::FirstPattern(code, bytes).has_value()) return finish(CORDON_E_UNSAFE_CODE);
  // Read+execute under key 0: untrusted code may read its code (constant
  // pools), and no one can write it while it is executable.
  if (hw::SysPkeyMprotectWithToken(code, bytes, PROT_READ | PROT_EXEC, hw::kDefaultKey, token) != 0) {
    return finish(CORDON_E_SYSCALL);
  }
  Store(r, head, kPublished);
  return 0;
}

uint64_t Release(const Region& r, uint64_t addr) {
  uint32_t head;
  uint8_t was;
  if (const int s = Claim(r, addr, &head, &was); s != CORDON_OK) return EncodeStatus(s);
  const uint32_t n = BlockPages(r, head);
  if (was == kPublished &&
      hw::SysPkeyMprotectWithToken(reinterpret_cast<void*>(addr), n * kPage, PROT_NONE, hw::kDefaultKey,
                                   domains::TokenOf(domains::kTrustedDomain)) != 0) {
    Store(r, head, kPublished);
    return EncodeStatus(CORDON_E_SYSCALL);
  }
  Lock lock(r.header);
  for (uint32_t k = head; k <= head + n; ++k) {  // the guard page too
    Store(r, k, kFree);
    ClearLink(r, k);
  }
  return 0;
}

}  // namespace

bool ValidSize(size_t size) {
  return size == 0 || (size >= 2 * kPage && size <= kMaxSize);
}

int ReserveRegion(size_t size, Reservation* out) {
  if (!ValidSize(size) || size == 0) return CORDON_E_INVALID_ARGUMENT;
  const uint64_t upper = hw::ReserveGuardedBlocks();
  if (upper == 0) return CORDON_E_NO_MEMORY;
  *out = Reservation{upper, RoundUp(size, kPage) / kPage};
  return CORDON_OK;
}

void ReleaseRegion(const Reservation& r) {
  if (r.upper != 0) hw::ReleaseGuardedBlocks(r.upper);
}

int TagRegion(const Reservation& r, int key, uint64_t* start, uint64_t* end) {
  const uint64_t header = HeaderBytes(r.pages);
  auto* base = reinterpret_cast<void*>(r.upper);
  // The header starts as zeros, which is an empty region; it is never dumped.
  (void)madvise(base, header, MADV_DONTDUMP);
  if (hw::SysPkeyMprotect(base, header, PROT_READ | PROT_WRITE, key) != 0) return CORDON_E_SYSCALL;
  *start = r.upper + header;
  *end = *start + r.pages * kPage;
  return CORDON_OK;
}

Span RegionSpan() {
  Region r;
  if (!Current(&r)) return Span{0, 0};
  return Span{reinterpret_cast<uint64_t>(r.header), r.first + uint64_t{r.pages} * kPage};
}

uint64_t RunInside(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2) {
  Region r;
  if (!Current(&r)) return EncodeStatus(CORDON_E_NO_CODE_REGION);
  switch (op) {
    case kReserve:
      return Reserve(r, a0);
    case kPublish: {
      char digest[65];
      uint64_t hashed = 0;
      audit::Sha256Hex(nullptr, 0, digest);
      const uint64_t result = Publish(r, a0, a1, a2, digest, &hashed);
      audit::RecordCodePublish(a0, hashed, digest, domains::StatusOf(result));
      return result;
    }
    case kRelease: {
      const uint64_t result = Release(r, a0);
      audit::RecordCodeRelease(a0, domains::StatusOf(result));
      return result;
    }
    default:
      return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  }
}

}  // namespace cordon::code
