// cordon-audit: read Cordon's audit stream (schema cordon.audit/1,
// docs/audit.md).
//
//   cordon-audit summary [KEY] [FILE|-]
//   cordon-audit follow [KEY] [--json] [--pid PID] FILE|-
//   cordon-audit validate [KEY] [FILE|-]
//   cordon-audit schema
//   cordon-audit --help | --version
//   KEY: --key-file FILE | --key-env VAR (the stream's HMAC key: every
//   record must carry its valid mac)
//
// Exit status: 0 fine (valid; nothing to look at), 1 the stream is invalid
// (a forged or altered record too) or (summary) holds a violation or is
// damaged, 2 a usage error (a key that is not 64 hex digits too), 3 the
// input or the key file cannot be opened or read. Reports go to stdout,
// errors to stderr.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cordon/version.h"
#include "tools/cordon-audit/report.h"
#include "tools/cordon-audit/schema.h"

using namespace cordon::audit;

namespace {

constexpr int kOk = 0, kInvalid = 1, kUsage = 2, kIoError = 3;

constexpr char kUsageText[] =
    "usage: cordon-audit summary [KEY] [FILE|-]\n"
    "       cordon-audit follow [KEY] [--json] [--pid PID] FILE|-\n"
    "       cordon-audit validate [KEY] [FILE|-]\n"
    "       cordon-audit schema\n"
    "       cordon-audit --help | --version\n"
    "Reads Cordon's audit stream (schema cordon.audit/1, docs/audit.md): one JSON record per line.\n"
    "  summary    counts per event, each process's init, lockdown, domains and gate-call totals,\n"
    "             every violation in plain words, lost records, how the stream ends\n"
    "  follow     one line per record as it arrives: follows a growing FILE like tail -f\n"
    "             (stop with Ctrl-C, or --pid PID: when process PID has exited), reads a pipe\n"
    "             or - (stdin) to its end\n"
    "    --json     pass the valid records through unchanged instead (errors on stderr)\n"
    "    --pid PID  stop following FILE once process PID has exited and FILE is read\n"
    "  validate   check every line against the schema; each error with its line number\n"
    "  schema     print the JSON Schema of one record (draft 2020-12)\n"
    "FILE - or none (not for follow) reads standard input.\n"
    "KEY authenticates the records (each must carry the key's mac; without a key a mac is\n"
    "checked for its form only):\n"
    "    --key-file FILE  the stream's key: 64 hex digits, optionally a newline\n"
    "    --key-env VAR    the same, in environment variable VAR\n"
    "Exit status: 0 valid (summary: no violation, stream intact), 1 invalid lines, forged or\n"
    "altered records among them (summary: also a violation, lost records or a truncated end),\n"
    "2 usage error (a malformed key too), 3 cannot open or read the input or the key file.\n";

int UsageError(const std::string& why) {
  fprintf(stderr, "cordon-audit: %s\n%s", why.c_str(), kUsageText);
  return kUsage;
}

// Longer lines than this are refused without being held in memory.
constexpr size_t kMaxLine = 1 << 20;

// Lines of the input, one at a time. Following a regular file, the end of
// the file is a pause: it waits for more (and starts over if the file is
// truncated), until `watch_pid` has exited.
class LineReader {
 public:
  struct Line {
    std::string text;
    bool complete = true;   // false: the input ended inside this line
    bool too_long = false;  // longer than kMaxLine (text dropped)
  };

  LineReader(int fd, bool follow, pid_t watch_pid) : fd_(fd), follow_(follow), watch_pid_(watch_pid) {}

