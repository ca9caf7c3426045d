// Civil time in UTC, written once for the whole archive: day numbers and
// proleptic Gregorian dates, the UTC day and hour of an instant, and RFC 3339
// text to and from milliseconds since the Unix epoch. No time zone database,
// no locale. The parsers and formatters take any input: an instant that RFC
// 3339's four-digit years cannot write comes back as an error or nullopt,
// never as text. All functions are pure and thread-safe.
#ifndef PDKARCHIVE_TIMEUTIL_TIME_UTIL_H_
#define PDKARCHIVE_TIMEUTIL_TIME_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pdkarchive::timeutil {

inline constexpr int64_t kHourMs = int64_t{60} * 60 * 1000;
inline constexpr int64_t kDayMs = 24 * kHourMs;
inline constexpr int64_t kDaySeconds = kDayMs / 1000;

// Now, by the system clock, in milliseconds since the Unix epoch.
int64_t NowMs();

// The instants of the years 0001 to 9999 UTC: what ParseRfc3339Ms accepts,
// and the range of google.protobuf.Timestamp.
inline constexpr int64_t kMinTimeMs = -62135596800000;  // 0001-01-01T00:00:00.000Z
inline constexpr int64_t kMaxTimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

// The instants of the years 0000 to 9999 UTC: what RFC 3339 can write, so
// what the formatters below accept.
inline constexpr int64_t kMinRfc3339Ms = -62167219200000;  // 0000-01-01T00:00:00.000Z
inline constexpr int64_t kMaxRfc3339Ms = kMaxTimeMs;
inline constexpr int64_t kMinRfc3339Seconds = kMinRfc3339Ms / 1000;
inline constexpr int64_t kMaxRfc3339Seconds = kMaxRfc3339Ms / 1000;

// A proleptic Gregorian date.
struct CivilDate {
  int64_t year = 0;
  int64_t month = 0;  // 1..12
  int64_t day = 0;    // 1..31

  bool operator==(const CivilDate&) const = default;
};

// The date of day number `days` (days since 1970-01-01, any sign; exact for
// every day an int64 of milliseconds reaches, |days| < 2^40): H. Hinnant's
// civil_from_days, over 400-year eras from 0000-03-01.
constexpr CivilDate CivilFromDays(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  CivilDate date;
  date.day = doy - (153 * mp + 2) / 5 + 1;
  date.month = mp < 10 ? mp + 3 : mp - 9;
  date.year = yoe + era * 400 + (date.month <= 2 ? 1 : 0);
  return date;
}

// The day number (days since 1970-01-01) of a date: the inverse of
// CivilFromDays for `month` 1..12 and `day` 1..31 (a day past the month's
// end counts on into the next month; see IsValidDate). |year| < 2^32.
constexpr int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

constexpr bool IsLeapYear(int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// 28..31 for `month` 1..12; 0 for any other month.
constexpr int64_t DaysInMonth(int64_t year, int64_t month) {
  constexpr int64_t kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return 0;
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// Whether year-month-day names a day of the proleptic Gregorian calendar.
constexpr bool IsValidDate(int64_t year, int64_t month, int64_t day) {
  return day >= 1 && day <= DaysInMonth(year, month);
}

// The UTC day holding `ms`, as a day number: ms / kDayMs rounded down.
constexpr int64_t DayOf(int64_t ms) {
  return ms / kDayMs - (ms % kDayMs < 0 ? 1 : 0);
}

// The UTC hour holding `ms`, as hours since the epoch, rounded down.
constexpr int64_t HourOf(int64_t ms) {
  return ms / kHourMs - (ms % kHourMs < 0 ? 1 : 0);
}

// Parses an RFC 3339 date-time ("2026-01-01T13:00:00Z") to milliseconds
// since the epoch. Accepts 'T', 't' or a space between date and time; 'Z',
// 'z' or an offset ±hh:mm (hh ≤ 23, mm ≤ 59); a fraction of one or more
// digits, of which the first three count. Second 60 (a leap second) rolls
// into the next minute, as timegm does. InvalidArgument, saying why, for
// anything else, and for an instant outside kMinTimeMs..kMaxTimeMs.
absl::StatusOr<int64_t> ParseRfc3339Ms(std::string_view text);

// Parses a full date "2026-03-31" to the milliseconds of its 00:00 UTC.
// InvalidArgument for anything else, and for a year outside 0001-9999.
absl::StatusOr<int64_t> ParseDateMs(std::string_view text);

// Appends `ms` as "2022-03-10T14:04:11.104Z" (UTC, always three fraction
// digits) and returns true; returns false, appending nothing, when `ms` is
// outside kMinRfc3339Ms..kMaxRfc3339Ms.
bool AppendRfc3339Millis(int64_t ms, std::string& out);

// AppendRfc3339Millis's text, or nullopt where it appends nothing.
std::optional<std::string> FormatRfc3339Millis(int64_t ms);

// How many fraction digits AppendRfc3339 writes.
enum class Fraction {
  kMillis,    // always three; finer parts cut off
  kAsNeeded,  // 0, 3, 6 or 9, as protobuf's JSON mapping writes them
};

// Appends `seconds` + `nanos` since the epoch as an RFC 3339 UTC time.
// InvalidArgument, appending nothing, when RFC 3339 cannot write the time
// (outside kMinRfc3339Seconds..kMaxRfc3339Seconds) or `nanos` is outside
// 0..999999999.
absl::Status AppendRfc3339(int64_t seconds, int64_t nanos, Fraction fraction, std::string& out);

// The hour count key of the hour holding `ms`, "2026-01-01T13:00:00Z";
// nullopt outside kMinRfc3339Ms..kMaxRfc3339Ms.
std::optional<std::string> FormatHourKey(int64_t ms);

// The day count key of day number `days`, "2026-01-01"; nullopt outside the
// years 0000-9999.
std::optional<std::string> FormatDayKey(int64_t days);

}  // namespace pdkarchive::timeutil

#endif  // PDKARCHIVE_TIMEUTIL_TIME_UTIL_H_
