// Gate assembly for pass-generated entry points.
//
// A generated gate follows the runtime gate's invariants (docs/gates.md):
// every WRPKRU loads its value from the read-only config page and compares
// what was loaded with it afterwards; the TLS record index is read before
// the entry WRPKRU (into xmm15, which carries no argument) and is untrusted
// input after it, so nothing is read through fs or any other pointer
// untrusted code chose while the domain's rights are loaded; the record is
// claimed by a compare-and-exchange that writes only to a free record, and
// released together with the stack switch back by one XCHG; registers are
// cleared before the switch back. It differs in four ways
// that a gate specialised for one function allows:
//  - it calls the body directly, with no entry-table dispatch, so all six
//    integer argument registers and xmm0-7 carry arguments;
//  - the exit keeps exactly the result registers of the function's type;
//  - having no table id, it counts its calls in the domain's bucket for
//    generated gates (REC_COUNT_GENERATED, docs/gates.md "Call counts");
//  - a call made while the thread already runs in the domain (trusted code
//    calling through a pointer or from a helper the pass cannot see) is
//    recognised with RDPKRU and becomes a plain jump to the body: no second
//    gate, no WRPKRU.
// The first call of a thread goes through cordon_gate_attach_1 (gate.S),
// which attaches the thread through the runtime gate; it also stops the
// process with a message if cordon_init() has not run.
//
// The instruction sequences both kinds of gate share (the checked WRPKRU,
// the TLS row, the record, the claim, the TCB switch, the held-claim check,
// the exit scrub and release) are not written here: they are the macros of
// runtime/gates/gate_sequences.inc, which gate.S includes and this file
// emits once per module (EmitSequences) and invokes in Intel syntax. What
// is written here in AT&T syntax is only what the generated gate alone
// has; every symbol derived from the program's names (which could read as
// a register or an operator in Intel syntax) stays in that part.
#include "compiler-pass/GateAsm.h"

#include <sstream>

#include "compiler-pass/GateSequences.h"
#include "runtime/gates/gate_abi.h"

