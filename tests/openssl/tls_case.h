// One parameterized TLS case (key kind, how the server gets the key, TLS
// version) and its test name, shared by the TLS judge (tls_judge_test.cc)
// and the nginx test (nginx_test.cc).
#ifndef CORDON_TESTS_OPENSSL_TLS_CASE_H_
#define CORDON_TESTS_OPENSSL_TLS_CASE_H_

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>

#include "tests/openssl/tls_attack.h"

namespace cordon::tls {

struct Case {
  KeyKind kind;
  KeyVia via;
  int version;  // TLS1_2_VERSION or TLS1_3_VERSION
};

// "EcP256_ReferenceFile_Tls13".
inline std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  static const char* const kKinds[] = {"Rsa2048", "EcP256", "Ed25519"};
  static const char* const kVias[] = {"CordonUri", "ReferenceFile", "Control"};
  return std::string(kKinds[static_cast<int>(info.param.kind)]) + "_" +
         kVias[static_cast<int>(info.param.via)] +
         (info.param.version == TLS1_2_VERSION ? "_Tls12" : "_Tls13");
}

}  // namespace cordon::tls

#endif