  // True with a line, false at the end or on an error (error() says which).
  bool Next(Line* out) {
    for (;;) {
      const size_t nl = buf_.find('\n', start_);
      if (nl != std::string::npos) {
        out->too_long = discarding_ || nl - start_ > kMaxLine;
        out->text = out->too_long ? std::string() : buf_.substr(start_, nl - start_);
        out->complete = true;
        discarding_ = false;
        start_ = nl + 1;
        return true;
      }
      if (buf_.size() - start_ > kMaxLine) {
        discarding_ = true;
        buf_.clear();
        start_ = 0;
      }
      if (start_ > 0) {
        buf_.erase(0, start_);
        start_ = 0;
      }
      char chunk[65536];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = strerror(errno);
        return false;
      }
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
        offset_ += static_cast<uint64_t>(n);
        continue;
      }
      if (follow_ && Wait()) continue;
      if (buf_.empty() && !discarding_) return false;
      out->too_long = discarding_;
      out->text = discarding_ ? std::string() : buf_;
      out->complete = false;
      buf_.clear();
      discarding_ = false;
      return true;
    }
  }

  const std::string& error() const { return error_; }

 private:
  // Whether `pid` has exited: gone, or a zombie that its parent has not
  // reaped yet (it writes no more either).
  static bool Exited(pid_t pid) {
    if (kill(pid, 0) != 0) return errno == ESRCH;
    char path[32];
    snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    FILE* f = fopen(path, "re");
    if (!f) return errno == ENOENT;
    // "pid (comm) S ...": the state follows the last ')' (comm may hold one).
    char buf[512];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char* paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
  }

  // At the end of a followed file: true to read again, false if it ended.
  bool Wait() {
    if (watch_pid_ > 0 && Exited(watch_pid_)) {
      // The writer is gone: what it wrote is all there is (one more read
      // catches what it wrote just before it exited).
      if (!drained_) {
        drained_ = true;
        return true;
      }
      return false;
    }
    struct stat st;
    if (fstat(fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) < offset_) {
      fprintf(stderr, "cordon-audit: the file was truncated; reading it from its start\n");
      lseek(fd_, 0, SEEK_SET);
      offset_ = 0;
      buf_.clear();
      start_ = 0;
      discarding_ = false;
    }
    const timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, nullptr);
    return true;
  }

  int fd_;
  bool follow_;
  pid_t watch_pid_;
  bool drained_ = false;
  std::string buf_;
  size_t start_ = 0;
  bool discarding_ = false;
  uint64_t offset_ = 0;
  std::string error_;
};

// The input named on the command line: FILE, or "-" (or none) for stdin.
struct Input {
  std::string name;  // for messages
  int fd = -1;
  bool regular = false;
  ~Input() {
    if (fd > 0) close(fd);
  }
};

bool OpenInput(const std::string& path, Input* in) {
  if (path.empty() || path == "-") {
    in->name = "<stdin>";
    in->fd = 0;
    return true;
  }
  in->name = path;
  in->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in->fd < 0) {
    fprintf(stderr, "cordon-audit: %s: cannot open: %s\n", path.c_str(), strerror(errno));
    return false;
  }
  struct stat st;
  if (fstat(in->fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    fprintf(stderr, "cordon-audit: %s: cannot read: %s\n", path.c_str(),
            S_ISDIR(st.st_mode) ? "a directory" : strerror(errno));
    return false;
  }
  in->regular = S_ISREG(st.st_mode);
  return true;
}

// The key the records are checked with, and what was seen of macs.
struct Authentication {
  const MacKey* key = nullptr;  // none: macs are checked for form only
  size_t with_mac = 0;          // records (valid in form) that carry one
  size_t forged = 0;            // with a key: records whose mac is missing or wrong
  // The closing words, or empty when there is nothing to say.
  std::string Words(size_t records) const {
    if (key != nullptr && forged == 0)
      return "every record authenticated by its mac (HMAC-SHA256 with the key)";
    if (key != nullptr)
      return std::to_string(forged) + " forged or altered record(s) (no valid mac), " +
             std::to_string(records) + " authenticated";
    if (with_mac == 0) return "";
    return std::to_string(with_mac) + " of " + std::to_string(records) +
           " record(s) carry a mac, NOT authenticated (no --key-file or --key-env given)";
  }
};

// One line as a record, or why it is not one (with a key, a record
// whose mac is missing or wrong is none: it was forged or altered).
cordon::Expected<Record> LineRecord(const LineReader::Line& l, Authentication* auth) {
  if (l.too_long) return cordon::Error{"line longer than " + std::to_string(kMaxLine) + " bytes"};
  if (!l.complete)
    return cordon::Error{
        "the last line has no newline: a truncated record (the writer stopped in the middle of it)"};
  if (l.text.empty()) return cordon::Error{"empty line"};
  auto r = ReadRecord(l.text);
  if (!r.ok()) return r;
  if (auth->key != nullptr) {
    if (std::string forged = Authenticate(l.text, r.value(), *auth->key); !forged.empty()) {
      ++auth->forged;
      return cordon::Error{forged};
    }
  }
  auth->with_mac += !r->mac.empty();
  return r;
}

