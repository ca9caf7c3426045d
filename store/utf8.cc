#include "store/utf8.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace pdkarchive::store {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The sequence starting at `p` (`n` > 0 bytes left): its length when it is
// well-formed (*valid = true), else the length of its maximal subpart, the
// bytes one U+FFFD replaces (*valid = false, always at least 1).
size_t SequenceAt(const unsigned char* p, size_t n, bool* valid) {
  const unsigned char lead = p[0];
  if (lead < 0x80) {
    *valid = true;
    return 1;
  }
  // Continuation bytes allowed after `lead` (Unicode Table 3-7): the first
  // one's range depends on the lead, the rest are always 80..BF.
  size_t continuations = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuations = 1;
  } else if (lead == 0xE0) {
    continuations = 2;
    low = 0xA0;  // no overlongs
  } else if (lead == 0xED) {
    continuations = 2;
    high = 0x9F;  // no surrogates
  } else if (lead >= 0xE1 && lead <= 0xEF) {
    continuations = 2;
  } else if (lead == 0xF0) {
    continuations = 3;
    low = 0x90;  // no overlongs
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    continuations = 3;
  } else if (lead == 0xF4) {
    continuations = 3;
    high = 0x8F;  // nothing above U+10FFFF
  } else {
    *valid = false;  // a stray continuation byte, C0, C1, F5..FF
    return 1;
  }
  for (size_t i = 1; i <= continuations; ++i) {
    if (i >= n || p[i] < low || p[i] > high) {
      *valid = false;
      return i;
    }
    low = 0x80;
    high = 0xBF;
  }
  *valid = true;
  return continuations + 1;
}

// The offset of the first ill-formed sequence, or text.size().
size_t FirstInvalid(std::string_view text) {
  const auto* data = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    if (size - i >= 8) {
      uint64_t word;
      std::memcpy(&word, data + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    bool valid = false;
    const size_t length = SequenceAt(data + i, size - i, &valid);
    if (!valid) return i;
    i += length;
  }
  return size;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  return FirstInvalid(text) == text.size();
}

std::string SanitizeUtf8(std::string_view text) {
  size_t i = FirstInvalid(text);
  std::string out(text.substr(0, i));
  const auto* data = reinterpret_cast<const unsigned char*>(text.data());
  while (i < text.size()) {
    bool valid = false;
    const size_t length = SequenceAt(data + i, text.size() - i, &valid);
    if (valid) {
      out.append(text.data() + i, length);
    } else {
      out.append(kReplacement);
    }
    i += length;
  }
  return out;
}

bool SanitizeUtf8InPlace(std::string* text) {
  if (FirstInvalid(*text) == text->size()) return false;
  *text = SanitizeUtf8(*text);
  return true;
}

}  // namespace pdkarchive::store
