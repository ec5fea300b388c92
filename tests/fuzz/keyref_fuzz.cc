// libFuzzer target: the key reference parser (cordon::keyref::Parse,
// tools/cordon-key/reference.cc), which the provider's decoder runs on
// whatever file a program names. It must never crash; a reference it
// accepts must satisfy CheckFields, and Format must write it back as the
// very bytes read (the format has one encoding per reference; the one
// latitude is the armour's final newline, which an editor may drop), which
// Parse then reads to the same fields. A refusal's reason, which the
// decoder passes to OpenSSL's error queue, must be short printable ASCII.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tools/cordon-key/reference.h"

using cordon::keyref::KeyReference;

namespace {

[[noreturn]] void Fail(const char* what) {
  fprintf(stderr, "keyref_fuzz: %s\n", what);
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string file(reinterpret_cast<const char*>(data), size);
  KeyReference ref;
  std::string error;
  if (!cordon::keyref::Parse(file, &ref, &error)) {
    if (error.empty()) Fail("a refusal without a reason");
    // The decoder logs it through OpenSSL: printable ASCII only, and short.
    if (error.size() > 512) Fail("a refusal longer than 512 bytes");
    for (const char c : error) {
      if (c < 0x20 || c > 0x7e) Fail("a refusal with a byte outside printable ASCII");
    }
    return 0;
  }
  std::string why;
  if (!cordon::keyref::CheckFields(ref, &why)) Fail("accepted fields that CheckFields refuses");
  const std::string again = cordon::keyref::Format(ref);
  if (again != file && again != file + "\n")
    Fail("accepted a file that is not the one encoding of its reference");
  KeyReference back;
  if (!cordon::keyref::Parse(again, &back, &why) || back.path != ref.path || back.type != ref.type ||
      back.public_sha256 != ref.public_sha256)
    Fail("Format's output does not parse back to the same reference");
  return 0;
}
