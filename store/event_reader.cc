#include "store/event_reader.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <string_view>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "store/raw_codec.h"
#include "store/sqlite_util.h"

namespace pdkarchive::store {
namespace {

// Column order of kSelectEvents; ReadRow depends on it.
// CROSS JOIN keeps events the outer loop, so its indexes serve the filter
// and the order; topics (a few dozen rows) is looked up by primary key.
constexpr char kSelectEvents[] =
    "SELECT sequence, event_id, name, family, panel_id, ou_id, door_id, "
    "door_name, person_id, actor_user_id, occur_time, receive_time, "
    "subscription, dedupe_key, raw FROM events CROSS JOIN topics USING (topic_id)";
constexpr char kSelectEventBySequence[] =
    "SELECT sequence, event_id, name, family, panel_id, ou_id, door_id, "
    "door_name, person_id, actor_user_id, occur_time, receive_time, "
    "subscription, dedupe_key, raw FROM events CROSS JOIN topics USING (topic_id) "
    "WHERE sequence = ?";
constexpr char kSelectMaxSequence[] =
    "SELECT COALESCE(MAX(sequence), 0) FROM events";
constexpr char kSelectMeta[] = "SELECT value FROM archive_meta WHERE name = ?";
constexpr char kPageTokenKeyName[] = "page_token_key";
constexpr char kExplain[] = "EXPLAIN QUERY PLAN ";

// Fixed WHERE fragments. Only the number of "?" in an IN list varies.
constexpr char kWhere[] = " WHERE ";
constexpr char kAnd[] = " AND ";
constexpr char kOr[] = " OR ";
constexpr char kStartTime[] = "occur_time >= ?";
constexpr char kEndTime[] = "occur_time < ?";
// Topics are matched by name in the small topics table; events_by_topic then
// serves the matching topic ids.
constexpr char kTopicIdsWhere[] = "topic_id IN (SELECT topic_id FROM topics WHERE ";
constexpr char kTopicIn[] = "name IN (";
// A "prefix.*" pattern as a range: "door." <= name < "door/" ('/' follows '.').
constexpr char kTopicRange[] = "(name >= ? AND name < ?)";
constexpr char kPanelIn[] = "panel_id IN (";
constexpr char kDoorIn[] = "door_id IN (";
constexpr char kPersonIn[] = "person_id IN (";
constexpr char kOuIn[] = "ou_id IN (";
constexpr char kFamilyEquals[] =
    "topic_id IN (SELECT topic_id FROM topics WHERE family = ?)";
constexpr char kFirstPlaceholder[] = "?";
constexpr char kNextPlaceholder[] = ", ?";
constexpr char kCloseParen[] = ")";
constexpr char kOpenParen[] = "(";
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

// Count keys. Times are floored to whole seconds first so that instants
// before 1970 land in the right hour.
constexpr char kKeyTopic[] = "name";
constexpr char kKeyPanel[] = "panel_id";
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
// The same keys over the daily rollups (migrations/0002_daily_counts.sql).
constexpr char kRollupKeyDoor[] =
    "CASE WHEN door_id = -9223372036854775808 THEN '' ELSE CAST(door_id AS TEXT) END";
constexpr char kRollupKeyDay[] = "strftime('%Y-%m-%d', day * 86400, 'unixepoch')";
constexpr char kStartDay[] = "day >= ?";
constexpr char kEndDay[] = "day < ?";
constexpr char kSumFromDaily[] =
    "COALESCE(SUM(n), 0) FROM counts_daily CROSS JOIN topics USING (topic_id)";
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
      return dimension == Dimension::kTopic ? kKeyTopic : kKeyPanel;
  }
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

  template <typename T>
  void AddIn(const char* head, const std::vector<T>& raw) {
    if (raw.empty()) return;
    std::vector<T> values = SortedUnique(raw);
    sql_ += sql_.empty() ? kWhere : kAnd;
    sql_ += head;
    for (size_t i = 0; i < values.size(); ++i) {
      sql_ += i == 0 ? kFirstPlaceholder : kNextPlaceholder;
      values_.emplace_back(values[i]);
    }
    sql_ += kCloseParen;
  }

