// startup_scan: what the runtime's initial inspection adds to start-up for
// a program that links libc, libstdc++ and libcrypto (this one). It times
// the inspection of every executable mapping of this process, as
// cordon_init() runs it (search, Capstone context, classification), cold
// (the first time) and warm (best of 20). Then, once, what cordon_init()
// does with it (EnforceOnProcess: inspect, overwrite the real WRPKRU/XRSTOR
// with UD2, inspect again to check); run it with LD_BIND_NOW=1, as
// programs linked with Cordon run. Needs no PKU.
#include <openssl/crypto.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <set>

#include "cordon/cordon.h"
#include "runtime/enforce/enforce.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/platform.h"
#include "runtime/inspector/process.h"

using namespace cordon::inspector;
using namespace cordon::enforce;
using Clock = std::chrono::steady_clock;

int main() {
  std::cout << "platform: " << cordon::hw::DescribePlatform() << "\n";
  std::cout << "linked: " << OpenSSL_version(OPENSSL_VERSION) << ", libstdc++, libc\n";
  std::set<uint64_t> sites;
  for (size_t i = 0; i < cordon::gates::SiteCount(); ++i) sites.insert(cordon::gates::SiteAt(i).address);
  auto once = [&](size_t* bytes, size_t* findings) {
    const auto t0 = Clock::now();
    std::string error;
    auto dis = Disassembler::Open(&error);
    auto f = InspectProcess("self", sites, false, *dis, /*describe_gate_sites=*/false);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    *findings = f.ok() ? f->size() : 0;
    *bytes = 0;
    if (auto maps = ExecutableMappings("self"); maps.ok()) {
      for (const auto& m : *maps) *bytes += m.end - m.start;
    }
    return ms;
  };
  size_t bytes = 0, findings = 0;
  const double cold = once(&bytes, &findings);
  double warm = 1e9;
  for (int i = 0; i < 20; ++i) warm = std::min(warm, once(&bytes, &findings));
  printf("executable mappings: %.1f MB; occurrences: %zu (gate sites included)\n", bytes / 1e6, findings);
  printf("inspection at start-up: %.2f ms cold, %.2f ms warm\n", cold, warm);
  std::vector<ReportEntry> report;
  const auto t0 = Clock::now();
  const int status = EnforceOnProcess(CORDON_INSPECT_NEUTRALIZE, &report).status();
  const double enforce = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  size_t neutralized = 0;
  for (const auto& e : report) neutralized += e.action == Action::kNeutralized;
  printf(
      "inspection, neutralization and check, as cordon_init() runs them: %.2f ms (status %d, %zu "
      "neutralized)\n",
      enforce, status, neutralized);
  return 0;
}
