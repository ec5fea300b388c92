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
// cleared before the switch back. It differs in three ways
// that a gate specialised for one function allows:
//  - it calls the body directly, with no entry-table dispatch, so all six
//    integer argument registers and xmm0-7 carry arguments;
//  - the exit keeps exactly the result registers of the function's type;
//  - a call made while the thread already runs in the domain (trusted code
//    calling through a pointer or from a helper the pass cannot see) is
//    recognised with RDPKRU and becomes a plain jump to the body: no second
//    gate, no WRPKRU.
// The first call of a thread goes through cordon_gate_attach_1 (gate.S),
// which attaches the thread through the runtime gate; it also stops the
// process with a message if cordon_init() has not run.
#include "compiler-pass/GateAsm.h"

#include <sstream>

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

std::string DomainConfig(int domain, int field) {
  return Config(CFG_DOMAINS + domain * CFG_DOMAIN_STRIDE + field);
}

// Where the exit path keeps a result while it clears registers and loads
// the untrusted PKRU, and how it puts the result back.
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

std::string EmitGate(const GateSpec& s) {
  std::ostringstream o;
  const std::string g = Quote(s.gate);
  const std::string l = ".Lcordon_" + std::to_string(s.module_tag) + "_" + std::to_string(s.index) + "_";
  const std::string tls = "%fs:cordon_tls_records@TPOFF+" + std::to_string(4 * s.domain);
  const std::string pkru = DomainConfig(s.domain, DCFG_PKRU);
  const std::string untrusted = Config(CFG_UNTRUSTED_PKRU);
  const ResultRegisters result = ResultFor(s.ret);

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
  // The record index, read while still untrusted (see the top), with the
  // whole row for the record's TCB, from the same read (gate.S,
  // TLS_ROW_FROM_CALLER): the index claimed by is the one the TCB's row holds.
  const int lane = s.domain / 4, word = s.domain % 4;  // 128-bit lane of the row, dword in it
  const std::string row = lane < 2 ? "12" : "13";
  o << "\tvmovdqu %fs:cordon_tls_records@TPOFF, %ymm12\n"
    << "\tvmovdqu %fs:cordon_tls_records@TPOFF+32, %ymm13\n";
  if (lane % 2 == 0) {
    o << "\tvpshufd $" << word << ", %xmm" << row << ", %xmm15\n";
  } else {
    o << "\tvextractf128 $1, %ymm" << row << ", %xmm15\n"
      << "\tvpshufd $" << word << ", %xmm15, %xmm15\n";
  }
  // Enter: the checked WRPKRU (RDPKRU left edx = 0).
  o << l << "entry_load:\n"
    << "\tmovl " << pkru << ", %eax\n"
    << l << "entry_site:\n"
    << "\twrpkru\n"
    << "\tcmpl " << pkru << ", %eax\n"
    << "\tjne cordon_gate_fatal_pkru\n";
  // Claim this thread's record, which is also its trusted stack top: a free
  // record holds its own address, and CMPXCHG stores the caller's stack
  // pointer only into a free one. Then switch to it.
  const std::string record_at_index = "\tcmpl " + DomainConfig(s.domain, DCFG_NRECORDS) + ", %eax\n" +
                                      "\tjae cordon_gate_fatal_record\n" + "\timulq " +
                                      DomainConfig(s.domain, DCFG_STRIDE) + ", %rax\n" + "\taddq " +
                                      DomainConfig(s.domain, DCFG_RECORDS) + ", %rax\n";
  o << "\tvmovd %xmm15, %eax\n"
    << record_at_index << "\tcmpq %rax, %rsp\n"
    << "\tje cordon_gate_fatal_nested\n"
    << "\tlock cmpxchgq %rsp, " << REC_SAVED_RSP << "(%rax)\n"
    << "\tjne " << l << "held\n"
    << l << "entry_switch:\n"
    << "\tmovq %rax, %rsp\n";
  // Trusted code runs on the record's own TCB (gate.S, the invariants): the
  // caller's fs base into the record, the record's TCB into fs.
  o << "\trdfsbase %rax\n"
    << "\tmovq %rax, " << REC_CALLER_FS << "(%rsp)\n"
    << "\tmovq " << REC_TCB << "(%rsp), %rax\n"
    << "\twrfsbase %rax\n"
    << "\tvmovdqu %ymm12, %fs:cordon_tls_records@TPOFF\n"
    << "\tvmovdqu %ymm13, %fs:cordon_tls_records@TPOFF+32\n"
    << "\tmovq %r10, %rdx\n"
    << "\tmovq %r11, %rcx\n"
    << "\tcall " << Quote(s.body) << "\n";
  // Leave: keep the result and clear every other caller-saved register
  // while still on the trusted stack, then release the record and return
  // to the caller's stack in one XCHG, then load the untrusted PKRU.
  o << result.keep;
  o << "\tmovq " << REC_CALLER_FS << "(%rsp), %rdi\n"
    << "\twrfsbase %rdi\n"
    << "\txorl %edi, %edi\n"
    << "\txorl %esi, %esi\n"
    << "\txorl %r8d, %r8d\n";
  if (!result.in_r9) o << "\txorl %r9d, %r9d\n";
  o << "\txorl %r10d, %r10d\n";
  if (!result.in_r11) o << "\txorl %r11d, %r11d\n";
  o << "\tvzeroall\n"
    << "\ttestb $1, " << Config(CFG_WIDE_SCRUB) << "\n"
    << "\tje " << l << "narrow\n";
  for (int i = 16; i < 32; ++i) o << "\tvpxord %xmm" << i << ", %xmm" << i << ", %xmm" << i << "\n";
  for (int i = 0; i < 8; ++i) o << "\tkxorw %k" << i << ", %k" << i << ", %k" << i << "\n";
  o << l << "narrow:\n"
    << "\txorl %ecx, %ecx\n"
    << "\txorl %edx, %edx\n"
    << "\txchgq %rsp, (%rsp)\n"
    << "\tmovl " << untrusted << ", %eax\n"
    << l << "exit_site:\n"
    << "\twrpkru\n"
    << "\tcmpl " << untrusted << ", %eax\n"
    << "\tjne cordon_gate_fatal_pkru\n";
  o << result.restore;
  o << "\tret\n";
  // Already inside the domain: a plain tail call, no second gate.
  o << l << "inside:\n"
    << "\tmovq %r10, %rdx\n"
    << "\tmovq %r11, %rcx\n"
    << "\tjmp " << Quote(s.body) << "\n";
  // The record is in use (rax: its saved stack pointer). Only this thread's
  // own claim, cut off by a signal before the switch, continues: the same
  // stack pointer, the kernel's thread id is the owner, and no callback or
  // signal handler has left frames on the record's stack (gate.S, .Lheld).
  o << l << "held:\n"
    << "\tcmpq %rsp, %rax\n"
    << "\tjne cordon_gate_fatal_nested\n"
    << l << "held_save:\n"
    << "\tvmovq %r11, %xmm14\n"
    << l << "held_saved:\n"
    << "\tvmovd %xmm15, %eax\n"
    << record_at_index << "\tmovq %rax, %rdx\n"
    << "\tmovl $186, %eax\n"
    << "\tsyscall\n"
    << "\tcmpl " << REC_OWNER << "(%rdx), %eax\n"
    << "\tjne cordon_gate_fatal_nested\n"
    << "\tmovq %rdx, %rax\n"
    << "\tsubq " << REC_CALLOUT_RSP << "(%rdx), %rax\n"
    << "\tcmpq " << DomainConfig(s.domain, DCFG_STRIDE) << ", %rax\n"
    << "\tjb cordon_gate_fatal_nested\n"
    << "\tcmpq $0, " << REC_SIGNAL_FRAME << "(%rdx)\n"
    << "\tjne cordon_gate_fatal_nested\n"
    << "\tvmovq %xmm14, %r11\n"
    << "\tmovq %rdx, %rax\n"
    << l << "held_end:\n"
    << "\tjmp " << l << "entry_switch\n"
    << l << "held_restore:\n"
    << "\tvmovq %xmm14, %r11\n"
    << "\tjmp " << l << "entry_load\n";
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
