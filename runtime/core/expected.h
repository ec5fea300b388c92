// Expected<T>: a value or an error message, never both; for operations whose
// failures are reported to a person (files, ELF parsing, tools).
#ifndef CORDON_RUNTIME_CORE_EXPECTED_H_
#define CORDON_RUNTIME_CORE_EXPECTED_H_

#include <optional>
#include <string>
#include <utility>

namespace cordon {

struct Error {
  std::string message;
};

template <typename T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}              // NOLINT: implicit by design
  Expected(Error error) : error_(std::move(error.message)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const std::string& error() const { return error_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  std::string error_;
};

}  // namespace cordon

#endif
