// The signer's gate entries (signer_abi.h): trusted code, run inside the
// provider's domain ("openssl-keys") and reached only through cordon_call().
//
// Everything here treats the caller as hostile (brief: after the lockdown
// untrusted code may call any entry with any arguments, from any thread):
// a request is copied once into trusted memory after its whole range was
// checked, every pointer in the copy is checked before use, and results go
// only into the untrusted buffers the request names. The key table is found
// through cordon_domain_root() (the runtime keeps the root in trusted
// state), never through a global of this module, which untrusted code could
// aim anywhere. Keys are named by opaque handles (slot index + generation),
// never by pointers.
//
// Built with -fno-exceptions; uses no glibc malloc, stdio, locale or
// libcrypto (docs/using.md, "What trusted code must not do").
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cordon/cordon.h"
#include "openssl-provider/signer/core/core.h"
#include "openssl-provider/signer/signer_abi.h"

namespace {

constexpr uint64_t kTableMagic = 0x636f72646f6e4b54ull;  // "cordonKT"
constexpr uint32_t kSlots = 256;
constexpr size_t kMaxKeyFile = size_t{1} << 20;  // 1 MiB
constexpr uint64_t kMaxPath = 4095;
constexpr uint64_t kMaxPassphrase = 1023;
// Ed25519 signs the whole message, which is copied into trusted memory
// first (a message that changes between the two hashes of EdDSA would give
// two signatures with one nonce, which reveal the key).
constexpr uint64_t kMaxMessage = size_t{1} << 20;
constexpr size_t kStackMessage = 4096;

enum SlotState : uint32_t { kFree = 0, kLive = 1, kDying = 2 };

struct Slot {
  uint32_t generation;  // the handle's high half; never 0
  uint32_t state;       // a SlotState
  uint32_t users;       // signs running with this key
  uint32_t pad;
  cordon_signer_key* key;
};

struct Table {
  uint64_t magic;
  uint32_t lock;              // a spinlock, taken with __atomic builtins
  uint32_t require_lockdown;  // sign only once the process is locked down (set-up's a0)
  Slot slots[kSlots];
};

// ------------------------------------------------------------------ lock --
// A spinlock rather than a futex: the critical sections are a few loads and
// stores, and a trusted entry makes no system call it does not need.
class Locked {
 public:
  explicit Locked(Table* t) : lock_(&t->lock) {
    while (__atomic_exchange_n(lock_, 1u, __ATOMIC_ACQUIRE) != 0) {
      while (__atomic_load_n(lock_, __ATOMIC_RELAXED) != 0) __builtin_ia32_pause();
    }
  }
  ~Locked() { __atomic_store_n(lock_, 0u, __ATOMIC_RELEASE); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  uint32_t* lock_;
};

// The table, from the runtime's root of the current domain; NULL before set-up.
Table* TheTable() {
  auto* t = static_cast<Table*>(cordon_domain_root());
  if (t == nullptr || t->magic != kTableMagic) return nullptr;
  return t;
}

uint64_t Status(int s) {
  return static_cast<uint64_t>(static_cast<int64_t>(s));
}

// A block of the current domain's heap, zeroed; freed (and so wiped: the
// heap wipes freed blocks) on scope exit.
class DomainBuffer {
 public:
  explicit DomainBuffer(size_t n) : size_(n) {
    if (cordon_domain_alloc(cordon_current_domain(), 16, n, &p_) != CORDON_OK) p_ = nullptr;
  }
  ~DomainBuffer() { (void)cordon_free(p_); }
  DomainBuffer(const DomainBuffer&) = delete;
  DomainBuffer& operator=(const DomainBuffer&) = delete;
  uint8_t* data() const { return static_cast<uint8_t*>(p_); }
  size_t size() const { return size_; }

