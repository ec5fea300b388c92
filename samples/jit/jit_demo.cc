// JIT demo: a Brainfuck compiler (bf.h) that publishes its x86-64 code
// through Cordon's code region, before and after cordon_lockdown(), and
// says in plain words what each step showed:
//   1. the compiled program's output equals the reference interpreter's;
//   2. programs whose constants plant WRPKRU/XRSTOR byte patterns are
//      refused (CORDON_E_UNSAFE_CODE) when the JIT emits constants naively,
//      and accepted, and correct, once it splits them;
//   3. a write into published code faults: SIGSEGV, SEGV_ACCERR, at the
//      address written;
//   4. a thread flipping bytes of the staging buffer during publishes never
//      makes a pattern executable: what runs is what was scanned;
//   5. after the lockdown, mprotect(PROT_EXEC) on shellcode stops the
//      process (a forked child) with the violation status 70.
// Exit status 0 means every check held; each failed one prints "FAILED".
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "cordon/cordon.h"
#include "samples/jit/bf.h"

namespace {

int g_failures = 0;

void Check(bool ok, const char* what) {
  if (!ok) {
    ++g_failures;
    printf("  FAILED: %s\n", what);
  }
}

// A byte the compiler cannot fold into an immediate: this program's own
// code must not hold the patterns it builds (cordon_init() inspects it).
uint32_t Opaque(uint32_t v) {
  asm volatile("" : "+r"(v));
  return v;
}
uint32_t FromBytes(uint32_t b0, uint32_t b1, uint32_t b2) {
  return Opaque(b0) | Opaque(b1) << 8 | Opaque(b2) << 16;
}

double Seconds() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

uint64_t Fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// "accepted", or the refusal by name and number.
std::string StatusWords(int s) {
  if (s == CORDON_OK) return "accepted";
  if (s == CORDON_E_UNSAFE_CODE) return "refused with CORDON_E_UNSAFE_CODE (" + std::to_string(s) + ")";
  return std::string("refused: ") + cordon_strerror(s) + " (" + std::to_string(s) + ")";
}

std::string Reference(const std::string& source) {
  std::string out, error;
  if (!bf::Interpret(source, "", &out, &error)) {
    printf("  FAILED: the interpreter stopped: %s\n", error.c_str());
    ++g_failures;
  }
  return out;
}

bool CompileOrSay(const std::string& source, bf::Constants constants, bf::Code* code, size_t* ops = nullptr) {
  bf::Program program;
  std::string error;
  if (!bf::Parse(source, &program, &error) || !bf::Compile(program, constants, code, &error)) {
    printf("  FAILED: compile: %s\n", error.c_str());
    ++g_failures;
    return false;
  }
  if (ops != nullptr) *ops = program.ops.size();
  return true;
}

// The Sierpinski program uses its first 135 cells; the planted programs
// reach cells millions away and get the whole tape cleared.
constexpr size_t kSierpinskiCells = 4096;

std::string Run(void* fn, bf::Tape* tape, size_t cells = kSierpinskiCells) {
  tape->Clear(cells);
  bf::Io io;
  reinterpret_cast<bf::CompiledFn>(fn)(tape->cells(), &io, &bf::Io::Out, &bf::Io::In);
  return io.output;
}

// Step 1: compile, reserve a block, publish into it, run, compare.
void* PublishAndRun(const char* when, const std::string& source, const std::string& expected, bf::Tape* tape,
                    bf::Code* code_out) {
  bf::Code code;
  size_t ops = 0;
  if (!CompileOrSay(source, bf::Constants::kSplit, &code, &ops)) return nullptr;
  void* block = nullptr;
  int s = cordon_code_reserve(code.bytes.size(), &block);
  Check(s == CORDON_OK, "cordon_code_reserve");
  if (s != CORDON_OK) return nullptr;
  s = cordon_code_publish(block, code.bytes.data(), code.bytes.size());
  printf(
      "  %s: %zu Brainfuck commands -> %zu ops -> %zu bytes of x86-64 (%zu constants split), published "
      "at %p: %s\n",
      when, source.size(), ops, code.bytes.size(), code.splits, block, cordon_strerror(s));
  Check(s == CORDON_OK, "cordon_code_publish");
  if (s != CORDON_OK) return nullptr;
  const std::string got = Run(block, tape);
  printf("  ran it: %zu bytes of output, %s the interpreter's\n", got.size(),
         got == expected ? "identical to" : "DIFFERENT from");
  Check(got == expected, "compiled output equals the interpreter's");
  if (code_out != nullptr) *code_out = std::move(code);
  return block;
}

// ---- Step 3: a write primitive aimed at published code ----
volatile sig_atomic_t g_faults = 0;
volatile int g_fault_code = 0;
void* volatile g_fault_addr = nullptr;

// The write below is "movb $0xc3, (%rdi)", C6 07 C3: the handler records
// the fault and resumes after it.
void OnSegv(int, siginfo_t* info, void* uc_void) {
  auto* uc = static_cast<ucontext_t*>(uc_void);
  auto* rip = reinterpret_cast<const uint8_t*>(uc->uc_mcontext.gregs[REG_RIP]);
  if (rip[0] != 0xc6 || rip[1] != 0x07) _exit(99);  // not the probe: give up
  g_fault_code = info->si_code;
  g_fault_addr = info->si_addr;
  g_faults = g_faults + 1;
  uc->uc_mcontext.gregs[REG_RIP] += 3;
}

void WriteByte(void* target) {
  asm volatile("movb $0xc3, (%0)" : : "D"(target) : "memory");
}

void StepWriteFaults(void* block, const bf::Code& code, const std::string& expected, bf::Tape* tape) {
  printf("step 3: untrusted code writes into published code\n");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  int s = cordon_sigaction(SIGSEGV, &sa, nullptr);
  Check(s == CORDON_OK, "cordon_sigaction(SIGSEGV)");
  // The byte after the prologue (21 bytes): the program's first instruction.
  uint8_t* target = static_cast<uint8_t*>(block) + 21;
  const uint8_t before = *target;
  WriteByte(target);
  printf("  wrote 0xc3 to %p: %s, si_code %d (%s), si_addr %p\n", static_cast<void*>(target),
         g_faults == 1 ? "SIGSEGV" : "no fault", g_fault_code,
         g_fault_code == SEGV_ACCERR ? "SEGV_ACCERR" : "?", g_fault_addr);
  Check(g_faults == 1, "the write faulted once");
  Check(g_fault_code == SEGV_ACCERR, "si_code is SEGV_ACCERR (published pages are read+execute, key 0)");
  Check(g_fault_addr == target, "si_addr is the address written");
  Check(*target == before && memcmp(block, code.bytes.data(), code.bytes.size()) == 0,
        "the published bytes are unchanged");
  const std::string got = Run(block, tape);
  printf("  the code is unchanged and still runs: output %s\n", got == expected ? "correct" : "WRONG");
  Check(got == expected, "output after the write attempt");
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = 0;
  Check(cordon_sigaction(SIGSEGV, &sa, nullptr) == CORDON_OK, "SIGSEGV back to SIG_DFL");
}

// ---- Step 2: planted patterns ----
struct Plant {
  const char* what;
  std::string source;
  bool planted;  // whether naive code must hold a pattern
};

void StepPlants(bf::Tape* tape) {
  printf("step 2: programs whose constants plant WRPKRU and XRSTOR bytes\n");
  // Built from opaque bytes, so that this program's code holds neither.
  const uint32_t wrpkru_distance = FromBytes(0x0f, 0x01, 0xef);  // 0F 01 EF 00: WRPKRU
  const uint32_t xrstor_distance = FromBytes(0x0f, 0xae, 0x28);  // 0F AE 28 00: XRSTOR [rax]
  const uint32_t fifteen = Opaque(0x0f);
  std::vector<Plant> plants;
  // ">" x 0x00EF010F then "+" x 72 "." folds to add byte [rbx+0x00EF010F], 72
  // and movzx edi, byte [rbx+0x00EF010F]: the displacement is WRPKRU.
  plants.push_back({"cell offset 0x00ef010f (displacements 0f 01 ef 00 = WRPKRU)",
                    std::string(wrpkru_distance, '>') + std::string(72, '+') + "." +
                        std::string(wrpkru_distance, '<') + std::string(73, '+') + ".",
                    true});
  // ">" x 0x0028AE0F before a loop flushes to add rbx, 0x0028AE0F: the
  // immediate is XRSTOR [rax].
  plants.push_back({"cell offset and pointer move 0x0028ae0f (bytes 0f ae 28 00 = XRSTOR [rax])",
                    std::string(xrstor_distance, '>') + std::string(74, '+') + "[.-]" +
                        std::string(xrstor_distance, '<') + std::string(75, '+') + ".",
                    true});
  // A loop whose forward jump is 0x0028AE0F bytes: je's rel32 is XRSTOR
  // [rax]. The offset counts from the end of the je to the end of the
  // loop's jne: the body, then cmp (3) and jne (6). The body "+.+." then
  // k times "." then ">+<" is add (3), out (9), add (3), out (9), k outs
  // (9 each) and, flushed at "]", add byte [rbx+1] (4). The cell is 0, so
  // the loop never runs; the program prints 'A'.
  const size_t body = xrstor_distance - 9;
  const size_t k = (body - 28) / 9;
  plants.push_back({"loop of 0x0028ae0f bytes (je rel32 bytes 0f ae 28 00 = XRSTOR [rax])",
                    "[+.+." + std::string(k, '.') + ">+<]" + std::string(65, '+') + ".",
                    (body - 28) % 9 == 0});
  // 0x0F as a displacement, an add and a multiply factor: naive code holds
  // 0F bytes that are not opcodes (no pattern here, split all the same).
  plants.push_back(
      {"cell offset 15, add 15, multiply by 15 (0f bytes in a displacement and immediates)",
       std::string(fifteen, '>') + std::string(fifteen, '+') + "[<" + std::string(fifteen, '+') + ">-]<.",
       false});
  for (const Plant& p : plants) {
    printf("  program: %s\n", p.what);
    const std::string expected = Reference(p.source);
    bf::Code naive, split;
    if (!CompileOrSay(p.source, bf::Constants::kNaive, &naive)) continue;
    if (!CompileOrSay(p.source, bf::Constants::kSplit, &split)) continue;
    const std::vector<size_t> hits = bf::PatternOffsets(naive.bytes.data(), naive.bytes.size());
    printf("    naive constants: %zu bytes, WRPKRU or XRSTOR at %zu offsets", naive.bytes.size(),
           hits.size());
    for (size_t h : hits) {
      printf("%s %zu (%02x %02x %02x)", h == hits[0] ? ":" : ",", h, naive.bytes[h], naive.bytes[h + 1],
             naive.bytes[h + 2]);
    }
    printf("\n");
    fflush(stdout);
    void* fn = nullptr;
    int s = cordon_code_load(naive.bytes.data(), naive.bytes.size(), &fn);
    fflush(stderr);
    printf("    publish: %s\n", StatusWords(s).c_str());
    Check(hits.empty() != p.planted,
          p.planted ? "the naive code holds the planted pattern" : "no pattern planted");
    if (hits.empty()) {
      Check(s == CORDON_OK, "naive code without a pattern is accepted");
    } else {
      Check(s == CORDON_E_UNSAFE_CODE, "naive code with a pattern is refused with CORDON_E_UNSAFE_CODE");
    }
    if (fn != nullptr) cordon_code_release(fn);
    fn = nullptr;
    const std::vector<size_t> split_hits = bf::PatternOffsets(split.bytes.data(), split.bytes.size());
    s = cordon_code_load(split.bytes.data(), split.bytes.size(), &fn);
    printf(
        "    split constants: %zu bytes, %zu constants split, WRPKRU or XRSTOR at %zu offsets; publish: %s\n",
        split.bytes.size(), split.splits, split_hits.size(), StatusWords(s).c_str());
    Check(split_hits.empty(), "split code holds no pattern");
    Check(s == CORDON_OK, "split code is accepted");
    if (s != CORDON_OK) continue;
    const std::string got = Run(fn, tape, bf::kTapeCells);
    printf("    ran it: output %s the interpreter's\n", got == expected ? "identical to" : "DIFFERENT from");
    Check(got == expected, "split code's output equals the interpreter's");
    Check(cordon_code_release(fn) == CORDON_OK, "release");
  }
}

// ---- Step 4: racing writes to the staging buffer ----
void StepRace(const std::string& source, const std::string& expected, bf::Tape* tape) {
  printf("step 4: a second thread flips bytes in the staging buffer during publishes\n");
  bf::Code code;
  if (!CompileOrSay(source, bf::Constants::kSplit, &code)) return;
  // The staging buffer: the code, then three bytes after its ret that the
  // racer turns into a WRPKRU (0F 01 EF) and back (0F 01 CC) all the time.
  const size_t n = code.bytes.size();
  std::vector<uint8_t> staging(code.bytes);
  staging.push_back(static_cast<uint8_t>(Opaque(0x0f)));
  staging.push_back(static_cast<uint8_t>(Opaque(0x01)));
  staging.push_back(0xcc);
  std::vector<uint8_t> clean(staging);
  const uint64_t clean_hash = Fnv1a(clean.data(), clean.size());
  const auto armed = static_cast<uint8_t>(Opaque(0xef));
  std::atomic<bool> stop{false};
  volatile uint8_t* flip = &staging[n + 2];
  // Each value is held for a short spin: a vCPU of QEMU's single-threaded
  // TCG is switched only between translated blocks, so a store and its
  // undo in one block would never be seen by the other vCPU.
  auto hold = [] {
    for (volatile int j = 0; j < 16; j = j + 1) {
    }
  };
  std::thread racer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      *flip = armed;
      hold();
      *flip = 0xcc;
      hold();
    }
  });
  // Every refusal makes the runtime print where the pattern was; those
  // hundreds of lines go nowhere for this step (fd 2 closed, then restored).
  fflush(stderr);
  const int saved_stderr = dup(2);
  close(2);
  int published = 0, refused = 0, wrong = 0;
  // 400 rounds; more (up to a minute) until both outcomes have happened;
  // fewer if 400 would take longer than 30 s (under TCG, where the racer's
  // vCPU and the publishing one share one host thread).
  constexpr int kRounds = 400;
  const double start = Seconds();
  int rounds = 0;
  for (;; ++rounds) {
    const bool both = published > 0 && refused > 0;
    const double elapsed = Seconds() - start;
    if (both && (rounds >= kRounds || elapsed > 30)) break;
    if (elapsed > 60) break;
    void* fn = nullptr;
    const int s = cordon_code_load(staging.data(), staging.size(), &fn);
    if (s == CORDON_E_UNSAFE_CODE) {
      ++refused;
      continue;
    }
    if (s != CORDON_OK) {
      printf("  FAILED: publish returned %s\n", cordon_strerror(s));
      ++g_failures;
      break;
    }
    ++published;
    const auto* p = static_cast<const uint8_t*>(fn);
    const bool same = Fnv1a(p, clean.size()) == clean_hash && memcmp(p, clean.data(), clean.size()) == 0;
    const bool no_pattern = bf::PatternOffsets(p, clean.size() + 1).empty();
    if (!same || !no_pattern || Run(fn, tape) != expected) ++wrong;
    cordon_code_release(fn);
  }
  stop = true;
  racer.join();
  if (saved_stderr >= 0) {
    dup2(saved_stderr, 2);
    close(saved_stderr);
  }
  printf(
      "  %d publishes in %.1f s: %d accepted, each holding exactly the clean bytes (FNV-1a %016llx) and "
      "running "
      "correctly; %d refused with CORDON_E_UNSAFE_CODE (the bytes scanned held the WRPKRU); %d otherwise\n",
      published + refused, Seconds() - start, published, static_cast<unsigned long long>(clean_hash), refused,
      wrong);
  Check(wrong == 0, "every accepted publish holds the scanned clean bytes and runs correctly");
  Check(published > 0 && refused > 0, "the race produced both outcomes");
}

