// What a record means, in plain words, and the summary of a whole stream:
// shared by `cordon-audit follow` and `cordon-audit summary`.
#ifndef CORDON_TOOLS_CORDON_AUDIT_REPORT_H_
#define CORDON_TOOLS_CORDON_AUDIT_REPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tools/cordon-audit/schema.h"

namespace cordon::audit {

// What a reader learns from earlier records to describe later ones: the
// names of the domains each process created.
class Context {
 public:
  void Note(const Record& r);
  // `domain 1 "vault"`, or `domain 1` when its creation was not seen.
  std::string Domain(int64_t pid, int64_t domain) const;

 private:
  std::map<std::pair<int64_t, int64_t>, std::string> domains_;
};

// The record's event in one line of plain words (no timestamp or process).
std::string Describe(const Record& r, const Context& c);

// Something to look at: a refused system call, a protection-key fault, a
// refused publish or finding, a failed lockdown or release, lost records.
bool IsViolation(const Record& r);

// "0x1f": how the stream writes pointers.
std::string Hex(uint64_t v);

// The summary of one stream, fed line by line.
class Summary {
 public:
  void AddRecord(const Record& r, size_t line);
  void AddInvalid(size_t line, const std::string& error);
  void AddStreamError(size_t line, const std::string& error) { stream_errors_.push_back({line, error}); }
  void SetGaps(const std::vector<StreamChecker::Gap>& gaps) { gaps_ = gaps; }
  // What authenticated the records, in words.
  void SetAuthentication(const std::string& words) { authentication_ = words; }
  // The input ended; `truncated`: its last line had no newline.
  void End(size_t lines, bool truncated);

  std::string Text(const std::string& input_name) const;
  // Whether the stream holds anything to look at (the status 1 of summary).
  bool Alarming() const;

 private:
  struct Line {
    size_t line;
    std::string text;
  };
  struct Process {
    int64_t pid;
    std::string name;
    size_t first_line = 0, last_line = 0;
    uint64_t first_seq = 0, last_seq = 0;
    std::string init;      // the cordon_init record, described
    std::string lockdown;  // empty: none seen
    bool lockdown_failed = false;
    std::vector<std::string> domains;
    std::string killed;  // the record that says the process was killed
    std::string last_event;
    uint64_t records = 0;
    uint64_t lost_reported = 0;
    // Latest totals per (domain, entry): the counts are since cordon_init.
    std::map<std::pair<int64_t, int64_t>, std::pair<std::string, uint64_t>> gate_calls;
  };
  Process& ProcessOf(const Record& r, size_t line);

  Context context_;
  std::vector<Process> processes_;     // in order of first appearance
  std::map<int64_t, size_t> current_;  // pid -> its latest stream in processes_
  std::map<std::string, uint64_t> counts_;
  std::vector<Line> violations_;
  std::vector<Line> findings_;
  uint64_t gate_site_findings_ = 0;
  std::vector<Line> invalid_;
  std::vector<Line> stream_errors_;
  std::vector<StreamChecker::Gap> gaps_;
  bool violation_seen_ = false;
  uint64_t records_ = 0;
  size_t lines_ = 0;
  bool truncated_ = false;
  std::string authentication_;
};

}  // namespace cordon::audit

#endif