 private:
  void* p_ = nullptr;
  size_t size_;
};

// Copies a request whose address untrusted code gave, once: the whole
// struct must be untrusted memory, and its struct_size must be ours.
template <typename Req>
bool CopyRequest(uint64_t addr, Req* copy) {
  const void* p = reinterpret_cast<const void*>(addr);
  if (addr == 0 || !cordon_is_untrusted_range(p, sizeof(Req))) return false;
  memcpy(copy, p, sizeof(Req));
  return copy->struct_size == sizeof(Req);
}

bool Untrusted(const void* p, uint64_t n) {
  return p != nullptr && cordon_is_untrusted_range(p, static_cast<size_t>(n));
}

// Reads the regular file at path (NUL-terminated, in trusted memory) into a
// fresh domain buffer. Errors: E_NO_FILE / E_READ with *err set.
int ReadKeyFile(const char* path, uint8_t** data, size_t* len, size_t* cap, int* err) {
  // O_NONBLOCK: a FIFO must not block the signer; it is refused below.
  const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    *err = errno;
    return CORDON_SIGNER_E_NO_FILE;
  }
  struct stat st;
  int status = CORDON_SIGNER_OK;
  if (fstat(fd, &st) != 0) {
    *err = errno;
    status = CORDON_SIGNER_E_READ;
  } else if (!S_ISREG(st.st_mode)) {
    *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    status = CORDON_SIGNER_E_READ;
  } else if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > kMaxKeyFile) {
    *err = EFBIG;
    status = CORDON_SIGNER_E_READ;
  }
  if (status != CORDON_SIGNER_OK) {
    (void)close(fd);
    return status;
  }
  // One byte more than the size fstat gave, to see a file that grew.
  const size_t n = static_cast<size_t>(st.st_size) + 1;
  void* buf = nullptr;
  if (cordon_domain_alloc(cordon_current_domain(), 16, n, &buf) != CORDON_OK) {
    (void)close(fd);
    return CORDON_SIGNER_E_NO_MEMORY;
  }
  auto* b = static_cast<uint8_t*>(buf);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *err = errno;
      status = CORDON_SIGNER_E_READ;
      break;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  (void)close(fd);
  if (status == CORDON_SIGNER_OK && got == n) {  // it grew while we read it
    *err = EFBIG;
    status = CORDON_SIGNER_E_READ;
  }
  if (status != CORDON_SIGNER_OK) {
    (void)cordon_free(buf);  // the heap wipes it
    return status;
  }
  *data = b;
  *len = got;
  *cap = n;
  return CORDON_SIGNER_OK;
}

// Puts a key in a free slot; its handle, or 0 when the table is full.
uint64_t Insert(Table* t, cordon_signer_key* key) {
  Locked lock(t);
  for (uint32_t i = 0; i < kSlots; ++i) {
    Slot& s = t->slots[i];
    if (s.state != kFree) continue;
    s.state = kLive;
    s.users = 0;
    s.key = key;
    return (static_cast<uint64_t>(s.generation) << 32) | i;
  }
  return 0;
}

Slot* Find(Table* t, uint64_t handle) {
  const uint64_t index = handle & 0xffffffffu;
  const auto generation = static_cast<uint32_t>(handle >> 32);
  if (index >= kSlots || generation == 0) return nullptr;
  Slot& s = t->slots[index];
  if (s.state != kLive || s.generation != generation) return nullptr;
  return &s;
}

// Retires a slot's handle; the slot is free again once nobody uses its key.
// Returns the key to destroy (outside the lock), or NULL.
cordon_signer_key* Retire(Slot* s) {
  s->generation = s->generation == 0xffffffffu ? 1 : s->generation + 1;
  if (s->users != 0) {
    s->state = kDying;  // the last sign frees it
    return nullptr;
  }
  cordon_signer_key* key = s->key;
  s->key = nullptr;
  s->state = kFree;
  return key;
}

}  // namespace

// ----------------------------------------------------- the core's hooks --
// Allocation and randomness for the core, inside the domain.
extern "C" void* cordon_signer_mem_alloc(size_t n) {
  void* p = nullptr;
  if (cordon_domain_alloc(cordon_current_domain(), 16, n == 0 ? 1 : n, &p) != CORDON_OK) return nullptr;
  return p;
}