// ---- Step 5: mprotect(PROT_EXEC) after lockdown ----
void StepMprotect() {
  printf("step 5: after the lockdown, mprotect(PROT_EXEC) on shellcode, in a forked child\n");
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) _exit(2);
    const uint8_t shellcode[] = {0xb8, 42, 0, 0, 0, 0xc3};  // mov eax, 42; ret
    memcpy(m, shellcode, sizeof shellcode);
    if (mprotect(m, 4096, PROT_READ | PROT_EXEC) != 0) _exit(3);
    _exit(reinterpret_cast<int (*)()>(m)() == 42 ? 4 : 5);  // the shellcode ran
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) {
    Check(false, "fork and wait");
    return;
  }
  if (WIFEXITED(status)) {
    printf("  the child stopped with exit status %d%s\n", WEXITSTATUS(status),
           WEXITSTATUS(status) == 70  ? " (the lockdown's violation status): the shellcode never ran"
           : WEXITSTATUS(status) == 4 ? ": the shellcode RAN"
                                      : "");
  } else {
    printf("  the child was killed by signal %d\n", WTERMSIG(status));
  }
  Check(WIFEXITED(status) && WEXITSTATUS(status) == 70, "the child exits with status 70");
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int s = cordon_init(nullptr);
  if (s != CORDON_OK) {
    printf("cordon_init: %s\n", cordon_strerror(s));
    return 1;
  }
  bf::Tape tape;
  if (!tape.ok()) {
    printf("no memory for the tape\n");
    return 1;
  }
  const std::string program = bf::SierpinskiProgram(63, 32, 1);
  const std::string expected = Reference(program);
  printf("step 1: a Sierpinski triangle in Brainfuck, compiled and published through the code region\n");
  bf::Code code;
  void* before = PublishAndRun("before lockdown", program, expected, &tape, &code);
  fwrite(expected.data(), 1, expected.size(), stdout);

  s = cordon_lockdown();
  printf("cordon_lockdown: %s\n", cordon_strerror(s));
  if (s != CORDON_OK) return 1;

  void* after = PublishAndRun("after lockdown", program, expected, &tape, nullptr);
  Check(before == nullptr || Run(before, &tape) == expected, "code published before the lockdown still runs");
  if (after != nullptr) Check(cordon_code_release(after) == CORDON_OK, "release");

  StepPlants(&tape);
  if (before != nullptr) StepWriteFaults(before, code, expected, &tape);
  StepRace(program, expected, &tape);
  StepMprotect();

  if (before != nullptr) Check(cordon_code_release(before) == CORDON_OK, "release");
  printf("%s\n", g_failures == 0 ? "all checks held" : "SOME CHECKS FAILED");
  return g_failures == 0 ? 0 : 1;
}
