// The cordon-gates module pass: turns every function marked CORDON_TRUSTED
// into a gated entry point (see docs/compiler-pass.md).
#ifndef CORDON_COMPILER_PASS_CORDONGATES_H_
#define CORDON_COMPILER_PASS_CORDONGATES_H_

#include "llvm/IR/PassManager.h"

namespace cordon::pass {

// The annotation string and section that CORDON_TRUSTED (cordon.h) attaches.
inline constexpr const char* kTrustedAnnotation = "cordon.trusted";
inline constexpr const char* kUnprocessedSection = "cordon_trusted_unprocessed";
// Where bodies go once the pass has generated their gates.
inline constexpr const char* kBodySection = ".text.cordon_trusted";
// Suffix of the body's symbol.
inline constexpr const char* kBodySuffix = ".cordon_trusted";

class CordonGatesPass : public llvm::PassInfoMixin<CordonGatesPass> {
 public:
  llvm::PreservedAnalyses run(llvm::Module& module, llvm::ModuleAnalysisManager& analyses);
  // Runs at -O0 too, where passes that are not required are skipped.
  static bool isRequired() { return true; }
};

}  // namespace cordon::pass

#endif
