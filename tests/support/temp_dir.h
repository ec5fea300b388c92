// A fresh directory under /tmp for one test, removed with everything in it
// when the object goes; path() is empty if it could not be made.
#ifndef CORDON_TESTS_SUPPORT_TEMP_DIR_H_
#define CORDON_TESTS_SUPPORT_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace cordon::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "cordon-test") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cordon::testing

#endif
