// Linear-sweep context with Capstone (see disassembly.h).
#include "runtime/inspector/disassembly.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <deque>
#include <utility>

namespace cordon::inspector {
namespace {

// The PKRU instructions Capstone 4 does not know, as (bytes, mnemonic).
std::optional<const char*> PkruInstruction(const uint8_t* p, size_t left) {
  if (left < 3 || p[0] != 0x0f || p[1] != 0x01) return std::nullopt;
  if (p[2] == 0xef) return "wrpkru";
  if (p[2] == 0xee) return "rdpkru";
  return std::nullopt;
}

// Frees a cs_insn on scope exit.
struct InsnDeleter {
  void operator()(cs_insn* insn) const { cs_free(insn, 1); }
};

}  // namespace

std::optional<Disassembler> Disassembler::Open(std::string* error) {
  csh handle;
  if (const cs_err e = cs_open(CS_ARCH_X86, CS_MODE_64, &handle); e != CS_ERR_OK) {
    if (error != nullptr) *error = std::string("cannot open Capstone: ") + cs_strerror(e);
    return std::nullopt;
  }
  return Disassembler(static_cast<size_t>(handle));
}

Disassembler::Disassembler(size_t handle) : handle_(handle) {}
Disassembler::Disassembler(Disassembler&& o) noexcept : handle_(std::exchange(o.handle_, 0)) {}
Disassembler& Disassembler::operator=(Disassembler&& o) noexcept {
  std::swap(handle_, o.handle_);
  return *this;
}
Disassembler::~Disassembler() {
  if (handle_ != 0) {
    csh h = handle_;
    cs_close(&h);
  }
}

HitContext Disassembler::Describe(const uint8_t* code, size_t len, uint64_t base, size_t sweep_from,
                                  size_t hit) const {
  HitContext ctx;
  std::unique_ptr<cs_insn, InsnDeleter> insn(cs_malloc(handle_));
  if (!insn) return ctx;
  const size_t stop = std::min(len, hit + 32);
  std::deque<Instruction> recent;
  size_t offset = std::min(sweep_from, hit);
  while (offset < stop) {
    Instruction current;
    const uint8_t* p = code + offset;
    size_t left = len - offset;
    uint64_t address = base + offset;
    if (const auto pkru = PkruInstruction(p, left)) {
      current = Instruction{base + offset, 3, *pkru};
    } else if (cs_disasm_iter(handle_, &p, &left, &address, insn.get())) {
      current = Instruction{insn->address, insn->size, std::string(insn->mnemonic) + " " + insn->op_str};
      if (!current.text.empty() && current.text.back() == ' ') current.text.pop_back();
    } else {
      current = Instruction{base + offset, 1, "(bad)"};
    }
    const size_t start = static_cast<size_t>(current.address - base);
    const size_t end = start + current.size;
    if (end > hit && start < hit + 3) {
      ctx.overlapping.push_back(current);
    } else if (end <= hit) {
      recent.push_back(current);
      if (recent.size() > 3) recent.pop_front();
    } else if (ctx.after.size() < 2) {
      ctx.after.push_back(current);
    }
    offset = end;
  }
  ctx.before.assign(recent.begin(), recent.end());
  // A real instruction: one decoded instruction covers the hit, and it is
  // the WRPKRU or XRSTOR itself (a prefixed XRSTOR64 starts before its 0F).
  if (ctx.overlapping.size() == 1) {
    const Instruction& only = ctx.overlapping[0];
    const std::string& t = only.text;
    const bool is_pattern = t == "wrpkru" || t.rfind("xrstor ", 0) == 0 || t.rfind("xrstor64 ", 0) == 0;
    const uint64_t start = only.address - base;
    ctx.at_boundary = is_pattern && start <= hit && hit + 3 <= start + only.size;
  }
  return ctx;
}

}  // namespace cordon::inspector
