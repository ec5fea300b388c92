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

// Owns a Capstone handle for x86-64 (RAII).
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

 private:
  explicit Disassembler(size_t handle);
  size_t handle_;  // csh
};

}  // namespace cordon::inspector

#endif
