// timeutil: civil days, the UTC day and hour of an instant, RFC 3339 parsing
// and formatting, and the count keys.
#include "timeutil/time_util.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pdkarchive::timeutil {
namespace {

static_assert(kDayMs == 86400000 && kHourMs == 3600000 && kDaySeconds == 86400);
static_assert(CivilFromDays(0) == CivilDate{1970, 1, 1});
static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(DaysFromCivil(1, 1, 1) * kDayMs == kMinTimeMs);
static_assert(DaysFromCivil(0, 1, 1) * kDayMs == kMinRfc3339Ms);
static_assert((DaysFromCivil(9999, 12, 31) + 1) * kDayMs - 1 == kMaxTimeMs);

// The instant of a UTC date and time, by an independent route (absl).
int64_t Ms(int64_t year, int month, int day, int hour = 0, int minute = 0, int second = 0,
           int64_t millis = 0) {
  const absl::Time t = absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                                       absl::UTCTimeZone());
  return absl::ToUnixMillis(t) + millis;
}

// The date after `date`, by counting days in months.
CivilDate NextDay(CivilDate date) {
  if (date.day < DaysInMonth(date.year, date.month)) return {date.year, date.month, date.day + 1};
  if (date.month < 12) return {date.year, date.month + 1, 1};
  return {date.year + 1, 1, 1};
}

TEST(CivilDaysTest, EveryDayFrom0001To9999RoundTrips) {
  const int64_t first = DaysFromCivil(1, 1, 1);
  const int64_t last = DaysFromCivil(9999, 12, 31);
  CivilDate expected{1, 1, 1};
  for (int64_t days = first; days <= last; ++days) {
    const CivilDate date = CivilFromDays(days);
    ASSERT_EQ(date, expected) << "days=" << days;
    ASSERT_EQ(DaysFromCivil(date.year, date.month, date.day), days);
    expected = NextDay(expected);
  }
  EXPECT_EQ(expected, (CivilDate{10000, 1, 1}));
  EXPECT_EQ(last - first + 1, 3652059);  // 9999 years of 365.2425 days
}

TEST(CivilDaysTest, KnownDaysAndLeapYears) {
  EXPECT_EQ(CivilFromDays(-1), (CivilDate{1969, 12, 31}));
  EXPECT_EQ(CivilFromDays(Ms(2000, 2, 29) / kDayMs), (CivilDate{2000, 2, 29}));
  EXPECT_EQ(CivilFromDays(Ms(2024, 2, 29) / kDayMs), (CivilDate{2024, 2, 29}));
  EXPECT_EQ(CivilFromDays(Ms(1900, 3, 1) / kDayMs - 1), (CivilDate{1900, 2, 28}));
  EXPECT_EQ(CivilFromDays(DaysFromCivil(0, 3, 1) - 1), (CivilDate{0, 2, 29}));
  EXPECT_EQ(CivilFromDays(DaysFromCivil(-1, 12, 31)), (CivilDate{-1, 12, 31}));
  EXPECT_EQ(DaysFromCivil(2026, 1, 1), Ms(2026, 1, 1) / kDayMs);
  EXPECT_TRUE(IsLeapYear(2000));
  EXPECT_TRUE(IsLeapYear(2024));
  EXPECT_TRUE(IsLeapYear(0));
  EXPECT_FALSE(IsLeapYear(1900));
  EXPECT_FALSE(IsLeapYear(2023));
  EXPECT_EQ(DaysInMonth(2024, 2), 29);
  EXPECT_EQ(DaysInMonth(2023, 2), 28);
  EXPECT_EQ(DaysInMonth(1900, 2), 28);
  EXPECT_EQ(DaysInMonth(2026, 4), 30);
  EXPECT_EQ(DaysInMonth(2026, 12), 31);
  EXPECT_EQ(DaysInMonth(2026, 0), 0);
  EXPECT_EQ(DaysInMonth(2026, 13), 0);
  EXPECT_TRUE(IsValidDate(2024, 2, 29));
  EXPECT_FALSE(IsValidDate(2023, 2, 29));
  EXPECT_FALSE(IsValidDate(2026, 4, 31));
  EXPECT_FALSE(IsValidDate(2026, 1, 0));
}