  void AddTopics(const std::vector<std::string>& topics) {
    if (topics.empty()) return;
    std::vector<std::string> exact;
    std::vector<std::string> prefixes;
    for (const std::string& topic : SortedUnique(topics)) {
      std::string_view view = topic;
      if (view.size() >= 2 && view.substr(view.size() - 2) == ".*") {
        prefixes.emplace_back(view.substr(0, view.size() - 1));  // keeps '.'
      } else {
        exact.push_back(topic);
      }
    }
    sql_ += sql_.empty() ? kWhere : kAnd;
    sql_ += kTopicIdsWhere;
    sql_ += kOpenParen;
    bool first = true;
    if (!exact.empty()) {
      sql_ += kTopicIn;
      for (size_t i = 0; i < exact.size(); ++i) {
        sql_ += i == 0 ? kFirstPlaceholder : kNextPlaceholder;
        values_.emplace_back(exact[i]);
      }
      sql_ += kCloseParen;
      first = false;
    }
    for (const std::string& prefix : prefixes) {
      if (!first) sql_ += kOr;
      first = false;
      sql_ += kTopicRange;
      std::string upper = prefix;
      upper.back() = '/';
      values_.emplace_back(prefix);
      values_.emplace_back(std::move(upper));
    }
    sql_ += kCloseParen;
    sql_ += kCloseParen;
  }

  // Adds every condition of `filter`. With `by_day`, the time bounds (which
  // must be whole UTC days) apply to the rollups' day column instead.
  void AddFilter(const EventFilter& filter, bool by_day = false) {
    if (filter.start_ms) {
      Add(by_day ? kStartDay : kStartTime);
      values_.emplace_back(by_day ? *filter.start_ms / kDayMs : *filter.start_ms);
    }
    if (filter.end_ms) {
      Add(by_day ? kEndDay : kEndTime);
      values_.emplace_back(by_day ? *filter.end_ms / kDayMs : *filter.end_ms);
    }
    AddTopics(filter.topics);
    AddIn(kPanelIn, filter.panel_ids);
    AddIn(kDoorIn, filter.door_ids);
    AddIn(kPersonIn, filter.person_ids);
    AddIn(kOuIn, filter.ou_ids);
    if (!filter.family.empty()) {
      Add(kFamilyEquals);
      values_.emplace_back(filter.family);
    }
  }

  void AddValue(Value value) { values_.push_back(std::move(value)); }

  std::string& sql() { return sql_; }
  std::vector<Value>& values() { return values_; }

 private:
  std::string sql_;
  std::vector<Value> values_;
};

Query BuildList(const ListQuery& query) {
  Conditions conditions;
  conditions.AddFilter(query.filter);
  if (query.after) {
    conditions.Add(query.descending ? kAfterDescending : kAfterAscending);
    conditions.AddValue(query.after->occur_time_ms);
    conditions.AddValue(query.after->occur_time_ms);
    conditions.AddValue(query.after->sequence);
  }
  Query out;
  out.sql = kSelectEvents;
  out.sql += conditions.sql();
  out.sql += query.descending ? kOrderDescending : kOrderAscending;
  out.values = std::move(conditions.values());
  out.values.emplace_back(static_cast<int64_t>(query.limit) + 1);
  return out;
}

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

