// Cordon C++ API: the umbrella header for C++ programs.
//
// It wraps <cordon/cordon.h> with RAII and typed, explicit gate crossings:
//  - cordon::Status / cordon::Result<T>: every failure carries its sentence;
//  - cordon::Domain: a protection-key domain;
//  - cordon::Entry<R(Args...)>: a typed handle to a registered entry point,
//    made only by cordon::Register<&fn>(domain, name);
//  - cordon::Untrusted<T>: how a trusted entry receives a value from
//    untrusted code. It must be verified before use; the escape hatch is
//    called UNSAFE_unverified();
//  - cordon::TrustedBuffer: an owning block of a domain's heap;
//  - cordon::PublishedCode: an owning block of the code region, executable
//    only after the runtime has inspected it (docs/code.md).
#ifndef CORDON_CORDON_HPP_
#define CORDON_CORDON_HPP_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "cordon/cordon.h"

namespace cordon {

class Status {
 public:
  Status() = default;
  explicit Status(int code) : code_(code) {}
  bool ok() const { return code_ == CORDON_OK; }
  int code() const { return code_; }
  const char* message() const { return cordon_strerror(code_); }
  explicit operator bool() const { return ok(); }

 private:
  int code_ = CORDON_OK;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(status) {}     // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

struct Options {
  size_t heap_size = size_t{64} << 20;
  size_t stack_size = size_t{256} << 10;
  uint32_t max_threads = 64;
  size_t code_size = size_t{256} << 20;  // 0: no code can be published
  int audit_fd = -1;                     // the audit stream's descriptor (docs/audit.md), or -1
  const void* audit_key = nullptr;       // its 32-byte HMAC key (cordon_options.audit_key), or none
  size_t audit_key_size = 0;
};

inline Status Init(const Options& options = {}) {
  cordon_options o;
  cordon_options_init(&o);
  o.heap_size = options.heap_size;
  o.stack_size = options.stack_size;
  o.max_threads = options.max_threads;
  o.code_size = options.code_size;
  o.audit_fd = options.audit_fd;
  o.audit_key = options.audit_key;
  o.audit_key_size = options.audit_key_size;
  return Status(cordon_init(&o));
}

// Writes the gate_calls records now (cordon_audit_flush).
inline Status AuditFlush() {
  return Status(cordon_audit_flush());
}

// The current domain's root (cordon_domain_set_root, cordon_domain_root):
// set once from inside the domain during set-up, then found by every entry
// without trusting a pointer kept in untrusted memory.
inline Status SetDomainRoot(void* root) {
  return Status(cordon_domain_set_root(root));
}
template <typename T>
T* DomainRoot() {
  return static_cast<T*>(cordon_domain_root());
}

inline Status Lockdown() {
  return Status(cordon_lockdown());
}

// A file no code may open after the lockdown (cordon_lockdown_close_file).
inline Status CloseFileAtLockdown(const char* path) {
  return Status(cordon_lockdown_close_file(path));
}

// Where this process runs (cordon_describe_platform).
inline std::string DescribePlatform() {
  std::string line(cordon_describe_platform(nullptr, 0), '\0');
  cordon_describe_platform(line.data(), line.size() + 1);
  return line;
}

class Domain {
 public:
  static Domain Untrusted() { return Domain(CORDON_DOMAIN_UNTRUSTED); }
  static Domain Trusted() { return Domain(cordon_trusted_domain()); }
  static Domain Current() { return Domain(cordon_current_domain()); }
  static Domain Of(const void* addr) { return Domain(cordon_domain_of(addr)); }
  static Result<Domain> Create(const std::string& name) {
    cordon_domain_t d;
    const int s = cordon_domain_create(name.c_str(), &d);
    if (s != CORDON_OK) return Status(s);
    return Domain(d);
  }
  // A virtual domain (cordon_domain_create_virtual): no key of its own.
  static Result<Domain> CreateVirtual(const std::string& name) {
    cordon_domain_t d;
    const int s = cordon_domain_create_virtual(name.c_str(), &d);
    if (s != CORDON_OK) return Status(s);
    return Domain(d);
  }

  cordon_domain_t handle() const { return handle_; }
  // The key the domain's pages carry now (a virtual domain's changes).
  int pkey() const { return cordon_domain_pkey(handle_); }
  bool is_virtual() const { return cordon_domain_is_virtual(handle_) != 0; }
  Status Pin() const { return Status(cordon_domain_pin(handle_)); }
  Status Unpin() const { return Status(cordon_domain_unpin(handle_)); }
  Status Evict() const { return Status(cordon_domain_evict(handle_)); }
  // Every thread's rights on the domain's data at once (CORDON_RIGHTS_*).
  Status SetRights(int rights) const { return Status(cordon_domain_set_rights(handle_, rights)); }
  std::string name() const {
    const char* n = cordon_domain_name(handle_);
    return n != nullptr ? n : "unknown";
  }
  bool operator==(const Domain& o) const { return handle_ == o.handle_; }
  bool operator!=(const Domain& o) const { return handle_ != o.handle_; }

