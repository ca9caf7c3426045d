#include "store/postgres/pg_count.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {
namespace {

// The first instant and day RFC 3339 can write (0000-01-01, a whole day).
constexpr int64_t kMinMs = timeutil::kMinRfc3339Ms;
constexpr int64_t kMinDay = timeutil::DayOf(timeutil::kMinRfc3339Ms);
constexpr int64_t kMaxDay = timeutil::DayOf(timeutil::kMaxRfc3339Ms);
static_assert(kMinMs % timeutil::kDayMs == 0);

// counts_daily with the events of counts_daily_device moved from their
// door number (or "no door") to their device id: each of those once more
// with -n under (door_id, ''), and once with n under (door_id, device_id).
// Filters apply to every arm alike.
constexpr char kDailyWithDevices[] =
    "(SELECT day, topic, family, panel_id, door_id, ''::text COLLATE \"C\" AS device_id, n "
    "FROM counts_daily "
    "UNION ALL SELECT day, topic, family, panel_id, door_id, '', -n FROM counts_daily_device "
    "UNION ALL SELECT day, topic, family, panel_id, door_id, device_id, n "
    "FROM counts_daily_device) AS c";

bool IsWholeDay(const std::optional<int64_t>& ms) { return !ms || *ms % timeutil::kDayMs == 0; }

// The hours and days of the events are grouped as numbers counted from
// kMinMs (non-negative, so integer division floors them), NULL outside the
// years 0000-9999; ReadCountGroups formats each group's key once.
std::string EventsTimeKey(int64_t unit_ms) {
  return absl::StrCat("CASE WHEN occur_time BETWEEN ", kMinMs, " AND ", timeutil::kMaxRfc3339Ms,
                      " THEN (occur_time - (", kMinMs, ")) / ", unit_ms, " END");
}

std::string KeyExpression(Dimension dimension, CountSource source) {
  const bool rollup = source != CountSource::kEvents;
  switch (dimension) {
    case Dimension::kTopic:
      return "topic";
    case Dimension::kPanel:
      return "panel_id";
    case Dimension::kDoor:  // two columns: see KeyColumns
      return "door_id, device_id";
    case Dimension::kPerson:
      return "person_id, holder_id";
    case Dimension::kHour:
      return EventsTimeKey(timeutil::kHourMs);
    case Dimension::kDay:
      if (!rollup) return EventsTimeKey(timeutil::kDayMs);
      return absl::StrCat("CASE WHEN day BETWEEN ", kMinDay, " AND ", kMaxDay,
                          " THEN day::bigint END");
  }
  return "topic";
}

// Door and person keys are two columns each: the 1.0 number and the 2.0
// text id (a 2.0 event's key).
int KeyColumns(Dimension dimension) {
  return dimension == Dimension::kDoor || dimension == Dimension::kPerson ? 2 : 1;
}

std::string KeyText(Dimension dimension, CountSource source, const Result& result, int row,
                    int column) {
  switch (dimension) {
    case Dimension::kTopic:
    case Dimension::kPanel:
      return std::string(result.bytes(row, column));
    case Dimension::kDoor:
    case Dimension::kPerson: {
      if (!result.is_null(row, column + 1) && !result.bytes(row, column + 1).empty()) {
        return std::string(result.bytes(row, column + 1));
      }
      const std::optional<int64_t> id = BinaryOptionalInt(result, row, column);
      // In the rollups kNoDoor stands for "no door".
      if (!id || (source != CountSource::kEvents && *id == kNoDoor)) return "";
      return std::to_string(*id);
    }
    case Dimension::kHour: {
      const std::optional<int64_t> hour = BinaryOptionalInt(result, row, column);
      if (!hour) return "";
      return timeutil::FormatHourKey(kMinMs + *hour * timeutil::kHourMs).value_or("");
    }
    case Dimension::kDay: {
      const std::optional<int64_t> day = BinaryOptionalInt(result, row, column);
      if (!day) return "";
      return timeutil::FormatDayKey(source == CountSource::kEvents ? kMinDay + *day : *day)
          .value_or("");
    }
  }
  return "";
}

}  // namespace

