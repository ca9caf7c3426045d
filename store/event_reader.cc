#include "store/event_reader.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "store/raw_codec.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store {
namespace {

// Column order of kSelectEvents; ReadRow and ScanEach depend on it. These
// hold numbers of `names` rows:
constexpr int kPanelRefColumn = 4;
constexpr int kDoorNameRefColumn = 7;
constexpr int kSubscriptionRefColumn = 12;
// CROSS JOIN keeps events the outer loop, so its indexes serve the filter
// and the order; topics (a few dozen rows) is looked up by primary key.
constexpr char kSelectEvents[] =
    "SELECT sequence, event_id, name, family, panel_ref, ou_id, door_id, "
    "door_name_ref, person_id, actor_user_id, occur_time, receive_time, "
    "subscription_ref, dedupe_key, raw FROM events CROSS JOIN topics USING (topic_id)";
constexpr char kSelectEventBySequence[] =
    "SELECT sequence, event_id, name, family, panel_ref, ou_id, door_id, "
    "door_name_ref, person_id, actor_user_id, occur_time, receive_time, "
    "subscription_ref, dedupe_key, raw FROM events CROSS JOIN topics USING (topic_id) "
    "WHERE sequence = ?";
// Every secondary index is partial on merged = 1; unmerged events, all after
// archive_meta.merged_through, are in none yet and are read by sequence
// (migrations/0004_deferred_indexes.sql). A statement that reads both sees
// one snapshot, so an event is read once even while the writer merges.
constexpr char kMerged[] = "merged = 1";
constexpr char kUnmerged[] =
    "sequence > (SELECT value FROM archive_meta WHERE name = 'merged_through') "
    "AND merged = 0";
constexpr char kSelectUnmergedEvents[] =
    "SELECT sequence, event_id, name, family, panel_ref, ou_id, door_id, "
    "door_name_ref, person_id, actor_user_id, occur_time, receive_time, "
    "subscription_ref, dedupe_key, raw FROM events NOT INDEXED "
    "CROSS JOIN topics USING (topic_id)";
constexpr char kCountFromUnmerged[] =
    "COUNT(*) FROM events NOT INDEXED CROSS JOIN topics USING (topic_id)";
constexpr char kSelectMaxSequence[] =
    "SELECT COALESCE(MAX(sequence), 0) FROM events";
constexpr char kSelectMeta[] = "SELECT value FROM archive_meta WHERE name = ?";
constexpr char kPageTokenKeyName[] = "page_token_key";
constexpr char kExplain[] = "EXPLAIN QUERY PLAN ";

// Fixed WHERE fragments. Only the number of "?" in an IN list varies.
constexpr char kWhere[] = " WHERE ";
constexpr char kAnd[] = " AND ";
constexpr char kStartTime[] = "occur_time >= ?";
constexpr char kEndTime[] = "occur_time < ?";
// Matches no row: a topic filter that no stored topic satisfies.
constexpr char kNothing[] = "0";
// Panel ids are kept once in `names` (migrations/0003_compact_rows.sql);
// events and events_by_panel hold their numbers. The rollups keep the text.
constexpr char kPanelRefIn[] = "panel_ref IN (SELECT name_id FROM names WHERE value IN (";
constexpr char kPanelIn[] = "panel_id IN (";
constexpr char kDoorIn[] = "door_id IN (";
constexpr char kPersonIn[] = "person_id IN (";
constexpr char kOuIn[] = "ou_id IN (";
constexpr char kFirstPlaceholder[] = "?";
constexpr char kNextPlaceholder[] = ", ?";
constexpr char kCloseParen[] = ")";
constexpr char kCloseTwoParens[] = "))";
// The redundant bare occur_time bound lets every (x, occur_time) index seek
// to the cursor even where the planner does not use the row value.
constexpr char kAfterAscending[] =
    "occur_time >= ? AND (occur_time, sequence) > (?, ?)";
constexpr char kAfterDescending[] =
    "occur_time <= ? AND (occur_time, sequence) < (?, ?)";
constexpr char kOrderAscending[] = " ORDER BY occur_time, sequence LIMIT ?";
constexpr char kOrderDescending[] =
    " ORDER BY occur_time DESC, sequence DESC LIMIT ?";
constexpr char kSequenceWindow[] = "sequence > ? AND sequence <= ?";
constexpr char kOrderBySequence[] = " ORDER BY sequence LIMIT ?";
// The live feed reads a window of sequences: the rowid range is the cheap
// path, so no index may lure the planner into scanning, say, every row of a
// topic (measured: 799 ms a read at 10M rows, 1.5 ms without).
constexpr char kSelectEventsBySequence[] =
    "SELECT sequence, event_id, name, family, panel_ref, ou_id, door_id, "
    "door_name_ref, person_id, actor_user_id, occur_time, receive_time, "
    "subscription_ref, dedupe_key, raw FROM events NOT INDEXED "
    "CROSS JOIN topics USING (topic_id)";
// The most sequences one live-feed read looks at, so a selective filter's
// catch-up stays bounded.
constexpr int64_t kMaxSequencesPerRead = 8192;

// Topic patterns and the family are resolved to topic ids (by the reader,
// from the small topics table) before any query: a list of patterns then
// costs one condition on topic_id however long it is (an OR per pattern
// made SQLite refuse a few hundred: "Expression tree is too large").
constexpr char kSelectTopics[] = "SELECT topic_id, name, family FROM topics";
constexpr char kTopicIdEquals[] = "topic_id = ?";
constexpr char kTopicIdIn[] = "topic_id IN (";
// Past this many ids, one bound JSON array instead of one "?" each, so no
// archive's number of topics can reach SQLite's limit on variables.
constexpr size_t kMaxTopicIdPlaceholders = 500;
constexpr char kTopicIdInJson[] = "topic_id IN (SELECT value FROM json_each(?))";
constexpr char kDoorEquals[] = "door_id = ?";
constexpr char kPersonEquals[] = "person_id = ?";
constexpr char kPanelEquals[] = "panel_ref = (SELECT name_id FROM names WHERE value = ?)";
constexpr char kUnionAll[] = " UNION ALL ";
constexpr char kCursorAscending[] = "(occur_time, sequence) > (?, ?)";
constexpr char kCursorDescending[] = "(occur_time, sequence) < (?, ?)";
// A list over several values of one field runs one ordered arm per value,
// merged: each arm walks its own index range in order and the LIMIT stops
// the merge early, where an IN list reads and sorts every match (measured at
// 10M rows: door.request.* over a month, 114 ms as IN, 1.2 ms merged).
constexpr size_t kMaxMergedArms = 64;
// Every arm repeats the other fields' conditions: split only while the
// repeated values stay few, so a large filter cannot multiply into a huge
// statement (or past SQLite's limit on variables).
constexpr size_t kMaxRepeatedArmValues = 2048;
constexpr size_t kMaxRepeatedArmBytes = 256 * 1024;
// How often (in SQLite VM steps) a bounded query checks its deadline.
constexpr int kProgressSteps = 4000;
// RowReplyBytes' allowance for the numbers, times, tags and lengths of a row
// (an Event message encodes them in under 160 bytes).
constexpr size_t kRowOverheadBytes = 160;

// Count keys. Times are floored to whole seconds first so that instants
// before 1970 land in the right hour.
constexpr char kKeyTopic[] = "name";
constexpr char kKeyPanel[] = "(SELECT value FROM names WHERE name_id = panel_ref)";
constexpr char kKeyDoor[] = "COALESCE(CAST(door_id AS TEXT), '')";
constexpr char kKeyPerson[] = "COALESCE(CAST(person_id AS TEXT), '')";
constexpr char kKeyHour[] =
    "COALESCE(strftime('%Y-%m-%dT%H:00:00Z', "
    "(occur_time - ((occur_time % 1000) + 1000) % 1000) / 1000, "
    "'unixepoch'), '')";
constexpr char kKeyDay[] =
    "COALESCE(strftime('%Y-%m-%d', "
    "(occur_time - ((occur_time % 1000) + 1000) % 1000) / 1000, "
    "'unixepoch'), '')";
// The keys over the daily rollups (migrations/0002_daily_counts.sql) are
// the bare integer columns: grouping on them is several times cheaper than
// on text built per row; RollupKeyText formats each group's key once.
constexpr char kRollupKeyPanel[] = "panel_id";
constexpr char kRollupKeyDoor[] = "door_id";
constexpr char kRollupKeyDay[] = "day";
constexpr char kStartDay[] = "day >= ?";
constexpr char kEndDay[] = "day < ?";
constexpr char kSumFromDaily[] =
    "COALESCE(SUM(n), 0) FROM counts_daily CROSS JOIN topics USING (topic_id)";
// Rollup rows to be summed per group here (see EventReader::Count). Their
// keys are door and day only, and topic filters are subqueries on topics, so
// no join is needed.
constexpr char kRowsFromDaily[] = "n FROM counts_daily";
constexpr char kRowsFromDailyTopic[] = "n FROM counts_daily_topic";
constexpr char kSumFromDailyTopic[] =
    "COALESCE(SUM(n), 0) FROM counts_daily_topic CROSS JOIN topics USING (topic_id)";
constexpr char kSelect[] = "SELECT ";
constexpr char kComma[] = ", ";
constexpr char kCountFromEvents[] =
    "COUNT(*) FROM events CROSS JOIN topics USING (topic_id)";
constexpr char kGroupBy[] = " GROUP BY ";
constexpr char kOrderBy[] = " ORDER BY ";

using Value = std::variant<int64_t, std::string>;

// A statement's text (built from the constants above) and its values.
struct Query {
  std::string sql;
  std::vector<Value> values;
};

// Which table answers a count. The rollups hold per-day counts by topic,
// panel and door, so they serve any count whose filter and grouping need
// nothing finer: no person or org, no hours, time bounds on day boundaries.
enum class CountSource { kEvents, kDaily, kDailyTopic };

bool IsWholeDay(const std::optional<int64_t>& ms) {
  return !ms || *ms % kDayMs == 0;
}

CountSource ChooseCountSource(const EventFilter& filter,
                              const std::vector<Dimension>& dimensions) {
  if (!filter.person_ids.empty() || !filter.ou_ids.empty() ||
      !IsWholeDay(filter.start_ms) || !IsWholeDay(filter.end_ms)) {
    return CountSource::kEvents;
  }
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

// The text of a rollup key column (see kRollupKeyDoor).
std::string RollupKeyText(Dimension dimension, const SQLite::Column& column) {
  if (dimension == Dimension::kDoor) {
    const int64_t door = column.getInt64();
    return door == kNoDoor ? "" : std::to_string(door);
  }
  if (dimension != Dimension::kDay) return column.getString();
  const CivilDate date = CivilFromDays(column.getInt64());
  char text[64];
  std::snprintf(text, sizeof text, "%04lld-%02lld-%02lld", static_cast<long long>(date.year),
                static_cast<long long>(date.month), static_cast<long long>(date.day));
  return text;
}

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
    case Dimension::kHour:
      return kKeyHour;
    case Dimension::kDay:
      return kKeyDay;
  }
  return kKeyTopic;
}