 private:
  explicit Domain(cordon_domain_t h) : handle_(h) {}
  cordon_domain_t handle_;
};

// A value that untrusted code handed to trusted code. Its content may be
// anything; a pointer may even point into trusted memory (a confused-deputy
// attack), so it must be verified before use.
template <typename T>
class Untrusted {
  static_assert(std::is_integral_v<T> || std::is_enum_v<T> || std::is_pointer_v<T>,
                "only integers, enums and pointers cross a gate");

 public:
  explicit Untrusted(T v) : value_(v) {}

  // The value if pred(value) holds.
  template <typename Pred>
  std::optional<T> verify(Pred pred) const {
    if (pred(value_)) return value_;
    return std::nullopt;
  }

  // For pointers: the pointer if [p, p + count) is wholly untrusted memory.
  template <typename U = T, typename = std::enable_if_t<std::is_pointer_v<U>>>
  std::optional<T> verify_range(size_t count) const {
    using Pointee = std::remove_pointer_t<T>;
    constexpr size_t kSize =
        std::is_void_v<Pointee> ? 1 : sizeof(std::conditional_t<std::is_void_v<Pointee>, char, Pointee>);
    size_t bytes;
    if (__builtin_mul_overflow(count, kSize, &bytes)) return std::nullopt;
    if (value_ == nullptr || !cordon_is_untrusted_range(value_, bytes)) return std::nullopt;
    return value_;
  }

  // Escape hatch: the raw value, unchecked.
  T UNSAFE_unverified() const { return value_; }

 private:
  T value_;
};

namespace detail {

template <typename T>
struct IsUntrusted : std::false_type {};
template <typename T>
struct IsUntrusted<Untrusted<T>> : std::true_type {};

template <typename T>
constexpr bool kGateScalar = std::is_integral_v<T> || std::is_enum_v<T> || std::is_pointer_v<T>;

template <typename T>
constexpr bool kGateArg = kGateScalar<T> || IsUntrusted<T>::value;

template <typename T>
uint64_t ToWord(T v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<uint64_t>(v);
  } else if constexpr (std::is_enum_v<T>) {
    return static_cast<uint64_t>(static_cast<std::underlying_type_t<T>>(v));
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  } else {
    return static_cast<uint64_t>(v);
  }
}

template <typename T>
T FromWord(uint64_t w) {
  if constexpr (IsUntrusted<T>::value) {
    using Inner = decltype(std::declval<T>().UNSAFE_unverified());
    return T(FromWord<Inner>(w));
  } else if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<T>(w);
  } else if constexpr (std::is_enum_v<T>) {
    return static_cast<T>(static_cast<std::underlying_type_t<T>>(w));
  } else if constexpr (std::is_same_v<T, bool>) {
    return (w & 0xff) != 0;
  } else {
    return static_cast<T>(w);
  }
}

template <typename T>
struct Unwrap {
  using type = T;
};
template <typename T>
struct Unwrap<Untrusted<T>> {
  using type = T;
};

template <auto Fn, typename Sig>
struct Thunk;

template <auto Fn, typename R, typename... Args>
struct Thunk<Fn, R (*)(Args...)> {
  static_assert(sizeof...(Args) <= 5, "a gate carries at most five arguments");
  static_assert((kGateArg<Args> && ...),
                "gate arguments must be integers, enums, pointers or cordon::Untrusted<>");
  static_assert(std::is_void_v<R> || kGateScalar<R>, "a gate returns void, an integer, an enum or a pointer");

  static uint64_t Call(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4) {
    const uint64_t w[5] = {a0, a1, a2, a3, a4};
    return Invoke(w, std::index_sequence_for<Args...>{});
  }

  template <size_t... I>
  static uint64_t Invoke(const uint64_t* w, std::index_sequence<I...>) {
    if constexpr (std::is_void_v<R>) {
      Fn(FromWord<Args>(w[I])...);
      return 0;
    } else {
      return ToWord(Fn(FromWord<Args>(w[I])...));
    }
  }
};
// A noexcept function is called the same way.
template <auto Fn, typename R, typename... Args>
struct Thunk<Fn, R (*)(Args...) noexcept> : Thunk<Fn, R (*)(Args...)> {};

}  // namespace detail

template <typename Sig>
class Entry;

// A typed handle to a registered entry point. Untrusted<T> parameters of the
// trusted function are passed as plain T by the caller.
template <typename R, typename... Args>
class Entry<R(Args...)> {
 public:
  R operator()(typename detail::Unwrap<Args>::type... args) const {
    uint64_t w[5] = {0, 0, 0, 0, 0};
    size_t i = 0;
    ((w[i++] = detail::ToWord(args)), ...);
    const uint64_t r = cordon_call(raw_, w[0], w[1], w[2], w[3], w[4]);
    if constexpr (!std::is_void_v<R>) return detail::FromWord<R>(r);
  }
  const cordon_entry& raw() const { return raw_; }
  explicit Entry(cordon_entry raw) : raw_(raw) {}

 private:
  cordon_entry raw_;
};

template <typename F>
struct Signature;
template <typename R, typename... Args>
struct Signature<R (*)(Args...)> {
  using type = R(Args...);
};
template <typename R, typename... Args>
struct Signature<R (*)(Args...) noexcept> {
  using type = R(Args...);
};