CountSource ChooseCountSource(const EventFilter& filter,
                              const std::vector<Dimension>& dimensions) {
  if (!filter.person_ids.empty() || !filter.ou_ids.empty() || !IsWholeDay(filter.start_ms) ||
      !IsWholeDay(filter.end_ms)) {
    return CountSource::kEvents;
  }
  // The rollups know devices (counts_daily.device_id) but not holders; ""
  // there stands for "no device", which asks the events.
  if (!filter.holder_ids.empty() ||
      std::find(filter.device_ids.begin(), filter.device_ids.end(), "") !=
          filter.device_ids.end()) {
    return CountSource::kEvents;
  }
  // In the rollups kNoDoor stands for "no door"; a filter on that number
  // asks for events whose door is that number, which only the events know.
  if (std::find(filter.door_ids.begin(), filter.door_ids.end(), kNoDoor) !=
      filter.door_ids.end()) {
    return CountSource::kEvents;
  }
  bool topic_and_day_only =
      filter.panel_ids.empty() && filter.door_ids.empty() && filter.device_ids.empty();
  for (Dimension d : dimensions) {
    if (d == Dimension::kPerson || d == Dimension::kHour) return CountSource::kEvents;
    if (d == Dimension::kPanel || d == Dimension::kDoor) topic_and_day_only = false;
  }
  return topic_and_day_only ? CountSource::kDailyTopic : CountSource::kDaily;
}

Query BuildCount(const EventFilter& filter, const std::vector<Dimension>& dimensions,
                 CountSource source, int64_t max_rows) {
  // A door key or a device filter over the rollups: the events with a
  // device id move from their number's group to their device's.
  const bool move_devices =
      source == CountSource::kDaily &&
      (!filter.device_ids.empty() ||
       std::find(dimensions.begin(), dimensions.end(), Dimension::kDoor) != dimensions.end());
  Query out;
  Conditions conditions(out);
  conditions.AddFilter(filter, /*by_day=*/source != CountSource::kEvents);
  std::string keys;
  std::string positions;
  int column = 0;
  for (size_t i = 0; i < dimensions.size(); ++i) {
    if (i > 0) keys += ", ";
    keys += KeyExpression(dimensions[i], source);
    for (int c = 0; c < KeyColumns(dimensions[i]); ++c) {
      if (column > 0) positions += ", ";
      positions += std::to_string(++column);
    }
  }
  out.sql = "SELECT ";
  if (!keys.empty()) out.sql += keys + ", ";
  switch (source) {
    case CountSource::kEvents:
      out.sql += "COUNT(*) FROM events";
      break;
    case CountSource::kDaily:
      out.sql += "COALESCE(SUM(n), 0)::bigint FROM ";
      out.sql += move_devices ? kDailyWithDevices : "counts_daily";
      break;
    case CountSource::kDailyTopic:
      out.sql += "COALESCE(SUM(n), 0)::bigint FROM counts_daily_topic";
      break;
  }
  out.sql += conditions.Where();
  if (!positions.empty()) {
    out.sql += " GROUP BY " + positions;
    // A number's group whose events all had device ids is gone.
    if (move_devices) out.sql += " HAVING SUM(n) <> 0";
    if (max_rows > 0) {
      out.params.Int(max_rows);
      out.sql += absl::StrCat(" LIMIT $", out.params.size());
    }
  }
  return out;
}

std::vector<CountGroup> ReadCountGroups(const Result& result,
                                        const std::vector<Dimension>& dimensions,
                                        CountSource source) {
  int key_columns = 0;
  for (Dimension d : dimensions) key_columns += KeyColumns(d);
  std::vector<CountGroup> groups;
  groups.reserve(static_cast<size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) {
    CountGroup& group = groups.emplace_back();
    group.key.reserve(dimensions.size());
    int column = 0;
    for (Dimension d : dimensions) {
      group.key.push_back(KeyText(d, source, result, row, column));
      column += KeyColumns(d);
    }
    group.count = BinaryInt(result, row, key_columns);
  }
  if (dimensions.empty() && groups.empty()) groups.push_back({});
  std::sort(groups.begin(), groups.end(),
            [](const CountGroup& a, const CountGroup& b) { return a.key < b.key; });
  // Equal keys sum: a device id may come with and without a door number.
  size_t last = 0;
  for (size_t i = 1; i < groups.size(); ++i) {
    if (groups[i].key == groups[last].key) {
      groups[last].count += groups[i].count;
    } else if (++last != i) {
      groups[last] = std::move(groups[i]);
    }
  }
  if (!groups.empty()) groups.resize(last + 1);
  return groups;
}

}  // namespace pdkarchive::store::pg