template <typename T>
std::vector<T> SortedUnique(std::vector<T> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

// Collects AND-ed conditions.
class Conditions {
 public:
  void Add(const char* fragment) {
    sql_ += sql_.empty() ? kWhere : kAnd;
    sql_ += fragment;
  }

  // `head` ?, ?, ... `tail`: an IN list (the tail closes what head opened).
  template <typename T>
  void AddIn(const char* head, const std::vector<T>& raw, const char* tail = kCloseParen) {
    if (raw.empty()) return;
    std::vector<T> values = SortedUnique(raw);
    sql_ += sql_.empty() ? kWhere : kAnd;
    sql_ += head;
    for (size_t i = 0; i < values.size(); ++i) {
      sql_ += i == 0 ? kFirstPlaceholder : kNextPlaceholder;
      values_.emplace_back(values[i]);
    }
    sql_ += tail;
  }

  // The topic ids a filter's topics and family were resolved to: none
  // matches nothing.
  void AddTopicIds(const std::vector<int64_t>& raw) {
    std::vector<int64_t> ids = SortedUnique(raw);
    if (ids.empty()) {
      Add(kNothing);
    } else if (ids.size() == 1) {
      Add(kTopicIdEquals);
      values_.emplace_back(ids[0]);
    } else if (ids.size() <= kMaxTopicIdPlaceholders) {
      AddIn(kTopicIdIn, ids);
    } else {
      std::string json = "[";
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) json += ',';
        json += std::to_string(ids[i]);
      }
      json += ']';
      Add(kTopicIdInJson);
      values_.emplace_back(std::move(json));
    }
  }

  // Adds every condition of `filter` but its topics and family, which
  // `topic_ids` stands for (nullopt: no topic condition). With `by_day`,
  // the time bounds (which must be whole UTC days) apply to the rollups' day
  // column instead.
  void AddFilter(const EventFilter& filter,
                 const std::optional<std::vector<int64_t>>& topic_ids, bool by_day = false) {
    if (filter.start_ms) {
      Add(by_day ? kStartDay : kStartTime);
      values_.emplace_back(by_day ? *filter.start_ms / kDayMs : *filter.start_ms);
    }
    if (filter.end_ms) {
      Add(by_day ? kEndDay : kEndTime);
      values_.emplace_back(by_day ? *filter.end_ms / kDayMs : *filter.end_ms);
    }
    if (topic_ids) AddTopicIds(*topic_ids);
    if (by_day) {
      AddIn(kPanelIn, filter.panel_ids);
    } else {
      AddIn(kPanelRefIn, filter.panel_ids, kCloseTwoParens);
    }
    AddIn(kDoorIn, filter.door_ids);
    AddIn(kPersonIn, filter.person_ids);
    AddIn(kOuIn, filter.ou_ids);
  }

  void AddValue(Value value) { values_.push_back(std::move(value)); }


  std::string& sql() { return sql_; }
  std::vector<Value>& values() { return values_; }

 private:
  std::string sql_;
  std::vector<Value> values_;
};

