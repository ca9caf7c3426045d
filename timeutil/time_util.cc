#include "timeutil/time_util.h"

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pdkarchive::timeutil {
namespace {

constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Writes `value` (0..99) as two digits.
void PutTwo(int64_t value, char* out) {
  std::memcpy(out, kDigitPairs + 2 * value, 2);
}

// Writes `value` (0..10^width - 1) as `width` digits.
void PutDigits(int64_t value, int width, char* out) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// Writes "YYYY-MM-DD" (10 chars) for day number `days` of the years 0000-9999.
void PutDate(int64_t days, char* out) {
  const CivilDate date = CivilFromDays(days);
  PutTwo(date.year / 100, out);
  PutTwo(date.year % 100, out + 2);
  out[4] = '-';
  PutTwo(date.month, out + 5);
  out[7] = '-';
  PutTwo(date.day, out + 8);
}

// Writes "YYYY-MM-DDThh:mm:ss" (19 chars) for `seconds` since the epoch within
// kMinRfc3339Seconds..kMaxRfc3339Seconds.
void PutDateTime(int64_t seconds, char* out) {
  int64_t days = seconds / kDaySeconds;
  int64_t of_day = seconds % kDaySeconds;
  if (of_day < 0) {
    of_day += kDaySeconds;
    --days;
  }
  PutDate(days, out);
  out[10] = 'T';
  PutTwo(of_day / 3600, out + 11);
  out[13] = ':';
  PutTwo(of_day / 60 % 60, out + 14);
  out[16] = ':';
  PutTwo(of_day % 60, out + 17);
}

// Cursor over RFC 3339 text; each Take* fails without consuming.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool Done() const { return pos_ == text_.size(); }

  bool TakeDigits(size_t count, int* out) {
    if (text_.size() - pos_ < count) return false;
    int value = 0;
    for (size_t i = 0; i < count; ++i) {
      const char c = text_[pos_ + i];
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    pos_ += count;
    *out = value;
    return true;
  }

  // Any of `chars`; the one taken goes to `out` when given.
  bool TakeOneOf(std::string_view chars, char* out = nullptr) {
    if (Done() || chars.find(text_[pos_]) == std::string_view::npos) {
      return false;
    }
    if (out != nullptr) *out = text_[pos_];
    ++pos_;
    return true;
  }

  // One or more digits as milliseconds: the first three, zero-padded.
  bool TakeFractionMs(int* out) {
    int ms = 0;
    size_t digits = 0;
    while (!Done() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (digits < 3) ms = ms * 10 + (text_[pos_] - '0');
      ++digits;
      ++pos_;
    }
    if (digits == 0) return false;
    for (size_t i = digits; i < 3; ++i) ms *= 10;
    *out = ms;
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

absl::Status NotA(const char* what, const char* why) {
  return absl::InvalidArgumentError(absl::StrCat("not ", what, ": ", why));
}

}  // namespace

absl::StatusOr<int64_t> ParseRfc3339Ms(std::string_view text) {
  constexpr char kWhat[] = "an RFC 3339 date-time";
  Scanner scan(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  // Syntax first, then ranges: a malformed time is reported as such even
  // when its date is out of range.
  if (!scan.TakeDigits(4, &year) || !scan.TakeOneOf("-") || !scan.TakeDigits(2, &month) ||
      !scan.TakeOneOf("-") || !scan.TakeDigits(2, &day)) {
    return NotA(kWhat, "expected YYYY-MM-DD");
  }
  if (!scan.TakeOneOf("Tt ")) return NotA(kWhat, "expected 'T' after the date");
  if (!scan.TakeDigits(2, &hour) || !scan.TakeOneOf(":") || !scan.TakeDigits(2, &minute) ||
      !scan.TakeOneOf(":") || !scan.TakeDigits(2, &second)) {
    return NotA(kWhat, "expected hh:mm:ss");
  }
  int fraction_ms = 0;
  if (scan.TakeOneOf(".") && !scan.TakeFractionMs(&fraction_ms)) {
    return NotA(kWhat, "expected digits after '.'");
  }
  int offset_minutes = 0;
  char sign = 0;
  if (scan.TakeOneOf("+-", &sign)) {
    int offset_hour = 0, offset_minute = 0;
    if (!scan.TakeDigits(2, &offset_hour) || !scan.TakeOneOf(":") ||
        !scan.TakeDigits(2, &offset_minute)) {
      return NotA(kWhat, "expected offset ±hh:mm");
    }
    if (offset_hour > 23 || offset_minute > 59) return NotA(kWhat, "offset out of range");
    offset_minutes = (offset_hour * 60 + offset_minute) * (sign == '-' ? -1 : 1);
  } else if (!scan.TakeOneOf("Zz")) {
    return NotA(kWhat, "expected 'Z' or an offset");
  }
  if (!scan.Done()) return NotA(kWhat, "unexpected text after the time");

  if (month < 1 || month > 12) return NotA(kWhat, "month out of range");
  if (!IsValidDate(year, month, day)) return NotA(kWhat, "day out of range");
  // Second 60 is a leap second; like timegm, it rolls into the next minute.
  if (hour > 23 || minute > 59 || second > 60) return NotA(kWhat, "time of day out of range");
  const int64_t seconds = DaysFromCivil(year, month, day) * kDaySeconds + hour * 3600 +
                          minute * 60 + second - int64_t{offset_minutes} * 60;
  const int64_t ms = seconds * 1000 + fraction_ms;
  if (ms < kMinTimeMs || ms > kMaxTimeMs) {
    return NotA(kWhat, "outside the years 0001 to 9999 UTC");
  }
  return ms;
}

absl::StatusOr<int64_t> ParseDateMs(std::string_view text) {
  constexpr char kWhat[] = "a date YYYY-MM-DD";
  Scanner scan(text);
  int year = 0, month = 0, day = 0;
  if (!scan.TakeDigits(4, &year) || !scan.TakeOneOf("-") || !scan.TakeDigits(2, &month) ||
      !scan.TakeOneOf("-") || !scan.TakeDigits(2, &day)) {
    return NotA(kWhat, "expected YYYY-MM-DD");
  }
  if (!scan.Done()) return NotA(kWhat, "unexpected text after the date");
  if (month < 1 || month > 12) return NotA(kWhat, "month out of range");
  if (!IsValidDate(year, month, day)) return NotA(kWhat, "day out of range");
  if (year < 1) return NotA(kWhat, "outside the years 0001 to 9999");
  return DaysFromCivil(year, month, day) * kDayMs;
}

bool AppendRfc3339Millis(int64_t ms, std::string& out) {
  if (ms < kMinRfc3339Ms || ms > kMaxRfc3339Ms) return false;
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  char text[24];  // YYYY-MM-DDThh:mm:ss.mmmZ
  PutDateTime(seconds, text);
  text[19] = '.';
  text[20] = static_cast<char>('0' + millis / 100);
  PutTwo(millis % 100, text + 21);
  text[23] = 'Z';
  out.append(text, sizeof text);
  return true;
}

std::optional<std::string> FormatRfc3339Millis(int64_t ms) {
  std::string out;
  if (!AppendRfc3339Millis(ms, out)) return std::nullopt;
  return out;
}

absl::Status AppendRfc3339(int64_t seconds, int64_t nanos, Fraction fraction, std::string& out) {
  if (seconds < kMinRfc3339Seconds || seconds > kMaxRfc3339Seconds || nanos < 0 ||
      nanos > 999999999) {
    return absl::InvalidArgumentError(absl::StrCat(
        "time ", seconds, " s + ", nanos,
        " ns since 1970 is outside the years 0000-9999 that RFC 3339 can write"));
  }
  char text[31];  // YYYY-MM-DDThh:mm:ss.nnnnnnnnnZ
  PutDateTime(seconds, text);
  size_t size = 19;
  int digits = 0;
  int64_t fraction_value = 0;
  if (fraction == Fraction::kMillis) {
    digits = 3;
    fraction_value = nanos / 1000000;
  } else if (nanos != 0) {
    digits = nanos % 1000000 == 0 ? 3 : nanos % 1000 == 0 ? 6 : 9;
    fraction_value = digits == 3 ? nanos / 1000000 : digits == 6 ? nanos / 1000 : nanos;
  }
  if (digits > 0) {
    text[size++] = '.';
    PutDigits(fraction_value, digits, text + size);
    size += static_cast<size_t>(digits);
  }
  text[size++] = 'Z';
  out.append(text, size);
  return absl::OkStatus();
}

std::optional<std::string> FormatHourKey(int64_t ms) {
  if (ms < kMinRfc3339Ms || ms > kMaxRfc3339Ms) return std::nullopt;
  char text[20];  // YYYY-MM-DDThh:00:00Z
  PutDateTime(HourOf(ms) * 3600, text);
  text[19] = 'Z';
  return std::string(text, sizeof text);
}

std::optional<std::string> FormatDayKey(int64_t days) {
  if (days < DayOf(kMinRfc3339Ms) || days > DayOf(kMaxRfc3339Ms)) return std::nullopt;
  char text[10];  // YYYY-MM-DD
  PutDate(days, text);
  return std::string(text, sizeof text);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace pdkarchive::timeutil