// The key named by --key-file or --key-env. kOk, or the status after
// saying why on stderr.
int LoadKey(const std::string& file, const std::string& env, MacKey* key) {
  std::string text, where;
  if (!file.empty()) {
    where = file;
    const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "cordon-audit: %s: cannot open the key file: %s\n", file.c_str(), strerror(errno));
      return kIoError;
    }
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) text.append(buf, static_cast<size_t>(n));
      if (text.size() > 4096) break;  // no key is that long
    }
    const int read_errno = errno;
    close(fd);
    if (n < 0) {
      fprintf(stderr, "cordon-audit: %s: cannot read the key file: %s\n", file.c_str(), strerror(read_errno));
      return kIoError;
    }
  } else {
    where = "$" + env;
    const char* value = getenv(env.c_str());
    if (value == nullptr) return UsageError("--key-env " + env + ": the variable is not set");
    text = value;
  }
  auto parsed = ParseKey(text);
  if (!parsed.ok()) return UsageError(where + ": " + parsed.error());
  *key = parsed.value();
  return kOk;
}

// Reads the stream at `path` line by line and calls each(line number, the
// line, its record or why it is not one, the stream rules' verdict on it).
// `follow`: a regular file named on the command line is followed as it
// grows; anything else (a pipe, stdin) is read to its end. kOk, or
// kIoError after saying why on stderr.
template <typename Each>
int ReadStream(const std::string& path, bool follow, pid_t watch_pid, Input* in, StreamChecker* stream,
               Authentication* auth, Each each) {
  if (!OpenInput(path, in)) return kIoError;
  LineReader reader(in->fd, follow && in->regular && path != "-", watch_pid);
  LineReader::Line l;
  size_t line = 0;
  while (reader.Next(&l)) {
    ++line;
    const size_t macs_before = auth->with_mac;
    const auto r = LineRecord(l, auth);
    if (auth->key == nullptr && macs_before == 0 && auth->with_mac == 1)
      fprintf(stderr,
              "cordon-audit: %s:%zu: the records carry a mac, but no key was given (--key-file, "
              "--key-env): checked for form only, not authenticated\n",
              in->name.c_str(), line);
    each(line, l, r, r.ok() ? stream->Check(r.value(), line) : std::string());
  }
  if (reader.error().empty()) return kOk;
  fprintf(stderr, "cordon-audit: %s: cannot read: %s\n", in->name.c_str(), reader.error().c_str());
  return kIoError;
}

int Validate(const std::string& path, Authentication auth) {
  Input in;
  StreamChecker stream;
  size_t lines = 0, errors = 0, records = 0;
  const int status = ReadStream(path, false, 0, &in, &stream, &auth,
                                [&](size_t line, const LineReader::Line&, const cordon::Expected<Record>& r,
                                    const std::string& stream_error) {
                                  lines = line;
                                  records += r.ok();
                                  const std::string& error = r.ok() ? stream_error : r.error();
                                  if (error.empty()) return;
                                  ++errors;
                                  printf("%s:%zu: %s\n", in.name.c_str(), line, error.c_str());
                                });
  if (status != kOk) return status;
  const std::string words = auth.Words(records);
  const std::string also = words.empty() ? "" : "; " + words;
  if (errors == 0) {
    printf("%s: valid: %zu record(s)%s\n", in.name.c_str(), records, also.c_str());
    return kOk;
  }
  printf("%s: INVALID: %zu error(s) in %zu line(s)%s\n", in.name.c_str(), errors, lines, also.c_str());
  return kInvalid;
}

int Summarize(const std::string& path, Authentication auth) {
  Input in;
  StreamChecker stream;
  Summary summary;
  size_t lines = 0, records = 0;
  bool truncated = false;
  const int status = ReadStream(path, false, 0, &in, &stream, &auth,
                                [&](size_t line, const LineReader::Line& l, const cordon::Expected<Record>& r,
                                    const std::string& stream_error) {
                                  lines = line;
                                  truncated |= !l.complete;
                                  if (!r.ok()) return summary.AddInvalid(line, r.error());
                                  if (!stream_error.empty()) summary.AddStreamError(line, stream_error);
                                  summary.AddRecord(r.value(), line);
                                  ++records;
                                });
  if (status != kOk) return status;
  summary.SetGaps(stream.gaps());
  const std::string words = auth.Words(records);
  summary.SetAuthentication(
      words.empty() ? "none: no record carries a mac (the stream was written without a key)" : words);
  summary.End(lines, truncated);
  fputs(summary.Text(in.name).c_str(), stdout);
  return summary.Alarming() ? kInvalid : kOk;
}

