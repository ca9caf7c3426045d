#include "cli/client_flags.h"

#include <chrono>
#include <cstdint>
#include <iostream>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

namespace v1 = ::pdk::archive::v1;

constexpr char kTimeForms[] =
    "an RFC 3339 time (2026-03-01T08:00:00Z), a date (2026-03-01), now, today, "
    "yesterday, or a duration before now (15m, 24h, 7d)";

// The ms in one `unit` of a relative time, or 0 for an unknown unit.
int64_t UnitMs(char unit) {
  switch (unit) {
    case 's':
      return 1000;
    case 'm':
      return 60 * 1000;
    case 'h':
      return timeutil::kHourMs;
    case 'd':
      return timeutil::kDayMs;
    case 'w':
      return 7 * timeutil::kDayMs;
    default:
      return 0;
  }
}

// The UTC midnight that starts the day holding `ms`.
int64_t MidnightOf(int64_t ms) {
  int64_t days = ms / timeutil::kDayMs;
  if (ms % timeutil::kDayMs < 0) --days;
  return days * timeutil::kDayMs;
}

void SetTimestamp(int64_t ms, google::protobuf::Timestamp* ts) {
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(millis * 1000000));
}

// Each value of --door (--person): a number is a PDK 1.0 door (person) id,
// anything else a PDK 2.0 device (holder) id, UUID text; the server ORs them.
absl::Status ParseIds(const std::string& flag,
                      const std::vector<std::string>& values,
                      google::protobuf::RepeatedField<int64_t>* numbers,
                      google::protobuf::RepeatedPtrField<std::string>* texts) {
  for (const std::string& v : values) {
    int64_t id = 0;
    if (absl::SimpleAtoi(v, &id)) {
      numbers->Add(id);
    } else if (v.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, " wants a numeric id or a PDK 2.0 id (UUID), got \"\""));
    } else {
      texts->Add(std::string(v));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void FilterFlags::Declare(FlagSet& flags) {
  flags.String(
      "from", "TIME", &from,
      "events at or after TIME: RFC 3339, a date YYYY-MM-DD (its 00:00 UTC),\n"
      "now, today, yesterday (UTC midnights), or a duration ago (15m, 24h, "
      "7d)");
  flags.String(
      "to", "TIME", &to,
      "events before TIME: as --from, but a date YYYY-MM-DD means through\n"
      "that whole day");
  flags.List("topic", "TOPIC", &topics,
             "a topic, or a prefix such as door.request.* (repeatable, or "
             "comma-separated)");
  flags.List("panel", "ID", &panels, "panel id (repeatable)");
  flags.List("door", "ID", &doors,
             "door id, or a PDK 2.0 device id (UUID) (repeatable)");
  flags.List("person", "ID", &people,
             "person id, or a PDK 2.0 holder id (UUID) (repeatable)");
  flags.List("ou", "ID", &ous, "organization id (repeatable)");
  flags.String("family", "FAMILY", &family,
               "org, panel (PDK 1.0), system, cloudnode (2.0) or unknown");
}

absl::StatusOr<int64_t> ParseTimeFlag(const std::string& flag,
                                      const std::string& raw,
                                      bool date_means_end_of_day,
                                      int64_t now_ms) {
  const std::string text = absl::AsciiStrToLower(raw);
  if (text == "now") return now_ms;
  if (text == "today") return MidnightOf(now_ms);
  if (text == "yesterday") return MidnightOf(now_ms) - timeutil::kDayMs;
  const std::string digits = text.substr(0, text.empty() ? 0 : text.size() - 1);
  if (!digits.empty() && UnitMs(text.back()) != 0 &&
      absl::ascii_isdigit(static_cast<unsigned char>(digits[0]))) {
    int64_t count = 0;
    const int64_t unit = UnitMs(text.back());
    if (digits.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(digits, &count) || count <= 0 ||
        count > (now_ms - timeutil::kMinTimeMs) / unit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag,
          " wants a positive duration before now reaching no further back than "
          "the year 0001, such as 15m, 24h or 7d; got \"",
          raw, "\""));
    }
    return now_ms - count * unit;
  }
  if (absl::StatusOr<int64_t> day = timeutil::ParseDateMs(raw); day.ok()) {
    return date_means_end_of_day ? *day + timeutil::kDayMs : *day;
  }
  absl::StatusOr<int64_t> ms = timeutil::ParseRfc3339Ms(raw);
  if (!ms.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " wants ", kTimeForms, "; got \"", raw, "\""));
  }
  return *ms;
}

absl::Status BuildFilter(const FilterFlags& f, int64_t now_ms,
                         v1::EventFilter* filter) {
  if (!f.from.empty()) {
    absl::StatusOr<int64_t> ms = ParseTimeFlag("from", f.from, false, now_ms);
    if (!ms.ok()) return ms.status();
    SetTimestamp(*ms, filter->mutable_start_time());
  }
  if (!f.to.empty()) {
    absl::StatusOr<int64_t> ms = ParseTimeFlag("to", f.to, true, now_ms);
    if (!ms.ok()) return ms.status();
    SetTimestamp(*ms, filter->mutable_end_time());
  }
  for (const auto& t : f.topics) filter->add_topics(t);
  for (const auto& p : f.panels) filter->add_panel_ids(p);
  for (const auto& o : f.ous) filter->add_ou_ids(o);
  if (absl::Status s = ParseIds("door", f.doors, filter->mutable_door_ids(),
                                filter->mutable_device_ids());
      !s.ok())
    return s;
  if (absl::Status s = ParseIds("person", f.people, filter->mutable_person_ids(),
                                filter->mutable_holder_ids());
      !s.ok()) {
    return s;
  }
  filter->set_family(f.family);
  return absl::OkStatus();
}

bool BuildFilterOrSay(const char* command, const FilterFlags& f,
                      v1::EventFilter* filter) {
  absl::Status s = BuildFilter(f, timeutil::NowMs(), filter);
  if (s.ok()) return true;
  std::cerr << "pdk-archive " << command << ": " << s.message() << "\n";
  return false;
}

std::optional<int> ParseOrExit(const char* command, FlagSet& flags,
                               const std::vector<std::string>& args,
                               std::vector<std::string>* positional) {
  if (absl::Status s = flags.Parse(args, positional); !s.ok()) {
    std::cerr << "pdk-archive " << command << ": " << s.message() << "\n\n"
              << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  return std::nullopt;
}

}  // namespace pdkarchive::cli
