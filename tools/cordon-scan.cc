// cordon-scan: find every WRPKRU and XRSTOR in ELF files or in a running
// process, and say which are safe (registered gate sites) and which are not.
//
//   cordon-scan [--json] FILE...
//   cordon-scan [--json] --pid N
//   cordon-scan --help | --version
//
// Exit status: 0 clean, 1 something unsafe found, 2 an error (a file that is
// missing or malformed, a process that cannot be read, a usage error).
// Findings go to stdout; errors to stderr, naming the object once.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/version.h"
#include "runtime/inspector/inspect.h"
#include "runtime/inspector/process.h"

using namespace cordon;
using namespace cordon::inspector;

namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

struct Report {
  std::string object;
  std::vector<Finding> findings;
  std::string error;  // non-empty if the object could not be inspected
};

// "object: what went wrong", naming the object once (the ELF reader's
// messages already start with the path).
std::string ErrorLine(const Report& r) {
  return r.error.rfind(r.object + ": ", 0) == 0 ? r.error : r.object + ": " + r.error;
}

// Errors go to stderr; findings to stdout.
void PrintText(const Report& r) {
  if (!r.error.empty()) {
    fprintf(stderr, "cordon-scan: %s\n", ErrorLine(r).c_str());
    return;
  }
  size_t unsafe = 0;
  for (const Finding& f : r.findings) unsafe += IsUnsafe(f.verdict);
  printf("%s: %zu occurrence(s), %zu unsafe\n", r.object.c_str(), r.findings.size(), unsafe);
  for (const Finding& f : r.findings) {
    printf("  %s at %s", PatternName(f.kind), Hex(f.address).c_str());
    if (f.file_offset) printf(" (file offset %s)", Hex(*f.file_offset).c_str());
    if (!f.section.empty()) printf(" in %s", f.section.c_str());
    if (!f.symbol.empty()) printf(", %s+%s", f.symbol.c_str(), Hex(f.address - f.symbol_address).c_str());
    if (f.object != r.object) printf(" [%s]", f.object.c_str());
    printf(": %s\n", VerdictName(f.verdict));
    if (f.relocation) {
      printf("    in the displacement of `%s`, which the link chose: cordon_init() relocates it\n",
             f.relocation->text.c_str());
    }
    auto line = [](const Instruction& i, const char* mark) {
      printf("    %s %s  %s\n", mark, Hex(i.address).c_str(), i.text.c_str());
    };
    for (const auto& i : f.context.before) line(i, " ");
    for (const auto& i : f.context.overlapping) line(i, ">");
    for (const auto& i : f.context.after) line(i, " ");
  }
}

// The --json schema (docs/inspector.md): numbers are numbers, the verdict is
// an enum string, and the top level says which schema it is.
constexpr int kJsonSchemaVersion = 1;

const char* VerdictId(Verdict v) {
  switch (v) {
    case Verdict::kGateSite:
      return "gate_site";
    case Verdict::kUnsafeInstruction:
      return "real_instruction";
    case Verdict::kUnsafeUnintended:
      return "unintended";
  }
  return "unknown";
}

nlohmann::json InstructionsJson(const std::vector<Instruction>& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const Instruction& i : list)
    out.push_back({{"address", i.address}, {"size", i.size}, {"text", i.text}});
  return out;
}

nlohmann::json ToJson(const Report& r) {
  nlohmann::json o = {{"object", r.object}};
  if (!r.error.empty()) {
    o["error"] = ErrorLine(r);
    o["occurrences"] = nlohmann::json::array();
    return o;
  }
  o["error"] = nullptr;
  nlohmann::json list = nlohmann::json::array();
  for (const Finding& f : r.findings) {
    list.push_back({
        {"kind", f.kind == PatternKind::kWrpkru ? "wrpkru" : "xrstor"},
        {"address", f.address},
        {"file_offset", f.file_offset ? nlohmann::json(*f.file_offset) : nlohmann::json(nullptr)},
        {"object", f.object},
        {"section", f.section},
        {"symbol", f.symbol},
        {"symbol_offset",
         f.symbol.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.address - f.symbol_address)},
        {"at_instruction_boundary", f.context.at_boundary},
        {"verdict", VerdictId(f.verdict)},
        {"safe", !IsUnsafe(f.verdict)},
        {"relocatable", f.relocation.has_value()},
        {"before", InstructionsJson(f.context.before)},
        {"overlapping", InstructionsJson(f.context.overlapping)},
        {"after", InstructionsJson(f.context.after)},
    });
  }
  o["occurrences"] = std::move(list);
  return o;
}