// 2026-12-03T05:35:03.123456789Z
std::string Timestamp(uint64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char b[64];
  snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRIu64 "Z", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1000000000);
  return b;
}

// A process name for the terminal: escaped as in JSON, without the quotes.
std::string Printable(const std::string& s) {
  const std::string q = cordon::audit::json::Quote(s);
  return q.substr(1, q.size() - 2);
}

int Follow(const std::string& path, bool json, pid_t watch_pid, Authentication auth) {
  Input in;
  StreamChecker stream;
  Context context;
  bool bad = false;
  const int status = ReadStream(
      path, true, watch_pid, &in, &stream, &auth,
      [&](size_t line, const LineReader::Line& l, const cordon::Expected<Record>& r,
          const std::string& stream_error) {
        const std::string& error = r.ok() ? stream_error : r.error();
        if (!error.empty()) {
          fprintf(stderr, "cordon-audit: %s:%zu: %s\n", in.name.c_str(), line, error.c_str());
          bad = true;
        }
        if (!r.ok()) return;
        context.Note(r.value());
        if (json) {
          printf("%s\n", l.text.c_str());
        } else {
          printf("%s %s[%" PRId64 "/%" PRId64 "] #%" PRIu64 " %s%s\n", Timestamp(r->timestamp).c_str(),
                 Printable(r->process_name).c_str(), r->pid, r->tid, r->seq,
                 IsViolation(r.value()) ? "!! " : "", Describe(r.value(), context).c_str());
        }
        fflush(stdout);
      });
  if (status != kOk) return status;
  return bad ? kInvalid : kOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return UsageError("no command given");
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    fputs(kUsageText, stdout);
    return kOk;
  }
  if (command == "--version") {
    printf("cordon-audit %s (schema %s)\n", CORDON_VERSION_STRING, kSchemaName);
    return kOk;
  }
  if (command != "summary" && command != "follow" && command != "validate" && command != "schema")
    return UsageError(command[0] == '-' ? "unknown option " + command : "unknown command " + command);
  bool json = false;
  pid_t watch_pid = 0;
  std::string key_file, key_env;
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      fputs(kUsageText, stdout);
      return kOk;
    } else if (command == "follow" && a == "--json") {
      json = true;
    } else if (command == "follow" && a == "--pid") {
      if (i + 1 >= argc) return UsageError("--pid needs a process id");
      const std::string pid = argv[++i];
      if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos ||
          pid == "0")
        return UsageError("--pid wants a process id, not '" + pid + "'");
      watch_pid = static_cast<pid_t>(std::stol(pid));
    } else if (command != "schema" && (a == "--key-file" || a == "--key-env")) {
      if (!key_file.empty() || !key_env.empty()) return UsageError("one key only (--key-file or --key-env)");
      if (i + 1 >= argc || argv[i + 1][0] == '\0')
        return UsageError(a + (a == "--key-file" ? " needs a file" : " needs a variable name"));
      (a == "--key-file" ? key_file : key_env) = argv[++i];
    } else if (a.size() > 1 && a[0] == '-') {
      return UsageError("unknown option " + a + " for " + command);
    } else {
      files.push_back(a);
    }
  }
  if (command == "schema") {
    if (!files.empty()) return UsageError("schema takes no file");
    printf("%s\n", cordon::audit::json::Write(JsonSchema(), 2).c_str());
    return kOk;
  }
  if (files.size() > 1) return UsageError(command + " reads one stream, not " + std::to_string(files.size()));
  if (command == "follow" && files.empty()) return UsageError("follow needs FILE, or - for standard input");
  const std::string path = files.empty() ? "-" : files[0];
  MacKey key{};
  Authentication auth;
  if (!key_file.empty() || !key_env.empty()) {
    if (const int status = LoadKey(key_file, key_env, &key); status != kOk) return status;
    auth.key = &key;
  }
  if (command == "validate") return Validate(path, auth);
  if (command == "summary") return Summarize(path, auth);
  return Follow(path, json, watch_pid, auth);
}
