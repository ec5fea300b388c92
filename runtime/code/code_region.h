// The code region: how memory becomes executable after set-up. Untrusted
// code hands machine code to the trusted domain, which copies it into pages
// that only the trusted domain can write, checks every byte offset of the
// pages for WRPKRU and XRSTOR, and only then makes them read+execute (never
// writable again while executable). docs/code.md describes the design.
//
// Layout: two kGuard-aligned blocks (hardware/memory_guard.h); the upper one
// holds a header (a lock and one state byte per code page, under the trusted
// key) and then the code pages. The config page holds the code pages'
// bounds; everything else follows from them, and an all-zero header is an
// empty region. Each block of code pages is followed by a guard page that
// is never executable, so no instruction can span two blocks.
#ifndef CORDON_RUNTIME_CODE_CODE_REGION_H_
#define CORDON_RUNTIME_CODE_CODE_REGION_H_

#include <cstddef>
#include <cstdint>

namespace cordon::code {

inline constexpr size_t kDefaultSize = size_t{256} << 20;
inline constexpr size_t kMaxSize = size_t{4} << 30;  // with len, stays inside the upper block

// Whether cordon_options.code_size is acceptable (0 turns the region off).
bool ValidSize(size_t size);

// cordon_init() makes the region in two steps around the trusted domain's
// creation: the reservation first, so that running out of address space
// changes nothing, then the header is given the domain's key.
struct Reservation {
  uint64_t upper = 0;  // the upper guarded block; 0 when none
  uint64_t pages = 0;  // code pages
};
int ReserveRegion(size_t size, Reservation* out);  // a cordon_status
void ReleaseRegion(const Reservation& r);          // nothing if none
// *start and *end bound the code pages (the header lies just below *start);
// the caller records them in the config page (code_start, code_end).
int TagRegion(const Reservation& r, int key, uint64_t* start, uint64_t* end);

// The whole region, header included, from the config page; {0, 0} if none.
struct Span {
  uint64_t start, end;
};
Span RegionSpan();

// The builtin's operations (domains::kBuiltinCode), run inside domain 1.
enum Op : uint64_t {
  kReserve = 0,  // a0 = bytes; returns the block's address
  kPublish = 1,  // a0 = block, a1 = source, a2 = length; returns 0
  kRelease = 2,  // a0 = block; returns 0
};
uint64_t RunInside(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2);

}  // namespace cordon::code

#endif