void BindAll(SQLite::Statement& statement, const std::vector<Value>& values) {
  int index = 1;
  for (const Value& value : values) {
    if (const int64_t* number = std::get_if<int64_t>(&value)) {
      statement.bind(index, *number);
    } else {
      statement.bind(index, std::get<std::string>(value));
    }
    ++index;
  }
}

// The statement List runs for `query`, whose topics and family have been
// resolved to `topic_ids` (nullopt: no topic condition).
Query BuildList(const ListQuery& query, const std::optional<std::vector<int64_t>>& topic_ids) {
  // The cursor is folded into the time bounds, so the index seek starts at
  // the cursor rather than at the filter's start (which made every export
  // batch and deep page re-walk all earlier rows).
  EventFilter filter = query.filter;
  filter.topics.clear();
  filter.family.clear();
  if (query.after) {
    if (query.descending) {
      const int64_t end = query.after->occur_time_ms + 1;
      filter.end_ms = filter.end_ms ? std::min(*filter.end_ms, end) : end;
    } else {
      const int64_t start = query.after->occur_time_ms;
      filter.start_ms = filter.start_ms ? std::max(*filter.start_ms, start) : start;
    }
  }
  // The unmerged events are read by one more arm with the whole filter.
  const EventFilter unmerged_filter = filter;
  // One field with several values is split into merged arms, one per value.
  enum class Split { kNone, kTopic, kDoor, kPerson, kPanel } split = Split::kNone;
  size_t arms = 1;
  const std::vector<int64_t> topics = topic_ids ? SortedUnique(*topic_ids) : std::vector<int64_t>{};
  const std::vector<int64_t> doors = SortedUnique(filter.door_ids);
  const std::vector<int64_t> people = SortedUnique(filter.person_ids);
  const std::vector<std::string> panels = SortedUnique(filter.panel_ids);
  size_t panel_bytes = 0;
  for (const std::string& panel : panels) panel_bytes += panel.size();
  size_t ou_bytes = 0;
  for (const std::string& ou : filter.ou_ids) ou_bytes += ou.size();
  const size_t all_values =
      topics.size() + doors.size() + people.size() + panels.size() + filter.ou_ids.size();
  const size_t all_bytes = 8 * (topics.size() + doors.size() + people.size()) + panel_bytes +
                           ou_bytes;
  // `values` and `bytes`: what the field itself binds, which the arms split.
  auto consider = [&](Split field, size_t values, size_t bytes) {
    if (split != Split::kNone || values <= 1 || values > kMaxMergedArms) return;
    if (values * (all_values - values) > kMaxRepeatedArmValues ||
        values * (all_bytes - bytes) > kMaxRepeatedArmBytes) {
      return;
    }
    split = field;
    arms = values;
  };
  consider(Split::kTopic, topics.size(), 8 * topics.size());
  consider(Split::kDoor, doors.size(), 8 * doors.size());
  consider(Split::kPerson, people.size(), 8 * people.size());
  consider(Split::kPanel, panels.size(), panel_bytes);
  if (split == Split::kDoor) filter.door_ids.clear();
  if (split == Split::kPerson) filter.person_ids.clear();
  // One panel: an equality on its number, so events_by_panel comes out in
  // order (an IN over a subquery would be read whole and sorted).
  const bool one_panel = split != Split::kPanel && panels.size() == 1;
  if (split == Split::kPanel || one_panel) filter.panel_ids.clear();

  Query out;
  for (size_t arm = 0; arm < arms; ++arm) {
    Conditions conditions;
    conditions.AddFilter(filter, std::nullopt);
    if (topic_ids) {
      if (split == Split::kTopic) {
        conditions.Add(kTopicIdEquals);
        conditions.AddValue(topics[arm]);
      } else {
        conditions.AddTopicIds(topics);
      }
    }
    if (split == Split::kDoor) {
      conditions.Add(kDoorEquals);
      conditions.AddValue(doors[arm]);
    } else if (split == Split::kPerson) {
      conditions.Add(kPersonEquals);
      conditions.AddValue(people[arm]);
    } else if (split == Split::kPanel || one_panel) {
      conditions.Add(kPanelEquals);
      conditions.AddValue(panels[one_panel ? 0 : arm]);
    }
    if (query.after) {
      conditions.Add(query.descending ? kCursorDescending : kCursorAscending);
      conditions.AddValue(query.after->occur_time_ms);
      conditions.AddValue(query.after->sequence);
    }
    conditions.Add(kMerged);
    if (arm > 0) out.sql += kUnionAll;
    out.sql += kSelectEvents;
    out.sql += conditions.sql();
    for (Value& v : conditions.values()) out.values.push_back(std::move(v));
  }
  Conditions unmerged;
  unmerged.AddFilter(unmerged_filter, topic_ids);
  if (query.after) {
    unmerged.Add(query.descending ? kCursorDescending : kCursorAscending);
    unmerged.AddValue(query.after->occur_time_ms);
    unmerged.AddValue(query.after->sequence);
  }
  unmerged.Add(kUnmerged);
  out.sql += kUnionAll;
  out.sql += kSelectUnmergedEvents;
  out.sql += unmerged.sql();
  for (Value& v : unmerged.values()) out.values.push_back(std::move(v));
  out.sql += query.descending ? kOrderDescending : kOrderAscending;
  out.values.emplace_back(static_cast<int64_t>(query.limit) + 1);
  return out;
}

