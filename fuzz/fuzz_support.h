// Helpers shared by the fuzz targets: a check that aborts (so libFuzzer and
// the replay runner both report it as a crash, in any build type), and a
// reader that turns fuzz bytes into structured values. Builds with any
// compiler; no libFuzzer headers needed.
#ifndef PDKARCHIVE_FUZZ_FUZZ_SUPPORT_H_
#define PDKARCHIVE_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Aborts with the failed condition and a message when `condition` is false.
#define FUZZ_CHECK(condition, message)                                       \
  do {                                                                       \
    if (!(condition)) {                                                      \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__,   \
                   __LINE__, #condition, std::string(message).c_str());      \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

namespace pdkarchive::fuzz {

// Consumes fuzz bytes front to back. Past the end every value is zero or
// empty, so any input decodes to something.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : data_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return data_.empty(); }

  uint8_t Byte() {
    if (data_.empty()) return 0;
    const auto b = static_cast<uint8_t>(data_.front());
    data_.remove_prefix(1);
    return b;
  }

  bool Bool() { return (Byte() & 1) != 0; }

  // Eight bytes, big-endian.
  int64_t Int64() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | Byte();
    return static_cast<int64_t>(bits);
  }

  // A string ended by a backslash followed by any other byte; "\\\\" is one
  // backslash. (The same convention as libFuzzer's FuzzedDataProvider, so a
  // mutation can grow or cut any one string without shifting the others.)
  std::string String(size_t max_size = 4096) {
    std::string out;
    while (!data_.empty() && out.size() < max_size) {
      char c = data_.front();
      data_.remove_prefix(1);
      if (c == '\\' && !data_.empty()) {
        c = data_.front();
        data_.remove_prefix(1);
        if (c != '\\') break;
      }
      out.push_back(c);
    }
    return out;
  }

  // Everything not yet consumed.
  std::string Rest() {
    std::string out(data_);
    data_ = {};
    return out;
  }

 private:
  std::string_view data_;
};

}  // namespace pdkarchive::fuzz

#endif  // PDKARCHIVE_FUZZ_FUZZ_SUPPORT_H_
