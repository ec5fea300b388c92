// Client store: the memcached-style example of docs/virtual-domains.md.
//
// One virtual domain per client (1100), far more than the hardware has
// protection keys. Each client's items live in its own domain's heap and
// are reached only through that domain's entries (put, get). Several
// threads serve requests for random clients; every answer is checked.
// Then the get entry's bug: it trusts the length the request claims
// (Heartbleed-style) and copies that much from the client's item. Aimed at
// the last item of one client's heap, the over-read runs off the end of
// its domain's memory, into the next client's: the protection key stops it
// there (a SIGSEGV with SEGV_PKUERR, in a child process the demo watches).
// Exit status 0 means every answer was right and the over-read stopped at
// the boundary.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "cordon/cordon.hpp"

namespace {

constexpr int kClients = 1100;
constexpr int kThreads = 4;
constexpr int kRequests = 1000;  // per thread
constexpr size_t kItemBytes = 64;

// ---- Inside a client's domain. ----

struct Store {
  uint64_t items[4];  // the client's four items, blocks of its own heap
};

Store* StoreOf() {
  return static_cast<Store*>(cordon_domain_root());
}

// put(slot, value): the item holds the value, repeated.
uint64_t Put(uint64_t slot, uint64_t value, uint64_t, uint64_t, uint64_t) {
  Store* s = StoreOf();
  if (s == nullptr) {  // first use: the store and its items, in this domain's heap
    void* block = nullptr;
    if (cordon_domain_alloc(cordon_current_domain(), 16, sizeof(Store), &block) != CORDON_OK) return 1;
    s = static_cast<Store*>(block);
    for (uint64_t& item : s->items) {
      void* p = nullptr;
      if (cordon_domain_alloc(cordon_current_domain(), 16, kItemBytes, &p) != CORDON_OK) return 1;
      item = reinterpret_cast<uint64_t>(p);
    }
    if (cordon_domain_set_root(s) != CORDON_OK) return 1;
  }
  auto* item = reinterpret_cast<uint64_t*>(s->items[slot % 4]);
  for (size_t i = 0; i < kItemBytes / 8; ++i) item[i] = value;
  return 0;
}

// get(slot, out, claimed): copies `claimed` bytes of the item to out, an
// untrusted buffer. The bug: it checks the buffer, not the item's length.
uint64_t Get(uint64_t slot, uint64_t out, uint64_t claimed, uint64_t start, uint64_t) {
  Store* s = StoreOf();
  if (s == nullptr || !cordon_is_untrusted_range(reinterpret_cast<void*>(out), claimed)) return 0;
  const auto* item = reinterpret_cast<const unsigned char*>(start != 0 ? start : s->items[slot % 4]);
  memcpy(reinterpret_cast<void*>(out), item, claimed);
  return claimed;
}

// The address of the last byte of the client's heap (for the attack
// below: the over-read starts 64 bytes before the end of the domain).
uint64_t HeapEnd(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const void* start = nullptr;
  size_t size = 0;
  if (cordon_domain_region(cordon_current_domain(), &start, &size) != CORDON_OK) return 0;
  return reinterpret_cast<uint64_t>(start) + size;
}

// ---- Untrusted: the server. ----

struct Client {
  cordon_domain_t domain;
  cordon_entry put, get, heap_end;
};

bool Fail(const char* what, int status) {
  fprintf(stderr, "client-store: %s: %s\n", what, cordon_strerror(status));
  return false;
}

uint64_t ValueFor(int client, int slot, int version) {
  return (uint64_t{static_cast<uint32_t>(client)} << 32) | (static_cast<uint64_t>(slot) << 24) |
         static_cast<uint64_t>(version);
}

}  // namespace

int main() {
  if (int s = cordon_init(nullptr); s != CORDON_OK) return Fail("cordon_init", s), 1;
  std::vector<Client> clients(kClients);
  for (Client& c : clients) {
    if (int s = cordon_domain_create_virtual("client", &c.domain); s != CORDON_OK)
      return Fail("cordon_domain_create_virtual", s), 1;
    if (int s = cordon_register(c.domain, Put, "put", &c.put); s != CORDON_OK) return Fail("register", s), 1;
    if (int s = cordon_register(c.domain, Get, "get", &c.get); s != CORDON_OK) return Fail("register", s), 1;
    if (int s = cordon_register(c.domain, HeapEnd, "heap_end", &c.heap_end); s != CORDON_OK)
      return Fail("register", s), 1;
  }
  // The first put makes each client's store (its root is set once, before
  // the lockdown).
  std::atomic<int> wrong{0};
  std::vector<std::atomic<int>> version(kClients * 4);
  for (int c = 0; c < kClients; ++c) {
    for (int slot = 0; slot < 4; ++slot) {
      if (cordon_call(clients[c].put, slot, ValueFor(c, slot, 0), 0, 0, 0) != 0) ++wrong;
    }
  }
  if (int s = cordon_lockdown(); s != CORDON_OK) return Fail("cordon_lockdown", s), 1;
  printf("client-store: %d clients, each in a virtual domain of its own, sharing the keys left\n", kClients);

  // Serving: puts and gets for random clients from several threads.
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      unsigned x = 12345u + 977u * t;
      for (int i = 0; i < kRequests; ++i) {
        x = x * 1103515245u + 12345u;
        const int c = static_cast<int>((x >> 8) % kClients);
        const int slot = t;  // each thread owns one slot of every client: its own versions
        const int v = ++version[c * 4 + slot];
        if (cordon_call(clients[c].put, slot, ValueFor(c, slot, v), 0, 0, 0) != 0) ++wrong;
        uint64_t item[kItemBytes / 8];
        if (cordon_call(clients[c].get, slot, reinterpret_cast<uint64_t>(item), sizeof item, 0, 0) !=
                sizeof item ||
            item[0] != ValueFor(c, slot, v) || item[kItemBytes / 8 - 1] != ValueFor(c, slot, v)) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  printf("client-store: %d requests from %d threads, %d wrong answers\n", kThreads * kRequests * 2, kThreads,
         wrong.load());

  // The over-read: from 64 bytes before the end of client 7's memory, 256
  // bytes, which would run into client 8's. In a child, which it stops.
  const pid_t pid = fork();
  if (pid == 0) {
    static unsigned char out[256];
    const uint64_t end = cordon_call(clients[7].heap_end, 0, 0, 0, 0, 0);
    (void)cordon_call(clients[7].get, 0, reinterpret_cast<uint64_t>(out), sizeof out, end - 64, 0);
    _exit(0);  // the over-read went through: the boundary did not hold
  }
  int status = 0;
  waitpid(pid, &status, 0);
  // A fault inside a domain stops the process: by the signal, or with the
  // runtime's message and exit status 70.
  const bool stopped = (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
                       (WIFEXITED(status) && WEXITSTATUS(status) == 70);
  printf("client-store: the over-read off client 7's memory %s (%s %d)\n",
         stopped ? "stopped at its boundary: the next client's pages carry another key"
                 : "went through: client 8's memory was read",
         WIFSIGNALED(status) ? "signal" : "exit status",
         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  return wrong.load() == 0 && stopped ? 0 : 1;
}