// The topic ids the filter's topics and family allow, or nullopt when it
// names neither. Matched here over the whole (small) topics table: exact
// names, and "prefix.*" as every name that starts with "prefix.".
std::optional<std::vector<int64_t>> ResolveTopicIds(SQLite::Database& db,
                                                    const EventFilter& filter) {
  if (filter.topics.empty() && filter.family.empty()) return std::nullopt;
  std::vector<std::string> exact;
  std::vector<std::string> prefixes;  // each ends in '.'
  for (const std::string& topic : SortedUnique(filter.topics)) {
    std::string_view view = topic;
    if (view.size() >= 2 && view.substr(view.size() - 2) == ".*") {
      prefixes.emplace_back(view.substr(0, view.size() - 1));
    } else {
      exact.push_back(topic);
    }
  }
  std::sort(prefixes.begin(), prefixes.end());
  auto topic_matches = [&](std::string_view name) {
    if (filter.topics.empty()) return true;
    if (std::binary_search(exact.begin(), exact.end(), name)) return true;
    // The name's own prefixes that end in '.', each looked up.
    for (size_t dot = name.find('.'); dot != std::string_view::npos;
         dot = name.find('.', dot + 1)) {
      if (std::binary_search(prefixes.begin(), prefixes.end(), name.substr(0, dot + 1))) {
        return true;
      }
    }
    return false;
  };
  SQLite::Statement statement(db, kSelectTopics);
  std::vector<int64_t> ids;
  while (statement.executeStep()) {
    if (!filter.family.empty() && statement.getColumn(2).getString() != filter.family) continue;
    const SQLite::Column name = statement.getColumn(1);
    if (!topic_matches(std::string_view(static_cast<const char*>(name.getBlob()),
                                        static_cast<size_t>(name.getBytes())))) {
      continue;
    }
    ids.push_back(statement.getColumn(0).getInt64());
  }
  return ids;
}

