// The judge of attack tests: a random secret, drawn at run time outside the
// attacked process, goes straight into the child's trusted memory; after the
// attack the judge, from outside, searches the child's untrusted memory
// (through /proc/<pid>/mem) and everything it wrote (stdout, stderr, and
// what it handed over as evidence) for the secret's bytes.
//
// Test side:
//   const Verdict v = JudgeAttack([] {
//     const uint8_t* secret = LoadJudgeSecret();   // after cordon_init()
//     ...lockdown, then the attack...
//     Evidence(buf, n);                             // whatever the attack read
//   });                                             // ExposeToJudge() at the end
//   EXPECT_FALSE(v.leaked) << v.leak_where;
#ifndef CORDON_TESTS_SUPPORT_JUDGE_H_
#define CORDON_TESTS_SUPPORT_JUDGE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "cordon/cordon.h"
#include "tests/support/child.h"

namespace cordon::testing {

inline constexpr size_t kJudgeSecretSize = 32;

struct Verdict {
  ChildOutcome outcome;  // as RunInChild: exit code, or signal + si_code/si_pkey/si_addr, stderr
  std::string out;       // the child's stdout
  bool leaked = false;   // the secret (raw bytes, or hex in either case) was found
  // Where, "; "-separated: "memory 0x...-0x... <mapping> at 0x...", "stdout", "stderr", "evidence".
  std::string leak_where;
  bool memory_scanned = false;  // the child reached ExposeToJudge() and its untrusted memory was scanned
};

// Judge side (the test process): forks, draws a random secret with
// getrandom (after the fork, so the child never inherits it), hands it to the
// child through a socket that only trusted code reads, runs attack() in the
// child and then ExposeToJudge(). Any 8 consecutive secret bytes (raw), or 16
// consecutive hex digits of it (either case), aligned to a quarter of the
// secret, count as a leak.
Verdict JudgeAttack(const std::function<void()>& attack);

// Child side, after cordon_init() and before cordon_lockdown(): moves the
// judge's secret straight into trusted memory (read(2) by trusted code,
// through a gate, into cordon_malloc'd memory), and tells the judge the keys
// of every domain that exists now: pages under those keys are not scanned.
// Returns the secret's address (kJudgeSecretSize bytes); untrusted memory
// never holds it. Exits 1 with a message outside JudgeAttack.
const uint8_t* LoadJudgeSecret();

// The same, into the heap of another domain (a physical user domain or a
// virtual one): its own code allocates the block and reads the secret in.
// The keys the judge skips then include the virtual domains' (their slot
// keys and the parking key): their pages are trusted memory too.
const uint8_t* LoadJudgeSecretInto(cordon_domain_t domain);

// Child side: hand the judge whatever the attack obtained; it is scanned
// for the secret.
void Evidence(const void* p, size_t n);

// Child side, before the lockdown: creates the file at path (0600, which
// must not exist) and writes the secret into it from trusted code, so
// that the file holds it and untrusted memory never did (for attacks on a
// secret's file, cordon_lockdown_close_file).
void WriteSecretToFile(const uint8_t* secret, const std::string& path);

// Child side: a descriptor that should not have opened. Hands the judge
// what it reads, says on stderr how it was opened, and exits 2.
[[noreturn]] void ExposeWhatOpened(int fd, const std::string& how);

// Child side: the judge scans this process's untrusted memory now; returns
// when it is done (other threads keep running). JudgeAttack's child calls it
// when attack() returns; call it yourself before an expected death.
void ExposeToJudge();

// Child side: the lockdown as attack tests take it (faults reported on the
// current stack, the given violation mode); exits 1 with the reason if it
// is refused.
void LockDownForAttack(int violation);

// Test side: the judge scanned the child and found the secret nowhere in its
// untrusted memory or output.
void ExpectNotLeaked(const Verdict& v);

// Test side: the attack ran to its end (the child exited 0: every check in
// it held) and the judge found the secret nowhere.
void ExpectHeldToTheEnd(const Verdict& v);

}  // namespace cordon::testing

#endif
