// Trusted thread-local storage: the template and the TCB builder
// (trusted_tls.h).
#include "runtime/domains/trusted_tls.h"

#include <ctype.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/hardware/pkey.h"

namespace cordon::domains {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t RoundUp(size_t v, size_t to) {
  return (v + to - 1) / to * to;
}
// dtv slots for modules: dlopen()ed modules with TLS get ids above the
// startup ones, and glibc would realloc() a dtv that is too short (which a
// dtv in trusted memory is not: it would abort).
constexpr uint32_t kDtvCapacity = 256;
constexpr uint64_t kDtvUnallocated = ~uint64_t{0};  // glibc's TLS_DTV_UNALLOCATED

// The x86-64 tcbhead_t fields the builder sets (glibc sysdeps/x86_64/nptl/tls.h).
constexpr size_t kTcbSelf = 0x00;         // tcb: the thread pointer itself
constexpr size_t kTcbDtv = 0x08;          // dtv
constexpr size_t kTcbSelfAgain = 0x10;    // self: THREAD_SELF
constexpr size_t kTcbMultiThread = 0x18;  // multiple_threads
constexpr size_t kTcbStackGuard = 0x28;   // stack_guard: -fstack-protector's canary
constexpr size_t kTcbPointerGuard = 0x30;

uint64_t ThreadPointer() {
  uint64_t fs;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(fs));
  return fs;
}

template <typename T>
void Put(unsigned char* at, T v) {
  memcpy(at, &v, sizeof v);
}

struct Collect {
  uint64_t tp;
  uint64_t below;
  std::vector<TlsModule> modules;
  std::vector<unsigned char> images;
  std::vector<std::pair<uint64_t, uint64_t>> writable;  // the modules' writable segments
  std::string why;
};

int CollectModule(dl_phdr_info* info, size_t, void* arg) {
  auto& c = *static_cast<Collect*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_TLS || ph.p_memsz == 0) continue;
    const auto data = reinterpret_cast<uint64_t>(info->dlpi_tls_data);
    // Dynamic TLS (a module dlopen()ed before cordon_init()): trusted code
    // gets a block of its own from __tls_get_addr when it first uses one.
    if (data == 0 || data >= c.tp || c.tp - data > c.below) continue;
    if (c.modules.size() == kMaxTlsModules || info->dlpi_tls_modid >= kDtvCapacity ||
        ph.p_filesz > ph.p_memsz || c.tp - data < ph.p_memsz) {
      c.why = "a module's static TLS block does not fit the runtime's trusted TCB";
      return 1;
    }
    c.modules.push_back({c.tp - data, info->dlpi_tls_modid, ph.p_filesz, ph.p_memsz, c.images.size()});
    const auto* image = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    c.images.insert(c.images.end(), image, image + ph.p_filesz);
    for (int j = 0; j < info->dlpi_phnum; ++j) {
      const ElfW(Phdr)& w = info->dlpi_phdr[j];
      if (w.p_type == PT_LOAD && (w.p_flags & PF_W) != 0) {
        c.writable.push_back({info->dlpi_addr + w.p_vaddr, info->dlpi_addr + w.p_vaddr + w.p_memsz});
      }
    }
  }
  return 0;
}

// The global locale object (glibc's _nl_global_locale, a struct
// __locale_struct in libc's writable data) that the TLS images' locale
// pointers (__libc_tsd_LOCALE, _nl_current_LC_*) lead to: the word of an
// image that points into a module's writable data at an object whose
// __ctype_b (after the 13 category pointers) is this thread's. 0 if none.
uint64_t FindGlobalLocale(const Collect& c, uint64_t ctype_b) {
  for (const TlsModule& m : c.modules) {
    for (uint64_t off = 0; off + 8 <= m.filesz; off += 8) {
      uint64_t v;
      memcpy(&v, c.images.data() + m.image + off, 8);
      for (const auto& [lo, hi] : c.writable) {
        if (v < lo || v + kLocaleBytes > hi || v % 8 != 0) continue;
        uint64_t b;
        memcpy(&b, reinterpret_cast<const void*>(v + kLocaleCtypeB), 8);
        if (b == ctype_b) return v;
      }
    }
  }
  return 0;
}