// A statement of SQLite's C API. ScanEach reads cells in place with it:
// SQLiteCpp's Column copies a shared_ptr per cell, a measurable share of an
// export's time.
struct FinalizeStatement {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using RawStatement = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

absl::Status RawSqliteError(sqlite3* db, int code, std::string_view what) {
  std::string message = std::string(what) + ": " + sqlite3_errmsg(db);
  const int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

absl::Status RawBindAll(sqlite3* db, sqlite3_stmt* statement, const std::vector<Value>& values) {
  int index = 1;
  for (const Value& value : values) {
    int code;
    if (const int64_t* number = std::get_if<int64_t>(&value)) {
      code = sqlite3_bind_int64(statement, index, *number);
    } else {
      const std::string& text = std::get<std::string>(value);
      code = sqlite3_bind_text64(statement, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
    }
    if (code != SQLITE_OK) return RawSqliteError(db, code, "binding an export scan");
    ++index;
  }
  return absl::OkStatus();
}

// The bytes of a cell as SQLiteCpp's getString reads them (NULL is "").
std::string_view CellBytes(sqlite3_stmt* statement, int column) {
  const void* data = sqlite3_column_blob(statement, column);
  const int size = sqlite3_column_bytes(statement, column);
  if (data == nullptr || size <= 0) return {};
  return std::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
}

std::optional<int64_t> CellOptionalInt(sqlite3_stmt* statement, int column) {
  if (sqlite3_column_type(statement, column) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(statement, column);
}

absl::Status FromSqliteError(const SQLite::Exception& e,
                             std::string_view what) {
  const int code = e.getErrorCode();
  std::string message = std::string(what) + ": " + e.what();
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace

// Panel ids, door names and subscriptions are stored once in `names`
// (migrations/0003_compact_rows.sql) and rows refer to them by number.
// Names are never changed or deleted, so a loaded name never goes stale.
// Bounded: past `max_bytes` the oldest loaded names are evicted (and read
// again when asked for); a name larger than the bound is never kept.
// Thread-safe; a returned name stays valid while its holder keeps it.
class NameCache {
 public:
  explicit NameCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // The name numbered `id`, read through `db` when not loaded.
  absl::StatusOr<std::shared_ptr<const std::string>> Get(sqlite3* db, int64_t id) {
    {
      std::shared_lock lock(mu_);
      if (auto it = values_.find(id); it != values_.end()) return it->second;
    }
    absl::StatusOr<std::shared_ptr<const std::string>> loaded = Load(db, id);
    if (!loaded.ok()) return loaded.status();
    const size_t cost = Cost(**loaded);
    if (cost > max_bytes_) return loaded;
    std::unique_lock lock(mu_);
    auto [it, inserted] = values_.try_emplace(id, *loaded);
    if (!inserted) return it->second;
    order_.push_back(id);
    bytes_ += cost;
    while (bytes_ > max_bytes_ && !order_.empty()) {
      auto oldest = values_.find(order_.front());
      order_.pop_front();
      if (oldest == values_.end()) continue;
      bytes_ -= Cost(*oldest->second);
      values_.erase(oldest);
    }
    return loaded;
  }

 private:
  // What one entry is counted as: its text and the map's bookkeeping.
  static size_t Cost(const std::string& value) { return value.size() + 64; }

  static absl::StatusOr<std::shared_ptr<const std::string>> Load(sqlite3* db, int64_t id) {
    sqlite3_stmt* prepared = nullptr;
    int code = sqlite3_prepare_v2(db, "SELECT value FROM names WHERE name_id = ?1", -1,
                                  &prepared, nullptr);
    std::unique_ptr<sqlite3_stmt, FinalizeStatement> statement(prepared);
    if (code != SQLITE_OK) return RawSqliteError(db, code, "reading names");
    sqlite3_bind_int64(prepared, 1, id);
    code = sqlite3_step(prepared);
    if (code == SQLITE_DONE) {
      return absl::DataLossError(absl::StrCat("the archive has no name ", id));
    }
    if (code != SQLITE_ROW) return RawSqliteError(db, code, "reading names");
    return std::make_shared<const std::string>(CellBytes(prepared, 0));
  }

  const size_t max_bytes_;
  std::shared_mutex mu_;
  std::unordered_map<int64_t, std::shared_ptr<const std::string>> values_;
  std::deque<int64_t> order_;  // ids in the order they were loaded
  size_t bytes_ = 0;
};

namespace {

// Reads the current row of a kSelectEvents statement into `row`, unpacking
// the stored event id and payload (store/raw_codec.h).
absl::Status ReadRow(SQLite::Statement& statement, sqlite3* db, NameCache& names,
                     const RawDecompressor& decompressor, bool with_raw, EventRow& row) {
  row.sequence = statement.getColumn(0).getInt64();
  SQLite::Column event_id = statement.getColumn(1);
  row.event_id = event_id.isBlob() ? UnpackUuid(event_id.getString()) : event_id.getString();
  row.topic = statement.getColumn(2).getString();
  row.family = statement.getColumn(3).getString();
  row.ou_id = statement.getColumn(5).getString();
  if (!statement.getColumn(6).isNull()) {
    row.door_id = statement.getColumn(6).getInt64();
  }
  if (!statement.getColumn(8).isNull()) {
    row.person_id = statement.getColumn(8).getInt64();
  }
  row.actor_user_id = statement.getColumn(9).getString();
  row.occur_time_ms = statement.getColumn(10).getInt64();
  row.receive_time_ms = statement.getColumn(11).getInt64();
  for (auto [column, text] : {std::pair{kPanelRefColumn, &row.panel_id},
                              std::pair{kDoorNameRefColumn, &row.door_name},
                              std::pair{kSubscriptionRefColumn, &row.subscription}}) {
    absl::StatusOr<std::shared_ptr<const std::string>> name =
        names.Get(db, statement.getColumn(column).getInt64());
    if (!name.ok()) return name.status();
    *text = **name;
  }
  if (!with_raw) return absl::OkStatus();
  SQLite::Column raw = statement.getColumn(14);
  if (!raw.isBlob()) {
    row.raw = raw.getString();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> text = decompressor.Decompress(raw.getString());
  if (!text.ok()) {
    return absl::DataLossError(absl::StrCat("event ", row.sequence, ": ", text.status().message()));
  }
  row.raw = *std::move(text);
  return absl::OkStatus();
}

}  // namespace


// Returns a borrowed connection to the pool when it goes out of scope. While
// lent, the connection checks the lease's QueryControl every few thousand
// SQLite steps and interrupts the running statement when it says so.
class EventReader::Lease {
 public:
  Lease(EventReader& reader, Lane lane, std::unique_ptr<SQLite::Database> db,
        const QueryControl& control)
      : reader_(reader), lane_(lane), db_(std::move(db)), control_(control) {
    bounded_ = control_.cancelled != nullptr ||
               control_.deadline != std::chrono::steady_clock::time_point::max();
    if (bounded_) sqlite3_progress_handler(handle(), kProgressSteps, &Lease::OnProgress, this);
  }
  ~Lease() {
    if (bounded_) sqlite3_progress_handler(handle(), 0, nullptr, nullptr);
    // An interrupted statement may have left its read transaction open (its
    // ROLLBACK interrupted too): the next borrower must see a fresh snapshot.
    if (sqlite3_get_autocommit(handle()) == 0) {
      sqlite3_exec(handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    reader_.Release(lane_, std::move(db_));
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  SQLite::Database& db() { return *db_; }
  sqlite3* handle() { return db_->getHandle(); }

  // `status` of a failed call on this connection, or, when the control
  // interrupted it, DeadlineExceeded or Cancelled.
  absl::Status Failed(absl::Status status, std::string_view what) const {
    switch (interrupted_) {
      case Interrupt::kNone:
        return status;
      case Interrupt::kDeadline:
        return absl::DeadlineExceededError(
            absl::StrCat(std::string(what), ": stopped at the query's deadline"));
      case Interrupt::kCancelled:
        return absl::CancelledError(absl::StrCat(std::string(what), ": the query was cancelled"));
    }
    return status;
  }
  absl::Status Failed(const SQLite::Exception& e, std::string_view what) const {
    return Failed(FromSqliteError(e, what), what);
  }

 private:
  enum class Interrupt { kNone, kDeadline, kCancelled };

  static int OnProgress(void* self) {
    Lease& lease = *static_cast<Lease*>(self);
    if (lease.control_.cancelled != nullptr &&
        lease.control_.cancelled->load(std::memory_order_relaxed)) {
      lease.interrupted_ = Interrupt::kCancelled;
      return 1;
    }
    if (std::chrono::steady_clock::now() >= lease.control_.deadline) {
      lease.interrupted_ = Interrupt::kDeadline;
      return 1;
    }
    return 0;
  }

  EventReader& reader_;
  const Lane lane_;
  std::unique_ptr<SQLite::Database> db_;
  const QueryControl control_;
  bool bounded_ = false;
  Interrupt interrupted_ = Interrupt::kNone;
};

size_t RowReplyBytes(const EventRow& row) {
  return kRowOverheadBytes + row.event_id.size() + row.topic.size() + row.family.size() +
         row.panel_id.size() + row.ou_id.size() + row.door_name.size() +
         row.actor_user_id.size() + row.subscription.size() + row.raw.size();
}

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::Open(
    const std::string& path, int max_connections) {
  EventReaderOptions options;
  options.max_connections = max_connections;
  return Open(path, options);
}

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::Open(
    const std::string& path, const EventReaderOptions& options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  if (options.lookup_connections < 0) {
    return absl::InvalidArgumentError("lookup_connections must not be negative");
  }
  absl::StatusOr<std::unique_ptr<SQLite::Database>> first =
      OpenReadConnection(path);
  if (!first.ok()) return first.status();
  absl::StatusOr<std::unique_ptr<RawDecompressor>> decompressor = RawDecompressor::Create();
  if (!decompressor.ok()) return decompressor.status();
  return std::unique_ptr<EventReader>(new EventReader(
      path, options, *std::move(first), *std::move(decompressor)));
}

EventReader::EventReader(std::string path, const EventReaderOptions& options,
                         std::unique_ptr<SQLite::Database> first,
                         std::unique_ptr<RawDecompressor> decompressor)
    : path_(std::move(path)),
      max_connections_(options.max_connections),
      max_scans_(options.max_connections -
                 std::clamp(options.lookup_connections, 0, options.max_connections - 1)),
      decompressor_(std::move(decompressor)),
      names_(std::make_unique<NameCache>(options.name_cache_bytes)),
      open_(1) {
  idle_.push_back(std::move(first));
}

EventReader::~EventReader() = default;

absl::StatusOr<std::unique_ptr<SQLite::Database>> EventReader::Acquire(
    Lane lane, const QueryControl& control) {
  {
    std::unique_lock lock(mu_);
    auto available = [&] {
      return (lane == Lane::kLookup || scans_ < max_scans_) &&
             (!idle_.empty() || open_ < max_connections_);
    };
    // Cancellation is a flag nobody signals: look at it every so often.
    constexpr auto kPoll = std::chrono::milliseconds(50);
    while (!available()) {
      if (control.cancelled != nullptr && control.cancelled->load()) {
        return absl::CancelledError("the query was cancelled while waiting for a connection");
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= control.deadline) {
        return absl::DeadlineExceededError(
            "the query's deadline passed while it waited for a connection");
      }
      cv_.wait_until(lock, control.deadline - now < kPoll ? control.deadline : now + kPoll);
    }
    if (lane == Lane::kScan) ++scans_;
    if (!idle_.empty()) {
      std::unique_ptr<SQLite::Database> db = std::move(idle_.back());
      idle_.pop_back();
      return db;
    }
    ++open_;
  }
  // Opened outside the lock: opening waits on the file system.
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db =
      OpenReadConnection(path_);
  if (!db.ok()) {
    std::lock_guard lock(mu_);
    --open_;
    if (lane == Lane::kScan) --scans_;
    cv_.notify_all();
  }
  return db;
}

void EventReader::Release(Lane lane, std::unique_ptr<SQLite::Database> db) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(db));
  if (lane == Lane::kScan) --scans_;
  // Waiters of both lanes wait on one condition: wake them all.
  cv_.notify_all();
}

absl::StatusOr<ListPage> EventReader::List(const ListQuery& query, const QueryControl& control) {
  if (query.limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kScan, *std::move(db), control);
  try {
    const std::optional<std::vector<int64_t>> topic_ids =
        ResolveTopicIds(lease.db(), query.filter);
    ListPage page;
    if (topic_ids && topic_ids->empty()) return page;  // no such topic stored
    Query built = BuildList(query, topic_ids);
    SQLite::Statement statement(lease.db(), built.sql);
    BindAll(statement, built.values);
    size_t bytes = 0;
    while (statement.executeStep()) {
      if (page.rows.size() == static_cast<size_t>(query.limit)) {
        page.more = true;
        break;
      }
      EventRow& row = page.rows.emplace_back();
      if (absl::Status s = ReadRow(statement, lease.handle(), *names_, *decompressor_,
                                   query.with_raw, row);
          !s.ok()) {
        return lease.Failed(s, "listing events");
      }
      bytes += RowReplyBytes(row);
      if (query.max_bytes > 0 && bytes > query.max_bytes && page.rows.size() > 1) {
        page.rows.pop_back();
        page.more = true;
        break;
      }
    }
    return page;
  } catch (const SQLite::Exception& e) {
    return lease.Failed(e, "listing events");
  }
}

absl::StatusOr<EventRow> EventReader::Get(int64_t sequence, const QueryControl& control) {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kLookup, control);
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kLookup, *std::move(db), control);
  try {
    SQLite::Statement statement(lease.db(), kSelectEventBySequence);
    statement.bind(1, sequence);
    if (!statement.executeStep()) {
      return absl::NotFoundError("no event with sequence " +
                                 std::to_string(sequence));
    }
    EventRow row;
    if (absl::Status s = ReadRow(statement, lease.handle(), *names_, *decompressor_, true, row);
        !s.ok()) {
      return lease.Failed(s, "reading an event");
    }
    return row;
  } catch (const SQLite::Exception& e) {
    return lease.Failed(e, "reading an event");
  }
}

namespace {


absl::Status TooManyGroups(int64_t max_groups) {
  return absl::ResourceExhaustedError(
      absl::StrCat("the count has more than ", max_groups,
                   " groups; narrow the filter or group by fewer dimensions"));
}

bool OverLimit(size_t groups, int64_t max_groups) {
  return max_groups > 0 && groups > static_cast<size_t>(max_groups);
}

// Count's groups from the indexed events (`rollup`: from the daily rollups),
// sorted by their text keys; ResourceExhausted past `max_groups` (> 0).
// Throws SQLite errors.
absl::StatusOr<std::vector<CountGroup>> CountIndexed(
    SQLite::Database& db, const std::string& sql, const std::vector<Value>& values,
    const std::vector<Dimension>& dimensions, bool rollup, bool sum_here, int64_t max_groups) {
  SQLite::Statement statement(db, sql);
  BindAll(statement, values);
  std::vector<CountGroup> groups;
  const int key_count = static_cast<int>(dimensions.size());
  if (!sum_here) {
    while (statement.executeStep()) {
      CountGroup group;
      for (int i = 0; i < key_count; ++i) {
        group.key.push_back(rollup ? RollupKeyText(dimensions[static_cast<size_t>(i)],
                                                   statement.getColumn(i))
                                   : statement.getColumn(i).getString());
      }
      group.count = statement.getColumn(key_count).getInt64();
      groups.push_back(std::move(group));
      if (OverLimit(groups.size(), max_groups)) return TooManyGroups(max_groups);
    }
    if (!rollup) return groups;
  } else {
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
    while (statement.executeStep()) {
      const std::pair<int64_t, int64_t> key(
          statement.getColumn(0).getInt64(),
          key_count > 1 ? statement.getColumn(1).getInt64() : 0);
      auto [it, inserted] = group_of.try_emplace(key, groups.size());
      if (inserted) {
        CountGroup& group = groups.emplace_back();
        for (int i = 0; i < key_count; ++i) {
          group.key.push_back(
              RollupKeyText(dimensions[static_cast<size_t>(i)], statement.getColumn(i)));
        }
        if (OverLimit(groups.size(), max_groups)) return TooManyGroups(max_groups);
      }
      groups[it->second].count += statement.getColumn(key_count).getInt64();
    }
    // Sorted by their text keys. Door and day texts are digits and '-', so
    // joined by a NUL they sort as the keys do; short enough to stay
    // inline, they sort without chasing pointers (106k groups: 2x faster
    // than comparing the key vectors).
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
    std::vector<CountGroup> sorted;
    sorted.reserve(groups.size());
    for (const auto& [joined, i] : order) sorted.push_back(std::move(groups[i]));
    return sorted;
  }
  // Sorted by their text keys, as the events' GROUP BY ... ORDER BY gives.
  std::sort(groups.begin(), groups.end(),
            [](const CountGroup& a, const CountGroup& b) { return a.key < b.key; });
  return groups;
}

}  // namespace

absl::StatusOr<std::vector<CountGroup>> EventReader::Count(
    const EventFilter& filter, const std::vector<Dimension>& dimensions, int64_t max_groups,
    const QueryControl& control) {
  std::vector<Dimension> seen;
  for (Dimension dimension : dimensions) {
    if (std::find(seen.begin(), seen.end(), dimension) != seen.end()) {
      return absl::InvalidArgumentError("a dimension is repeated");
    }
    seen.push_back(dimension);
  }
  const CountSource source = ChooseCountSource(filter, dimensions);
  const bool rollup = source != CountSource::kEvents;
  std::string text_keys;
  for (size_t i = 0; i < dimensions.size(); ++i) {
    if (i > 0) text_keys += kComma;
    text_keys += KeyExpression(dimensions[i]);
  }
  std::string keys = text_keys;
  if (rollup) {
    keys.clear();
    for (size_t i = 0; i < dimensions.size(); ++i) {
      if (i > 0) keys += kComma;
      keys += RollupKeyExpression(dimensions[i]);
    }
  }
  // Rollup groups keyed by door and day only (integer columns) are summed
  // here rather than by GROUP BY: a hash map is several times cheaper than
  // SQLite's sorter for the tens of thousands of groups of door x day over a
  // month (measured at 10M events: 6 ms to read the month's rollup rows,
  // 35 ms more to group them in SQL).
  const bool sum_here =
      rollup && !keys.empty() && std::all_of(dimensions.begin(), dimensions.end(), [](Dimension d) {
        return d == Dimension::kDoor || d == Dimension::kDay;
      });

  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kScan, *std::move(db), control);
  try {
    // One snapshot for both statements: a merge between them would count
    // its events twice, or not at all. The topics are resolved in it too.
    SQLite::Transaction snapshot(lease.db());
    const std::optional<std::vector<int64_t>> topic_ids = ResolveTopicIds(lease.db(), filter);
    Conditions conditions;
    conditions.AddFilter(filter, topic_ids, rollup);
    if (!rollup) conditions.Add(kMerged);
    // The unmerged events, counted from the events themselves, by text keys.
    Conditions unmerged;
    unmerged.AddFilter(filter, topic_ids);
    unmerged.Add(kUnmerged);
    std::string unmerged_sql = kSelect;
    if (!text_keys.empty()) {
      unmerged_sql += text_keys;
      unmerged_sql += kComma;
    }
    unmerged_sql += kCountFromUnmerged;
    unmerged_sql += unmerged.sql();
    if (!text_keys.empty()) {
      unmerged_sql += kGroupBy;
      unmerged_sql += text_keys;
    }
    std::string sql = kSelect;
    if (!keys.empty()) {
      sql += keys;
      sql += kComma;
    }
    if (sum_here) {
      sql += source == CountSource::kDaily ? kRowsFromDaily : kRowsFromDailyTopic;
    } else {
      sql += source == CountSource::kEvents  ? kCountFromEvents
             : source == CountSource::kDaily ? kSumFromDaily
                                             : kSumFromDailyTopic;
    }
    sql += conditions.sql();
    if (!keys.empty() && !sum_here) {
      sql += kGroupBy;
      sql += keys;
      if (!rollup) {  // rollup groups are sorted by their text keys below
        sql += kOrderBy;
        sql += keys;
      }
    }

    absl::StatusOr<std::vector<CountGroup>> counted = CountIndexed(
        lease.db(), sql, conditions.values(), dimensions, rollup, sum_here, max_groups);
    if (!counted.ok()) return counted.status();
    std::vector<CountGroup> groups = *std::move(counted);
    SQLite::Statement statement(lease.db(), unmerged_sql);
    BindAll(statement, unmerged.values());
    std::map<std::vector<std::string>, int64_t> more;
    const int key_count = static_cast<int>(dimensions.size());
    while (statement.executeStep()) {
      const int64_t n = statement.getColumn(key_count).getInt64();
      if (n == 0) continue;  // no dimensions: the one COUNT(*) row
      std::vector<std::string> key;
      for (int i = 0; i < key_count; ++i) key.push_back(statement.getColumn(i).getString());
      more[std::move(key)] += n;
      if (OverLimit(more.size(), max_groups)) return TooManyGroups(max_groups);
    }
    statement.reset();
    snapshot.commit();
    if (more.empty()) return groups;
    for (CountGroup& group : groups) {
      if (auto it = more.find(group.key); it != more.end()) {
        group.count += it->second;
        more.erase(it);
      }
    }
    if (more.empty()) return groups;
    if (OverLimit(groups.size() + more.size(), max_groups)) return TooManyGroups(max_groups);
    for (auto& [key, n] : more) groups.push_back({key, n});
    std::sort(groups.begin(), groups.end(),
              [](const CountGroup& x, const CountGroup& y) { return x.key < y.key; });
    return groups;
  } catch (const SQLite::Exception& e) {
    return lease.Failed(e, "counting events");
  }
}

absl::StatusOr<ScanProgress> EventReader::ScanEach(
    const EventFilter& filter, const std::optional<Cursor>& after, int limit, bool with_raw,
    absl::FunctionRef<bool(const EventView&)> visit, const QueryControl& control) {
  if (limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kScan, *std::move(db), control);
  ScanProgress progress;
  Query built;
  try {
    const std::optional<std::vector<int64_t>> topic_ids =
        ResolveTopicIds(lease.db(), filter);
    if (topic_ids && topic_ids->empty()) {  // no such topic stored
      progress.exhausted = true;
      return progress;
    }
    ListQuery query;
    query.filter = filter;
    query.limit = limit;
    query.after = after;
    built = BuildList(query, topic_ids);
  } catch (const SQLite::Exception& e) {
    return lease.Failed(e, "scanning events");
  }

  sqlite3* handle = lease.handle();
  sqlite3_stmt* prepared = nullptr;
  const int prepare_code = sqlite3_prepare_v2(handle, built.sql.c_str(),
                                              static_cast<int>(built.sql.size()), &prepared,
                                              nullptr);
  RawStatement statement(prepared);
  if (prepare_code != SQLITE_OK) {
    return lease.Failed(RawSqliteError(handle, prepare_code, "preparing an export scan"),
                        "scanning events");
  }
  if (absl::Status s = RawBindAll(handle, statement.get(), built.values); !s.ok()) return s;

  // Column order of kSelectEvents (see ReadRow). The unpacked event id and
  // payload, and the names, live here for the length of one visit.
  sqlite3_stmt* st = statement.get();
  std::string event_id_text;
  std::string raw_text;
  std::shared_ptr<const std::string> names[3];
  EventView row;
  while (progress.rows < limit) {
    const int code = sqlite3_step(st);
    if (code == SQLITE_DONE) {
      progress.exhausted = true;
      break;
    }
    if (code != SQLITE_ROW) {
      return lease.Failed(RawSqliteError(handle, code, "scanning events"), "scanning events");
    }
    row.sequence = sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 1) == SQLITE_BLOB) {
      event_id_text = UnpackUuid(CellBytes(st, 1));
      row.event_id = event_id_text;
    } else {
      row.event_id = CellBytes(st, 1);
    }
    row.topic = CellBytes(st, 2);
    row.family = CellBytes(st, 3);
    row.ou_id = CellBytes(st, 5);
    row.door_id = CellOptionalInt(st, 6);
    row.person_id = CellOptionalInt(st, 8);
    row.actor_user_id = CellBytes(st, 9);
    row.occur_time_ms = sqlite3_column_int64(st, 10);
    row.receive_time_ms = sqlite3_column_int64(st, 11);
    int held = 0;
    for (auto [column, text] : {std::pair{kPanelRefColumn, &row.panel_id},
                                std::pair{kDoorNameRefColumn, &row.door_name},
                                std::pair{kSubscriptionRefColumn, &row.subscription}}) {
      absl::StatusOr<std::shared_ptr<const std::string>> name =
          names_->Get(handle, sqlite3_column_int64(st, column));
      if (!name.ok()) return lease.Failed(name.status(), "scanning events");
      names[held] = *std::move(name);
      *text = *names[held++];
    }
    if (with_raw) {
      if (sqlite3_column_type(st, 14) == SQLITE_BLOB) {
        absl::StatusOr<std::string> text = decompressor_->Decompress(CellBytes(st, 14));
        if (!text.ok()) {
          return absl::DataLossError(
              absl::StrCat("event ", row.sequence, ": ", text.status().message()));
        }
        raw_text = *std::move(text);
        row.raw = raw_text;
      } else {
        row.raw = CellBytes(st, 14);
      }
    }
    ++progress.rows;
    progress.last = Cursor{row.occur_time_ms, row.sequence};
    if (!visit(row)) break;
  }
  return progress;
}

absl::StatusOr<SequencePage> EventReader::ListAfterSequence(
    const EventFilter& filter, int64_t after_sequence, int limit, size_t max_bytes,
    const QueryControl& control) {
  if (limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kScan, control);
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kScan, *std::move(db), control);
  try {
    // Sequences are assigned in commit order by one writer, so every row at
    // or below the maximum read here is already committed: bounding the
    // second statement by it gives one consistent window without holding a
    // read transaction open. The topics of those rows are committed with or
    // before them, so resolving the filter's topics after it finds them.
    SQLite::Statement max_statement(lease.db(), kSelectMaxSequence);
    max_statement.executeStep();
    const int64_t newest = max_statement.getColumn(0).getInt64();
    const int64_t max_sequence = std::min(newest, after_sequence + kMaxSequencesPerRead);

    SequencePage page;
    page.newest = newest;
    page.scanned_through = std::max(after_sequence, max_sequence);
    if (max_sequence <= after_sequence) return page;

    Conditions conditions;
    conditions.AddFilter(filter, ResolveTopicIds(lease.db(), filter));
    conditions.Add(kSequenceWindow);
    std::string sql = kSelectEventsBySequence;
    sql += conditions.sql();
    sql += kOrderBySequence;
    SQLite::Statement statement(lease.db(), sql);
    BindAll(statement, conditions.values());
    int index = static_cast<int>(conditions.values().size()) + 1;
    statement.bind(index++, after_sequence);
    statement.bind(index++, max_sequence);
    statement.bind(index, static_cast<int64_t>(limit));
    size_t bytes = 0;
    bool cut = false;
    while (statement.executeStep()) {
      EventRow& row = page.rows.emplace_back();
      if (absl::Status s = ReadRow(statement, lease.handle(), *names_, *decompressor_, true, row);
          !s.ok()) {
        return lease.Failed(s, "reading new events");
      }
      bytes += RowReplyBytes(row);
      if (max_bytes > 0 && bytes > max_bytes && page.rows.size() > 1) {
        page.rows.pop_back();
        cut = true;
        break;
      }
    }
    if (cut || page.rows.size() == static_cast<size_t>(limit)) {
      page.scanned_through = page.rows.back().sequence;
    }
    return page;
  } catch (const SQLite::Exception& e) {
    return lease.Failed(e, "reading new events");
  }
}

absl::StatusOr<int64_t> EventReader::MaxSequence() {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kLookup, {});
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kLookup, *std::move(db), {});
  try {
    SQLite::Statement statement(lease.db(), kSelectMaxSequence);
    statement.executeStep();
    return statement.getColumn(0).getInt64();
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "reading the newest sequence");
  }
}

absl::StatusOr<std::string> EventReader::PageTokenKey() {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kLookup, {});
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kLookup, *std::move(db), {});
  try {
    SQLite::Statement statement(lease.db(), kSelectMeta);
    statement.bind(1, kPageTokenKeyName);
    if (!statement.executeStep() || statement.getColumn(0).getBytes() == 0) {
      return absl::FailedPreconditionError(
          "the archive has no page_token_key; open it for writing once");
    }
    return statement.getColumn(0).getString();
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "reading the page token key");
  }
}

absl::StatusOr<std::vector<std::string>> EventReader::ExplainList(
    const ListQuery& query) {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire(Lane::kScan, {});
  if (!db.ok()) return db.status();
  Lease lease(*this, Lane::kScan, *std::move(db), {});
  try {
    Query built = BuildList(query, ResolveTopicIds(lease.db(), query.filter));
    SQLite::Statement statement(lease.db(), std::string(kExplain) + built.sql);
    BindAll(statement, built.values);
    std::vector<std::string> details;
    while (statement.executeStep()) {
      details.push_back(statement.getColumn(3).getString());
    }
    return details;
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "explaining a query");
  }
}

}  // namespace pdkarchive::store
