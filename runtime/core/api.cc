// The C API (include/cordon/cordon.h) on top of domains, gates and heaps.
//
// State kept here (names, the initialised flag) is untrusted-side
// bookkeeping for messages and argument checks. Nothing trusted depends on
// it: trusted code reads only the config page and its domain's memory.
#include <pthread.h>
#include <sys/syscall.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/audit/audit.h"
#include "runtime/audit/hmac.h"
#include "runtime/base/check.h"
#include "runtime/code/code_region.h"
#include "runtime/core/builtins.h"
#include "runtime/domains/domain.h"
#include "runtime/domains/virtual.h"
#include "runtime/enforce/enforce.h"
#include "runtime/gates/call_counts.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/cpu.h"
#include "runtime/hardware/pkey.h"
#include "runtime/hardware/platform.h"
#include "runtime/hardware/readback.h"
#include "runtime/hardware/smaps.h"
#include "runtime/inspector/process.h"
#include "runtime/lockdown/closed_files.h"
#include "runtime/lockdown/filter_loader.h"
#include "runtime/lockdown/lockdown.h"
#include "runtime/signals/signals.h"

namespace {

using cordon::domains::RunFor;
using cordon::domains::StatusOf;
namespace domains = cordon::domains;
namespace gates = cordon::gates;
namespace hw = cordon::hw;
namespace virt = cordon::domains::virt;

struct Registry {
  std::mutex mu;
  // Read without mu (Initialized()): every heap call asks, from inside the
  // domain too, and a mutex there cost two lock operations a call. It only
  // goes from false to true, at the end of cordon_init(), under mu.
  std::atomic<bool> initialized{false};
  cordon_options options{};
  std::string domain_names[CORDON_MAX_DOMAINS];
  std::vector<std::string> virtual_names;  // by virtual domain index
  std::map<std::pair<int, uint32_t>, std::string> entry_names;
  std::vector<cordon::enforce::ReportEntry> inspection;
  std::vector<cordon_generated_entry> generated;
};

Registry& Reg() {
  static Registry* r = new Registry;  // never destroyed: gates may run during exit
  return *r;
}

bool Initialized() {
  return Reg().initialized.load(std::memory_order_acquire);
}

// What a new domain takes from the layers above domains/: the builtins'
// code and the lockdown's token (signals::Prepare() made it).
domains::DomainSetup DomainSetup() {
  return domains::DomainSetup{&cordon::core::BuiltinsFor, cordon::signals::PendingToken()};
}

// The C boundary's one report of a refusal: each line of its message on
// stderr as "cordon: <line>", then its status for the caller. The layers
// below return Errors and print nothing (base/expected.h); what the status
// alone cannot say (which descriptor, which library, which instruction) is
// what the programmer needs to fix it.
int Report(const cordon::Error& e) {
  for (size_t start = 0; start < e.message.size();) {
    size_t end = e.message.find('\n', start);
    if (end == std::string::npos) end = e.message.size();
    fprintf(stderr, "cordon: %.*s\n", static_cast<int>(end - start), e.message.data() + start);
    start = end + 1;
  }
  return e.status;
}

int PointerResult(uint64_t v, void** out) {
  if (domains::IsStatus(v)) return StatusOf(v);
  *out = reinterpret_cast<void*>(v);
  return CORDON_OK;
}

// The code region's builtin, in the trusted domain.
uint64_t RunCode(uint64_t op, uint64_t a0, uint64_t a1 = 0, uint64_t a2 = 0) {
  return RunFor(
      domains::kTrustedDomain, domains::kBuiltinCode, op, a0,
      [&] { return cordon::code::RunInside(op, a0, a1, a2); }, a1, a2);
}

void TouchSource(const void* code, size_t len) {
  const auto* p = static_cast<const volatile unsigned char*>(code);
  for (size_t i = 0; i < len; i += 4096) (void)p[i];
  (void)p[len - 1];
}

// Where the refused code holds WRPKRU or XRSTOR, for the programmer: read
// again from the caller's buffer, with the block's addresses.
int ReportUnsafeCode(const void* block, const void* code, size_t len) {
  namespace insp = cordon::inspector;
  std::string error;
  auto dis = insp::Disassembler::Open(&error);
  if (!dis) return Report({"code refused: it holds WRPKRU or XRSTOR (" + error + ")", CORDON_E_UNSAFE_CODE});
  const insp::Region region{reinterpret_cast<uint64_t>(block), static_cast<const uint8_t*>(code), len,
                            "published code"};
  std::string lines;
  for (const insp::Finding& f : insp::InspectRegions({region}, {}, *dis, nullptr)) {
    char where[64];
    snprintf(where, sizeof where, " at %p (offset %#llx of the code), ", reinterpret_cast<void*>(f.address),
             static_cast<unsigned long long>(f.address - reinterpret_cast<uint64_t>(block)));
    lines += std::string("code refused: ") + insp::PatternName(f.kind) + where +
             insp::VerdictName(f.verdict) + "\n";
  }
  return Report({lines, CORDON_E_UNSAFE_CODE});
}

// Reads back what the kernel did, rather than trusting return values
// (hardware/readback.h; the domain's own memory was checked when it was
// created, before anything was written to it). Checked: the key is one a domain can hold, this thread's PKRU
// denies it outside the domain, every writable mapping of the domain (and
// of the code region's header) carries the key and is excluded from core
// dumps, and the gate config page is read-only. [header, header_end) is the
// code region's header, empty when there is none.
int VerifyProtection(int d, uint64_t header, uint64_t header_end) {
  const int key = domains::KeyOf(d);
  if (std::string why = hw::CheckAllocatedKey(key); !why.empty()) return Report(hw::Unprotected(why));
  if (hw::PermissionOf(hw::ReadPkru(), key) != hw::Permission::kNoAccess) {
    return Report(hw::Unprotected("PKRU does not deny key " + std::to_string(key) + " outside the domain"));
  }
  const auto& dc = gates::Config().domains[d];
  // One read of smaps for all three checks.
  const auto maps = hw::MappingsIn(0, ~uintptr_t{0});
  if (!maps) return Report(hw::Unprotected("cannot read /proc/self/smaps to check the protection keys"));
  std::string why = hw::CheckKeyed(*maps, dc.region_start, dc.region_end, key, "the trusted domain's memory");
  if (why.empty() && header != header_end)
    why = hw::CheckKeyed(*maps, header, header_end, key, "the code region's header");
  if (!why.empty()) return Report(hw::Unprotected(why));
  const auto config_at = reinterpret_cast<uintptr_t>(&gates::Config());
  const auto config = std::find_if(maps->begin(), maps->end(), [&](const hw::MappingInfo& m) {
    return config_at >= m.start && config_at < m.end;
  });
  if (config == maps->end() || config->perms[1] == 'w') {
    char where[24];
    snprintf(where, sizeof where, "%p", static_cast<const void*>(&gates::Config()));
    return Report(hw::Unprotected(std::string("the gate config page at ") + where + " is not read-only"));
  }
  return CORDON_OK;
}

// A domain handle the program may use: a physical domain (not one of the
// runtime's key slots) or a virtual one.
int CheckDomain(cordon_domain_t d) {
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  if (virt::IsVirtual(d)) return CORDON_OK;
  return domains::Exists(d) && !virt::IsSlot(d) ? CORDON_OK : CORDON_E_INVALID_ARGUMENT;
}

uint32_t IndexOfHandle(cordon_domain_t d) {
  return static_cast<uint32_t>(d - virt::kFirstHandle);
}

// The domain the calling thread is in, virtual domains by their handle
// (a key slot with no resident is no domain of the program's).
int CurrentDomain() {
  const int d = domains::Current();
  if (!virt::IsSlot(d)) return d;
  const int index = virt::CurrentIndex();
  return index < 0 ? CORDON_DOMAIN_UNKNOWN : virt::kFirstHandle + index;
}

// An operation of virtual domain d: from untrusted code through a key
// slot, directly (inside()) from inside d, refused anywhere else.
template <typename Inside>
uint64_t RunForVirtual(cordon_domain_t d, uint32_t op, uint64_t a0, uint64_t a1, Inside inside) {
  const int here = domains::Current();
  if (here == CORDON_DOMAIN_UNTRUSTED) return virt::Call(IndexOfHandle(d), op, a0, a1, 0, 0, 0);
  if (virt::IsSlot(here) && virt::CurrentIndex() == static_cast<int>(IndexOfHandle(d))) return inside();
  return domains::EncodeStatus(CORDON_E_WRONG_DOMAIN);
}

int CreateVirtualLocked(const char* name, cordon_domain_t* out) {
  const auto created = virt::Create(Reg().options, DomainSetup());
  // The key slots are physical domains of the runtime's: each is named and
  // recorded once, when the first virtual domain's set-up made it.
  for (const int slot : virt::SlotDomains()) {
    if (!Reg().domain_names[slot].empty()) continue;
    Reg().domain_names[slot] = "cordon:key-slot";
    (void)cordon::audit::Call(cordon::audit::kOpDomain, static_cast<uint64_t>(slot),
                              reinterpret_cast<uint64_t>(Reg().domain_names[slot].c_str()));
  }
  if (!created.ok()) return Report(created.failure());
  const int d = created.value();
  Reg().virtual_names.resize(IndexOfHandle(d) + 1);
  Reg().virtual_names[IndexOfHandle(d)] = name;
  (void)cordon::audit::Call(cordon::audit::kOpDomain, static_cast<uint64_t>(d),
                            reinterpret_cast<uint64_t>(Reg().virtual_names[IndexOfHandle(d)].c_str()));
  *out = d;
  return CORDON_OK;
}

namespace audit = cordon::audit;

// gate_calls records for every entry called since cordon_init(): the
// trusted domain reads its own counts; another domain's come from its
// enter builtin (core/builtins.h), through untrusted code.
void FlushGateCalls() {
  static const char* const kBuiltinNames[CORDON_BUILTIN_COUNT] = {
      "builtin:enter",    "builtin:alloc",         "builtin:free",        "builtin:realloc",
      "builtin:register", "builtin:signal_action", "builtin:load_filter", "builtin:code"};
  for (int d = 1; domains::Exists(d); ++d) {
    for (uint32_t id = 0; id < gates::kCountedIds; ++id) {
      uint64_t count = 0;
      if (d != domains::kTrustedDomain) {
        count = gates::GateFor(d)(cordon::core::kCountQuery, id, 0, 0, 0, domains::kBuiltinEnter);
        if (count == 0) continue;
      }
      const char* name = id < CORDON_BUILTIN_COUNT ? kBuiltinNames[id] : "";
      if (id == gates::kGeneratedGateCalls) {
        name = "generated:all";  // the pass-generated gates' one bucket (docs/gates.md, "Call counts")
      } else if (id >= CORDON_BUILTIN_COUNT) {
        std::lock_guard<std::mutex> lock(Reg().mu);
        const auto it = Reg().entry_names.find({d, id});
        if (it == Reg().entry_names.end()) continue;  // never registered: never called
        name = it->second.c_str();
      }
      (void)audit::Call(audit::kOpGateCalls, static_cast<uint64_t>(d), id, reinterpret_cast<uint64_t>(name),
                        count);
    }
  }
}

// The stream's start, at the end of cordon_init(): its state in the
// trusted domain, the cordon_init record (seq 0), then the findings of
// the inspection that came before anything was created.
struct AuditKey {
  const void* where = nullptr;  // the options' bytes, or the environment's digits
  audit::KeyForm form = audit::kNoKey;
};

int StartAudit(const cordon_options& o, const AuditKey& key) {
  if (const uint64_t r = audit::Call(audit::kOpSetUp, static_cast<uint64_t>(o.audit_fd),
                                     reinterpret_cast<uint64_t>(key.where), key.form);
      domains::IsStatus(r)) {
    return StatusOf(r);
  }
  // The key is in trusted memory now: the environment's digits go, where
  // they live (so that neither getenv nor /proc/self/environ shows them,
  // and an exec'd program inherits an empty CORDON_AUDIT_KEY, not a key).
  // The options' buffer is the caller's to wipe.
  if (key.form == audit::kKeyHex) {
    char* digits = static_cast<char*>(const_cast<void*>(key.where));
    explicit_bzero(digits, strlen(digits));
  }
  const std::string platform = hw::DescribePlatform();
  (void)audit::Call(audit::kOpInit, reinterpret_cast<uint64_t>(platform.c_str()), o.inspect_policy);
  (void)audit::Call(audit::kOpDomain, domains::kTrustedDomain, reinterpret_cast<uint64_t>("trusted"));
  for (const cordon::enforce::ReportEntry& e : Reg().inspection) {
    (void)audit::RecordFinding(e.address, static_cast<int>(e.kind), static_cast<int>(e.verdict),
                               static_cast<int>(e.action), e.object.c_str(), e.symbol.c_str());
  }
  atexit([] {
    if (domains::Current() == CORDON_DOMAIN_UNTRUSTED) FlushGateCalls();
  });
  return CORDON_OK;
}

}  // namespace

