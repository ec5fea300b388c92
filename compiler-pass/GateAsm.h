// Gate assembly for pass-generated entry points: the text of one gated entry
// (and its gate-site and entry records) that the pass appends to a module's
// inline assembly. The layout it relies on is runtime/gates/gate_abi.h.
#ifndef CORDON_COMPILER_PASS_GATEASM_H_
#define CORDON_COMPILER_PASS_GATEASM_H_

#include <cstdint>
#include <string>

namespace cordon::pass {

// How the entry's result comes back: which registers the exit path keeps
// while it clears the rest.
enum class ReturnKind {
  kVoid,     // nothing
  kInt,      // rax
  kIntPair,  // rax:rdx (i128, two-integer structs)
  kFloat,    // the low 64 bits of xmm0 (float, double, two floats)
};

enum class SymbolBinding { kGlobal, kLocal };
enum class SymbolVisibility { kDefault, kHidden, kProtected };

struct GateSpec {
  std::string gate;   // symbol of the gated entry (the function's own name)
  std::string body;   // symbol of the body, which the gate calls directly
  std::string label;  // what the runtime calls the entry in messages
  ReturnKind ret = ReturnKind::kInt;
  SymbolBinding binding = SymbolBinding::kGlobal;
  SymbolVisibility visibility = SymbolVisibility::kDefault;
  int domain = 1;           // the trusted domain that cordon_init() creates
  unsigned index = 0;       // position in the module, for unique local labels
  uint32_t module_tag = 0;  // keeps local labels unique if modules are merged
};

// The definitions of the gate's instruction sequences
// (runtime/gates/gate_sequences.inc), which every EmitGate text invokes:
// once per module, before its first gate.
std::string EmitSequences();

// The text of the gated entry (AT&T syntax, the shared sequences invoked in
// Intel syntax), its two gate-site records (section cordon_gate_sites) and
// its entry record (section cordon_entries).
std::string EmitGate(const GateSpec& spec);

// Flag in a gate-site record's info word for sites the pass generated.
constexpr uint32_t kSiteGenerated = 1u << 24;

}  // namespace cordon::pass

#endif
