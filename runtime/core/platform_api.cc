// The C API's platform description (cordon_describe_platform).
#include <cstring>

#include "cordon/cordon.h"
#include "runtime/hardware/platform.h"

size_t cordon_describe_platform(char* buf, size_t size) {
  const std::string line = cordon::hw::DescribePlatform();
  if (buf != nullptr && size > 0) {
    const size_t n = line.size() < size - 1 ? line.size() : size - 1;
    memcpy(buf, line.data(), n);
    buf[n] = '\0';
  }
  return line.size();
}
