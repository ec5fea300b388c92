// One Heartbleed-style attack on an unmodified TLS server, `openssl
// s_server` or Debian's nginx, run from outside the attacked process:
// shared by the TLS judge (tls_judge_test.cc), the nginx test
// (nginx_test.cc) and the demo (tls_demo.cc).
//
// The attacked process: the server with libheartbleed.so preloaded (the
// planted bug, heartbleed/heartbleed.c), and with the cordon provider
// (libcordon.so preloaded, OPENSSL_CONF naming cordon.cnf) or, for the
// control, without it (the default provider reading the key file). This
// side generates a random key with libcrypto, writes it and a self-signed
// certificate to a fresh directory, starts the server, and then:
//  - s_server: connects with libssl verifying the certificate, sends
//    "HEARTBLEED", reads the reply, waits for the server's end;
//  - nginx (master process and one worker, its own nginx.conf): fetches a
//    page holding a random token with curl (--cacert: the certificate
//    verified), then sends a request whose method is HEARTBLEED (the bug's
//    trigger, seen by the worker's SSL_read), and stops nginx;
// and searches the dump (and the server's output and log) for every
// encoding of the private key (key_encodings.h).
#ifndef CORDON_TESTS_OPENSSL_TLS_ATTACK_H_
#define CORDON_TESTS_OPENSSL_TLS_ATTACK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cordon::tls {

enum class KeyKind { kRsa2048, kEcP256, kEd25519 };
const char* KeyKindName(KeyKind kind);  // "RSA-2048", "ECDSA P-256", "Ed25519"

enum class ServerKind {
  kSServer,  // openssl s_server -naccept 1
  kNginx,    // /usr/sbin/nginx, master process on, one worker, curl as the client
};
const char* ServerKindName(ServerKind kind);

enum class KeyVia {
  kCordonUri,      // the cordon provider, -key cordon:/path/key.pem (s_server only)
  kReferenceFile,  // the cordon provider, -key key.ref (written by cordon-key ref)
  kControl,        // no provider: the default provider reads -key key.pem
};
const char* KeyViaName(KeyVia via);

// Where the pieces are (absolute paths).
struct Tools {
  std::string openssl = "/usr/bin/openssl";
  std::string heartbleed;  // libheartbleed.so
  std::string libcordon;   // libcordon.so
  std::string provider;    // cordon.so (only named in messages: cordon.cnf loads it)
  std::string cnf;         // cordon.cnf
  std::string cordon_key;  // the cordon-key tool
  std::string nginx = "/usr/sbin/nginx";
  std::string curl = "/usr/bin/curl";
};

struct Attack {
  KeyKind kind = KeyKind::kEcP256;
  KeyVia via = KeyVia::kControl;
  int tls_version = 0;     // TLS1_3_VERSION or TLS1_2_VERSION
  int timeout_s = 600;     // for each wait (the VM emulates slowly)
  bool keep_dump = false;  // keep the dump after the search (it is deleted otherwise)
  ServerKind server = ServerKind::kSServer;
  std::string lockdown;  // CORDON_PROVIDER_LOCKDOWN for the server; empty: cordon.cnf's (first-use)
  bool trigger = true;   // nginx: send the over-read's trigger after the page
  int fetches = 1;       // nginx: how often curl fetches the page (each a new handshake)
  // Non-empty: the key file is PKCS#8 encrypted with it (PBES2, AES-256-CBC)
  // and the server is given `-pass pass:PASSPHRASE` (s_server only: attack tests).
  std::string passphrase;
};

struct Found {
  std::string what;   // the encoding ("RSA d, little-endian, bytes 0..15")
  std::string where;  // "dump offset 1234, address 0x7f...: [heap] rw-p", "server stderr", ...
};

struct Outcome {
  std::string error;             // set when the attack could not be carried out (and why)
  std::string description;       // what ran, for messages
  bool handshake = false;        // the TLS handshake completed
  bool verified = false;         // and the client verified the server's certificate
  std::string protocol, cipher;  // as negotiated
  std::string reply;             // the server's reply to "HEARTBLEED"
  uint64_t pages_dumped = 0, pages_refused = 0, dump_bytes = 0;  // from the dump itself
  size_t needles = 0;                                            // byte strings searched for
  std::string needle_families;                                   // DescribeNeedles()
  std::vector<Found> found;                                      // the first few, one per encoding family
  size_t hits = 0;                                               // all hits (capped)
  int server_status = -1;                                        // its wait status
  std::string server_out, server_err;
  std::string dir;  // the attack's directory (kept)
  // nginx only:
  std::string page;                  // the page's content, with a random token drawn for the run
  std::string body;                  // what curl fetched (the page, if all went well)
  int client_status = -1;            // curl's exit status for the (last) page (0; 35: the handshake failed)
  std::vector<int> client_statuses;  // for each fetch
  std::string client_err;            // curl's stderr for the page (-v: the handshake's story)
  int trigger_status = -1;           // curl's exit status for the trigger
  std::string server_log;            // nginx's error log (the worker's stderr goes there too)
};

// Carries out one attack in a new directory under `base_dir`.
Outcome RunAttack(const Attack& attack, const Tools& tools, const std::string& base_dir);

}  // namespace cordon::tls

#endif
