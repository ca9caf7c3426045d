#include "store/sqlite/count_plan.h"

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "store/sqlite/read_query.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::sqlite {
namespace {

constexpr char kWhat[] = "counting events";
constexpr char kSelect[] = "SELECT ";
constexpr char kComma[] = ", ";
constexpr char kGroupBy[] = " GROUP BY ";

// Count keys over the events. Times are floored to whole seconds first so
// that instants before 1970 land in the right hour. Outside the years
// 0000-9999 (timeutil::kMinRfc3339Ms..kMaxRfc3339Ms) the key is "", as
// timeutil::FormatDayKey and FormatHourKey say: strftime would give NULL
// past 9999 but text such as "-001-12-31" before year 0.
constexpr char kKeyTopic[] = "name";
constexpr char kKeyPanel[] = "(SELECT value FROM names WHERE name_id = panel_ref)";
// A 2.0 event's door is its device id, its person its holder id.
constexpr char kKeyDoor[] = "COALESCE(device_id, CAST(door_id AS TEXT), '')";
constexpr char kKeyPerson[] = "COALESCE(holder_id, CAST(person_id AS TEXT), '')";
// counts_daily_device (migrations/0008_v2_ids.sql): its door key is two
// columns, the number counts_daily counted the events under and the device
// id they belong under.
constexpr char kDeviceRollupKeyDoor[] = "door_id, device_id";
constexpr char kSumFromDailyDevice[] =
    "SUM(n) FROM counts_daily_device CROSS JOIN topics USING (topic_id)";
constexpr char kKeyHourFormat[] = "%Y-%m-%dT%H:00:00Z";
constexpr char kKeyDayFormat[] = "%Y-%m-%d";

// The key of the events' hour or day: strftime's `format` within the years
// RFC 3339 writes, else "". The bounds are timeutil's, written into the
// text once per process.
std::string KeyOfTime(const char* format) {
  return absl::StrCat("CASE WHEN occur_time BETWEEN ", timeutil::kMinRfc3339Ms, " AND ",
                      timeutil::kMaxRfc3339Ms, " THEN strftime('", format,
                      "', (occur_time - ((occur_time % 1000) + 1000) % 1000) / 1000, "
                      "'unixepoch') ELSE '' END");
}

// The keys over the daily rollups (migrations/0002_daily_counts.sql) are
// the bare integer columns: grouping on them is several times cheaper than
// on text built per row; RollupKeyText formats each group's key once.
constexpr char kRollupKeyPanel[] = "panel_id";
constexpr char kRollupKeyDoor[] = "door_id";
constexpr char kRollupKeyDay[] = "day";
constexpr char kSumFromDaily[] =
    "COALESCE(SUM(n), 0) FROM counts_daily CROSS JOIN topics USING (topic_id)";
constexpr char kSumFromDailyTopic[] =
    "COALESCE(SUM(n), 0) FROM counts_daily_topic CROSS JOIN topics USING (topic_id)";
// Rollup rows to be summed per group here (see CountGroups). Their keys are
// door and day only, and topic filters are subqueries on topics, so no join
// is needed.
constexpr char kRowsFromDaily[] = "n FROM counts_daily";
constexpr char kRowsFromDailyTopic[] = "n FROM counts_daily_topic";

bool IsWholeDay(const std::optional<int64_t>& ms) { return !ms || *ms % timeutil::kDayMs == 0; }

const char* KeyExpression(Dimension dimension) {
  switch (dimension) {
    case Dimension::kTopic:
      return kKeyTopic;
    case Dimension::kPanel:
      return kKeyPanel;
    case Dimension::kDoor:
      return kKeyDoor;
    case Dimension::kPerson:
      return kKeyPerson;
    case Dimension::kHour: {
      static const std::string& key = *new std::string(KeyOfTime(kKeyHourFormat));
      return key.c_str();
    }
    case Dimension::kDay: {
      static const std::string& key = *new std::string(KeyOfTime(kKeyDayFormat));
      return key.c_str();
    }
  }
  return kKeyTopic;
}

const char* RollupKeyExpression(Dimension dimension) {
  switch (dimension) {
    case Dimension::kDoor:
      return kRollupKeyDoor;
    case Dimension::kDay:
      return kRollupKeyDay;
    default:
      return dimension == Dimension::kTopic ? kKeyTopic : kRollupKeyPanel;
  }
}

// The text of a rollup key column (see kRollupKeyDoor). A day's text is
// timeutil::FormatDayKey's, or "" outside the years 0000-9999, as the
// events' key (KeyOfTime) gives it.
std::string RollupKeyText(Dimension dimension, const Statement& statement, int column) {
  if (dimension == Dimension::kDoor) {
    const int64_t door = statement.Int(column);
    return door == kNoDoor ? "" : std::to_string(door);
  }
  if (dimension != Dimension::kDay) return std::string(statement.Bytes(column));
  return timeutil::FormatDayKey(statement.Int(column)).value_or("");
}

// Sums the groups of `groups` (sorted by key) whose keys are equal, as the
// rollups' days outside the years 0000-9999 (key "") are.
void MergeEqualKeys(std::vector<CountGroup>& groups) {
  if (groups.empty()) return;
  size_t last = 0;
  for (size_t i = 1; i < groups.size(); ++i) {
    if (groups[i].key == groups[last].key) {
      groups[last].count += groups[i].count;
    } else if (++last != i) {
      groups[last] = std::move(groups[i]);
    }
  }
  groups.resize(last + 1);
}

std::string JoinKeys(const std::vector<Dimension>& dimensions,
                     const char* (*expression)(Dimension)) {
  std::string keys;
  for (size_t i = 0; i < dimensions.size(); ++i) {
    if (i > 0) keys += kComma;
    keys += expression(dimensions[i]);
  }
  return keys;
}

absl::Status TooManyGroups(int64_t max_groups) {
  return absl::ResourceExhaustedError(
      absl::StrCat("the count has more than ", max_groups,
                   " groups; narrow the filter or group by fewer dimensions"));
}

bool OverLimit(size_t groups, int64_t max_groups) {
  return max_groups > 0 && groups > static_cast<size_t>(max_groups);
}

// Groups from the indexed part's statement, keyed by `dimensions`, sorted
// by their text keys (`rollup`: from the daily rollups; `sum_here`: rollup
// rows keyed by door and day, summed here).
absl::Status ReadIndexed(Statement& statement, const std::vector<Dimension>& dimensions,
                         bool rollup, bool sum_here, int64_t max_groups,
                         std::vector<CountGroup>& out) {
  std::vector<CountGroup> groups;
  const int key_count = static_cast<int>(dimensions.size());
  if (!sum_here) {
    while (statement.Next()) {
      CountGroup group;
      for (int i = 0; i < key_count; ++i) {
        group.key.push_back(rollup ? RollupKeyText(dimensions[static_cast<size_t>(i)],
                                                   statement, i)
                                   : std::string(statement.Bytes(i)));
      }
      group.count = statement.Int(key_count);
      groups.push_back(std::move(group));
      if (OverLimit(groups.size(), max_groups)) return TooManyGroups(max_groups);
    }
    if (!statement.status().ok()) return statement.status();
    // Sorted by their text keys, as the events' GROUP BY ... ORDER BY gives.
    if (rollup) {
      std::sort(groups.begin(), groups.end(),
                [](const CountGroup& a, const CountGroup& b) { return a.key < b.key; });
      if (std::find(dimensions.begin(), dimensions.end(), Dimension::kDay) != dimensions.end()) {
        MergeEqualKeys(groups);
      }
    }
    out = std::move(groups);
    return absl::OkStatus();
  }
  // At most two integer key columns: door and day, in either order.
  struct KeyHash {  // std::hash of an integer is the integer: mix it
    size_t operator()(const std::pair<int64_t, int64_t>& k) const {
      uint64_t h = static_cast<uint64_t>(k.first) * 0x9e3779b97f4a7c15u;
      h ^= static_cast<uint64_t>(k.second) + 0x632be59bd9b4e019u + (h << 6) + (h >> 2);
      h ^= h >> 31;
      h *= 0xbf58476d1ce4e5b9u;
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };
  std::unordered_map<std::pair<int64_t, int64_t>, size_t, KeyHash> group_of;
  group_of.reserve(4096);
  while (statement.Next()) {
    const std::pair<int64_t, int64_t> key(statement.Int(0),
                                          key_count > 1 ? statement.Int(1) : 0);
    auto [it, inserted] = group_of.try_emplace(key, groups.size());
    if (inserted) {
      CountGroup& group = groups.emplace_back();
      for (int i = 0; i < key_count; ++i) {
        group.key.push_back(RollupKeyText(dimensions[static_cast<size_t>(i)], statement, i));
      }
      if (OverLimit(groups.size(), max_groups)) return TooManyGroups(max_groups);
    }
    groups[it->second].count += statement.Int(key_count);
  }
  if (!statement.status().ok()) return statement.status();
  // Sorted by their text keys. Door and day texts are digits and '-', so
  // joined by a NUL they sort as the keys do; short enough to stay inline,
  // they sort without chasing pointers (106k groups: 2x faster than
  // comparing the key vectors).
  std::vector<std::pair<std::string, size_t>> order;
  order.reserve(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    std::string joined = groups[i].key[0];
    for (size_t k = 1; k < groups[i].key.size(); ++k) {
      joined.push_back('\0');
      joined += groups[i].key[k];
    }
    order.emplace_back(std::move(joined), i);
  }
  std::sort(order.begin(), order.end());
  out.clear();
  out.reserve(groups.size());
  for (size_t j = 0; j < order.size(); ++j) {
    CountGroup& group = groups[order[j].second];
    // Days outside the years 0000-9999 share the key "": one group.
    if (j > 0 && order[j].first == order[j - 1].first) {
      out.back().count += group.count;
    } else {
      out.push_back(std::move(group));
    }
  }
  return absl::OkStatus();
}

// The events with a device id that counts_daily counted under a door number
// (or "no door"), read from counts_daily_device under the same filter:
// each group's count is subtracted from the number's key in `moves` and
// added to the device id's.
absl::Status ReadDeviceMoves(const ReadTransaction& snapshot, sqlite3* db,
                             const EventFilter& filter,
                             const std::optional<std::vector<int64_t>>& topic_ids,
                             const std::vector<Dimension>& dimensions,
                             std::map<std::vector<std::string>, int64_t>& moves) {
  if (!snapshot.status().ok()) return snapshot.status();
  std::string keys;
  for (size_t i = 0; i < dimensions.size(); ++i) {
    if (i > 0) keys += kComma;
    keys += dimensions[i] == Dimension::kDoor ? kDeviceRollupKeyDoor
                                              : RollupKeyExpression(dimensions[i]);
  }
  Conditions by_day;
  by_day.AddFilter(filter, topic_ids, /*by_day=*/true);
  const std::string sql =
      absl::StrCat(kSelect, keys, kComma, kSumFromDailyDevice, by_day.sql(), kGroupBy, keys);
  Statement statement(db, sql, by_day.values(), kWhat);
  if (!statement.status().ok()) return statement.status();
  while (statement.Next()) {
    std::vector<std::string> from;
    std::vector<std::string> to;
    int column = 0;
    for (Dimension d : dimensions) {
      if (d == Dimension::kDoor) {
        from.push_back(RollupKeyText(d, statement, column));
        to.emplace_back(statement.Bytes(column + 1));
        column += 2;
      } else {
        from.push_back(RollupKeyText(d, statement, column));
        to.push_back(from.back());
        ++column;
      }
    }
    const int64_t n = statement.Int(column);
    moves[std::move(from)] -= n;
    moves[std::move(to)] += n;
  }
  return statement.status();
}

}  // namespace

CountSource ChooseCountSource(const EventFilter& filter,
                              const std::vector<Dimension>& dimensions) {
  if (!filter.person_ids.empty() || !filter.ou_ids.empty() || !IsWholeDay(filter.start_ms) ||
      !IsWholeDay(filter.end_ms)) {
    return CountSource::kEvents;
  }
  // The rollups know no device or holder ids.
  if (!filter.device_ids.empty() || !filter.holder_ids.empty()) return CountSource::kEvents;
  // In the rollups kNoDoor stands for "no door"; a filter on that number
  // asks for events whose door is that number, which only the events know.
  if (std::find(filter.door_ids.begin(), filter.door_ids.end(), kNoDoor) !=
      filter.door_ids.end()) {
    return CountSource::kEvents;
  }
  bool topic_and_day_only = filter.panel_ids.empty() && filter.door_ids.empty();
  for (Dimension d : dimensions) {
    if (d == Dimension::kPerson || d == Dimension::kHour) return CountSource::kEvents;
    if (d == Dimension::kPanel || d == Dimension::kDoor) topic_and_day_only = false;
  }
  return topic_and_day_only ? CountSource::kDailyTopic : CountSource::kDaily;
}

absl::StatusOr<std::vector<CountGroup>> CountGroups(
    const ReadTransaction& snapshot, sqlite3* db, const EventFilter& filter,
    const std::optional<std::vector<int64_t>>& topic_ids,
    const std::vector<Dimension>& dimensions, int64_t max_groups) {
  const CountSource source = ChooseCountSource(filter, dimensions);
  // Door keys from the rollups: the events with a device id move from their
  // number's group to their device's.
  const bool move_devices =
      source == CountSource::kDaily &&
      std::find(dimensions.begin(), dimensions.end(), Dimension::kDoor) != dimensions.end();
  const bool rollup = source != CountSource::kEvents;
  const std::string text_keys = JoinKeys(dimensions, &KeyExpression);
  // Rollup groups keyed by door and day only (integer columns) are summed
  // here rather than by GROUP BY: a hash map is several times cheaper than
  // SQLite's sorter for the tens of thousands of groups of door x day over a
  // month (measured at 10M events: 6 ms to read the month's rollup rows,
  // 35 ms more to group them in SQL).
  const bool sum_here = rollup && !dimensions.empty() &&
                        std::all_of(dimensions.begin(), dimensions.end(), [](Dimension d) {
                          return d == Dimension::kDoor || d == Dimension::kDay;
                        });

  Conditions conditions;
  conditions.AddFilter(filter, topic_ids);
  std::optional<Query> from_rollup;
  if (rollup) {
    const std::string keys = JoinKeys(dimensions, &RollupKeyExpression);
    Conditions by_day;
    by_day.AddFilter(filter, topic_ids, /*by_day=*/true);
    Query& q = from_rollup.emplace();
    q.sql = kSelect;
    if (!keys.empty()) {
      q.sql += keys;
      q.sql += kComma;
    }
    if (sum_here) {
      q.sql += source == CountSource::kDaily ? kRowsFromDaily : kRowsFromDailyTopic;
    } else {
      q.sql += source == CountSource::kDaily ? kSumFromDaily : kSumFromDailyTopic;
    }
    q.sql += by_day.sql();
    q.values = by_day.values();
    // Rollup groups are sorted by their text keys as they are read.
    if (!keys.empty() && !sum_here) {
      q.sql += kGroupBy;
      q.sql += keys;
    }
  }
  const IndexedPlusTail::CountQueries queries =
      IndexedPlusTail::Count(text_keys, conditions, std::move(from_rollup));

  std::vector<CountGroup> groups;
  // The tail's groups, by their text keys.
  std::map<std::vector<std::string>, int64_t> more;
  const int key_count = static_cast<int>(dimensions.size());
  absl::Status status = IndexedPlusTail::RunCount(
      snapshot, db, queries,
      [&](Statement& statement) {
        return ReadIndexed(statement, dimensions, rollup, sum_here, max_groups, groups);
      },
      [&](Statement& statement) {
        while (statement.Next()) {
          const int64_t n = statement.Int(key_count);
          if (n == 0) continue;  // no dimensions: the one COUNT(*) row
          std::vector<std::string> key;
          for (int i = 0; i < key_count; ++i) key.emplace_back(statement.Bytes(i));
          more[std::move(key)] += n;
          if (OverLimit(more.size(), max_groups)) return TooManyGroups(max_groups);
        }
        return statement.status();
      },
      kWhat);
  if (!status.ok()) return status;
  if (move_devices) {
    // Same snapshot: the caller's read transaction is still open.
    status = ReadDeviceMoves(snapshot, db, filter, topic_ids, dimensions, more);
    if (!status.ok()) return status;
  }
  if (more.empty()) return groups;
  for (CountGroup& group : groups) {
    if (auto it = more.find(group.key); it != more.end()) {
      group.count += it->second;
      more.erase(it);
    }
  }
  if (move_devices) {
    // A number's group whose events all had device ids is gone.
    groups.erase(std::remove_if(groups.begin(), groups.end(),
                                [](const CountGroup& g) { return g.count == 0; }),
                 groups.end());
    std::erase_if(more, [](const auto& entry) { return entry.second == 0; });
  }
  if (more.empty()) return groups;
  if (OverLimit(groups.size() + more.size(), max_groups)) return TooManyGroups(max_groups);
  for (auto& [key, n] : more) groups.push_back({key, n});
  std::sort(groups.begin(), groups.end(),
            [](const CountGroup& x, const CountGroup& y) { return x.key < y.key; });
  return groups;
}

}  // namespace pdkarchive::store::sqlite