namespace cordon::pass {
namespace {

std::string Quote(const std::string& symbol) {
  std::string out = "\"";
  for (char c : symbol) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// cordon_gate_config + offset, rip-relative. Why not through the GOT: a GOT
// slot is writable memory until RELRO, and a forged config address would let
// a gate load and "check" any PKRU. libcordon is linked statically into the
// same executable, so a direct reference always resolves.
std::string Config(int offset) {
  return "cordon_gate_config+" + std::to_string(offset) + "(%rip)";
}

int DomainField(int domain, int field) {
  return CFG_DOMAINS + domain * CFG_DOMAIN_STRIDE + field;
}

std::string DomainConfig(int domain, int field) {
  return Config(DomainField(domain, field));
}

// The same address as a macro argument (Intel syntax, no spaces: GAS
// separates macro arguments by blanks too).
std::string ConfigArgument(int offset) {
  return "cordon_gate_config+" + std::to_string(offset);
}

// Where the exit path keeps a result while it clears registers and loads
// the untrusted PKRU, and how it puts the result back (SCRUB clears r9
// unless it holds the result, and r11 only if no result is there).
struct ResultRegisters {
  const char* keep;
  const char* restore;
  bool in_r11;
  bool in_r9;
};

ResultRegisters ResultFor(ReturnKind kind) {
  switch (kind) {
    case ReturnKind::kVoid:
      return {"", "", false, false};
    case ReturnKind::kInt:
      return {"\tmovq %rax, %r11\n", "\tmovq %r11, %rax\n", true, false};
    case ReturnKind::kIntPair:
      return {"\tmovq %rax, %r11\n\tmovq %rdx, %r9\n", "\tmovq %r11, %rax\n\tmovq %r9, %rdx\n", true, true};
    case ReturnKind::kFloat:
      return {"\tvmovq %xmm0, %r11\n", "\tvmovq %r11, %xmm0\n", true, false};
  }
  return {"", "", false, false};
}

}  // namespace

std::string EmitSequences() {
  // Guarded so that modules whose assembly is merged (LTO, llvm-link) still
  // define each macro once.
  // The reference to cordon_trusted_code_needs_the_static_libcordon, which
  // only the static library defines (gate.S): linked against libcordon.so,
  // whose gates a generated gate cannot reach, the link fails naming what
  // to do.
  return std::string(".ifndef .Lcordon_gate_sequences\n.set .Lcordon_gate_sequences, 1\n") +
         ".intel_syntax noprefix\n" + kGateSequences + "\n.att_syntax prefix\n" +
         "\t.section .rodata.cordon_static_runtime,\"a\",@progbits\n\t.p2align 2\n"
         "\t.long cordon_trusted_code_needs_the_static_libcordon-.\n\t.text\n.endif\n";
}

std::string EmitGate(const GateSpec& s) {
  std::ostringstream o;
  const std::string g = Quote(s.gate);
  const std::string l = ".Lcordon_" + std::to_string(s.module_tag) + "_" + std::to_string(s.index) + "_";
  const std::string d = std::to_string(s.domain);
  const std::string tls = "%fs:cordon_tls_records@TPOFF+" + std::to_string(4 * s.domain);
  const std::string pkru = DomainConfig(s.domain, DCFG_PKRU);
  const ResultRegisters result = ResultFor(s.ret);
  constexpr const char* kIntel = ".intel_syntax noprefix\n";
  constexpr const char* kAtt = ".att_syntax prefix\n";

  o << "\t.text\n\t.p2align 5\n";
  if (s.binding == SymbolBinding::kGlobal) o << "\t.globl " << g << "\n";
  if (s.visibility == SymbolVisibility::kHidden) o << "\t.hidden " << g << "\n";
  if (s.visibility == SymbolVisibility::kProtected) o << "\t.protected " << g << "\n";
  o << "\t.type " << g << ",@function\n" << g << ":\n";
  // Untrusted so far. rdx and rcx move aside: RDPKRU and WRPKRU need ecx = 0
  // and WRPKRU edx = 0.
  o << "\tcld\n"
    << "\tmovq %rdx, %r10\n"
    << "\tmovq %rcx, %r11\n"
    << "\tcmpl $-1, " << tls << "\n"
    << "\tje " << l << "attach\n"
    << l << "attached:\n"
    << "\txorl %ecx, %ecx\n"
    << "\trdpkru\n"
    << "\tcmpl " << pkru << ", %eax\n"
    << "\tje " << l << "inside\n";
  // The record index, read while still untrusted (gate.S, the top), with
  // the whole row for the record's TCB; the checked WRPKRU in (RDPKRU left
  // edx = 0); claim the record (untrusted input: bounds-checked; a record
  // in use goes to the held-claim check) and switch to its stack and TCB.
  o << kIntel << "\tTLS_ROW_FROM_CALLER " << d << "\n"
    << l << "entry_load:\n"
    << "\tCHECKED_WRPKRU " << ConfigArgument(DomainField(s.domain, DCFG_PKRU)) << ", " << l << "entry_site\n"
    << "\tvmovd eax, xmm15\n"
    << "\tRECORD_AT_INDEX " << d << ", cordon_gate_fatal_record\n"
    << "\tCLAIM_RECORD " << l << "held\n"
    << l << "entry_switch:\n"
    << "\tSWITCH_TO_RECORD\n"
    // Count the call in the record, in the generated gates' bucket (no
    // table id here): one plain ADD after the switch, as in gate.S.
    << "\tadd qword ptr [rsp + " << (REC_COUNTS + 8 * REC_COUNT_GENERATED) << "], 1\n"
    << kAtt;
  o << "\tmovq %r10, %rdx\n"
    << "\tmovq %r11, %rcx\n"
    << "\tcall " << Quote(s.body) << "\n";
  // Leave: keep the result and clear every other caller-saved register
  // while still on the trusted stack (zmm16-31 and k0-7 as the config page
  // says), then release the record and return to the caller's stack in one
  // XCHG, then load the untrusted PKRU.
  o << result.keep << kIntel << "\tRESTORE_CALLER_FS\n"
    << "\tSCRUB 2, " << (result.in_r9 ? 0 : 1) << ", " << (result.in_r11 ? 0 : 1) << "\n"
    << "\tRELEASE_RECORD " << l << "exit_site\n"
    << kAtt << result.restore << "\tret\n";
  // Already inside the domain: a plain tail call, no second gate.
  o << l << "inside:\n"
    << "\tmovq %r10, %rdx\n"
    << "\tmovq %r11, %rcx\n"
    << "\tjmp " << Quote(s.body) << "\n";
  // The record is in use: only this thread's own claim, cut off by a signal
  // before the switch, continues.
  o << kIntel << "\tHELD_CLAIM " << d << ", " << l << "held, " << l << "entry_switch, " << l << "entry_load\n"
    << kAtt;
  // First call on this thread: attach it (all argument registers survive).
  o << l << "attach:\n"
    << "\tcall cordon_gate_attach_" << s.domain << "\n"
    << "\tjmp " << l << "attached\n"
    << "\t.size " << g << ", .-" << g << "\n";

  const unsigned info = static_cast<unsigned>(s.domain) << 8 | kSiteGenerated;
  o << "\t.section cordon_gate_sites,\"a\",@progbits\n\t.p2align 3\n"
    << "\t.long " << l << "entry_site-.\n\t.long " << (SITE_ENTRY | info) << "\n"
    << "\t.long " << l << "exit_site-.\n\t.long " << (SITE_EXIT | info) << "\n";
  // A signal between the entry WRPKRU and the stack switch, or in the
  // held-claim check, resumes at the load with untrusted PKRU (gate_abi.h,
  // docs/signals.md); once r11 is saved, through held_restore.
  o << "\t.section cordon_signal_rewinds,\"a\",@progbits\n\t.p2align 2\n"
    << "\t.long " << l << "entry_site+3-.\n"
    << "\t.long " << l << "entry_switch-.\n"
    << "\t.long " << l << "entry_load-.\n"
    << "\t.long " << l << "held-.\n"
    << "\t.long " << l << "held_save-.\n"
    << "\t.long " << l << "entry_load-.\n"
    << "\t.long " << l << "held_saved-.\n"
    << "\t.long " << l << "held_end-.\n"
    << "\t.long " << l << "held_restore-.\n";
  o << "\t.section cordon_entries,\"a\",@progbits\n\t.p2align 2\n"
    << "\t.long " << g << "-.\n"
    << "\t.long " << Quote(s.body) << "-.\n"
    << "\t.long " << l << "name-.\n"
    << "\t.long " << s.domain << "\n";
  o << "\t.section .rodata.cordon_entry_names,\"a\",@progbits\n"
    << l << "name:\n\t.asciz " << Quote(s.label) << "\n"
    << "\t.text\n";
  return o.str();
}

}  // namespace cordon::pass
