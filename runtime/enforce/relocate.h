// Relocation of chance occurrences: an instruction whose rel32 or
// RIP-relative disp32 happens to hold WRPKRU or XRSTOR bytes (the link
// chose them, docs/inspector.md, "Chance occurrences") gets a new
// displacement, to a thunk on a page of its own near it, so that the bytes
// are gone and the program runs as before:
//  - call/jmp/jcc rel32: only the rel32 changes, to a thunk `jmp target`;
//  - call [rip+d] / jmp [rip+d]: a direct call/jmp to a thunk
//    `jmp [rip+d']` through the same slot (a call's return address moves
//    by the instruction's extra byte, which becomes a NOP);
//  - any other RIP-relative instruction: `jmp thunk` at the site, and the
//    thunk holds the instruction with a new disp32, then jumps back.
// Planning changes nothing and checks that no new bytes (site or thunk)
// form a pattern; applying writes the thunks, makes their pages read and
// execute only, then swaps a private copy of each site's page(s) in with
// mremap, as neutralization does. The inspection after it is the proof.
#ifndef CORDON_RUNTIME_ENFORCE_RELOCATE_H_
#define CORDON_RUNTIME_ENFORCE_RELOCATE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/base/expected.h"
#include "runtime/inspector/disassembly.h"

namespace cordon::enforce {

struct RelocationPlan {
  inspector::Relocatable instruction;
  uint64_t thunk_page = 0;    // where the thunk's page goes (not mapped yet)
  uint64_t thunk = 0;         // the thunk's address in it
  std::vector<uint8_t> site;  // the instruction's new bytes (same length)
  std::vector<uint8_t> thunk_bytes;
};

// Plans each instruction (once per address) against this process's
// mappings; an error names the first that cannot be relocated and why.
// Nothing is changed. Why the unwind tables: sweeps that agree do not tell
// code from data (a table of constants in .text decodes as consistently),
// so an instruction is relocated only inside a function that the unwind
// tables (.eh_frame, which every compiled function has and data has not)
// know, and only if the sweep from that function's start decodes this
// very instruction.
Expected<std::vector<RelocationPlan>> PlanRelocations(const std::vector<inspector::Relocatable>& instructions,
                                                      const inspector::Disassembler& dis);

// Maps the thunks and patches the sites; appends each thunk page to
// *thunk_pages (code that must stay as it is, like the rest). An error
// says what failed; what was done before it stays (each step keeps the
// code runnable), and the caller refuses to start.
Expected<void> ApplyRelocations(const std::vector<RelocationPlan>& plans,
                                std::vector<std::pair<uint64_t, uint64_t>>* thunk_pages);

}  // namespace cordon::enforce

#endif
