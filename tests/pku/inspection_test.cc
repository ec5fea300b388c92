// The runtime's inspection, for real in the PKU VM: what cordon_init found
// and neutralized, that a neutralized WRPKRU now traps, and that dlopen
// refuses libraries with WRPKRU or XRSTOR before any of their code runs.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstring>
#include <string>

#include "cordon/cordon.h"
#include "tests/support/child.h"

extern "C" {
void stray_wrpkru();  // in libplanted_real.so: a real WRPKRU, neutralized at init
int fixture_answer();
}

using cordon::testing::RunInChild;

namespace {

std::string g_fixture_dir;  // where the fixture libraries are (argv)

// Executable memory made before cordon_init, which it must inspect:
//  - an execute-only page (under PKU the kernel gives it its execute-only
//    key, so it cannot be read directly) holding a real WRPKRU;
//  - two adjacent executable mappings with a WRPKRU across the join.
unsigned char* g_xonly = nullptr;
unsigned char* g_join = nullptr;
constexpr size_t kPage = 4096;

void MakeExecutableFixtures() {
  // xor ecx,ecx; xor edx,edx; xor eax,eax; wrpkru; ret
  static const unsigned char kCode[] = {0x31, 0xc9, 0x31, 0xd2, 0x31, 0xc0, 0x0f, 0x01, 0xef, 0xc3};
  g_xonly = static_cast<unsigned char*>(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(g_xonly, MAP_FAILED);
  memcpy(g_xonly, kCode, sizeof kCode);
  ASSERT_EQ(mprotect(g_xonly, kPage, PROT_EXEC), 0);
  // Two pages of "add [rax], al" (00 00), 0F at the end of the first, 01 EF
  // at the start of the second; different protections keep them separate.
  g_join = static_cast<unsigned char*>(
      mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(g_join, MAP_FAILED);
  g_join[kPage - 1] = 0x0f;
  g_join[kPage] = 0x01;
  g_join[kPage + 1] = 0xef;
  ASSERT_EQ(mprotect(g_join, kPage, PROT_READ | PROT_EXEC), 0);
  ASSERT_EQ(mprotect(g_join + kPage, kPage, PROT_EXEC), 0);
}

class Inspection : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    MakeExecutableFixtures();
    ASSERT_EQ(cordon_init(nullptr), CORDON_OK);
  }
  static std::vector<cordon_inspection_entry> Report() {
    std::vector<cordon_inspection_entry> out(cordon_inspection_count());
    for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(cordon_inspection_get(i, &out[i]), CORDON_OK);
    return out;
  }
};

TEST_F(Inspection, ReportListsGateSitesAndWhatWasNeutralized) {
  size_t gate_sites = 0, libc_wrpkru = 0, loader_xrstor = 0, planted = 0, anonymous = 0;
  for (const auto& e : Report()) {
    const std::string object = e.object, symbol = e.symbol;
    if (e.verdict == 0) {
      ++gate_sites;
      EXPECT_EQ(e.action, 0);
      continue;
    }
    EXPECT_EQ(e.verdict, 1) << object << " " << symbol
                            << ": only real instructions may be left to neutralize";
    EXPECT_EQ(e.action, 1) << object;
    // The bytes are UD2 now.
    EXPECT_EQ(reinterpret_cast<const unsigned char*>(e.address)[0], 0x0f);
    EXPECT_EQ(reinterpret_cast<const unsigned char*>(e.address)[1], 0x0b);
    if (e.kind == 0 && object.find("libc.so") != std::string::npos && symbol == "pkey_set") ++libc_wrpkru;
    if (e.kind == 1 && object.find("ld-linux") != std::string::npos) ++loader_xrstor;
    if (e.kind == 0 && object.find("libplanted_real") != std::string::npos) ++planted;
    if (object == "[anonymous]") ++anonymous;
  }
  EXPECT_EQ(gate_sites, cordon_gate_site_count());
  EXPECT_EQ(libc_wrpkru, 1u) << "glibc's pkey_set";
  EXPECT_GE(loader_xrstor, 1u) << "ld.so's lazy-binding trampolines";
  EXPECT_EQ(planted, 1u);
  EXPECT_EQ(anonymous, 2u) << "the two fixtures made before init";
}

TEST_F(Inspection, ExecuteOnlyAndJoinedMappingsAreInspected) {
  bool xonly = false, join = false;
  for (const auto& e : Report()) {
    if (e.address == reinterpret_cast<uintptr_t>(g_xonly) + 6) xonly = e.action == 1 && e.verdict == 1;
    if (e.address == reinterpret_cast<uintptr_t>(g_join) + kPage - 1) join = e.action == 1;
  }
  EXPECT_TRUE(xonly) << "the WRPKRU in the execute-only page";
  EXPECT_TRUE(join) << "the WRPKRU across two adjacent mappings";
  auto o = RunInChild([] { reinterpret_cast<void (*)()>(g_xonly)(); });
  EXPECT_EQ(o.signal, SIGILL) << "neutralized: UD2 where the WRPKRU was";
}

TEST_F(Inspection, NeutralizedInstructionsTrap) {
  auto o = RunInChild([] { stray_wrpkru(); });
  EXPECT_EQ(o.signal, SIGILL);
  // glibc's pkey_set would open a key by writing PKRU; now it traps.
  o = RunInChild([] { (void)pkey_set(1, 0); });
  EXPECT_EQ(o.signal, SIGILL);
  EXPECT_EQ(fixture_answer(), 42) << "the rest of the library still works";
}

TEST_F(Inspection, DlopenRefusesLibrariesWithWrpkruBeforeTheyRun) {
  for (const char* lib : {"libplanted_hidden.so", "libunsafe_fixture.so"}) {
    const std::string path = g_fixture_dir + "/" + lib;
    void* h = dlopen(path.c_str(), RTLD_NOW);
    EXPECT_EQ(h, nullptr) << path;
    const char* err = dlerror();
    ASSERT_NE(err, nullptr);
    EXPECT_NE(std::string(err).find("refused by the inspector"), std::string::npos) << err;
  }
  const std::string clean = g_fixture_dir + "/libclean_fixture.so";
  void* h = dlopen(clean.c_str(), RTLD_NOW);
  ASSERT_NE(h, nullptr) << dlerror();
  auto fn = reinterpret_cast<int (*)()>(dlsym(h, "clean_answer"));
  ASSERT_NE(fn, nullptr);
  EXPECT_EQ(fn(), 7);
  // Already loaded: a second dlopen is not inspected again and succeeds.
  void* again = dlopen(clean.c_str(), RTLD_NOW);
  EXPECT_EQ(again, h);
  dlclose(again);
  dlclose(h);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
    return 2;
  }
  g_fixture_dir = argv[1];
  return RUN_ALL_TESTS();
}