// Reads the current row of a kSelectEvents statement into `row`, unpacking
// the stored event id and payload (store/raw_codec.h).
absl::Status ReadRow(SQLite::Statement& statement, const RawDecompressor& decompressor,
                     EventRow& row) {
  row.sequence = statement.getColumn(0).getInt64();
  SQLite::Column event_id = statement.getColumn(1);
  row.event_id = event_id.isBlob() ? UnpackUuid(event_id.getString()) : event_id.getString();
  row.topic = statement.getColumn(2).getString();
  row.family = statement.getColumn(3).getString();
  row.panel_id = statement.getColumn(4).getString();
  row.ou_id = statement.getColumn(5).getString();
  if (!statement.getColumn(6).isNull()) {
    row.door_id = statement.getColumn(6).getInt64();
  }
  row.door_name = statement.getColumn(7).getString();
  if (!statement.getColumn(8).isNull()) {
    row.person_id = statement.getColumn(8).getInt64();
  }
  row.actor_user_id = statement.getColumn(9).getString();
  row.occur_time_ms = statement.getColumn(10).getInt64();
  row.receive_time_ms = statement.getColumn(11).getInt64();
  row.subscription = statement.getColumn(12).getString();
  row.dedupe_key = statement.getColumn(13).getString();
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

// Returns a borrowed connection to the pool when it goes out of scope.
class EventReader::Lease {
 public:
  Lease(EventReader& reader, std::unique_ptr<SQLite::Database> db)
      : reader_(reader), db_(std::move(db)) {}
  ~Lease() { reader_.Release(std::move(db_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  SQLite::Database& db() { return *db_; }

 private:
  EventReader& reader_;
  std::unique_ptr<SQLite::Database> db_;
};

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::Open(
    const std::string& path, int max_connections) {
  if (max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  absl::StatusOr<std::unique_ptr<SQLite::Database>> first =
      OpenReadConnection(path);
  if (!first.ok()) return first.status();
  absl::StatusOr<std::unique_ptr<RawDecompressor>> decompressor = RawDecompressor::Create();
  if (!decompressor.ok()) return decompressor.status();
  return std::unique_ptr<EventReader>(new EventReader(
      path, max_connections, *std::move(first), *std::move(decompressor)));
}

EventReader::EventReader(std::string path, int max_connections,
                         std::unique_ptr<SQLite::Database> first,
                         std::unique_ptr<RawDecompressor> decompressor)
    : path_(std::move(path)),
      max_connections_(max_connections),
      decompressor_(std::move(decompressor)),
      open_(1) {
  idle_.push_back(std::move(first));
}

EventReader::~EventReader() = default;

absl::StatusOr<std::unique_ptr<SQLite::Database>> EventReader::Acquire() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
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
    cv_.notify_one();
  }
  return db;
}

void EventReader::Release(std::unique_ptr<SQLite::Database> db) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(db));
  cv_.notify_one();
}

absl::StatusOr<ListPage> EventReader::List(const ListQuery& query) {
  if (query.limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  Query built = BuildList(query);
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire();
  if (!db.ok()) return db.status();
  Lease lease(*this, *std::move(db));
  try {
    SQLite::Statement statement(lease.db(), built.sql);
    BindAll(statement, built.values);
    ListPage page;
    while (statement.executeStep()) {
      if (page.rows.size() == static_cast<size_t>(query.limit)) {
        page.more = true;
        break;
      }
      EventRow& row = page.rows.emplace_back();
      if (absl::Status s = ReadRow(statement, *decompressor_, row); !s.ok()) return s;
    }
    return page;
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "listing events");
  }
}

absl::StatusOr<EventRow> EventReader::Get(int64_t sequence) {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire();
  if (!db.ok()) return db.status();
  Lease lease(*this, *std::move(db));
  try {
    SQLite::Statement statement(lease.db(), kSelectEventBySequence);
    statement.bind(1, sequence);
    if (!statement.executeStep()) {
      return absl::NotFoundError("no event with sequence " +
                                 std::to_string(sequence));
    }
    EventRow row;
    if (absl::Status s = ReadRow(statement, *decompressor_, row); !s.ok()) return s;
    return row;
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "reading an event");
  }
}

