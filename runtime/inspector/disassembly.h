// Capstone context for a pattern hit: whether the linear sweep decodes it as
// a real instruction (at an instruction boundary) or finds it inside or
// across other instructions, and the instructions around it.
//
// Capstone 4.0.2 (Debian) cannot decode WRPKRU or RDPKRU: cs_disasm_iter
// fails there with CS_ERR_OK. The sweep recognises their bytes itself and
// steps over them as 3-byte instructions.
#ifndef CORDON_RUNTIME_INSPECTOR_DISASSEMBLY_H_
#define CORDON_RUNTIME_INSPECTOR_DISASSEMBLY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cordon::inspector {

struct Instruction {
  uint64_t address;
  uint16_t size;
  std::string text;  // "mnemonic operands"
};

struct HitContext {
  // The hit is the opcode of an instruction of the linear sweep: that
  // instruction starts at the hit, or only its prefixes come before it.
  bool at_boundary = false;
  std::vector<Instruction> overlapping;  // instructions that contain hit bytes
  std::vector<Instruction> before;       // up to 3 instructions before the hit
  std::vector<Instruction> after;        // up to 2 instructions after it
};

// An instruction whose bytes hold an unintended pattern only in a field the
// final link chose (a branch's rel32 or a RIP-relative displacement), and
// which can therefore move to a thunk with a new displacement, in the
// program's own instruction stream (docs/inspector.md, "Chance
// occurrences"). Nothing about it is trusted beyond the decoding.
struct Relocatable {
  enum class Form {
    kBranchRel32,   // call, jmp or jcc rel32: only the rel32 changes (to a thunk that jumps on)
    kCallIndirect,  // call [rip + disp32]: a call to a thunk that jumps through the slot
    kJumpIndirect,  // jmp [rip + disp32]
    kRipRelative,   // any other instruction with a RIP-relative operand: copied to the thunk
  };
  Form form;
  uint64_t address;            // where the instruction starts
  uint64_t hit;                // where the pattern's 0F byte is, inside it
  std::vector<uint8_t> bytes;  // all of it
  uint8_t field;               // offset of the 4-byte rel32 or disp32 in bytes
  uint64_t target;             // the branch target, or the RIP-relative operand's address
  std::string text;            // "mnemonic operands"
};

// Owns Capstone handles for x86-64 (RAII): one plain, for the sweeps, and
// one with instruction detail, for RelocatableAt (opened when first needed:
// most processes never need it).
class Disassembler {
 public:
  // nullopt if Capstone cannot be opened; *error says why.
  static std::optional<Disassembler> Open(std::string* error);
  Disassembler(Disassembler&&) noexcept;
  Disassembler& operator=(Disassembler&&) noexcept;
  ~Disassembler();

  // Sweeps code[sweep_from, hit + 32) (addresses are code's base + offset)
  // and describes the 3-byte hit at offset hit.
  HitContext Describe(const uint8_t* code, size_t len, uint64_t base, size_t sweep_from, size_t hit) const;

  // The instruction that holds the 3-byte hit at offset hit of code, if one
  // instruction holds all of it, the hit overlaps the instruction's rel32
  // or RIP-relative disp32, and the decoding agrees: the sweep from
  // symbol_start, when given, reaches it, and every sweep from sixteen
  // starts 256 bytes before the hit that decodes finds this same
  // instruction (without symbol_start, at least eight must). nullopt
  // otherwise. Agreeing sweeps do not prove that the bytes are code: data
  // can decode as consistently (the runtime also asks the unwind tables,
  // relocate.h).
  std::optional<Relocatable> RelocatableAt(const uint8_t* code, size_t len, uint64_t base, size_t hit,
                                           std::optional<size_t> symbol_start) const;

 private:
  explicit Disassembler(size_t handle);
  size_t handle_;          // csh
  mutable size_t detail_;  // csh with CS_OPT_DETAIL, opened at RelocatableAt's first call (0: not yet)
};

}  // namespace cordon::inspector

#endif
