// Plugin entry point: registers the cordon-gates pass with the new pass
// manager, by name for `opt -passes=cordon-gates` and at the start of every
// pipeline for `clang -fpass-plugin=...` (clang never parses a textual
// pipeline, and the start extension point also runs at -O0).
#include "compiler-pass/CordonGates.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"

using namespace llvm;

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo llvmGetPassPluginInfo() {
  return {LLVM_PLUGIN_API_VERSION, "CordonGates", LLVM_VERSION_STRING, [](PassBuilder& builder) {
            builder.registerPipelineParsingCallback(
                [](StringRef name, ModulePassManager& passes, ArrayRef<PassBuilder::PipelineElement>) {
                  if (name != "cordon-gates") return false;
                  passes.addPass(cordon::pass::CordonGatesPass());
                  return true;
                });
            builder.registerPipelineStartEPCallback([](ModulePassManager& passes, OptimizationLevel) {
              passes.addPass(cordon::pass::CordonGatesPass());
            });
          }};
}