extern "C" void* cordon_signer_mem_realloc(void* p, size_t old_n, size_t new_n) {
  (void)old_n;
  if (p == nullptr) return cordon_signer_mem_alloc(new_n);
  void* out = nullptr;
  if (cordon_realloc(p, new_n == 0 ? 1 : new_n, &out) != CORDON_OK) return nullptr;
  return out;
}

extern "C" void cordon_signer_mem_free(void* p, size_t n) {
  (void)n;
  (void)cordon_free(p);  // wipes the block
}

extern "C" int cordon_signer_random(void* buf, size_t n) {
  // cordon_random_bytes is getrandom() without errno or cancellation.
  return cordon_random_bytes(buf, n) == CORDON_OK ? 0 : -1;
}

// ---------------------------------------------------------------- entries --
extern "C" uint64_t cordon_signer_setup(uint64_t require_lockdown, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (cordon_is_locked_down()) return Status(CORDON_SIGNER_E_LOCKED);
  if (cordon_domain_root() != nullptr) return Status(CORDON_SIGNER_E_STATE);
  void* p = nullptr;
  if (cordon_domain_alloc(cordon_current_domain(), 64, sizeof(Table), &p) != CORDON_OK) {
    return Status(CORDON_SIGNER_E_NO_MEMORY);
  }
  auto* t = static_cast<Table*>(p);  // zeroed by the heap
  for (Slot& s : t->slots) s.generation = 1;
  t->require_lockdown = require_lockdown != 0 ? 1 : 0;
  t->magic = kTableMagic;
  if (cordon_domain_set_root(t) != CORDON_OK) {
    (void)cordon_free(t);
    return Status(CORDON_SIGNER_E_STATE);
  }
  return Status(CORDON_SIGNER_OK);
}

extern "C" uint64_t cordon_signer_load(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  cordon_signer_load_req r;
  if (!CopyRequest(addr, &r)) return Status(CORDON_SIGNER_E_ARGUMENT);
  auto* out = reinterpret_cast<cordon_signer_load_req*>(addr);
  Table* t = TheTable();
  if (t == nullptr) return Status(CORDON_SIGNER_E_STATE);
  if (cordon_is_locked_down()) return Status(CORDON_SIGNER_E_LOCKED);
  if (r.path_len == 0 || r.path_len > kMaxPath || !Untrusted(r.path, r.path_len) ||
      r.passphrase_len > kMaxPassphrase ||
      (r.passphrase_len != 0 && !Untrusted(r.passphrase, r.passphrase_len))) {
    return Status(CORDON_SIGNER_E_ARGUMENT);
  }
  // The path and passphrase in trusted memory, read once.
  DomainBuffer path(r.path_len + 1);
  DomainBuffer pass(r.passphrase_len + 1);
  if (path.data() == nullptr || pass.data() == nullptr) return Status(CORDON_SIGNER_E_NO_MEMORY);
  memcpy(path.data(), r.path, r.path_len);
  if (memchr(path.data(), 0, r.path_len) != nullptr) return Status(CORDON_SIGNER_E_ARGUMENT);
  if (r.passphrase_len != 0) memcpy(pass.data(), r.passphrase, r.passphrase_len);

  uint8_t* data = nullptr;
  size_t len = 0, cap = 0;
  int err = 0;
  int s = ReadKeyFile(reinterpret_cast<const char*>(path.data()), &data, &len, &cap, &err);
  if (s != CORDON_SIGNER_OK) {
    out->sys_errno = err;
    return Status(s);
  }
  cordon_signer_key* key = nullptr;
  s = cordon_signer_key_parse(data, len,
                              r.passphrase_len != 0 ? reinterpret_cast<const char*>(pass.data()) : nullptr,
                              r.passphrase_len, &key);
  (void)cordon_free(data);  // the file's bytes: the heap wipes them
  if (s != CORDON_SIGNER_OK) {
    cordon_signer_key_destroy(key);
    return Status(s);
  }
  uint32_t type = 0, bits = 0;
  size_t pub_len = 0, n_len = 0;
  s = cordon_signer_key_public(key, &type, &bits, r.public_key, sizeof r.public_key, &pub_len, &n_len);
  if (s != CORDON_SIGNER_OK) {
    cordon_signer_key_destroy(key);
    return Status(s);
  }
  const uint64_t handle = Insert(t, key);
  if (handle == 0) {
    cordon_signer_key_destroy(key);
    return Status(CORDON_SIGNER_E_NO_MEMORY);
  }
  // The results, public only, into the caller's request.
  out->handle = handle;
  out->key_type = type;
  out->bits = bits;
  out->public_len = static_cast<uint32_t>(pub_len);
  out->rsa_n_len = static_cast<uint32_t>(n_len);
  out->sys_errno = 0;
  memcpy(out->public_key, r.public_key, pub_len);
  return Status(CORDON_SIGNER_OK);
}