Report ScanFile(const std::string& path, const Disassembler& dis) {
  Report r{path, {}, {}};
  auto file = ElfFile::Load(path);
  if (!file.ok()) {
    r.error = file.error();
    return r;
  }
  auto findings = InspectElf(*file, path, dis);
  if (!findings.ok()) {
    r.error = findings.error();
  } else {
    r.findings = std::move(*findings);
  }
  return r;
}

// A running process: its executable mappings, read through /proc/N/mem, with
// symbols and gate sites from the files behind them.
Report ScanProcess(const std::string& pid, const Disassembler& dis) {
  Report r{"pid " + pid, {}, {}};
  auto findings = InspectProcess(pid, {}, /*sites_from_files=*/true, dis);
  if (!findings.ok()) {
    r.error = findings.error() + " (does the process exist? may you trace it?)";
  } else {
    r.findings = std::move(*findings);
  }
  return r;
}

constexpr char kUsage[] =
    "usage: cordon-scan [--json] FILE...\n"
    "       cordon-scan [--json] --pid N\n"
    "       cordon-scan --help | --version\n"
    "Finds WRPKRU and XRSTOR instructions (at every byte offset) in executable code,\n"
    "and says which are registered gate sites (safe) and which are not.\n"
    "  --json     one JSON document on stdout (schema: docs/inspector.md)\n"
    "  --pid N    scan the executable mappings of running process N\n"
    "Exit status: 0 clean, 1 unsafe occurrences found, 2 error (also a usage error).\n";

// A usage error: the reason and the usage on stderr, status 2.
int UsageError(const std::string& why) {
  fprintf(stderr, "cordon-scan: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  std::string pid;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--pid") {
      if (i + 1 >= argc) return UsageError("--pid needs a process id");
      pid = argv[++i];
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos)
        return UsageError("--pid wants a process id, not '" + pid + "'");
    } else if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      printf("cordon-scan %s\n", CORDON_VERSION_STRING);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return UsageError("unknown option " + a);
    } else {
      files.push_back(a);
    }
  }
  if (pid.empty() == files.empty())
    return UsageError(pid.empty() ? "no file or --pid given" : "give files or --pid, not both");
  std::string error;
  auto dis = Disassembler::Open(&error);
  if (!dis) {
    fprintf(stderr, "cordon-scan: %s\n", error.c_str());
    return 2;
  }
  std::vector<Report> reports;
  if (!pid.empty()) {
    reports.push_back(ScanProcess(pid, *dis));
  } else {
    for (const std::string& f : files) reports.push_back(ScanFile(f, *dis));
  }
  bool any_error = false, any_unsafe = false;
  for (const Report& r : reports) {
    any_error |= !r.error.empty();
    for (const Finding& f : r.findings) any_unsafe |= IsUnsafe(f.verdict);
  }
  if (json) {
    nlohmann::json doc = {{"schema", "cordon-scan"},
                          {"schema_version", kJsonSchemaVersion},
                          {"tool_version", CORDON_VERSION_STRING},
                          {"objects", nlohmann::json::array()}};
    size_t occurrences = 0, unsafe = 0, errors = 0;
    for (const Report& r : reports) {
      doc["objects"].push_back(ToJson(r));
      errors += !r.error.empty();
      occurrences += r.findings.size();
      for (const Finding& f : r.findings) unsafe += IsUnsafe(f.verdict);
    }
    doc["summary"] = {
        {"objects", reports.size()}, {"occurrences", occurrences}, {"unsafe", unsafe}, {"errors", errors}};
    printf("%s\n", doc.dump(2).c_str());
    // Errors still reach stderr, so that a caller reading only stdout sees them in the document.
    for (const Report& r : reports) {
      if (!r.error.empty()) fprintf(stderr, "cordon-scan: %s\n", ErrorLine(r).c_str());
    }
  } else {
    for (const Report& r : reports) PrintText(r);
  }
  return any_error ? 2 : any_unsafe ? 1 : 0;
}