extern "C" {

int cordon_audit_flush(void) {
  if (!Initialized() || !audit::Enabled()) return CORDON_E_NOT_INITIALIZED;
  if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return CORDON_E_WRONG_DOMAIN;
  FlushGateCalls();
  return CORDON_OK;
}

void cordon_options_init(cordon_options* opts) {
  if (opts == nullptr) return;
  *opts = cordon_options{};
  opts->struct_size = sizeof(cordon_options);
  opts->heap_size = size_t{64} << 20;
  opts->stack_size = size_t{256} << 10;
  opts->max_threads = 64;
  opts->inspect_policy = CORDON_INSPECT_NEUTRALIZE;
  opts->code_size = cordon::code::kDefaultSize;
  opts->audit_fd = -1;
  opts->virtual_heap_size = size_t{4} << 20;
}

int cordon_init(const cordon_options* opts) {
  cordon_options o;
  cordon_options_init(&o);
  if (opts != nullptr) {
    if (opts->struct_size < sizeof(size_t) || opts->struct_size > sizeof(cordon_options)) {
      return CORDON_E_INVALID_ARGUMENT;
    }
    memcpy(&o, opts, opts->struct_size);
    // A struct from before audit_fd: no stream from it (the default's -1
    // stays, memcpy copied less).
  }
  // The environment names a descriptor for programs that cannot pass
  // options (the preloaded library); an explicit one wins.
  if (o.audit_fd < 0) {
    if (const char* env = getenv("CORDON_AUDIT_FD"); env != nullptr && env[0] != '\0') {
      char* end = nullptr;
      errno = 0;
      const long fd = strtol(env, &end, 10);
      if (errno != 0 || *end != '\0' || fd < 0 || fd > INT32_MAX) {
        return Report(
            {std::string("cordon_init() refused: CORDON_AUDIT_FD=") + env + " is not a descriptor number",
             CORDON_E_INVALID_ARGUMENT});
      }
      o.audit_fd = static_cast<int>(fd);
    }
  }
  if (o.audit_fd >= 0) {
    if (const std::string why = cordon::audit::CheckDescriptor(o.audit_fd); !why.empty()) {
      return Report({"cordon_init() refused: the audit stream's " + why, CORDON_E_INVALID_ARGUMENT});
    }
  }
  // The stream's key: the options', else the environment's 64 hex digits
  // (decoded by the trusted domain itself at set-up, and then wiped where
  // they are). A struct from before the fields has none (memcpy left the
  // defaults).
  AuditKey key;
  if (o.audit_key != nullptr || o.audit_key_size != 0) {
    if (o.audit_key == nullptr || o.audit_key_size != cordon::audit::kMacKeySize) {
      return Report({"cordon_init() refused: cordon_options.audit_key must point at exactly " +
                         std::to_string(cordon::audit::kMacKeySize) + " bytes (audit_key_size is " +
                         std::to_string(o.audit_key_size) +
                         (o.audit_key == nullptr ? ", audit_key NULL)" : ")"),
                     CORDON_E_INVALID_ARGUMENT});
    }
    key = {o.audit_key, cordon::audit::kKeyBytes};
  } else if (char* env = getenv("CORDON_AUDIT_KEY"); env != nullptr && env[0] != '\0') {
    if (const std::string why = cordon::audit::CheckHexKey(env); !why.empty()) {
      return Report({"cordon_init() refused: CORDON_AUDIT_KEY " + why, CORDON_E_INVALID_ARGUMENT});
    }
    key = {env, cordon::audit::kKeyHex};
  }
  if (key.form != cordon::audit::kNoKey && o.audit_fd < 0) {
    return Report(
        {"cordon_init() refused: an audit key (cordon_options.audit_key or CORDON_AUDIT_KEY) "
         "without an audit stream (cordon_options.audit_fd or CORDON_AUDIT_FD)",
         CORDON_E_INVALID_ARGUMENT});
  }
  o.audit_key = nullptr;  // not kept: Reg().options outlives the caller's buffer
  o.audit_key_size = 0;
  domains::Layout layout;
  if (!domains::ComputeLayout(o, cordon::signals::BufferPages(), &layout)) return CORDON_E_INVALID_ARGUMENT;
  if (!cordon::code::ValidSize(o.code_size)) return CORDON_E_INVALID_ARGUMENT;

  std::lock_guard<std::mutex> lock(Reg().mu);
  if (Reg().initialized) return CORDON_E_ALREADY_INITIALIZED;
  // A build mistake, whatever the machine: say so first.
  if (gates::HasUngatedTrustedCode()) return CORDON_E_UNGATED_CODE;
  // The same mistake in another loaded object (a shared library built
  // without the plugin, or, with libcordon.so, the executable), which the
  // check above, reading this module's own section bounds, cannot see.
  if (auto ungated = cordon::inspector::LoadedFilesWithSection("cordon_trusted_unprocessed"); !ungated.ok()) {
    return Report(
        cordon::Error{"cannot read the loaded objects' sections: " + ungated.error(), CORDON_E_SYSCALL});
  } else if (!ungated->empty()) {
    return Report(
        cordon::Error{(*ungated)[0] + " has CORDON_TRUSTED functions compiled without the Cordon pass plugin",
                      CORDON_E_UNGATED_CODE});
  }
  if (!hw::CpuHasPku()) return CORDON_E_NO_PKU;
  // The kernel's answer is read, not assumed: a key 0 (or out of range)
  // means a filter installed before is faking pkey_alloc.
  if (const int probe = hw::ProbePkeyAlloc(); probe < 0) {
    return CORDON_E_NO_PKU;
  } else if (std::string why = hw::CheckAllocatedKey(probe); !why.empty()) {
    return Report(hw::Unprotected(why));
  }
  if (!hw::CpuHasAvx()) return CORDON_E_NO_AVX;
  if (!hw::CpuHasFsgsbase()) {
    return Report(
        {"cordon_init() refused: the CPU or kernel does not allow FSGSBASE (Linux 5.9 or later on a "
         "CPU with it, not booted with nofsgsbase), which the gates use to give trusted code a "
         "thread-local storage of its own",
         CORDON_E_NO_FSGSBASE});
  }
  if (std::string why; domains::ProcessTlsTemplate(&why) == nullptr) {
    return Report({"cordon_init() refused: " + why, CORDON_E_NO_FSGSBASE});
  }
  if (o.inspect_policy != CORDON_INSPECT_NEUTRALIZE && o.inspect_policy != CORDON_INSPECT_REFUSE) {
    return CORDON_E_INVALID_ARGUMENT;
  }
  // The pass plugin's entry points all go into the trusted domain's table,
  // so check that they fit before anything is created.
  const size_t generated = gates::GeneratedEntryCount();
  if (generated > CORDON_TABLE_SIZE - CORDON_BUILTIN_COUNT) return CORDON_E_TABLE_FULL;
  for (size_t i = 0; i < generated; ++i) {
    if (gates::GeneratedEntryAt(i).domain != domains::kTrustedDomain) return CORDON_E_INVALID_ARGUMENT;
  }
  // Before anything is created: no WRPKRU or XRSTOR may stay executable
  // outside the gates.
  Reg().inspection.clear();
  if (const auto inspected = cordon::enforce::EnforceOnProcess(o.inspect_policy, &Reg().inspection);
      !inspected.ok()) {
    return Report(inspected.failure());
  }

  const bool wide = hw::CpuHasAvx512();
  const bool configured = gates::UpdateConfig([&](gates::GateConfig& c) {
    c.untrusted_pkru = hw::kDefaultPkru;
    c.wide_scrub = wide ? 1 : 0;
    // Unused domain slots get the untrusted PKRU, so their gates grant nothing.
    for (auto& dc : c.domains) dc.pkru = hw::kDefaultPkru;
  });
  if (!configured) return CORDON_E_SYSCALL;
  if (const int s = cordon::signals::Prepare(); s != CORDON_OK) return s;

  cordon::code::Reservation code_region;
  if (o.code_size != 0) {
    if (const int s = cordon::code::ReserveRegion(o.code_size, &code_region); s != CORDON_OK) return s;
  }
  const auto created = domains::CreateDomain(o, DomainSetup());
  if (!created.ok()) {
    cordon::code::ReleaseRegion(code_region);
    return Report(created.failure());
  }
  const int d = created.value();
  if (code_region.upper != 0) {
    uint64_t start = 0, end = 0;
    if (const int s = cordon::code::TagRegion(code_region, domains::KeyOf(d), &start, &end); s != CORDON_OK) {
      return s;
    }
    if (!gates::UpdateConfig([&](gates::GateConfig& c) {
          c.code_start = start;
          c.code_end = end;
        })) {
      return CORDON_E_SYSCALL;
    }
  }
  const cordon::code::Span header = cordon::code::RegionSpan();
  if (const int s = VerifyProtection(d, header.start, header.start == 0 ? 0 : gates::Config().code_start);
      s != CORDON_OK) {
    return s;
  }
  pthread_atfork(nullptr, nullptr, domains::ResetThreadRecordsInChild);
  if (o.audit_fd >= 0) {
    if (const int s = StartAudit(o, key); s != CORDON_OK) return s;
  }
  Reg().options = o;
  Reg().domain_names[d] = "trusted";
  // Register the generated entry points (their gates call the bodies
  // directly; the table makes them reachable through cordon_call() too).
  Reg().generated.clear();
  for (size_t i = 0; i < generated; ++i) {
    const gates::GeneratedEntry g = gates::GeneratedEntryAt(i);
    const uint64_t id =
        RunFor(d, domains::kBuiltinRegister, g.body, 0, [&] { return domains::RegisterInside(d, g.body); });
    CORDON_CHECK(!domains::IsStatus(id),
                 "registering a generated entry point failed after its room was checked");
    const cordon_entry entry{d, static_cast<uint32_t>(id)};
    Reg().entry_names[{d, entry.id}] = g.name;
    Reg().generated.push_back(cordon_generated_entry{g.name, g.gate, g.body, entry});
  }
  Reg().initialized.store(true, std::memory_order_release);
  cordon::enforce::EnableDlopenInspection();
  return CORDON_OK;
}

int cordon_is_initialized(void) {
  return Initialized() ? 1 : 0;
}

int cordon_random_bytes(void* buf, size_t len) {
  if (buf == nullptr && len > 0) return CORDON_E_INVALID_ARGUMENT;
  auto* p = static_cast<unsigned char*>(buf);
  while (len > 0) {
    // getrandom() returns at most 32 MiB per call; EINTR only before any byte.
    const long n = hw::RawSyscall3(SYS_getrandom, reinterpret_cast<long>(p), static_cast<long>(len), 0);
    if (n == -EINTR) continue;
    if (n <= 0) return CORDON_E_SYSCALL;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return CORDON_OK;
}

cordon_domain_t cordon_trusted_domain(void) {
  return Initialized() ? domains::kTrustedDomain : CORDON_DOMAIN_UNKNOWN;
}

int cordon_domain_create(const char* name, cordon_domain_t* out) {
  if (name == nullptr || out == nullptr || name[0] == '\0') return CORDON_E_INVALID_ARGUMENT;
  std::lock_guard<std::mutex> lock(Reg().mu);
  if (!Reg().initialized) return CORDON_E_NOT_INITIALIZED;
  if (gates::Config().locked) return CORDON_E_LOCKED;
  if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return CORDON_E_WRONG_DOMAIN;
  // Past the physical limit (or once virtual domains exist, which took the
  // keys left), domains are virtual.
  if (virt::Enabled() || gates::Config().domain_count >= CORDON_PHYSICAL_DOMAIN_LIMIT) {
    return CreateVirtualLocked(name, out);
  }
  const auto created = domains::CreateDomain(Reg().options, DomainSetup());
  if (!created.ok()) return Report(created.failure());
  const int d = created.value();
  if (const int s = VerifyProtection(d, 0, 0); s != CORDON_OK) return s;
  Reg().domain_names[d] = name;
  (void)cordon::audit::Call(cordon::audit::kOpDomain, static_cast<uint64_t>(d),
                            reinterpret_cast<uint64_t>(Reg().domain_names[d].c_str()));
  *out = d;
  return CORDON_OK;
}

int cordon_domain_create_virtual(const char* name, cordon_domain_t* out) {
  if (name == nullptr || out == nullptr || name[0] == '\0') return CORDON_E_INVALID_ARGUMENT;
  std::lock_guard<std::mutex> lock(Reg().mu);
  if (!Reg().initialized) return CORDON_E_NOT_INITIALIZED;
  if (gates::Config().locked) return CORDON_E_LOCKED;
  if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return CORDON_E_WRONG_DOMAIN;
  return CreateVirtualLocked(name, out);
}

int cordon_domain_is_virtual(cordon_domain_t domain) {
  return virt::IsVirtual(domain) ? 1 : 0;
}

namespace {

// A virtual domain operation from outside every domain: statuses as
// cordon_status.
int VirtualOp(cordon_domain_t domain, uint32_t op, uint64_t a0 = 0) {
  if (!virt::IsVirtual(domain)) return CORDON_E_INVALID_ARGUMENT;
  if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return CORDON_E_WRONG_DOMAIN;
  return StatusOf(virt::Call(IndexOfHandle(domain), op, a0, 0, 0, 0, 0));
}

}  // namespace

int cordon_domain_pin(cordon_domain_t domain) {
  if (const int s = CheckDomain(domain); s != CORDON_OK) return s;
  return virt::IsVirtual(domain) ? VirtualOp(domain, virt::kOpPin) : CORDON_OK;
}

int cordon_domain_unpin(cordon_domain_t domain) {
  if (const int s = CheckDomain(domain); s != CORDON_OK) return s;
  return virt::IsVirtual(domain) ? VirtualOp(domain, virt::kOpUnpin) : CORDON_OK;
}

int cordon_domain_evict(cordon_domain_t domain) {
  if (const int s = CheckDomain(domain); s != CORDON_OK) return s;
  return virt::IsVirtual(domain) ? VirtualOp(domain, virt::kOpEvict) : CORDON_E_INVALID_ARGUMENT;
}

int cordon_parking_pkey(void) {
  return virt::Enabled() ? gates::Config().virt.parking_key : -1;
}

int cordon_domain_set_rights(cordon_domain_t domain, int rights) {
  if (const int s = CheckDomain(domain); s != CORDON_OK) return s;
  if (rights != CORDON_RIGHTS_NONE && rights != CORDON_RIGHTS_READ && rights != CORDON_RIGHTS_READ_WRITE) {
    return CORDON_E_INVALID_ARGUMENT;
  }
  if (virt::IsVirtual(domain)) return VirtualOp(domain, virt::kOpSetRights, static_cast<uint64_t>(rights));
  if (domain == domains::kTrustedDomain) return CORDON_E_WRONG_DOMAIN;  // the runtime's own heap
  if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return CORDON_E_WRONG_DOMAIN;
  return StatusOf(gates::GateFor(domain)(cordon::core::kSetRights, static_cast<uint64_t>(rights), 0, 0, 0,
                                         domains::kBuiltinEnter));
}

int cordon_domain_rights(cordon_domain_t domain) {
  if (const int s = CheckDomain(domain); s != CORDON_OK) return s;
  if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return CORDON_E_WRONG_DOMAIN;
  if (virt::IsVirtual(domain)) {
    return static_cast<int>(virt::Call(IndexOfHandle(domain), virt::kOpRights, 0, 0, 0, 0, 0));
  }
  if (domain == domains::kTrustedDomain) return CORDON_RIGHTS_READ_WRITE;  // never changes
  return static_cast<int>(
      gates::GateFor(domain)(cordon::core::kGetRights, 0, 0, 0, 0, domains::kBuiltinEnter));
}

const char* cordon_domain_name(cordon_domain_t domain) {
  if (domain == CORDON_DOMAIN_UNTRUSTED) return "untrusted";
  std::lock_guard<std::mutex> lock(Reg().mu);
  if (virt::IsVirtual(domain)) return Reg().virtual_names[IndexOfHandle(domain)].c_str();
  if (!domains::Exists(domain)) return nullptr;
  return Reg().domain_names[domain].c_str();
}

int cordon_domain_pkey(cordon_domain_t domain) {
  if (domain == CORDON_DOMAIN_UNTRUSTED) return hw::kDefaultKey;
  if (virt::IsVirtual(domain)) {
    if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return hw::kNoKey;
    return static_cast<int>(virt::Call(IndexOfHandle(domain), virt::kOpKey, 0, 0, 0, 0, 0));
  }
  return domains::KeyOf(domain);
}

int cordon_domain_region(cordon_domain_t domain, const void** start, size_t* size) {
  if (start == nullptr || size == nullptr) return CORDON_E_INVALID_ARGUMENT;
  if (virt::IsVirtual(domain)) {
    *start = reinterpret_cast<const void*>(virt::RegionStart(IndexOfHandle(domain)));
    *size = gates::Config().virt.vstride;
    return CORDON_OK;
  }
  if (!domains::Exists(domain)) return CORDON_E_INVALID_ARGUMENT;
  const auto& c = gates::Config().domains[domain];
  *start = reinterpret_cast<const void*>(c.region_start);
  *size = static_cast<size_t>(c.region_end - c.region_start);
  return CORDON_OK;
}

cordon_domain_t cordon_current_domain(void) {
  if (!Initialized()) return CORDON_DOMAIN_UNTRUSTED;
  return CurrentDomain();
}

cordon_domain_t cordon_domain_of(const void* addr) {
  if (const int index = virt::IndexOf(addr); index >= 0) return virt::kFirstHandle + index;
  const int d = domains::DomainOf(addr);
  return virt::IsSlot(d) ? CORDON_DOMAIN_UNKNOWN : d;
}

int cordon_domain_set_root(void* root) {
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  const int d = CurrentDomain();
  if (d == CORDON_DOMAIN_UNTRUSTED || d == CORDON_DOMAIN_UNKNOWN) return CORDON_E_WRONG_DOMAIN;
  if (gates::Config().locked) return CORDON_E_LOCKED;
  if (root == nullptr || cordon_domain_of(root) != d) return CORDON_E_INVALID_ARGUMENT;
  if (virt::IsVirtual(d)) return virt::SetRootInside(IndexOfHandle(d), root);
  return domains::SetRootInside(d, root);
}

void* cordon_domain_root(void) {
  if (!Initialized()) return nullptr;
  const int d = CurrentDomain();
  if (d == CORDON_DOMAIN_UNTRUSTED || d == CORDON_DOMAIN_UNKNOWN) return nullptr;
  if (virt::IsVirtual(d)) return virt::RootInside(IndexOfHandle(d));
  return domains::RootInside(d);
}

int cordon_is_untrusted_range(const void* addr, size_t len) {
  return domains::IsUntrustedRange(addr, len) ? 1 : 0;
}

int cordon_register(cordon_domain_t domain, cordon_entry_fn fn, const char* name, cordon_entry* out) {
  if (const int s = CheckDomain(domain); s != CORDON_OK) return s;
  if (fn == nullptr || out == nullptr) return CORDON_E_INVALID_ARGUMENT;
  if (gates::Config().locked) return CORDON_E_LOCKED;
  const auto fn_word = reinterpret_cast<uint64_t>(fn);
  const uint64_t r = virt::IsVirtual(domain)
                         ? RunForVirtual(domain, virt::kOpRegister, fn_word, 0,
                                         [] { return domains::EncodeStatus(CORDON_E_WRONG_DOMAIN); })
                         : RunFor(domain, domains::kBuiltinRegister, fn_word, 0,
                                  [&] { return domains::RegisterInside(domain, fn_word); });
  if (domains::IsStatus(r)) return StatusOf(r);
  out->domain = domain;
  out->id = static_cast<uint32_t>(r);
  std::lock_guard<std::mutex> lock(Reg().mu);
  Reg().entry_names[{domain, out->id}] = name != nullptr ? name : "";
  return CORDON_OK;
}

namespace {

// cordon_call's other cases, out of its line (the gate call's path stays
// as short as it was: bench/api_icount.c): a virtual domain's entry, or a
// handle cordon_register() did not make.
[[gnu::cold, gnu::noinline]] uint64_t CallOther(cordon_entry entry, uint64_t a0, uint64_t a1, uint64_t a2,
                                                uint64_t a3, uint64_t a4) {
  if (virt::IsVirtual(entry.domain) && entry.id >= CORDON_BUILTIN_COUNT && entry.id < CORDON_TABLE_SIZE) {
    return virt::Call(IndexOfHandle(entry.domain), entry.id, a0, a1, a2, a3, a4);
  }
  cordon::internal::DieWithNumbers(
      "cordon_call with an entry handle that cordon_register() did not make: domain ",
      static_cast<unsigned long long>(entry.domain), ", id ", entry.id);
}

}  // namespace

uint64_t cordon_call(cordon_entry entry, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4) {
  // (A key slot's handle is no program's, but a call with one is a call
  // of its gate, which anyone may make: its entry takes nothing on trust.)
  if (__builtin_expect(
          !domains::Exists(entry.domain) || entry.id < CORDON_BUILTIN_COUNT || entry.id >= CORDON_TABLE_SIZE,
          0)) {
    return CallOther(entry, a0, a1, a2, a3, a4);
  }
  return gates::GateFor(entry.domain)(a0, a1, a2, a3, a4, entry.id);
}

uint64_t cordon_call_untrusted(cordon_untrusted_fn fn, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                               uint64_t a4) {
  if (fn == nullptr) cordon::internal::Die("cordon_call_untrusted() with a null function");
  const int d = domains::Current();
  if (d == CORDON_DOMAIN_UNTRUSTED) return fn(a0, a1, a2, a3, a4);
  if (d == CORDON_DOMAIN_UNKNOWN) {
    cordon::internal::Die("cordon_call_untrusted(): PKRU matches no domain; process stopped");
  }
  // The record comes from the stack pointer, which untrusted code cannot
  // forge while trusted code runs, rather than from TLS, which it can write.
  gates::ThreadRecord* rec = domains::RecordForStack(d, __builtin_frame_address(0));
  if (rec == nullptr) {
    cordon::internal::Die(
        "cordon_call_untrusted() called off the domain's trusted stacks; call it from code that an entry "
        "point runs; process stopped");
  }
  const gates::CalloutTarget target{reinterpret_cast<uint64_t>(fn), rec};
  return gates::CalloutFor(d)(a0, a1, a2, a3, a4, &target);
}

const char* cordon_entry_name(cordon_entry entry) {
  std::lock_guard<std::mutex> lock(Reg().mu);
  const auto it = Reg().entry_names.find({entry.domain, entry.id});
  return it == Reg().entry_names.end() ? nullptr : it->second.c_str();
}

void cordon_lockdown_options_init(cordon_lockdown_options* opts) {
  if (opts == nullptr) return;
  *opts = cordon_lockdown_options{};
  opts->struct_size = sizeof(cordon_lockdown_options);
  opts->violation = CORDON_VIOLATION_KILL;
}

int cordon_lockdown_ex(const cordon_lockdown_options* opts) {
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  if (opts != nullptr) {
    if (opts->struct_size < sizeof(size_t) || opts->struct_size > sizeof(o)) return CORDON_E_INVALID_ARGUMENT;
    memcpy(&o, opts, opts->struct_size);
  }
  if (o.violation != CORDON_VIOLATION_KILL && o.violation != CORDON_VIOLATION_ERRNO_FOR_TESTS) {
    return CORDON_E_INVALID_ARGUMENT;
  }
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  std::lock_guard<std::mutex> lock(Reg().mu);
  if (gates::Config().locked) return CORDON_E_LOCKED;
  if (domains::Current() != CORDON_DOMAIN_UNTRUSTED) return CORDON_E_WRONG_DOMAIN;
  cordon::lockdown::LockdownPlan plan;
  plan.filter.violation = o.violation == CORDON_VIOLATION_KILL ? cordon::lockdown::Violation::kKill
                                                               : cordon::lockdown::Violation::kErrno;
  plan.inspect_policy = Reg().options.inspect_policy;
  const gates::GateConfig& c = gates::Config();
  for (uint32_t d = 1; d <= c.domain_count; ++d) {
    plan.filter.protected_ranges.push_back({c.domains[d].region_start, c.domains[d].region_end});
  }
  // Virtual domains: their block is trusted memory for every memory call,
  // and the one place besides the code region where pkey_mprotect may act
  // (with the token): their regions, on the parking key or a slot's key.
  if (const domains::Span block = virt::BlockSpan(); block.start != 0) {
    plan.filter.protected_ranges.push_back({block.start, block.end});
    if (const domains::Span regions = virt::RegionsSpan(); regions.start != 0) {
      plan.filter.retag_rules.push_back({{regions.start, regions.end}, virt::RetagKeys()});
    }
  }
  // A physical domain's rights (cordon_domain_set_rights) move its heap's
  // pages on its own key.
  for (uint32_t d = 2; d <= c.domain_count; ++d) {
    if (virt::IsSlot(static_cast<int>(d))) continue;
    const domains::Span heap = domains::HeapSpan(static_cast<int>(d), Reg().options);
    plan.filter.retag_rules.push_back({{heap.start, heap.end}, {domains::KeyOf(static_cast<int>(d))}});
  }
  // Memory the program tagged with a domain's key itself (cordon_domain_pkey()
  // is public) is trusted memory too: the filter guards it like the regions,
  // memory calls and the kernel's deferred writes (set_tid_address, clone's
  // tid words) included. Read from smaps, as the kernel tagged it.
  std::vector<gates::GateConfig::TaggedRange> tagged;
  constexpr size_t kMaxTaggedPages = 64;
  {
    bool domain_key[16] = {};
    for (uint32_t d = 1; d <= c.domain_count; ++d) {
      const int k = domains::KeyOf(static_cast<int>(d));
      if (k > 0 && k < 16) domain_key[k] = true;
    }
    const auto maps = hw::MappingsIn(0, ~uintptr_t{0});
    if (!maps) return CORDON_E_SYSCALL;
    for (const hw::MappingInfo& m : *maps) {
      if (m.pkey <= 0 || m.pkey >= 16 || !domain_key[m.pkey]) continue;
      bool inside = false;
      for (uint32_t d = 1; d <= c.domain_count; ++d) {
        inside |= m.start < c.domains[d].region_end && m.end > c.domains[d].region_start;
      }
      inside |= virt::Meets(m.start, m.end);
      // The code region is the runtime's own, guarded by its rules.
      if (const cordon::code::Span code = cordon::code::RegionSpan(); code.start != 0) {
        inside |= m.start < code.end && m.end > code.start;
      }
      if (!inside) tagged.push_back({m.start, m.end});
    }
  }
  if (tagged.size() > gates::kMaxTaggedRanges) {
    return Report({"cordon_lockdown() refused: " + std::to_string(tagged.size()) +
                       " mappings outside Cordon's regions carry a domain's key; at most " +
                       std::to_string(gates::kMaxTaggedRanges) +
                       " can be guarded: allocate trusted memory with cordon_domain_alloc() instead",
                   CORDON_E_LOCKDOWN_FAILED});
  }
  // The filter's memory rules work in kGuard-aligned blocks, which such
  // pages share with ordinary memory (thread stacks, libraries): they get
  // exact per-page rules for the kernel's deferred writes instead, up to a
  // bound (docs/lockdown.md). IsUntrustedRange refuses them whatever their
  // size (the config page, below).
  size_t tagged_bytes = 0;
  for (const auto& t : tagged) tagged_bytes += t.end - t.start;
  if (tagged_bytes > kMaxTaggedPages * 4096) {
    return Report({"cordon_lockdown() refused: " + std::to_string(tagged_bytes / 1024) +
                       " KiB outside Cordon's regions carry a domain's key, more than the " +
                       std::to_string(kMaxTaggedPages * 4) +
                       " KiB the filter can guard page by page; allocate trusted memory with "
                       "cordon_domain_alloc() instead",
                   CORDON_E_LOCKDOWN_FAILED});
  }
  for (const auto& t : tagged) {
    for (uint64_t p = t.start; p < t.end; p += 4096) plan.filter.tagged_pages.push_back(p);
  }
  const auto config_page = reinterpret_cast<uint64_t>(&c);
#ifdef CORDON_SHARED
  // In libcordon.so the config page sits among the shared libraries, whose
  // kGuard block also holds thread stacks, TCBs and malloc's mappings: a
  // block rule there would refuse the program's own munmap and clone. The
  // page gets exact rules instead: no memory call may overlap it (the same
  // BPF prefix as code, lockdown.cc), and no deferred kernel write may aim
  // at it (the per-page rules of tagged memory).
  plan.filter.immutable_ranges.push_back({config_page, config_page + CFG_SIZE});
  for (uint64_t p = config_page; p < config_page + CFG_SIZE; p += 4096) plan.filter.tagged_pages.push_back(p);
#else
  // In the main executable its block holds the executable and its brk heap
  // only.
  plan.filter.protected_ranges.push_back({config_page, config_page + CFG_SIZE});
#endif
  if (const cordon::code::Span code = cordon::code::RegionSpan(); code.start != 0) {
    plan.filter.protected_ranges.push_back({code.start, code.end});
    plan.filter.code_pages = {c.code_start, c.code_end};
  }
  memcpy(plan.filter.signal_token, cordon::lockdown::kPlaceholderToken, sizeof plan.filter.signal_token);
  plan.filter.threads_by_runtime = c.signal_altstack != 0;
  plan.filter.unsendable_signals = cordon::signals::SignalsOnlyTheKernelMaySend();
  plan.filter.block_all = config_page + CFG_SIGNAL_BLOCK_ALL;
  plan.filter.audit_fd = cordon::audit::Descriptor();
  plan.load_filter = [](const sock_filter* program, size_t count) {
    return StatusOf(gates::GateFor(domains::kTrustedDomain)(reinterpret_cast<uint64_t>(program), count, 0, 0,
                                                            0, domains::kBuiltinLoadFilter));
  };
  plan.seal_entry_tables = [](std::string* why) {
    return domains::SealEntryTables(why) && virt::SealTables(why);
  };
  // Set-up closes first: the config page cannot change once the filter is in.
  const uint32_t errno_mode = plan.filter.violation == cordon::lockdown::Violation::kErrno ? 1 : 0;
  if (!gates::UpdateConfig([&](gates::GateConfig& g) {
        g.locked = 1;
        g.violation_errno = errno_mode;
        g.tagged_count = static_cast<uint32_t>(tagged.size());
        g.violation_handler =
            errno_mode != 0 ? 0 : reinterpret_cast<uint64_t>(cordon::lockdown::ViolationHandlerFn());
        for (size_t i = 0; i < tagged.size(); ++i) g.tagged[i] = tagged[i];
      })) {
    return CORDON_E_SYSCALL;
  }
  bool changed = false;
  const auto locked = cordon::lockdown::Lockdown(plan, &changed);
  if (!locked.ok() && !changed) {
    // Refused before anything was locked: set-up stays open.
    CORDON_CHECK(gates::UpdateConfig([](gates::GateConfig& g) {
                   g.locked = 0;
                   g.tagged_count = 0;
                   g.violation_handler = 0;
                 }),
                 "cannot reopen the gate config page");
  }
  const int status = locked.ok() ? CORDON_OK : Report(locked.failure());
  (void)cordon::audit::Call(cordon::audit::kOpLockdown, static_cast<uint64_t>(errno_mode),
                            static_cast<uint64_t>(static_cast<int64_t>(status)));
  return status;
}

int cordon_lockdown(void) {
  return cordon_lockdown_ex(nullptr);
}

int cordon_lockdown_close_file(const char* path) {
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  std::lock_guard<std::mutex> lock(Reg().mu);
  if (gates::Config().locked) return CORDON_E_LOCKED;
  const auto added = cordon::lockdown::AddClosedFile(path);
  return added.ok() ? CORDON_OK : Report(added.failure());
}

int cordon_sigaction(int sig, const struct sigaction* act, struct sigaction* oldact) {
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  return cordon::signals::SetAction(sig, act, oldact);
}

int cordon_is_locked_down(void) {
  return gates::Config().locked ? 1 : 0;
}

int cordon_domain_alloc(cordon_domain_t domain, size_t alignment, size_t size, void** out) {
  if (const int s = CheckDomain(domain); s != CORDON_OK) return s;
  if (out == nullptr) return CORDON_E_INVALID_ARGUMENT;
  if (virt::IsVirtual(domain)) {
    return PointerResult(
        RunForVirtual(domain, virt::kOpAlloc, size, alignment,
                      [&] { return virt::AllocInside(IndexOfHandle(domain), size, alignment); }),
        out);
  }
  const uint64_t r = RunFor(domain, domains::kBuiltinAlloc, size, alignment,
                            [&] { return domains::HeapAllocInside(domain, size, alignment); });
  return PointerResult(r, out);
}

int cordon_malloc(size_t size, void** out) {
  return cordon_domain_alloc(domains::kTrustedDomain, 16, size, out);
}

int cordon_aligned_alloc(size_t alignment, size_t size, void** out) {
  return cordon_domain_alloc(domains::kTrustedDomain, alignment, size, out);
}

int cordon_calloc(size_t count, size_t size, void** out) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return CORDON_E_NO_MEMORY;
  return cordon_domain_alloc(domains::kTrustedDomain, 16, total, out);  // blocks are always zero
}

int cordon_realloc(void* ptr, size_t size, void** out) {
  if (out == nullptr) return CORDON_E_INVALID_ARGUMENT;
  if (ptr == nullptr) return cordon_malloc(size, out);
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  const int d = cordon_domain_of(ptr);
  if (d == CORDON_DOMAIN_UNTRUSTED || d == CORDON_DOMAIN_UNKNOWN) return CORDON_E_INVALID_POINTER;
  const auto p = reinterpret_cast<uint64_t>(ptr);
  if (virt::IsVirtual(d)) {
    return PointerResult(RunForVirtual(d, virt::kOpRealloc, p, size,
                                       [&] { return virt::ReallocInside(IndexOfHandle(d), ptr, size); }),
                         out);
  }
  const uint64_t r =
      RunFor(d, domains::kBuiltinRealloc, p, size, [&] { return domains::HeapReallocInside(d, ptr, size); });
  return PointerResult(r, out);
}

int cordon_free(void* ptr) {
  if (ptr == nullptr) return CORDON_OK;
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  const int d = cordon_domain_of(ptr);
  if (d == CORDON_DOMAIN_UNTRUSTED || d == CORDON_DOMAIN_UNKNOWN) return CORDON_E_INVALID_POINTER;
  const auto p = reinterpret_cast<uint64_t>(ptr);
  if (virt::IsVirtual(d)) {
    return StatusOf(
        RunForVirtual(d, virt::kOpFree, p, 0, [&] { return virt::FreeInside(IndexOfHandle(d), ptr); }));
  }
  return StatusOf(RunFor(d, domains::kBuiltinFree, p, 0, [&] { return domains::HeapFreeInside(d, ptr); }));
}

int cordon_code_reserve(size_t size, void** out) {
  if (out == nullptr) return CORDON_E_INVALID_ARGUMENT;
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  return PointerResult(RunCode(cordon::code::kReserve, size), out);
}

int cordon_code_publish(void* block, const void* code, size_t len) {
  if (code == nullptr || len == 0) return CORDON_E_INVALID_ARGUMENT;
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  // A bad source pointer faults here, in the caller's own domain, rather
  // than inside the trusted domain's copy (where a fault stops the process).
  // Trusted memory is not touched: the runtime refuses it as a source.
  if (domains::IsUntrustedRange(code, len)) TouchSource(code, len);
  const int s = StatusOf(RunCode(cordon::code::kPublish, reinterpret_cast<uint64_t>(block),
                                 reinterpret_cast<uint64_t>(code), len));
  if (s == CORDON_E_UNSAFE_CODE) return ReportUnsafeCode(block, code, len);
  return s;
}

int cordon_code_load(const void* code, size_t len, void** out) {
  if (out == nullptr || code == nullptr || len == 0) return CORDON_E_INVALID_ARGUMENT;
  void* block = nullptr;
  if (const int s = cordon_code_reserve(len, &block); s != CORDON_OK) return s;
  if (const int s = cordon_code_publish(block, code, len); s != CORDON_OK) {
    (void)cordon_code_release(block);
    return s;
  }
  *out = block;
  return CORDON_OK;
}

int cordon_code_release(void* block) {
  if (!Initialized()) return CORDON_E_NOT_INITIALIZED;
  return StatusOf(RunCode(cordon::code::kRelease, reinterpret_cast<uint64_t>(block)));
}

size_t cordon_generated_entry_count(void) {
  return gates::GeneratedEntryCount();
}

int cordon_generated_entry_get(size_t index, cordon_generated_entry* out) {
  if (out == nullptr) return CORDON_E_INVALID_ARGUMENT;
  std::lock_guard<std::mutex> lock(Reg().mu);
  if (!Reg().initialized) return CORDON_E_NOT_INITIALIZED;
  if (index >= Reg().generated.size()) return CORDON_E_INVALID_ARGUMENT;
  *out = Reg().generated[index];
  return CORDON_OK;
}

size_t cordon_gate_site_count(void) {
  return gates::SiteCount();
}

int cordon_gate_site_get(size_t index, cordon_gate_site* out) {
  if (out == nullptr || index >= gates::SiteCount()) return CORDON_E_INVALID_ARGUMENT;
  const gates::Site s = gates::SiteAt(index);
  *out = cordon_gate_site{s.address, s.kind, s.domain};
  return CORDON_OK;
}

size_t cordon_inspection_count(void) {
  std::lock_guard<std::mutex> lock(Reg().mu);
  return Reg().inspection.size();
}

int cordon_inspection_get(size_t index, cordon_inspection_entry* out) {
  std::lock_guard<std::mutex> lock(Reg().mu);
  if (out == nullptr || index >= Reg().inspection.size()) return CORDON_E_INVALID_ARGUMENT;
  const auto& e = Reg().inspection[index];
  *out = cordon_inspection_entry{
      e.address,        static_cast<int>(e.kind), static_cast<int>(e.verdict), static_cast<int>(e.action),
      e.object.c_str(), e.symbol.c_str()};
  return CORDON_OK;
}

const char* cordon_strerror(int status) {
  switch (status) {
    case CORDON_OK:
      return "success";
    case CORDON_E_NO_PKU:
      return "this CPU or kernel has no usable memory protection keys (no pku/ospke, or pkey_alloc failed), "
             "so Cordon cannot isolate anything and refuses to run; run the program under tools/cordon-vm, "
             "which boots a virtual machine with PKU";
    case CORDON_E_ALREADY_INITIALIZED:
      return "cordon_init() was already called; call it once per process";
    case CORDON_E_NOT_INITIALIZED:
      return "Cordon is not initialised; call cordon_init() first and check its result";
    case CORDON_E_INVALID_ARGUMENT:
      return "invalid argument (a null pointer, a zero or out-of-range size, an alignment that is not a "
             "power of "
             "two, or an unknown domain)";
    case CORDON_E_NO_MEMORY:
      return "the domain's memory or the code region is exhausted; raise cordon_options.heap_size or "
             "code_size, or release code blocks";
    case CORDON_E_NO_KEYS:
      return "no protection key is left for a new domain (the hardware has 15)";
    case CORDON_E_LOCKED:
      return "not allowed after cordon_lockdown(); do it during set-up";
    case CORDON_E_TABLE_FULL:
      return "the domain's entry table is full (1016 user entry points)";
    case CORDON_E_DOUBLE_FREE:
      return "double free: the block is not allocated; nothing was changed";
    case CORDON_E_INVALID_POINTER:
      return "the pointer is not the start of a block of a Cordon heap, or of a reserved or published code "
             "block; nothing was changed";
    case CORDON_E_WRONG_DOMAIN:
      return "the calling thread is inside another domain; call from untrusted code or from inside the "
             "target domain";
    case CORDON_E_NO_AVX:
      return "the CPU lacks AVX, which Cordon's gates need to clear vector registers";
    case CORDON_E_SYSCALL:
      return "a system call failed unexpectedly while setting up protection keys, or reported a success that "
             "reading back showed was not (stderr says which; a seccomp filter installed before "
             "cordon_init() "
             "can do that)";
    case CORDON_E_TOO_MANY_DOMAINS:
      return "the runtime already has 15 domains, the hardware limit";
    case CORDON_E_UNSAFE_CODE:
      return "executable memory holds a WRPKRU or XRSTOR outside Cordon's gates that cannot be neutralized "
             "(hidden inside other instructions, or the policy forbids rewriting); the lines above on stderr "
             "say where, and cordon-scan FILE shows the context";
    case CORDON_E_LAZY_BINDING:
      return "the dynamic loader's lazy-binding trampolines contain XRSTOR, which Cordon must neutralize, "
             "and "
             "some loaded library still binds lazily; start the program with LD_BIND_NOW=1 in its "
             "environment "
             "(tools/cordon-pku-run and tools/cordon-vm do), or link every object with -z now";
    case CORDON_E_UNGATED_CODE:
      return "functions marked CORDON_TRUSTED were compiled without the Cordon pass plugin, so they have no "
             "gates and would run without the trusted domain's protection; build them with "
             "cordon_enable_gates(<target>) in CMake, or pass -fpass-plugin=<path>/CordonGates.so to clang "
             "14";
    case CORDON_E_THREADS:
      return "cordon_lockdown() must run while the process has a single thread (Landlock and rseq are per "
             "thread); call it at the end of set-up, before starting threads";
    case CORDON_E_NO_LANDLOCK:
      return "the kernel has no Landlock, which the lockdown needs to keep /proc/<pid>/mem closed; use a "
             "kernel with CONFIG_SECURITY_LANDLOCK=y and landlock in lsm= (Debian 6.1 and later)";
    case CORDON_E_BUSY:
      return "another thread is using it right now (publishing or releasing this code block, or inside this "
             "virtual domain, or the domain is pinned); nothing was changed: try again later";
    case CORDON_E_NO_CODE_REGION:
      return "this process has no code region (cordon_options.code_size was 0), so no code can be published; "
             "pass a code_size to cordon_init()";
    case CORDON_E_ROOT_SET:
      return "the domain's root was already set: cordon_domain_set_root() takes effect once per domain, so "
             "that code in the domain can rely on the root it found; nothing was changed";
    case CORDON_E_FILE_REACHABLE:
      return "the file can be reached by another path (a second hard link, or a second mount of the "
             "directory that holds it), and the lockdown can close one path only; the line on stderr says "
             "which";
    case CORDON_E_NO_FSGSBASE:
      return "trusted code runs on a thread-local storage of its own, which the gates switch to with "
             "WRFSBASE: that needs a CPU with FSGSBASE and Linux 5.9 or later, and glibc 2.34 or later "
             "(whose thread layout the runtime reads); the line on stderr says which is missing";
    case CORDON_E_LOCKDOWN_FAILED:
      return "the process cannot be locked down; the line on stderr says why (a descriptor that reaches "
             "around protection keys, a child process that holds capabilities, writable code, a second "
             "procfs mount, READ_IMPLIES_EXEC, before Linux 6.12 a handler for a signal other than "
             "SIGSEGV, SIGBUS, SIGILL and SIGFPE, or a kernel error part-way, after which the process "
             "should exit)";
  }
  return "unknown Cordon status code";
}

}  // extern "C"
