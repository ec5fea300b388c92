// Expected<T>: a value or an error, never both; the runtime's one way of
// reporting a failure inside the library. An Error says why (for a person:
// files, ELF parsing, refusals) and, where a C API call ends with it, which
// cordon_status to return; core/api.cc, the C boundary, prints the message
// of a refusal once and returns the status. Expected<void>: success or an
// Error.
#ifndef CORDON_RUNTIME_BASE_EXPECTED_H_
#define CORDON_RUNTIME_BASE_EXPECTED_H_

#include <optional>
#include <string>
#include <utility>

namespace cordon {

struct Error {
  std::string message;  // may be empty: the status says it all
  int status = 0;       // a cordon_status (CORDON_E_*); 0 where the caller picks one
};

template <typename T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}      // NOLINT: implicit by design
  Expected(Error error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const std::string& error() const { return error_.message; }
  int status() const { return error_.status; }
  const Error& failure() const { return error_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Error error_;
};

template <>
class Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit by design
  bool ok() const { return !failed_; }
  const std::string& error() const { return error_.message; }
  int status() const { return error_.status; }
  const Error& failure() const { return error_; }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace cordon

#endif
