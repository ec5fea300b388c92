// Plain words for records, and the summary of a stream (report.h).
#include "tools/cordon-audit/report.h"

#include <cinttypes>
#include <cstdio>

namespace cordon::audit {

namespace {

bool Is(const Record& r, const char* name) {
  return std::string_view(r.event->name) == name;
}

std::string Q(const std::string& s) {
  return json::Quote(s);
}

std::string N(uint64_t v) {
  return std::to_string(v);
}
std::string I(int64_t v) {
  return std::to_string(v);
}

const char* VerdictWords(const std::string& v) {
  if (v == "gate_site") return "a registered gate site";
  if (v == "instruction") return "an unsafe instruction";
  if (v == "hidden") return "unsafe bytes hidden inside other instructions";
  return "?";
}

const char* FindingActionWords(const std::string& a) {
  if (a == "none") return "left as it is";
  if (a == "neutralized") return "neutralized (overwritten so that it traps)";
  if (a == "refused") return "refused";
  if (a == "relocated") return "relocated to a thunk";
  return "?";
}

std::string SiCode(int64_t code) {
  // The two codes of a SIGSEGV that reaches Cordon's handler.
  if (code == 1) return "1 (SEGV_MAPERR)";
  if (code == 2) return "2 (SEGV_ACCERR)";
  if (code == 4) return "4 (SEGV_PKUERR)";
  return I(code);
}

}  // namespace

std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

void Context::Note(const Record& r) {
  if (Is(r, "cordon_init")) {
    // A new stream of this pid: its domains are new.
    for (auto it = domains_.begin(); it != domains_.end();) {
      it = it->first.first == r.pid ? domains_.erase(it) : std::next(it);
    }
  } else if (Is(r, "domain_create")) {
    domains_[{r.pid, r.Int("domain")}] = r.Str("name");
  }
}

std::string Context::Domain(int64_t pid, int64_t domain) const {
  auto it = domains_.find({pid, domain});
  return "domain " + I(domain) + (it == domains_.end() ? "" : " " + Q(it->second));
}

std::string Describe(const Record& r, const Context& c) {
  if (Is(r, "cordon_init")) {
    return "cordon_init: Cordon " + Q(r.Str("version")) + " on " + Q(r.Str("platform")) + ", trusted key " +
           I(r.Int("trusted_pkey")) + ", inspection policy " + r.Str("inspect_policy");
  }
  if (Is(r, "inspection_finding")) {
    std::string where = r.Str("object").empty() ? "" : " in " + Q(r.Str("object"));
    if (!r.Str("symbol").empty()) where += " (" + Q(r.Str("symbol")) + ")";
    return "inspection_finding: " + r.Str("kind") + " at " + Hex(r.U64("address")) + where + ": " +
           VerdictWords(r.Str("verdict")) + ", " + FindingActionWords(r.Str("action"));
  }
  if (Is(r, "domain_create")) {
    const uint64_t start = r.U64("region_start"), size = r.U64("region_size");
    return "domain_create: domain " + I(r.Int("domain")) + " " + Q(r.Str("name")) + " with key " +
           I(r.Int("pkey")) + ", region " + Hex(start) + "-" + Hex(start + size) + " (" + N(size) + " bytes)";
  }
  if (Is(r, "cordon_lockdown")) {
    const int64_t status = r.Int("status");
    if (status == 0)
      return "cordon_lockdown: locked down; a forbidden system call will " +
             std::string(r.Str("violation") == "kill" ? "kill the process" : "fail with an errno (tests)");
    return "cordon_lockdown: the lockdown FAILED with status " + I(status) + " (violation mode " +
           r.Str("violation") + ")";
  }
  if (Is(r, "code_publish")) {
    const std::string what =
        N(r.U64("length")) + " bytes at " + Hex(r.U64("block")) + ", sha256 " + r.Str("sha256");
    if (r.Str("verdict") == "published") return "code_publish: published " + what;
    return "code_publish: publishing REFUSED (status " + I(r.Int("status")) + "): " + what;
  }
  if (Is(r, "code_release")) {
    if (r.Int("status") == 0) return "code_release: code block " + Hex(r.U64("block")) + " released";
    return "code_release: releasing code block " + Hex(r.U64("block")) + " FAILED with status " +
           I(r.Int("status"));
  }
  if (Is(r, "syscall_refused")) {
    std::string args;
    for (uint64_t a : r.Get("syscall_args").list) args += (args.empty() ? "" : ", ") + Hex(a);
    return "syscall_refused: system call " + r.Str("syscall_name") + " (" + I(r.Int("syscall")) + ") from " +
           Hex(r.U64("ip")) + " REFUSED, args (" + args +
           "): " + (r.Str("action") == "killed" ? "the process was killed" : "it failed with an errno");
  }
  if (Is(r, "pkey_fault")) {
    const int64_t domain = r.Int("domain");
    return "pkey_fault: protection-key FAULT at " + Hex(r.U64("address")) + " (key " + I(r.Int("pkey")) +
           ", " + (domain == 0 ? std::string("no domain") : c.Domain(r.pid, domain)) + "), si_code " +
           SiCode(r.Int("si_code")) + ", from " + Hex(r.U64("ip")) + ": " +
           (r.Str("action") == "killed" ? "the process was killed" : "the program's handler ran");
  }
  if (Is(r, "gate_calls")) {
    return "gate_calls: " + c.Domain(r.pid, r.Int("domain")) + ", entry " + I(r.Int("entry")) + " " +
           Q(r.Str("entry_name")) + ": " + N(r.U64("count")) + " call(s) since cordon_init";
  }
  if (Is(r, "audit_lost")) {
    return "audit_lost: " + N(r.U64("lost")) +
           " record(s) LOST (could not be written; their seq numbers are skipped)";
  }
  if (Is(r, "fatal")) {
    const int64_t domain = r.Int("domain");
    return "fatal: the runtime STOPPED the process (" +
           (domain == -1 ? std::string("no domain's rights") : c.Domain(r.pid, domain)) +
           "): " + r.Str("message");
  }
  return r.event->name;
}

bool IsViolation(const Record& r) {
  if (Is(r, "syscall_refused") || Is(r, "pkey_fault") || Is(r, "audit_lost") || Is(r, "fatal")) return true;
  if (Is(r, "code_publish")) return r.Str("verdict") == "refused";
  if (Is(r, "inspection_finding")) return r.Str("action") == "refused";
  if (Is(r, "cordon_lockdown") || Is(r, "code_release")) return r.Int("status") != 0;
  return false;
}

Summary::Process& Summary::ProcessOf(const Record& r, size_t line) {
  auto it = current_.find(r.pid);
  if (it == current_.end() || (Is(r, "cordon_init") && r.seq == 0)) {
    Process p;
    p.pid = r.pid;
    p.name = r.process_name;
    p.first_line = line;
    p.first_seq = r.seq;
    processes_.push_back(std::move(p));
    current_[r.pid] = processes_.size() - 1;
    return processes_.back();
  }
  return processes_[it->second];
}

void Summary::AddRecord(const Record& r, size_t line) {
  Process& p = ProcessOf(r, line);
  context_.Note(r);
  ++records_;
  ++p.records;
  ++counts_[r.event->name];
  p.last_line = line;
  p.last_seq = r.seq;
  const std::string text = Describe(r, context_);
  p.last_event = text;
  const std::string where =
      "line " + std::to_string(line) + ", pid " + I(r.pid) + " tid " + I(r.tid) + ", seq " + N(r.seq) + ": ";
  violation_seen_ |= IsViolation(r);
  if (IsViolation(r) && !Is(r, "inspection_finding")) violations_.push_back({line, where + text});
  if (Is(r, "cordon_init")) p.init = text;
  if (Is(r, "cordon_lockdown")) {
    p.lockdown =
        text.substr(std::string("cordon_lockdown: ").size()) + " (line " + std::to_string(line) + ")";
    p.lockdown_failed = r.Int("status") != 0;
  }
  if (Is(r, "domain_create")) p.domains.push_back(text.substr(std::string("domain_create: ").size()));
  if (Is(r, "inspection_finding")) {
    if (r.Str("verdict") == "gate_site" && r.Str("action") == "none") {
      ++gate_site_findings_;
    } else {
      findings_.push_back({line, where + text});
    }
  }
  if (Is(r, "gate_calls"))
    p.gate_calls[{r.Int("domain"), r.Int("entry")}] = {context_.Domain(r.pid, r.Int("domain")) + ", entry " +
                                                           I(r.Int("entry")) + " " + Q(r.Str("entry_name")),
                                                       r.U64("count")};
  if (Is(r, "audit_lost")) p.lost_reported += r.U64("lost");
  const bool kills =
      Is(r, "fatal") || ((Is(r, "syscall_refused") || Is(r, "pkey_fault")) && r.Str("action") == "killed");
  if (kills && p.killed.empty())
    p.killed = "line " + std::to_string(line) + ", seq " + N(r.seq) + ": " + text;
}

void Summary::AddInvalid(size_t line, const std::string& error) {
  invalid_.push_back({line, error});
}

void Summary::End(size_t lines, bool truncated) {
  lines_ = lines;
  truncated_ = truncated;
}

bool Summary::Alarming() const {
  return violation_seen_ || !invalid_.empty() || !stream_errors_.empty() || truncated_;
}

std::string Summary::Text(const std::string& input_name) const {
  std::string o;
  auto line = [&](const std::string& s) { o += s + "\n"; };
  line(input_name + ": " + N(records_) + " record(s) in " + std::to_string(lines_) + " line(s), " +
       std::to_string(processes_.size()) + " process stream(s)");
  line("");
  line("Events:");
  for (const EventSpec& e : Events()) {
    auto it = counts_.find(e.name);
    char b[96];
    snprintf(b, sizeof b, "  %-20s %" PRIu64, e.name, it == counts_.end() ? uint64_t{0} : it->second);
    line(b);
  }
  for (const Process& p : processes_) {
    line("");
    line("Process " + I(p.pid) + " " + Q(p.name) + ": " + N(p.records) + " record(s), lines " +
         std::to_string(p.first_line) + "-" + std::to_string(p.last_line) + ", seq " + N(p.first_seq) + "-" +
         N(p.last_seq));
    line("  init:     " + (p.init.empty() ? std::string("no cordon_init seen (the stream starts later)")
                                          : p.init.substr(std::string("cordon_init: ").size())));
    line("  lockdown: " + (p.lockdown.empty() ? std::string("not locked down") : p.lockdown));
    for (const std::string& d : p.domains) line("  domain:   " + d);
    if (!p.gate_calls.empty()) {
      line("  gate calls (latest totals since cordon_init):");
      for (const auto& g : p.gate_calls) line("    " + g.second.first + ": " + N(g.second.second));
    }
    if (!p.killed.empty()) {
      line("  end:      killed by Cordon (" + p.killed + ")");
    } else {
      line("  end:      last record at line " + std::to_string(p.last_line) + ", seq " + N(p.last_seq) +
           " (" + p.last_event.substr(0, p.last_event.find(':')) + "); no kill recorded");
    }
  }
  line("");
  line("Violations: " + std::to_string(violations_.size()));
  for (const Line& v : violations_) line("  " + v.text);
  line("");
  line("Inspection findings: " + std::to_string(findings_.size()) + " (and " + N(gate_site_findings_) +
       " registered gate site(s))");
  for (const Line& f : findings_) line("  " + f.text);
  line("");
  uint64_t missing = 0, reported = 0;
  for (const StreamChecker::Gap& g : gaps_) missing += g.to - g.from + 1;
  for (const Process& p : processes_) reported += p.lost_reported;
  line("Lost records: " + N(missing) + " seq number(s) missing, " + N(reported) + " reported by audit_lost");
  for (const StreamChecker::Gap& g : gaps_) {
    line("  pid " + I(g.pid) + ": seq " + N(g.from) + (g.to > g.from ? ".." + N(g.to) : "") +
         " missing (before line " + std::to_string(g.line) + ")" +
         (g.reported ? ", reported by audit_lost" : ", NOT reported"));
  }
  line("");
  if (truncated_) {
    line(
        "Stream end: TRUNCATED: the last line has no newline, the writer stopped in the middle of a record "
        "(killed?)");
  } else if (lines_ == 0) {
    line("Stream end: the stream is empty");
  } else {
    line(
        "Stream end: ends on a whole record. Schema 1 has no end-of-stream record: a process killed from "
        "outside (SIGKILL) ends like one that exited; see each process's end above");
  }
  if (!authentication_.empty()) line("Authentication: " + authentication_);
  if (!invalid_.empty() || !stream_errors_.empty()) {
    line("");
    line("Problems: " + std::to_string(invalid_.size()) + " invalid line(s), " +
         std::to_string(stream_errors_.size()) +
         " break(s) of the stream's order (cordon-audit validate lists them)");
    for (const Line& l : invalid_) line("  line " + std::to_string(l.line) + ": " + l.text);
    for (const Line& l : stream_errors_) line("  line " + std::to_string(l.line) + ": " + l.text);
  }
  return o;
}

}  // namespace cordon::audit
