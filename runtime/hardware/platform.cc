// Platform description (see platform.h).
#include "runtime/hardware/platform.h"

#include <cpuid.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <memory>

namespace cordon::hw {
namespace {

std::string CpuModel() {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen("/proc/cpuinfo", "re"), fclose);
  char line[512];
  while (f && fgets(line, sizeof line, f.get()) != nullptr) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char* v = strchr(line, ':');
    if (v == nullptr) break;
    std::string model = v + 1;
    while (!model.empty() && (model.front() == ' ' || model.front() == '\t')) model.erase(0, 1);
    while (!model.empty() && (model.back() == '\n' || model.back() == ' ')) model.pop_back();
    return model;
  }
  return "unknown CPU";
}

}  // namespace

bool CpuHasXsavec() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_count(0xd, 1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (eax >> 1) & 1;
}

bool UnderTcg() {
  unsigned eax, ebx, ecx, edx;
  __cpuid(0x40000000, eax, ebx, ecx, edx);
  char vendor[13] = {};
  memcpy(vendor, &ebx, 4);
  memcpy(vendor + 4, &ecx, 4);
  memcpy(vendor + 8, &edx, 4);
  return strcmp(vendor, "TCGTCGTCGTCG") == 0;
}

std::string DescribePlatform() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool leaf7 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0;
  std::string features;
  auto add = [&](bool has, const char* name) {
    if (!has) return;
    if (!features.empty()) features += ", ";
    features += name;
  };
  add(leaf7 && ((ecx >> 3) & 1), "pku");
  add(leaf7 && ((ecx >> 4) & 1), "ospke");
  add(CpuHasXsavec(), "xsavec");
  std::string out = CpuModel() + " (" + (features.empty() ? "no pku" : features) + ")";
  utsname u{};
  if (uname(&u) == 0) out += std::string(", Linux ") + u.release + " " + u.machine;
  return out;
}

}  // namespace cordon::hw
