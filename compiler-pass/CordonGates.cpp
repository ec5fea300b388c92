// The cordon-gates pass: for each function marked CORDON_TRUSTED it keeps
// the body under "<name>.cordon_trusted", emits a gated entry under the
// original name (module inline assembly, GateAsm.cpp), records the entry and
// its two WRPKRU sites for the runtime, and sends calls between trusted
// functions straight to the bodies. It also refuses what cannot cross a gate
// safely and inline assembly that holds WRPKRU or XRSTOR.
#include "compiler-pass/CordonGates.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler-pass/GateAsm.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Demangle/Demangle.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/DiagnosticInfo.h"
#include "llvm/IR/DiagnosticPrinter.h"
#include "llvm/IR/InlineAsm.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/Module.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

using namespace llvm;

namespace cordon::pass {
namespace {

constexpr const char* kDoneMetadata = "cordon.gates.done";
constexpr unsigned kIntRegisters = 6;  // rdi rsi rdx rcx r8 r9
constexpr unsigned kSseRegisters = 8;  // xmm0-7

// ---- Diagnostics ----

int DiagnosticKind() {
  static const int kind = getNextAvailablePluginDiagnosticKind();
  return kind;
}

class CordonDiagnostic : public DiagnosticInfo {
 public:
  CordonDiagnostic(DiagnosticSeverity severity, std::string message)
      : DiagnosticInfo(DiagnosticKind(), severity), message_(std::move(message)) {}
  void print(DiagnosticPrinter& printer) const override { printer << message_; }