TEST(CivilDaysTest, DayAndHourRoundDown) {
  EXPECT_EQ(DayOf(0), 0);
  EXPECT_EQ(DayOf(kDayMs - 1), 0);
  EXPECT_EQ(DayOf(kDayMs), 1);
  EXPECT_EQ(DayOf(-1), -1);
  EXPECT_EQ(DayOf(-kDayMs), -1);
  EXPECT_EQ(DayOf(-kDayMs - 1), -2);
  EXPECT_EQ(HourOf(kHourMs - 1), 0);
  EXPECT_EQ(HourOf(-1), -1);
  EXPECT_EQ(HourOf(-kHourMs - 1), -2);
  EXPECT_EQ(DayOf(INT64_MIN), INT64_MIN / kDayMs - 1);
  EXPECT_EQ(DayOf(INT64_MAX), INT64_MAX / kDayMs);
  EXPECT_EQ(HourOf(INT64_MIN), INT64_MIN / kHourMs - 1);
  EXPECT_EQ(CivilFromDays(DayOf(Ms(2026, 1, 1, 23, 59, 59, 999))), (CivilDate{2026, 1, 1}));
  EXPECT_EQ(CivilFromDays(DayOf(Ms(1969, 7, 20, 20, 17))), (CivilDate{1969, 7, 20}));
}

TEST(ParseRfc3339MsTest, ParsesUtcAndOffsets) {
  struct Case {
    std::string_view text;
    int64_t ms;
  };
  const Case cases[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"2022-03-10T14:31:48.300Z", 1646922708300},
      {"2022-03-10T14:31:48.3Z", 1646922708300},
      {"2022-03-10T14:31:48.300999999Z", 1646922708300},
      {"2022-03-10T16:31:48.300+02:00", 1646922708300},
      {"2022-03-10T09:01:48.300-05:30", 1646922708300},
      {"2022-03-10t14:31:48.300z", 1646922708300},
      {"2022-03-10 14:31:48.300Z", 1646922708300},
      {"2022-03-10T14:31:48.300-00:00", 1646922708300},
      {"2024-02-29T12:00:00Z", 1709208000000},
      {"2000-02-29T00:00:00Z", 951782400000},
      {"1969-12-31T23:59:59.999Z", -1},
      {"2016-12-31T23:59:60Z", 1483228800000},
      {"0001-01-01T00:00:00Z", -62135596800000},
      {"0001-01-01T01:00:00+01:00", -62135596800000},
      {"9999-12-31T23:59:59.999Z", 253402300799999},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<int64_t> ms = ParseRfc3339Ms(c.text);
    ASSERT_TRUE(ms.ok()) << ms.status();
    EXPECT_EQ(*ms, c.ms);
  }
}

