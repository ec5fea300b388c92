// The runtime's use of the inspector: at initialisation, inspect every
// executable mapping of this process and neutralize or refuse what is found
// outside the gates; at dlopen, inspect a library's file (and the
// dependencies it would load) before any of its code runs.
#ifndef CORDON_RUNTIME_ENFORCE_ENFORCE_H_
#define CORDON_RUNTIME_ENFORCE_ENFORCE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/base/expected.h"
#include "runtime/inspector/inspect.h"

namespace cordon::enforce {

enum class Action { kNone, kNeutralized, kRefused, kRelocated };

struct ReportEntry {
  uint64_t address;
  inspector::PatternKind kind;
  inspector::Verdict verdict;
  Action action;
  std::string object, symbol;
};

// Inspects this process against the runtime's gate sites. Under
// CORDON_INSPECT_NEUTRALIZE, real instructions are overwritten with UD2 on a
// private copy of their page (swapped in atomically with mremap), and an
// unintended occurrence in a displacement the link chose is relocated
// (relocate.h); any other unintended occurrence, or any occurrence under
// CORDON_INSPECT_REFUSE, makes it fail before anything is changed. Appends to *report; a refusal's
// Error carries its cordon_status and says why, a line for each occurrence.
// Every thunk page that relocation mapped is appended to *thunk_pages when
// given (the lockdown adds them to the code that must stay as it is).
Expected<void> EnforceOnProcess(uint32_t policy, std::vector<ReportEntry>* report,
                                std::vector<std::pair<uint64_t, uint64_t>>* thunk_pages = nullptr);

// Inspects the library that dlopen(file) would load, and its dependencies
// that are not loaded yet. Any occurrence refuses it (its constructors
// would run before it could be neutralized). *why says what was found.
bool LibraryIsClean(const char* file, std::string* why);

// From now on dlopen() (interposed by the runtime) inspects before loading.
void EnableDlopenInspection();
// From now on dlopen() refuses every library that is not loaded yet.
void RefuseDlopen();

// Rewrites every PLT entry that jumps through a slot left writable after
// start-up into a direct jump to the slot's target (plt.h), on private
// copies of the pages. Fails with *why if an object still binds lazily or
// an entry cannot be rewritten; what was pinned before stays (it jumps
// where it jumped).
bool PinWritablePlts(std::string* why);

// Replaces every executable mapping that is backed by a file or shared with
// a private anonymous copy of the same bytes, so that no file write and no
// other mapping can change code from now on. Fails, changing nothing, if
// some executable memory is also writable.
bool PrivatizeExecutableMemory(std::string* why);

}  // namespace cordon::enforce

#endif