 private:
  std::string message_;
};

struct SourcePlace {
  std::string file;
  unsigned line = 0;
};

std::string Prefix(const SourcePlace& place) {
  if (place.file.empty()) return "";
  return place.file + ":" + std::to_string(place.line) + ": ";
}

SourcePlace PlaceOf(const Function& f) {
  if (const DISubprogram* sp = f.getSubprogram()) return {sp->getFilename().str(), sp->getLine()};
  return {};
}

SourcePlace PlaceOf(const Instruction& inst, const Function& f) {
  if (const DebugLoc& loc = inst.getDebugLoc()) {
    return {cast<DIScope>(loc.getScope())->getFilename().str(), loc.getLine()};
  }
  return PlaceOf(f);
}

std::string Readable(StringRef symbol) {
  return demangle(symbol.str());
}

void Report(Module& module, DiagnosticSeverity severity, const SourcePlace& place, const std::string& text) {
  module.getContext().diagnose(CordonDiagnostic(severity, Prefix(place) + "cordon: " + text));
}

// ---- Finding the annotated functions ----

std::optional<std::string> CString(const Value* v) {
  const auto* gv = dyn_cast<GlobalVariable>(v->stripPointerCasts());
  if (gv == nullptr || !gv->hasInitializer()) return std::nullopt;
  const auto* data = dyn_cast<ConstantDataArray>(gv->getInitializer());
  if (data == nullptr || !data->isCString()) return std::nullopt;
  return data->getAsCString().str();
}

// Definitions carrying the annotation, with where clang saw it, in the
// module's order (so the generated code does not depend on addresses).
std::vector<std::pair<Function*, SourcePlace>> AnnotatedDefinitions(Module& module) {
  std::map<Function*, SourcePlace> annotated;
  if (GlobalVariable* ga = module.getNamedGlobal("llvm.global.annotations");
      ga != nullptr && ga->hasInitializer()) {
    if (auto* array = dyn_cast<ConstantArray>(ga->getInitializer())) {
      for (const Use& element : array->operands()) {
        auto* entry = dyn_cast<ConstantStruct>(element.get());
        if (entry == nullptr || entry->getNumOperands() < 4) continue;
        auto* fn = dyn_cast<Function>(entry->getOperand(0)->stripPointerCasts());
        if (fn == nullptr || fn->isDeclaration()) continue;
        if (CString(entry->getOperand(1)) != std::string(kTrustedAnnotation)) continue;
        SourcePlace place{CString(entry->getOperand(2)).value_or(""), 0};
        if (auto* line = dyn_cast<ConstantInt>(entry->getOperand(3))) {
          place.line = static_cast<unsigned>(line->getZExtValue());
        }
        annotated[fn] = place;
      }
    }
  }
  // The section alone also marks a definition (the annotation may have been
  // dropped by an earlier tool).
  std::vector<std::pair<Function*, SourcePlace>> out;
  for (Function& fn : module) {
    if (fn.isDeclaration()) continue;
    if (auto found = annotated.find(&fn); found != annotated.end()) {
      out.emplace_back(&fn, found->second);
    } else if (fn.getSection() == kUnprocessedSection) {
      out.emplace_back(&fn, PlaceOf(fn));
    }
  }
  return out;
}

// ---- What can cross a gate ----

std::string TypeName(Type* type) {
  std::string s;
  raw_string_ostream os(s);
  type->print(os);
  return os.str();
}

bool IsIntegerClass(Type* type) {
  return type->isPointerTy() || (type->isIntegerTy() && type->getIntegerBitWidth() <= 64);
}

std::optional<ReturnKind> ClassifyReturn(Type* type, const DataLayout& layout) {
  if (type->isVoidTy()) return ReturnKind::kVoid;
  if (IsIntegerClass(type)) return ReturnKind::kInt;
  if (type->isIntegerTy(128)) return ReturnKind::kIntPair;
  if (type->isHalfTy() || type->isFloatTy() || type->isDoubleTy()) return ReturnKind::kFloat;
  if (auto* vec = dyn_cast<FixedVectorType>(type);
      vec != nullptr && vec->getElementType()->isFloatingPointTy() && layout.getTypeSizeInBits(vec) <= 64) {
    return ReturnKind::kFloat;
  }
  if (auto* st = dyn_cast<StructType>(type); st != nullptr && st->getNumElements() == 2 &&
                                             IsIntegerClass(st->getElementType(0)) &&
                                             IsIntegerClass(st->getElementType(1))) {
    return ReturnKind::kIntPair;
  }
  return std::nullopt;
}

// Every problem that keeps fn from crossing a gate, as sentences.
std::vector<std::string> CrossingProblems(Function& fn, const DataLayout& layout) {
  std::vector<std::string> problems;
  const std::string name = "'" + Readable(fn.getName()) + "'";
  if (fn.isVarArg()) {
    problems.push_back(name +
                       " is variadic: a gate cannot know how many arguments to carry across; give it a fixed "
                       "parameter list (for example a pointer and a count)");
  }
  if (fn.hasLinkOnceLinkage() || fn.hasWeakLinkage() || fn.hasComdat() ||
      fn.hasAvailableExternallyLinkage()) {
    problems.push_back(
        name +
        " is inline, a template or weak, so it may be emitted in several files: its gate must exist "
        "exactly once; define it out of line in one source file");
  }
  unsigned ints = 0;
  unsigned sses = 0;
  for (Argument& arg : fn.args()) {
    const std::string which = "parameter " + std::to_string(arg.getArgNo() + 1);
    if (arg.hasStructRetAttr()) {
      problems.push_back(
          name +
          " returns an aggregate too large for registers, which the gate would have trusted code "
          "write through a hidden pointer; return it through an explicit out-parameter and check "
          "it with cordon_is_untrusted_range()");
      ++ints;
      continue;
    }
    if (arg.hasByValAttr() || arg.hasInAllocaAttr() || arg.hasPreallocatedAttr() || arg.hasNestAttr()) {
      problems.push_back(
          name + ": " + which +
          " is an aggregate passed by value on the stack, and the body runs on the trusted stack "
          "where it is not; pass a pointer to it instead and check it with "
          "cordon_is_untrusted_range()");
      continue;
    }
    Type* type = arg.getType();
    if (IsIntegerClass(type)) {
      ++ints;
    } else if (type->isIntegerTy(128)) {
      ints += 2;
    } else if (type->isHalfTy() || type->isFloatTy() || type->isDoubleTy() ||
               (type->isVectorTy() && layout.getTypeSizeInBits(type) <= 128)) {
      ++sses;
    } else {
      problems.push_back(
          name + ": " + which + " has type " + TypeName(type) +
          ", which is passed in memory or in registers a gate does not carry (long double, wide "
          "vectors); pass a pointer to it instead");
    }
  }
  if (ints > kIntRegisters || sses > kSseRegisters) {
    problems.push_back(
        name + " takes " + std::to_string(ints) + " integer/pointer and " + std::to_string(sses) +
        " floating-point arguments; a gate carries at most 6 and 8, because the rest would be read "
        "from the untrusted stack; pass a pointer to a struct instead");
  }
  if (!ClassifyReturn(fn.getReturnType(), layout).has_value()) {
    problems.push_back(
        name + " returns " + TypeName(fn.getReturnType()) +
        ", which a gate cannot carry back (it returns one integer or pointer, two integers, or one "
        "float or double); return it through an out-parameter instead");
  }
  return problems;
}

// ---- Inline assembly ----

// Bytes listed by consecutive .byte directives, as one stream.
std::vector<std::vector<uint8_t>> ByteRuns(StringRef text) {
  std::vector<std::vector<uint8_t>> runs(1);
  SmallVector<StringRef, 32> statements;
  text.split(statements, '\n');
  SmallVector<StringRef, 32> split;
  for (StringRef line : statements) line.split(split, ';');
  for (StringRef statement : split) {
    statement = statement.trim();
    if (!statement.consume_front_insensitive(".byte")) {
      if (!statement.empty() && !runs.back().empty()) runs.emplace_back();
      continue;
    }
    SmallVector<StringRef, 16> items;
    statement.split(items, ',');
    for (StringRef item : items) {
      unsigned long long value = 0;
      if (!getAsUnsignedInteger(item.trim(), 0, value)) runs.back().push_back(static_cast<uint8_t>(value));
    }
  }
  return runs;
}

// "WRPKRU" or "XRSTOR" if the assembly text spells one, by mnemonic or bytes.
std::optional<std::string> ForbiddenInstruction(StringRef text) {
  const std::string lower = text.lower();
  if (lower.find("wrpkru") != std::string::npos) return std::string("WRPKRU");
  if (lower.find("xrstor") != std::string::npos) return std::string("XRSTOR");
  for (const auto& run : ByteRuns(text)) {
    for (size_t i = 0; i + 2 < run.size(); ++i) {
      if (run[i] != 0x0f) continue;
      if (run[i + 1] == 0x01 && run[i + 2] == 0xef) return std::string("WRPKRU");
      if (run[i + 1] == 0xae && ((run[i + 2] >> 3) & 7) == 5 && (run[i + 2] >> 6) != 3) {
        return std::string("XRSTOR");
      }
    }
  }
  return std::nullopt;
}

bool CheckInlineAssembly(Module& module) {
  bool clean = true;
  if (auto found = ForbiddenInstruction(module.getModuleInlineAsm())) {
    Report(
        module, DS_Error, {module.getSourceFileName(), 0},
        "file-scope assembly contains " + *found +
            ": only Cordon's gates may change PKRU, and cordon_init() would refuse this program; remove it");
    clean = false;
  }
  for (Function& fn : module) {
    for (Instruction& inst : instructions(fn)) {
      auto* call = dyn_cast<CallBase>(&inst);
      if (call == nullptr || !call->isInlineAsm()) continue;
      const auto* asm_value = cast<InlineAsm>(call->getCalledOperand());
      if (auto found = ForbiddenInstruction(asm_value->getAsmString())) {
        Report(module, DS_Error, PlaceOf(inst, fn),
               "inline assembly in '" + Readable(fn.getName()) + "' contains " + *found +
                   ": only Cordon's gates may change PKRU, and cordon_init() would refuse this program; "
                   "remove it");
        clean = false;
      }
    }
  }
  return clean;
}

// ---- The rewrite ----

// Link-time check for a function declared CORDON_TRUSTED in one file and
// defined without it in another: the definition's file defines this symbol,
// every file that uses the trusted declaration refers to it, so the linker
// names the function and says what to do.
std::string MissingDefinitionSymbol(StringRef name) {
  return "CORDON_TRUSTED is missing on the definition of " + Readable(name) +
         " (declared CORDON_TRUSTED elsewhere): add CORDON_TRUSTED to that definition";
}

uint32_t Fnv1a(StringRef text) {
  uint32_t h = 2166136261u;
  for (char c : text) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h;
}

SymbolVisibility VisibilityOf(const GlobalValue& gv) {
  switch (gv.getVisibility()) {
    case GlobalValue::HiddenVisibility:
      return SymbolVisibility::kHidden;
    case GlobalValue::ProtectedVisibility:
      return SymbolVisibility::kProtected;
    default:
      return SymbolVisibility::kDefault;
  }
}

// The attributes a declaration of the gated entry keeps: those of the return
// value and the parameters (zeroext and signext are part of the ABI).
AttributeList DeclarationAttributes(const Function& fn) {
  const AttributeList attrs = fn.getAttributes();
  SmallVector<AttributeSet, 8> params;
  for (unsigned i = 0; i < fn.arg_size(); ++i) params.push_back(attrs.getParamAttrs(i));
  return AttributeList::get(fn.getContext(), AttributeSet(), attrs.getRetAttrs(), params);
}

// c with every use of `from` replaced by `to`, for constants that must keep
// referring to the body after its other uses moved to the gate.
Constant* ReplaceIn(Constant* c, Constant* from, Constant* to) {
  if (c == from) return to;
  if (isa<GlobalValue>(c)) return c;
  SmallVector<Constant*, 4> operands;
  bool changed = false;
  for (const Use& use : c->operands()) {
    auto* op = cast<Constant>(use.get());
    Constant* replaced = ReplaceIn(op, from, to);
    changed |= replaced != op;
    operands.push_back(replaced);
  }
  if (!changed) return c;
  if (auto* expr = dyn_cast<ConstantExpr>(c)) return expr->getWithOperands(operands);
  if (auto* st = dyn_cast<ConstantStruct>(c)) return ConstantStruct::get(st->getType(), operands);
  if (auto* array = dyn_cast<ConstantArray>(c)) return ConstantArray::get(array->getType(), operands);
  return c;
}

}  // namespace

PreservedAnalyses CordonGatesPass::run(Module& module, ModuleAnalysisManager&) {
  if (module.getNamedMetadata(kDoneMetadata) != nullptr) return PreservedAnalyses::all();
  const DataLayout& layout = module.getDataLayout();

  bool ok = CheckInlineAssembly(module);
  const auto trusted = AnnotatedDefinitions(module);
  for (const auto& [fn, place] : trusted) {
    for (const std::string& problem : CrossingProblems(*fn, layout)) {
      Report(module, DS_Error, place, problem);
      ok = false;
    }
  }
  if (!ok) return PreservedAnalyses::all();

  for (const auto& [fn, place] : trusted) {
    if (!fn->doesNotThrow()) {
      Report(module, DS_Warning, place,
             "'" + Readable(fn->getName()) +
                 "' may throw: an exception cannot cross a gate and would end the process in std::terminate; "
                 "declare it noexcept");
    }
  }

  LLVMContext& context = module.getContext();
  Type* byte = Type::getInt8Ty(context);
  std::map<Function*, Function*> body_of_gate;  // gated entry -> body
  std::vector<GlobalValue*> keep;
  std::string assembly;
  const uint32_t tag = Fnv1a(module.getModuleIdentifier());
  unsigned index = 0;

  for (const auto& [body, place] : trusted) {
    const std::string name = body->getName().str();
    const bool local = body->hasLocalLinkage();
    GateSpec spec;
    spec.gate = name;
    spec.body = name + kBodySuffix;
    spec.label = Readable(name);
    spec.ret = *ClassifyReturn(body->getReturnType(), layout);
    spec.binding = local ? SymbolBinding::kLocal : SymbolBinding::kGlobal;
    spec.visibility = local ? SymbolVisibility::kDefault : VisibilityOf(*body);
    spec.index = index++;
    spec.module_tag = tag;

    body->setName(spec.body);
    Function* gate = Function::Create(body->getFunctionType(), GlobalValue::ExternalLinkage, name, &module);
    gate->setCallingConv(body->getCallingConv());
    gate->setAttributes(DeclarationAttributes(*body));
    gate->setVisibility(local ? GlobalValue::DefaultVisibility : body->getVisibility());
    gate->setDSOLocal(true);
    body->replaceAllUsesWith(gate);
    // Prologue and prefix data describe the body itself (UBSan's function
    // sanitizer stores its own address difference there).
    if (body->hasPrologueData()) body->setPrologueData(ReplaceIn(body->getPrologueData(), gate, body));
    if (body->hasPrefixData()) body->setPrefixData(ReplaceIn(body->getPrefixData(), gate, body));

    // The body: reachable only from its gate and from other trusted code.
    if (!local) {
      body->setVisibility(GlobalValue::HiddenVisibility);
      auto* marker = new GlobalVariable(module, byte, true, GlobalValue::ExternalLinkage,
                                        ConstantInt::get(byte, 0), MissingDefinitionSymbol(name));
      marker->setVisibility(GlobalValue::HiddenVisibility);
      keep.push_back(marker);
    }
    body->setDSOLocal(true);
    body->setSection(kBodySection);
    keep.push_back(body);
    body_of_gate[gate] = body;
    assembly += EmitGate(spec);
  }

  // Trusted functions declared here and defined in another file.
  for (Function& fn : module) {
    if (!fn.isDeclaration() || fn.getSection() != kUnprocessedSection || fn.use_empty()) continue;
    const std::string name = fn.getName().str();
    FunctionCallee callee = module.getOrInsertFunction(name + kBodySuffix, fn.getFunctionType());
    auto* body = cast<Function>(callee.getCallee()->stripPointerCasts());
    body->setVisibility(GlobalValue::HiddenVisibility);
    body->setDSOLocal(true);
    body_of_gate[&fn] = body;
    // A reference the object keeps, so that the linker must resolve it.
    auto* marker = new GlobalVariable(module, byte, true, GlobalValue::ExternalLinkage, nullptr,
                                      MissingDefinitionSymbol(name));
    marker->setVisibility(GlobalValue::HiddenVisibility);
    keep.push_back(new GlobalVariable(module, marker->getType(), true, GlobalValue::PrivateLinkage, marker,
                                      "cordon.trusted.definition.ref"));
  }

  // Trusted code calls other trusted functions' bodies: one gate per entry.
  std::set<Function*> bodies;
  for (auto& [gate, body] : body_of_gate) {
    if (!body->isDeclaration()) bodies.insert(body);
  }
  for (Function* body : bodies) {
    for (Instruction& inst : instructions(*body)) {
      auto* call = dyn_cast<CallBase>(&inst);
      if (call == nullptr) continue;
      auto* target = dyn_cast<Function>(call->getCalledOperand()->stripPointerCasts());
      auto found = target == nullptr ? body_of_gate.end() : body_of_gate.find(target);
      if (found == body_of_gate.end()) continue;
      Value* direct = found->second;
      if (direct->getType() != call->getCalledOperand()->getType()) {
        direct = ConstantExpr::getBitCast(found->second, call->getCalledOperand()->getType());
      }
      call->setCalledOperand(direct);
    }
  }

  if (!keep.empty()) appendToUsed(module, keep);
  if (!assembly.empty()) module.appendModuleInlineAsm(EmitSequences() + assembly);
  module.getOrInsertNamedMetadata(kDoneMetadata);
  return trusted.empty() && body_of_gate.empty() ? PreservedAnalyses::all() : PreservedAnalyses::none();
}

}  // namespace cordon::pass
