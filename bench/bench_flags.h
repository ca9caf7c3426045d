// A small command-line flag parser for the bench tools: "--name value",
// "--name=value", and bare "--name" for booleans; "--help" prints usage.
#ifndef PDKARCHIVE_BENCH_BENCH_FLAGS_H_
#define PDKARCHIVE_BENCH_BENCH_FLAGS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pdkarchive::bench {

// Not thread-safe. The pointers given to the registration calls must
// outlive Parse; they hold the defaults until then.
class Flags {
 public:
  explicit Flags(std::string usage) : usage_(std::move(usage)) {}

  void Int(const char* name, int64_t* out, const char* help);
  void Double(const char* name, double* out, const char* help);
  void String(const char* name, std::string* out, const char* help);
  void Bool(const char* name, bool* out, const char* help);

  // Fills the registered variables from argv. On --help prints usage to
  // stdout and exits 0; on an unknown flag or a bad value prints the reason
  // and usage to stderr and exits 2.
  void Parse(int argc, char** argv);

 private:
  enum class Kind { kInt, kDouble, kString, kBool };
  struct Flag {
    std::string name;
    Kind kind;
    void* out;
    std::string help;
    std::string default_text;
  };
  [[noreturn]] void Fail(const std::string& reason) const;
  std::string Usage() const;

  std::string usage_;
  std::vector<Flag> flags_;
};

}  // namespace pdkarchive::bench

#endif  // PDKARCHIVE_BENCH_BENCH_FLAGS_H_