extern "C" uint64_t cordon_signer_sign(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  cordon_signer_sign_req r;
  if (!CopyRequest(addr, &r)) return Status(CORDON_SIGNER_E_ARGUMENT);
  auto* out = reinterpret_cast<cordon_signer_sign_req*>(addr);
  Table* t = TheTable();
  if (t == nullptr) return Status(CORDON_SIGNER_E_STATE);
  // Fail closed in the signer itself: the glue locks down before the first
  // signature, but its policy word is untrusted memory (the read-only
  // config page says whether the lockdown came).
  if (t->require_lockdown != 0 && !cordon_is_locked_down()) return Status(CORDON_SIGNER_E_LOCKED);
  if (r.tbs_len == 0 || r.tbs_len > kMaxMessage || !Untrusted(r.tbs, r.tbs_len) || r.sig_cap == 0 ||
      !Untrusted(r.sig, r.sig_cap)) {
    return Status(CORDON_SIGNER_E_ARGUMENT);
  }
  // The input in trusted memory, read once.
  uint8_t small[kStackMessage];
  DomainBuffer large(r.tbs_len > kStackMessage ? r.tbs_len : 1);
  uint8_t* tbs = r.tbs_len > kStackMessage ? large.data() : small;
  if (tbs == nullptr) return Status(CORDON_SIGNER_E_NO_MEMORY);
  memcpy(tbs, r.tbs, r.tbs_len);

  cordon_signer_key* key = nullptr;
  {
    Locked lock(t);
    Slot* s = Find(t, r.handle);
    if (s == nullptr) return Status(CORDON_SIGNER_E_HANDLE);
    ++s->users;
    key = s->key;
  }
  uint8_t sig[CORDON_SIGNER_MAX_SIGNATURE];
  size_t sig_len = 0;
  const size_t cap = r.sig_cap < sizeof sig ? static_cast<size_t>(r.sig_cap) : sizeof sig;
  const int st = cordon_signer_key_sign(key, r.scheme, r.digest, r.mgf1_digest, r.salt_len, tbs,
                                        static_cast<size_t>(r.tbs_len), sig, cap, &sig_len);
  cordon_signer_key* dead = nullptr;
  {
    Locked lock(t);
    Slot& s = t->slots[r.handle & 0xffffffffu];
    if (--s.users == 0 && s.state == kDying) {
      dead = s.key;
      s.key = nullptr;
      s.state = kFree;
    }
  }
  cordon_signer_key_destroy(dead);
  if (st == CORDON_SIGNER_OK) {
    if (sig_len > cap) return Status(CORDON_SIGNER_E_CRYPTO);
    memcpy(r.sig, sig, sig_len);
    out->sig_len = sig_len;
  } else if (st == CORDON_SIGNER_E_BUFFER) {
    out->sig_len = sig_len;
  }
  return Status(st);
}

extern "C" uint64_t cordon_signer_free(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  cordon_signer_free_req r;
  if (!CopyRequest(addr, &r)) return Status(CORDON_SIGNER_E_ARGUMENT);
  Table* t = TheTable();
  if (t == nullptr) return Status(CORDON_SIGNER_E_STATE);
  cordon_signer_key* dead = nullptr;
  {
    Locked lock(t);
    Slot* s = Find(t, r.handle);
    if (s == nullptr) return Status(CORDON_SIGNER_E_HANDLE);
    dead = Retire(s);
  }
  cordon_signer_key_destroy(dead);
  return Status(CORDON_SIGNER_OK);
}