TEST(ParseRfc3339MsTest, RefusesAnythingElse) {
  for (std::string_view text : {
           "",
           "YYYY-MM-DDThh:mm:ssZ",
           "2022-03-10",
           "2022-03-10T14:31:48",
           "2022-03-10T14:31Z",
           "2022-03-10T14:31:48.Z",
           "2022-03-10T14:31:48+0200",
           "2022-03-10T14:31:48+02",
           "2022-03-10T14:31:48Z ",
           " 2022-03-10T14:31:48Z",
           "2022-3-10T14:31:48Z",
           "22-03-10T14:31:48Z",
           "2022-03-10X14:31:48Z",
           "2022-00-10T14:31:48Z",
           "2022-13-10T14:31:48Z",
           "2022-03-00T14:31:48Z",
           "2022-04-31T14:31:48Z",
           "2023-02-29T00:00:00Z",
           "1900-02-29T00:00:00Z",
           "2022-03-10T24:00:00Z",
           "2022-03-10T14:60:00Z",
           "2022-03-10T14:31:61Z",
           "2022-03-10T14:31:48+24:00",
           "2022-03-10T14:31:48+02:60",
           "9999-12-31T23:59:59-00:01",
           "0000-01-01T00:00:00Z",
           "0000-12-31T23:59:59.999Z",
           "0001-01-01T00:59:59.999+01:00",
           "10000-01-01T00:00:00Z",
           "+2022-03-10T14:31:48Z",
           "2022-03-10T14:31:48\xef\xbc\xba",
       }) {
    SCOPED_TRACE(text);
    absl::StatusOr<int64_t> ms = ParseRfc3339Ms(text);
    ASSERT_FALSE(ms.ok());
    EXPECT_EQ(ms.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ParseDateMsTest, ParsesFullDates) {
  EXPECT_EQ(*ParseDateMs("1970-01-01"), 0);
  EXPECT_EQ(*ParseDateMs("2026-03-31"), Ms(2026, 3, 31));
  EXPECT_EQ(*ParseDateMs("2024-02-29"), Ms(2024, 2, 29));
  EXPECT_EQ(*ParseDateMs("1969-12-31"), -kDayMs);
  EXPECT_EQ(*ParseDateMs("0001-01-01"), kMinTimeMs);
  EXPECT_EQ(*ParseDateMs("9999-12-31"), kMaxTimeMs + 1 - kDayMs);
}

TEST(ParseDateMsTest, RefusesAnythingElse) {
  for (std::string_view text : {"", "2026-03-31T00:00:00Z", "2026-3-31", "26-03-31",
                                " 2026-03-31", "2026-03-31 ", "2026/03/31", "2023-02-29",
                                "1900-02-29", "2026-04-31", "2026-00-01", "2026-13-01",
                                "2026-01-00", "0000-01-01", "0000-12-31", "10000-01-01"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<int64_t> ms = ParseDateMs(text);
    ASSERT_FALSE(ms.ok());
    EXPECT_EQ(ms.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(FormatRfc3339MillisTest, TimesAtCalendarEdges) {
  EXPECT_EQ(FormatRfc3339Millis(1646921051104), "2022-03-10T14:04:11.104Z");
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(951825600000), "2000-02-29T12:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(1709164800000), "2024-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-2203891200000), "1900-03-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-2203891200001), "1900-02-28T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(-86400001), "1969-12-30T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(-62167219200000), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-62162035200000), "0000-03-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-62162035200001), "0000-02-29T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(253402300799999), "9999-12-31T23:59:59.999Z");
}

TEST(FormatRfc3339MillisTest, RefusesYearsRfc3339CannotWrite) {
  for (int64_t ms : {kMinRfc3339Ms - 1, kMaxRfc3339Ms + 1, int64_t{INT64_MIN}, int64_t{INT64_MAX}}) {
    SCOPED_TRACE(ms);
    EXPECT_EQ(FormatRfc3339Millis(ms), std::nullopt);
    std::string out = "kept";
    EXPECT_FALSE(AppendRfc3339Millis(ms, out));
    EXPECT_EQ(out, "kept");
  }
  std::string out = "a ";
  EXPECT_TRUE(AppendRfc3339Millis(0, out));
  EXPECT_EQ(out, "a 1970-01-01T00:00:00.000Z");
}

TEST(FormatRfc3339MillisTest, MatchesAbslAcrossTheRange) {
  auto check = [](int64_t ms) {
    ASSERT_EQ(FormatRfc3339Millis(ms),
              absl::FormatTime("%E4Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(ms),
                               absl::UTCTimeZone()))
        << "ms=" << ms;
  };
  std::mt19937_64 rng(20261206);
  std::uniform_int_distribution<int64_t> any(kMinRfc3339Ms, kMaxRfc3339Ms);
  for (int i = 0; i < 100000; ++i) check(any(rng));
  check(kMinRfc3339Ms);
  check(kMaxRfc3339Ms);
}

TEST(FormatParseTest, ParseOfFormatIsIdentity) {
  auto check = [](int64_t ms) {
    const std::optional<std::string> text = FormatRfc3339Millis(ms);
    ASSERT_TRUE(text.has_value()) << ms;
    absl::StatusOr<int64_t> back = ParseRfc3339Ms(*text);
    ASSERT_TRUE(back.ok()) << *text << ": " << back.status();
    ASSERT_EQ(*back, ms) << *text;
  };
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<int64_t> any(kMinTimeMs, kMaxTimeMs);
  for (int i = 0; i < 100000; ++i) check(any(rng));
  // Each day boundary, and a millisecond either side, from 1890 to 2110.
  for (int64_t day = -29000; day <= 51200; ++day) {
    check(day * kDayMs - 1);
    check(day * kDayMs);
    check(day * kDayMs + 1);
  }
  check(kMinTimeMs);
  check(kMaxTimeMs);
}

TEST(FormatParseTest, FormatOfParseIsIdentityOnCanonicalText) {
  for (std::string_view text :
       {"1970-01-01T00:00:00.000Z", "2026-01-01T13:00:00.000Z", "2024-02-29T23:59:59.999Z",
        "1969-12-31T23:59:59.999Z", "1900-02-28T12:34:56.789Z", "0001-01-01T00:00:00.000Z",
        "9999-12-31T23:59:59.999Z"}) {
    absl::StatusOr<int64_t> ms = ParseRfc3339Ms(text);
    ASSERT_TRUE(ms.ok()) << text << ": " << ms.status();
    EXPECT_EQ(FormatRfc3339Millis(*ms), std::string(text));
  }
}

TEST(AppendRfc3339Test, WritesTheFractionAsAsked) {
  auto text = [](int64_t seconds, int64_t nanos, Fraction fraction) {
    std::string out;
    absl::Status s = AppendRfc3339(seconds, nanos, fraction, out);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  };
  constexpr int64_t kT = 1767272400;  // 2026-01-01T13:00:00Z
  EXPECT_EQ(text(kT, 0, Fraction::kAsNeeded), "2026-01-01T13:00:00Z");
  EXPECT_EQ(text(kT, 500000000, Fraction::kAsNeeded), "2026-01-01T13:00:00.500Z");
  EXPECT_EQ(text(kT, 123456000, Fraction::kAsNeeded), "2026-01-01T13:00:00.123456Z");
  EXPECT_EQ(text(kT, 1, Fraction::kAsNeeded), "2026-01-01T13:00:00.000000001Z");
  EXPECT_EQ(text(kT, 0, Fraction::kMillis), "2026-01-01T13:00:00.000Z");
  EXPECT_EQ(text(kT, 999999999, Fraction::kMillis), "2026-01-01T13:00:00.999Z");
  EXPECT_EQ(text(-1, 0, Fraction::kAsNeeded), "1969-12-31T23:59:59Z");
  EXPECT_EQ(text(kMinRfc3339Seconds, 0, Fraction::kAsNeeded), "0000-01-01T00:00:00Z");
  EXPECT_EQ(text(kMaxRfc3339Seconds, 999999999, Fraction::kAsNeeded),
            "9999-12-31T23:59:59.999999999Z");
}

TEST(AppendRfc3339Test, AgreesWithTheMillisecondFormatter) {
  std::mt19937_64 rng(3339);
  std::uniform_int_distribution<int64_t> any(kMinRfc3339Ms, kMaxRfc3339Ms);
  for (int i = 0; i < 10000; ++i) {
    const int64_t ms = any(rng);
    const int64_t seconds = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    const int64_t nanos = (ms - seconds * 1000) * 1000000;
    std::string out;
    ASSERT_TRUE(AppendRfc3339(seconds, nanos, Fraction::kMillis, out).ok());
    ASSERT_EQ(out, FormatRfc3339Millis(ms)) << ms;
  }
}

TEST(AppendRfc3339Test, RefusesWhatRfc3339CannotWrite) {
  const struct {
    int64_t seconds;
    int64_t nanos;
  } cases[] = {{kMinRfc3339Seconds - 1, 0}, {kMaxRfc3339Seconds + 1, 0}, {INT64_MIN, 0},
               {INT64_MAX, 0},              {0, -1},                      {0, 1000000000}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.seconds << " s + " << c.nanos << " ns");
    for (Fraction fraction : {Fraction::kMillis, Fraction::kAsNeeded}) {
      std::string out = "kept";
      absl::Status s = AppendRfc3339(c.seconds, c.nanos, fraction, out);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(out, "kept");
    }
  }
}

TEST(CountKeysTest, HourAndDayKeys) {
  EXPECT_EQ(FormatHourKey(Ms(2026, 1, 1, 13, 45, 12, 345)), "2026-01-01T13:00:00Z");
  EXPECT_EQ(FormatHourKey(Ms(2026, 1, 1, 13)), "2026-01-01T13:00:00Z");
  EXPECT_EQ(FormatHourKey(-1), "1969-12-31T23:00:00Z");
  EXPECT_EQ(FormatHourKey(kMinRfc3339Ms), "0000-01-01T00:00:00Z");
  EXPECT_EQ(FormatHourKey(kMaxRfc3339Ms), "9999-12-31T23:00:00Z");
  EXPECT_EQ(FormatHourKey(kMinRfc3339Ms - 1), std::nullopt);
  EXPECT_EQ(FormatHourKey(kMaxRfc3339Ms + 1), std::nullopt);
  EXPECT_EQ(FormatHourKey(INT64_MIN), std::nullopt);

  EXPECT_EQ(FormatDayKey(DayOf(Ms(2026, 1, 1, 13))), "2026-01-01");
  EXPECT_EQ(FormatDayKey(-1), "1969-12-31");
  EXPECT_EQ(FormatDayKey(DaysFromCivil(2024, 2, 29)), "2024-02-29");
  EXPECT_EQ(FormatDayKey(DaysFromCivil(0, 1, 1)), "0000-01-01");
  EXPECT_EQ(FormatDayKey(DaysFromCivil(9999, 12, 31)), "9999-12-31");
  EXPECT_EQ(FormatDayKey(DaysFromCivil(-1, 12, 31)), std::nullopt);
  EXPECT_EQ(FormatDayKey(DaysFromCivil(10000, 1, 1)), std::nullopt);
  EXPECT_EQ(FormatDayKey(INT64_MIN), std::nullopt);
  EXPECT_EQ(FormatDayKey(INT64_MAX), std::nullopt);
}

}  // namespace
}  // namespace pdkarchive::timeutil
