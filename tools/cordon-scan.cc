// cordon-scan: find every WRPKRU and XRSTOR in ELF files or in a running
// process, and say which are safe (registered gate sites) and which are not.
//
//   cordon-scan [--json] FILE...
//   cordon-scan [--json] --pid N
//
// Exit status: 0 clean, 1 something unsafe found, 2 an error (a file that is
// missing or malformed, a process that cannot be read).
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

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

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

struct Report {
  std::string object;
  std::vector<Finding> findings;
  std::string error;  // non-empty if the object could not be inspected
};

void PrintText(const Report& r) {
  if (!r.error.empty()) {
    printf("%s: error: %s\n", r.object.c_str(), r.error.c_str());
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
    auto line = [](const Instruction& i, const char* mark) {
      printf("    %s %s  %s\n", mark, Hex(i.address).c_str(), i.text.c_str());
    };
    for (const auto& i : f.context.before) line(i, " ");
    for (const auto& i : f.context.overlapping) line(i, ">");
    for (const auto& i : f.context.after) line(i, " ");
  }
}

std::string InstructionsJson(const std::vector<Instruction>& list) {
  std::string out = "[";
  for (size_t k = 0; k < list.size(); ++k) {
    if (k) out += ", ";
    out += "{\"address\": " + JsonString(Hex(list[k].address)) +
           ", \"size\": " + std::to_string(list[k].size) + ", \"text\": " + JsonString(list[k].text) + "}";
  }
  return out + "]";
}

std::string ToJson(const Report& r) {
  std::ostringstream o;
  o << "{\"object\": " << JsonString(r.object);
  if (!r.error.empty()) {
    o << ", \"error\": " << JsonString(r.error) << "}";
    return o.str();
  }
  o << ", \"occurrences\": [";
  for (size_t k = 0; k < r.findings.size(); ++k) {
    const Finding& f = r.findings[k];
    if (k) o << ", ";
    o << "{\"kind\": " << JsonString(PatternName(f.kind)) << ", \"address\": " << JsonString(Hex(f.address))
      << ", \"file_offset\": " << (f.file_offset ? JsonString(Hex(*f.file_offset)) : "null")
      << ", \"object\": " << JsonString(f.object) << ", \"section\": " << JsonString(f.section)
      << ", \"symbol\": " << JsonString(f.symbol) << ", \"symbol_offset\": "
      << (f.symbol.empty() ? "null" : JsonString(Hex(f.address - f.symbol_address)))
      << ", \"at_instruction_boundary\": " << (f.context.at_boundary ? "true" : "false")
      << ", \"safe\": " << (IsUnsafe(f.verdict) ? "false" : "true")
      << ", \"classification\": " << JsonString(VerdictName(f.verdict))
      << ", \"before\": " << InstructionsJson(f.context.before)
      << ", \"overlapping\": " << InstructionsJson(f.context.overlapping)
      << ", \"after\": " << InstructionsJson(f.context.after) << "}";
  }
  o << "]}";
  return o.str();
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

int Usage() {
  fprintf(stderr,
          "usage: cordon-scan [--json] FILE...\n"
          "       cordon-scan [--json] --pid N\n"
          "Finds WRPKRU and XRSTOR instructions (at every byte offset) in executable code.\n"
          "Exit status: 0 clean, 1 unsafe occurrences found, 2 error.\n");
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
      if (i + 1 >= argc) return Usage();
      pid = argv[++i];
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return Usage();
    } else if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      fprintf(stderr, "cordon-scan: unknown option %s\n", a.c_str());
      return Usage();
    } else {
      files.push_back(a);
    }
  }
  if (pid.empty() == files.empty()) return Usage();
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
    printf("[");
    for (size_t k = 0; k < reports.size(); ++k) printf("%s%s", k ? ",\n " : "", ToJson(reports[k]).c_str());
    printf("]\n");
  } else {
    for (const Report& r : reports) PrintText(r);
  }
  return any_error ? 2 : any_unsafe ? 1 : 0;
}
