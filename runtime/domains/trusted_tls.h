// Trusted thread-local storage: the TCB and static TLS blocks that trusted
// code runs on (docs/gates.md, "Thread-local storage").
//
// glibc finds every per-thread thing through the fs base: the thread
// descriptor (struct pthread, the TCB) at fs and the static TLS blocks
// below it. Both are untrusted memory, which untrusted code may write, and
// untrusted code sets the fs base itself. Trusted code that calls libc
// would follow them with a domain's rights: a cancellation point reads
// cancelhandling and longjmps through cleanup_jmp_buf, errno is written at
// a fixed offset below fs, the stack protector reads its canary at
// fs:0x28. So every record has a TCB of its own in its slot (trusted
// memory), built when a thread claims the record, and the gates load it
// into fs after their entry WRPKRU (and the caller's back before leaving).
//
// Nothing in it comes from the caller's TCB: the static TLS blocks start
// from the modules' initialization images, copied at cordon_init() (before
// any untrusted code can have changed them), and the descriptor is zero but
// for what glibc needs to find itself (self pointers, the dtv, the thread
// id, the pointer guard, a canary of the domain's own).
#ifndef CORDON_RUNTIME_DOMAINS_TRUSTED_TLS_H_
#define CORDON_RUNTIME_DOMAINS_TRUSTED_TLS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace cordon::domains {

struct TlsModule {
  uint64_t offset;  // thread pointer minus the block's address
  uint64_t modid;   // glibc's module id (the dtv index)
  uint64_t filesz;  // initialized bytes, at image in the template
  uint64_t memsz;
  uint64_t image;  // offset of the image after the template header
};

inline constexpr uint32_t kMaxTlsModules = 64;
// glibc's struct __locale_struct: 13 category pointers, the three ctype
// table pointers, 13 names.
inline constexpr size_t kLocaleBytes = 13 * 8 + 3 * 8 + 13 * 8;
inline constexpr size_t kLocaleCtypeB = 13 * 8;

// What every trusted TCB of this process is built from. One copy lives in
// each domain's memory; the images follow the header.
struct TlsTemplate {
  uint64_t below;          // static TLS bytes below the thread pointer
  uint64_t above;          // the descriptor and the dtv above it
  uint32_t pthread_size;   // glibc's sizeof (struct pthread)
  uint32_t tid_offset;     // of the thread id in it
  uint64_t generation;     // the dtv generation at cordon_init()
  uint64_t pointer_guard;  // the process's pointer-mangling guard
  int64_t robust_offset;   // of the robust-futex list head, or -1
  int64_t rseq_offset;     // of the rseq area from the thread pointer, 0 if none
  // glibc's per-thread ctype table pointers (__ctype_b_loc() and the
  // tolower/toupper ones): offset below the thread pointer and value, as
  // __ctype_init() set them for the thread that ran cordon_init(). They
  // point at the locale's read-only tables.
  uint64_t ctype_offset[3];
  uint64_t ctype_value[3];
  // The global locale object (untrusted memory) and a copy of it taken at
  // cordon_init(): each TCB gets its own copy, and its TLS pointers into
  // the global one point into that instead.
  uint64_t locale;
  unsigned char locale_copy[kLocaleBytes];
  uint32_t dtv_capacity;
  uint32_t nmodules;
  TlsModule modules[kMaxTlsModules];
  uint64_t image_bytes;

  const unsigned char* Images() const { return reinterpret_cast<const unsigned char*>(this + 1); }
  size_t Bytes() const { return sizeof(*this) + image_bytes; }
};

// The process's template, built on first use from the calling thread and
// the loaded modules (cordon_init() calls it before any domain exists).
// nullptr when trusted TLS cannot be set up here, with the reason in *why:
// a C library whose layout the runtime does not know. (The gates' switch
// also needs FSGSBASE: hw::CpuHasFsgsbase(), checked by cordon_init().)
const TlsTemplate* ProcessTlsTemplate(std::string* why);

// Bytes of a record slot's TCB area (a multiple of the page size); 0 when
// ProcessTlsTemplate() fails.
size_t TcbAreaBytes();

// Fills area (TcbAreaBytes() bytes, page-aligned, writable) with a fresh
// TCB for the thread tid and returns its thread pointer: the value the
// gates load into fs. canary is the stack protector's guard.
uint64_t BuildTrustedTcb(const TlsTemplate& t, unsigned char* area, uint32_t tid, uint64_t canary);

}  // namespace cordon::domains

#endif