std::vector<unsigned char> BuildTemplate(std::string* why) {
  // glibc's own descriptions of its layout (for libthread_db and for the
  // allocation of thread stacks): private symbols, found by name so that a
  // C library without them is refused rather than guessed at.
  using StaticInfo = void (*)(size_t*, size_t*);
  const auto static_info = reinterpret_cast<StaticInfo>(dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
  const auto* sizeof_pthread = static_cast<const uint32_t*>(dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread"));
  const auto* tid_field = static_cast<const uint32_t*>(dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid"));
  if (static_info == nullptr || sizeof_pthread == nullptr || tid_field == nullptr) {
    *why = "the C library does not describe its thread layout (Cordon needs glibc 2.34 or later)";
    return {};
  }
  size_t static_size = 0, static_align = 0;
  static_info(&static_size, &static_align);
  const uint32_t pthread_size = *sizeof_pthread;
  const uint32_t tid_offset = tid_field[2];
  if (pthread_size < 0x40 || pthread_size > 4 * kPage || static_size <= pthread_size ||
      static_size - pthread_size > (size_t{1} << 24) || static_align > kPage || tid_field[0] != 32 ||
      tid_offset + 4 > pthread_size) {
    *why = "the C library's thread layout is not one the runtime knows";
    return {};
  }
  Collect c{ThreadPointer(), static_size - pthread_size, {}, {}, {}, {}};
  dl_iterate_phdr(CollectModule, &c);
  if (!c.why.empty()) {
    *why = c.why;
    return {};
  }

  TlsTemplate t{};
  t.below = RoundUp(c.below, kPage);
  t.pthread_size = pthread_size;
  t.tid_offset = tid_offset;
  t.dtv_capacity = kDtvCapacity;
  t.above = RoundUp(RoundUp(pthread_size, 64) + (kDtvCapacity + 2) * 16 + kLocaleBytes, kPage);
  uint64_t dtv, pointer_guard;
  __asm__ volatile("mov %%fs:8, %0" : "=r"(dtv));
  __asm__ volatile("mov %%fs:0x30, %0" : "=r"(pointer_guard));
  t.generation = reinterpret_cast<const uint64_t*>(dtv)[0];
  t.pointer_guard = pointer_guard;
  t.robust_offset = -1;
  void* head = nullptr;
  size_t head_len = 0;
  if (hw::RawSyscall3(SYS_get_robust_list, 0, reinterpret_cast<long>(&head),
                      reinterpret_cast<long>(&head_len)) == 0 &&
      head != nullptr) {
    const auto off = reinterpret_cast<uint64_t>(head) - c.tp;
    if (off + 24 <= pthread_size) t.robust_offset = static_cast<int64_t>(off);
  }
  if (__rseq_size >= 8 && __rseq_offset > 0 && static_cast<uint64_t>(__rseq_offset) + 8 <= pthread_size) {
    t.rseq_offset = __rseq_offset;
  }
  // A thread's ctype pointers are set by __ctype_init() when glibc starts
  // the thread, not by the TLS image; without them isdigit() and the rest
  // would read through NULL.
  const void* const ctype_locs[3] = {__ctype_b_loc(), __ctype_tolower_loc(), __ctype_toupper_loc()};
  for (int i = 0; i < 3; ++i) {
    const auto at = reinterpret_cast<uint64_t>(ctype_locs[i]);
    if (at >= c.tp || c.tp - at > c.below || c.tp - at < 8) {
      *why = "the C library's ctype state is not in its static TLS";
      return {};
    }
    t.ctype_offset[i] = c.tp - at;
    memcpy(&t.ctype_value[i], ctype_locs[i], 8);
  }
  // The global locale, as it is now, for the TCBs' own copy: untrusted
  // code can rewrite the global one (its category pointers, and with them
  // the decimal point printf uses and the conversion functions mbrtowc
  // calls), not a copy in the domain's memory.
  t.locale = FindGlobalLocale(c, t.ctype_value[0]);
  if (t.locale == 0) {
    *why = "the C library's global locale is not where the runtime looks for it";
    return {};
  }
  memcpy(t.locale_copy, reinterpret_cast<const void*>(t.locale), kLocaleBytes);
  t.nmodules = static_cast<uint32_t>(c.modules.size());
  std::copy(c.modules.begin(), c.modules.end(), t.modules);
  t.image_bytes = c.images.size();
  std::vector<unsigned char> out(sizeof t + c.images.size());
  memcpy(out.data(), &t, sizeof t);
  if (!c.images.empty()) memcpy(out.data() + sizeof t, c.images.data(), c.images.size());
  return out;
}

}  // namespace

const TlsTemplate* ProcessTlsTemplate(std::string* why) {
  static std::string failure;
  static const std::vector<unsigned char> bytes = BuildTemplate(&failure);
  if (bytes.empty()) {
    if (why != nullptr) *why = failure;
    return nullptr;
  }
  return reinterpret_cast<const TlsTemplate*>(bytes.data());
}

size_t TcbAreaBytes() {
  const TlsTemplate* t = ProcessTlsTemplate(nullptr);
  return t == nullptr ? 0 : t->below + t->above;
}

uint64_t BuildTrustedTcb(const TlsTemplate& t, unsigned char* area, uint32_t tid, uint64_t canary) {
  memset(area, 0, t.below + t.above);
  unsigned char* tp = area + t.below;
  const auto tp_value = reinterpret_cast<uint64_t>(tp);
  // dtv: [capacity][generation][module 1]...; the TCB points at the
  // generation. Modules with static TLS point into this TCB's blocks; the
  // rest are unallocated, so that __tls_get_addr gives trusted code blocks
  // of its own.
  auto* dtv = reinterpret_cast<uint64_t*>(tp + RoundUp(t.pthread_size, 64));
  dtv[0] = t.dtv_capacity;
  dtv[2] = t.generation;
  for (uint32_t i = 1; i <= t.dtv_capacity; ++i) dtv[2 * (i + 1)] = kDtvUnallocated;
  for (uint32_t i = 0; i < t.nmodules; ++i) {
    const TlsModule& m = t.modules[i];
    unsigned char* block = tp - m.offset;
    if (m.filesz != 0) memcpy(block, t.Images() + m.image, m.filesz);
    dtv[2 * (m.modid + 1)] = reinterpret_cast<uint64_t>(block);
  }
  for (int i = 0; i < 3; ++i) Put(tp - t.ctype_offset[i], t.ctype_value[i]);
  // The TCB's own locale, after the dtv; the images' pointers into the
  // global one point into it instead.
  unsigned char* locale = tp + RoundUp(t.pthread_size, 64) + (t.dtv_capacity + 2) * 16;
  memcpy(locale, t.locale_copy, kLocaleBytes);
  for (uint32_t i = 0; i < t.nmodules; ++i) {
    unsigned char* block = tp - t.modules[i].offset;
    for (uint64_t off = 0; off + 8 <= t.modules[i].filesz; off += 8) {
      uint64_t v;
      memcpy(&v, block + off, 8);
      if (v >= t.locale && v < t.locale + kLocaleBytes) {
        Put(block + off, reinterpret_cast<uint64_t>(locale) + (v - t.locale));
      }
    }
  }
  Put(tp + kTcbSelf, tp_value);
  Put(tp + kTcbDtv, reinterpret_cast<uint64_t>(dtv + 2));
  Put(tp + kTcbSelfAgain, tp_value);
  // Always "more than one thread": glibc's single-thread shortcuts skip
  // the locks that other threads' use of the same libc state needs.
  Put<uint32_t>(tp + kTcbMultiThread, 1);
  Put(tp + kTcbStackGuard, canary);
  Put(tp + kTcbPointerGuard, t.pointer_guard);
  Put<uint32_t>(tp + t.tid_offset, tid);
  // An empty robust-futex list points at itself (the kernel keeps the
  // thread's own, which trusted code never sees).
  if (t.robust_offset >= 0) Put(tp + t.robust_offset, tp_value + static_cast<uint64_t>(t.robust_offset));
  // rseq: "registration failed", so that sched_getcpu() asks the kernel
  // instead of reading a CPU number nobody updates.
  if (t.rseq_offset > 0) Put<uint32_t>(tp + t.rseq_offset + 4, ~0u);
  return tp_value;
}

}  // namespace cordon::domains