absl::StatusOr<std::vector<CountGroup>> EventReader::Count(
    const EventFilter& filter, const std::vector<Dimension>& dimensions) {
  std::vector<Dimension> seen;
  for (Dimension dimension : dimensions) {
    if (std::find(seen.begin(), seen.end(), dimension) != seen.end()) {
      return absl::InvalidArgumentError("a dimension is repeated");
    }
    seen.push_back(dimension);
  }
  const CountSource source = ChooseCountSource(filter, dimensions);
  const bool rollup = source != CountSource::kEvents;
  Conditions conditions;
  conditions.AddFilter(filter, rollup);
  std::string keys;
  for (size_t i = 0; i < dimensions.size(); ++i) {
    if (i > 0) keys += kComma;
    keys += rollup ? RollupKeyExpression(dimensions[i]) : KeyExpression(dimensions[i]);
  }
  std::string sql = kSelect;
  if (!keys.empty()) {
    sql += keys;
    sql += kComma;
  }
  sql += source == CountSource::kEvents  ? kCountFromEvents
         : source == CountSource::kDaily ? kSumFromDaily
                                         : kSumFromDailyTopic;
  sql += conditions.sql();
  if (!keys.empty()) {
    sql += kGroupBy;
    sql += keys;
    sql += kOrderBy;
    sql += keys;
  }

  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire();
  if (!db.ok()) return db.status();
  Lease lease(*this, *std::move(db));
  try {
    SQLite::Statement statement(lease.db(), sql);
    BindAll(statement, conditions.values());
    std::vector<CountGroup> groups;
    const int key_count = static_cast<int>(dimensions.size());
    while (statement.executeStep()) {
      CountGroup group;
      for (int i = 0; i < key_count; ++i) {
        group.key.push_back(statement.getColumn(i).getString());
      }
      group.count = statement.getColumn(key_count).getInt64();
      groups.push_back(std::move(group));
    }
    return groups;
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "counting events");
  }
}

absl::StatusOr<std::vector<EventRow>> EventReader::Scan(
    const EventFilter& filter, const std::optional<Cursor>& after, int batch) {
  ListQuery query;
  query.filter = filter;
  query.limit = batch;
  query.after = after;
  absl::StatusOr<ListPage> page = List(query);
  if (!page.ok()) return page.status();
  return std::move(page->rows);
}

absl::StatusOr<SequencePage> EventReader::ListAfterSequence(
    const EventFilter& filter, int64_t after_sequence, int limit) {
  if (limit < 1) return absl::InvalidArgumentError("limit must be >= 1");
  Conditions conditions;
  conditions.AddFilter(filter);
  conditions.Add(kSequenceWindow);
  std::string sql = kSelectEvents;
  sql += conditions.sql();
  sql += kOrderBySequence;

  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire();
  if (!db.ok()) return db.status();
  Lease lease(*this, *std::move(db));
  try {
    // Sequences are assigned in commit order by one writer, so every row at
    // or below the maximum read here is already committed: bounding the
    // second statement by it gives one consistent window without holding a
    // read transaction open.
    SQLite::Statement max_statement(lease.db(), kSelectMaxSequence);
    max_statement.executeStep();
    const int64_t max_sequence = max_statement.getColumn(0).getInt64();

    SequencePage page;
    page.scanned_through = std::max(after_sequence, max_sequence);
    if (max_sequence <= after_sequence) return page;

    SQLite::Statement statement(lease.db(), sql);
    BindAll(statement, conditions.values());
    int index = static_cast<int>(conditions.values().size()) + 1;
    statement.bind(index++, after_sequence);
    statement.bind(index++, max_sequence);
    statement.bind(index, static_cast<int64_t>(limit));
    while (statement.executeStep()) {
      EventRow& row = page.rows.emplace_back();
      if (absl::Status s = ReadRow(statement, *decompressor_, row); !s.ok()) return s;
    }
    if (page.rows.size() == static_cast<size_t>(limit)) {
      page.scanned_through = page.rows.back().sequence;
    }
    return page;
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "reading new events");
  }
}

absl::StatusOr<int64_t> EventReader::MaxSequence() {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire();
  if (!db.ok()) return db.status();
  Lease lease(*this, *std::move(db));
  try {
    SQLite::Statement statement(lease.db(), kSelectMaxSequence);
    statement.executeStep();
    return statement.getColumn(0).getInt64();
  } catch (const SQLite::Exception& e) {
    return FromSqliteError(e, "reading the newest sequence");
  }
}

absl::StatusOr<std::string> EventReader::PageTokenKey() {
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire();
  if (!db.ok()) return db.status();
  Lease lease(*this, *std::move(db));
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
  Query built = BuildList(query);
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = Acquire();
  if (!db.ok()) return db.status();
  Lease lease(*this, *std::move(db));
  try {
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