// Registers fn (a function of the trusted domain's code) as an entry point.
template <auto Fn>
Result<Entry<typename Signature<decltype(Fn)>::type>> Register(Domain domain, const char* name) {
  cordon_entry raw;
  const int s = cordon_register(domain.handle(), &detail::Thunk<Fn, decltype(Fn)>::Call, name, &raw);
  if (s != CORDON_OK) return Status(s);
  return Entry<typename Signature<decltype(Fn)>::type>(raw);
}

// From trusted code inside an entry point: calls an untrusted function and
// hands back its result as an Untrusted value (see cordon_call_untrusted).
template <typename R, typename... Params, typename... Args>
auto CallUntrusted(R (*fn)(Params...), Args... args) {
  static_assert(sizeof...(Params) <= 5, "a callback takes at most five arguments");
  static_assert(sizeof...(Args) == sizeof...(Params), "pass one value per parameter");
  static_assert((detail::kGateScalar<Params> && ...),
                "callback arguments must be integers, enums or pointers");
  static_assert(std::is_void_v<R> || detail::kGateScalar<R>,
                "a callback returns void, an integer, an enum or a pointer");
  uint64_t w[5] = {0, 0, 0, 0, 0};
  size_t i = 0;
  ((w[i++] = detail::ToWord(static_cast<Params>(args))), ...);
  const uint64_t r =
      // Integer and pointer parameters travel in the same registers whatever
      // their declared types; the cast through void(*)() says so to GCC.
      cordon_call_untrusted(reinterpret_cast<cordon_untrusted_fn>(reinterpret_cast<void (*)()>(fn)), w[0],
                            w[1], w[2], w[3], w[4]);
  if constexpr (std::is_void_v<R>) {
    (void)r;
  } else {
    return Untrusted<R>(detail::FromWord<R>(r));
  }
}

// An owning block of a domain's heap. Untrusted code can hold one (and pass
// its address through a gate) but cannot read or write its bytes.
class TrustedBuffer {
 public:
  static Result<TrustedBuffer> Allocate(size_t size, Domain domain = Domain::Trusted(),
                                        size_t alignment = 16) {
    void* p = nullptr;
    const int s = cordon_domain_alloc(domain.handle(), alignment, size, &p);
    if (s != CORDON_OK) return Status(s);
    return TrustedBuffer(p, size);
  }
  TrustedBuffer(TrustedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), size_(o.size_) {}
  TrustedBuffer& operator=(TrustedBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = o.size_;
    }
    return *this;
  }
  TrustedBuffer(const TrustedBuffer&) = delete;
  TrustedBuffer& operator=(const TrustedBuffer&) = delete;
  ~TrustedBuffer() { reset(); }

  void* get() const { return ptr_; }
  size_t size() const { return size_; }
  // Gives up ownership (for example to trusted code that frees it itself).
  void* release() { return std::exchange(ptr_, nullptr); }
  // Frees the block now; a failure (after lockdown, from untrusted code)
  // is reported instead of ignored.
  Status reset() {
    if (ptr_ == nullptr) return Status();
    const Status s(cordon_free(ptr_));
    if (s.ok()) ptr_ = nullptr;
    return s;
  }

 private:
  TrustedBuffer(void* p, size_t n) : ptr_(p), size_(n) {}
  void* ptr_;
  size_t size_;
};

// A block of the code region. Reserve() gives an address to generate code
// for; Publish() copies the code in, and it runs only if the runtime found
// no WRPKRU or XRSTOR in it. The block is released when this goes away.
class PublishedCode {
 public:
  static Result<PublishedCode> Reserve(size_t size) {
    void* p = nullptr;
    const int s = cordon_code_reserve(size, &p);
    if (s != CORDON_OK) return Status(s);
    return PublishedCode(p);
  }
  static Result<PublishedCode> Load(const void* code, size_t len) {
    void* p = nullptr;
    const int s = cordon_code_load(code, len, &p);
    if (s != CORDON_OK) return Status(s);
    return PublishedCode(p);
  }
  PublishedCode(PublishedCode&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
  PublishedCode& operator=(PublishedCode&& o) noexcept {
    if (this != &o) {
      reset();
      block_ = std::exchange(o.block_, nullptr);
    }
    return *this;
  }
  PublishedCode(const PublishedCode&) = delete;
  PublishedCode& operator=(const PublishedCode&) = delete;
  ~PublishedCode() { reset(); }

  Status Publish(const void* code, size_t len) { return Status(cordon_code_publish(block_, code, len)); }
  void* address() const { return block_; }
  // The code as a function of type F (a function pointer type).
  template <typename F>
  F as() const {
    static_assert(std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>,
                  "as<F>() wants a function pointer type");
    return reinterpret_cast<F>(block_);
  }
  Status reset() {
    if (block_ == nullptr) return Status();
    const Status s(cordon_code_release(block_));
    if (s.ok()) block_ = nullptr;
    return s;
  }

 private:
  explicit PublishedCode(void* p) : block_(p) {}
  void* block_;
};

}  // namespace cordon

#endif
