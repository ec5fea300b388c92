// libFuzzer target: cordon-audit's reader (tools/cordon-audit/) on an
// arbitrary stream, line by line as `summary` reads it: the strict JSON
// reader, the schema checks, the stream rules and the summary must never
// crash. A parsed value written back must parse again to the same text,
// and a record that passes must be ASCII.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tools/cordon-audit/json.h"
#include "tools/cordon-audit/report.h"
#include "tools/cordon-audit/schema.h"

using namespace cordon::audit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  StreamChecker stream;
  Summary summary;
  size_t line = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view l = text.substr(start, end - start);
    ++line;
    auto v = json::Parse(l);
    if (v.ok()) {
      const std::string once = json::Write(*v);
      auto again = json::Parse(once);
      if (!again.ok() || json::Write(*again) != once) abort();
    }
    auto r = ReadRecord(l);
    if (r.ok()) {
      for (const char c : l) {
        if (static_cast<unsigned char>(c) >= 0x80) abort();
      }
      const std::string error = stream.Check(*r, line);
      if (!error.empty()) summary.AddStreamError(line, error);
      summary.AddRecord(*r, line);
    } else {
      summary.AddInvalid(line, r.error());
    }
    start = end + 1;
  }
  summary.SetGaps(stream.gaps());
  summary.End(line, !text.empty() && text.back() != '\n');
  if (summary.Text("fuzz").empty()) abort();
  return 0;
}
