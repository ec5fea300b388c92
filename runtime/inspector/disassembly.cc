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

Disassembler::Disassembler(size_t handle) : handle_(handle), detail_(0) {}
Disassembler::Disassembler(Disassembler&& o) noexcept
    : handle_(std::exchange(o.handle_, 0)), detail_(std::exchange(o.detail_, 0)) {}
Disassembler& Disassembler::operator=(Disassembler&& o) noexcept {
  std::swap(handle_, o.handle_);
  std::swap(detail_, o.detail_);
  return *this;
}
Disassembler::~Disassembler() {
  for (size_t h : {handle_, detail_}) {
    if (h != 0) {
      csh c = h;
      cs_close(&c);
    }
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

namespace {

// The start and size of the instruction that a linear sweep from `from`
// finds covering offset hit, or nullopt if the sweep fails before it.
std::optional<std::pair<size_t, size_t>> CoveringFrom(csh h, cs_insn* insn, const uint8_t* code, size_t len,
                                                      uint64_t base, size_t from, size_t hit) {
  size_t offset = from;
  while (offset <= hit) {
    const uint8_t* p = code + offset;
    size_t left = len - offset;
    uint64_t address = base + offset;
    size_t size;
    if (PkruInstruction(p, left)) {
      size = 3;
    } else if (cs_disasm_iter(h, &p, &left, &address, insn)) {
      size = insn->size;
    } else {
      return std::nullopt;  // undecodable bytes: no certain stream
    }
    if (offset + size > hit) return std::make_pair(offset, size);
    offset += size;
  }
  return std::nullopt;
}

int32_t Read32(const uint8_t* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                              static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

std::optional<Relocatable> Disassembler::RelocatableAt(const uint8_t* code, size_t len, uint64_t base,
                                                       size_t hit, std::optional<size_t> symbol_start) const {
  // Why several sweeps: x86 decoding resynchronises within a few
  // instructions, so sweeps from sixteen consecutive starts 256 bytes back
  // that all agree on the instruction at the hit have found the program's
  // own stream, not one shifted into the middle of its instructions.
  constexpr size_t kLeadIn = 256, kStarts = 16;
  if (hit + 3 > len) return std::nullopt;
  if (detail_ == 0) {
    csh opened;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &opened) != CS_ERR_OK) return std::nullopt;
    if (cs_option(opened, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
      cs_close(&opened);
      return std::nullopt;
    }
    detail_ = static_cast<size_t>(opened);
  }
  const csh h = detail_;
  std::unique_ptr<cs_insn, InsnDeleter> insn(cs_malloc(h));
  if (!insn) return std::nullopt;
  // A start inside an instruction may meet bytes that do not decode: it is
  // not a stream, and is left out; any two streams that reach the hit must
  // agree, and without a symbol's start at least half of the starts must
  // reach it.
  std::optional<std::pair<size_t, size_t>> found;
  const bool from_symbol = symbol_start && *symbol_start <= hit && hit - *symbol_start <= 1024 * 1024;
  if (from_symbol) {
    found = CoveringFrom(h, insn.get(), code, len, base, *symbol_start, hit);
    if (!found) return std::nullopt;  // a symbol's start that does not decode to the hit
  }
  size_t agreeing = 0;
  if (hit >= kLeadIn + kStarts) {
    for (size_t k = 0; k < kStarts; ++k) {
      const auto covering = CoveringFrom(h, insn.get(), code, len, base, hit - kLeadIn - k, hit);
      if (!covering) continue;
      if (found && *covering != *found) return std::nullopt;
      found = covering;
      ++agreeing;
    }
  }
  if (!found || (!from_symbol && agreeing < kStarts / 2)) return std::nullopt;
  const size_t start = found->first, size = found->second;
  if (hit < start || hit + 3 > start + size) return std::nullopt;  // across instructions
  // Decode it once more, for its detail.
  const uint8_t* p = code + start;
  size_t left = len - start;
  uint64_t address = base + start;
  if (!cs_disasm_iter(h, &p, &left, &address, insn.get()) || insn->size != size) return std::nullopt;
  Relocatable r;
  r.address = base + start;
  r.hit = base + hit;
  r.bytes.assign(code + start, code + start + size);
  r.text = std::string(insn->mnemonic) + " " + insn->op_str;
  const cs_x86& x = insn->detail->x86;
  // The opcode after any legacy or REX prefixes.
  size_t op = 0;
  auto segment = [](uint8_t b) {
    return b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65;
  };
  bool segment_prefix = false;
  while (op < size && (r.bytes[op] == 0x66 || r.bytes[op] == 0x67 || r.bytes[op] == 0xf2 ||
                       r.bytes[op] == 0xf3 || segment(r.bytes[op]) || (r.bytes[op] & 0xf0) == 0x40)) {
    // 3e is also notrack, and 2e a branch hint: harmless on the indirect forms.
    segment_prefix |= segment(r.bytes[op]) && r.bytes[op] != 0x3e && r.bytes[op] != 0x2e;
    ++op;
  }
  // An address-size prefix makes a RIP-relative operand EIP-relative, which
  // a move changes (and a branch's target wraps at 4 GiB): not relocated.
  if (std::find(r.bytes.begin(), r.bytes.begin() + op, 0x67) != r.bytes.begin() + op) return std::nullopt;
  const bool rel32 = op + 5 == size && (r.bytes[op] == 0xe8 || r.bytes[op] == 0xe9);
  const bool jcc32 = op + 6 == size && r.bytes[op] == 0x0f && (r.bytes[op + 1] & 0xf0) == 0x80;
  bool rip = false;
  for (uint8_t i = 0; i < x.op_count; ++i)
    rip |= x.operands[i].type == X86_OP_MEM && x.operands[i].mem.base == X86_REG_RIP;
  if (rel32 || jcc32) {
    if (op != 0) return std::nullopt;  // a prefixed branch (bnd, notrack): not worth the cases
    r.form = Relocatable::Form::kBranchRel32;
    r.field = static_cast<uint8_t>(size - 4);
  } else if (rip && x.encoding.disp_offset != 0 && x.encoding.disp_size == 4) {
    r.field = x.encoding.disp_offset;
    // The thunk's `jmp [rip + d']` drops the prefixes: none may change
    // where the slot is (fs:, gs:, ...).
    const bool indirect = op + 6 == size && r.bytes[op] == 0xff && x.encoding.disp_offset == op + 2;
    if (indirect && segment_prefix) return std::nullopt;
    if (indirect && r.bytes[op + 1] == 0x15) {
      r.form = Relocatable::Form::kCallIndirect;
    } else if (indirect && r.bytes[op + 1] == 0x25) {
      r.form = Relocatable::Form::kJumpIndirect;
    } else if (x.encoding.modrm_offset != 0 && (r.bytes[x.encoding.modrm_offset] & 0xc7) == 0x05 &&
               r.bytes[op] != 0xff) {
      // Not a control transfer (FF /2-/5 are calls and jumps through memory).
      r.form = Relocatable::Form::kRipRelative;
    } else {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  if (static_cast<size_t>(r.field) + 4 > size) return std::nullopt;
  const size_t in = hit - start;
  if (in + 3 <= r.field || in >= static_cast<size_t>(r.field) + 4) return std::nullopt;  // not in the field
  r.target = r.address + size + static_cast<int64_t>(Read32(r.bytes.data() + r.field));
  return r;
}

}  // namespace cordon::inspector
