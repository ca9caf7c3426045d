// The PostgreSQL reader tests' archive and model: a migrated database of the
// test cluster with rows inserted by SQL (and the daily rollups kept the way
// the writer keeps them), and a model of the reader's answers written
// independently of it. For tests/postgres/pg_reader*_test.cc only.
#ifndef PDKARCHIVE_TESTS_POSTGRES_PG_READER_FIXTURE_H_
#define PDKARCHIVE_TESTS_POSTGRES_PG_READER_FIXTURE_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/archive_reader.h"
#include "store/event.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_migrations.h"
#include "store/postgres/pg_reader.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {

constexpr int64_t kDay = timeutil::kDayMs;
constexpr int64_t kHour = timeutil::kHourMs;
// 2026-01-01T00:00:00Z.
constexpr int64_t kJan1 = timeutil::DaysFromCivil(2026, 1, 1) * kDay;

constexpr char kInsertEvent[] =
    "INSERT INTO events (sequence, occur_time, receive_time, topic, family, panel_id, ou_id, "
    "door_id, door_name, person_id, actor_user_id, event_id, subscription, raw) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
constexpr char kBumpDaily[] =
    "INSERT INTO counts_daily (day, topic, family, panel_id, door_id, n) "
    "VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (day, topic, family, panel_id, door_id) "
    "DO UPDATE SET n = counts_daily.n + 1";
constexpr char kBumpDailyTopic[] =
    "INSERT INTO counts_daily_topic (day, topic, family, n) VALUES ($1, $2, $3, 1) "
    "ON CONFLICT (day, topic, family) DO UPDATE SET n = counts_daily_topic.n + 1";
constexpr char kBumpState[] =
    "UPDATE archive_state SET last_sequence = GREATEST(last_sequence, $1)";

// --- The model -------------------------------------------------------------

inline bool IsPrefix(const std::string& topic) {
  return topic.size() >= 2 && topic.substr(topic.size() - 2) == ".*";
}

template <typename T>
inline bool In(const std::vector<T>& values, const T& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

inline bool Matches(const EventFilter& f, const EventRow& r) {
  if (f.start_ms && r.occur_time_ms < *f.start_ms) return false;
  if (f.end_ms && r.occur_time_ms >= *f.end_ms) return false;
  if (!f.topics.empty()) {
    bool any = false;
    for (const std::string& t : f.topics) {
      if (t == r.topic) any = true;
      if (IsPrefix(t) && r.topic.starts_with(t.substr(0, t.size() - 1))) any = true;
    }
    if (!any) return false;
  }
  if (!f.family.empty() && f.family != r.family) return false;
  if (!f.panel_ids.empty() && !In(f.panel_ids, r.panel_id)) return false;
  if (!f.door_ids.empty() && (!r.door_id || !In(f.door_ids, *r.door_id))) return false;
  if (!f.person_ids.empty() && (!r.person_id || !In(f.person_ids, *r.person_id))) return false;
  if (!f.ou_ids.empty() && !In(f.ou_ids, r.ou_id)) return false;
  return true;
}

inline std::vector<EventRow> ModelList(const std::vector<EventRow>& rows, const EventFilter& f,
                                       bool descending) {
  std::vector<EventRow> out;
  for (const EventRow& r : rows) {
    if (Matches(f, r)) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const EventRow& a, const EventRow& b) {
    return std::pair(a.occur_time_ms, a.sequence) < std::pair(b.occur_time_ms, b.sequence);
  });
  if (descending) std::reverse(out.begin(), out.end());
  return out;
}

inline std::string ModelKey(Dimension d, const EventRow& r) {
  switch (d) {
    case Dimension::kTopic:
      return r.topic;
    case Dimension::kPanel:
      return r.panel_id;
    case Dimension::kDoor:
      return r.door_id ? std::to_string(*r.door_id) : "";
    case Dimension::kPerson:
      return r.person_id ? std::to_string(*r.person_id) : "";
    case Dimension::kHour:
      return timeutil::FormatHourKey(r.occur_time_ms).value_or("");
    case Dimension::kDay:
      return timeutil::FormatDayKey(timeutil::DayOf(r.occur_time_ms)).value_or("");
  }
  return "";
}

inline std::vector<CountGroup> ModelCount(const std::vector<EventRow>& rows, const EventFilter& f,
                                          const std::vector<Dimension>& dims) {
  std::map<std::vector<std::string>, int64_t> groups;
  if (dims.empty()) groups[{}] = 0;
  for (const EventRow& r : rows) {
    if (!Matches(f, r)) continue;
    std::vector<std::string> key;
    for (Dimension d : dims) key.push_back(ModelKey(d, r));
    ++groups[key];
  }
  std::vector<CountGroup> out;
  for (const auto& [key, n] : groups) out.push_back({key, n});
  return out;
}

// --- Rows --------------------------------------------------------------------

// A varied set: topics sharing prefixes (and "door" and "doorx.y", which
// "door.*" must not match), rows with and without door and person, equal
// occur times, days across three months and outside 1970-2199 and the
// years 0000-9999, payloads that are not UTF-8.
inline std::vector<EventRow> SampleRows() {
  const std::vector<std::pair<std::string, std::string>> topics = {
      {"door.request.granted", "panel"},
      {"door.request.denied", "panel"},
      {"door.forced", "panel"},
      {"panel.online", "panel"},
      {"org.user.created", "org"},
      {"door", "unknown"},
      {"doorx.y", "unknown"}};
  // One panel id with a quote and a backslash, as array literals escape them.
  const std::vector<std::string> panels = {"p1", "p2", "p\"3\\"};
  std::vector<EventRow> rows;
  for (int i = 0; i < 420; ++i) {
    EventRow r;
    r.sequence = i + 1;
    const auto& [topic, family] = topics[static_cast<size_t>(i * 7 % 13) % topics.size()];
    r.topic = topic;
    r.family = family;
    r.panel_id = panels[static_cast<size_t>(i % 3)];
    r.ou_id = i % 4 == 0 ? "ou2" : "ou1";
    if (i % 5 != 0) r.door_id = i % 6 - 1;  // -1..4, some negative
    r.door_name = r.door_id ? absl::StrCat("Door ", *r.door_id) : "";
    if (i % 3 == 1) r.person_id = 100 + i % 4;
    r.actor_user_id = i % 2 == 0 ? "u-1" : "";
    // Spread over about 80 days from 2026-01-01, some sharing one instant.
    r.occur_time_ms = kJan1 + (i / 2) * (9 * kHour + 17 * 60000) + (i % 3 == 0 ? 0 : 1);
    r.receive_time_ms = r.occur_time_ms + 5;
    r.event_id = absl::StrCat("evt-", i);
    r.subscription = i % 2 == 0 ? "default" : "doors";
    r.raw = absl::StrCat("{\"i\":", i, "}");
    if (i % 11 == 0) r.raw += std::string("\0\xff\xfe", 3);
    rows.push_back(r);
  }
  // Far times: before 1970, past 2199, before year 0 and past 9999.
  const int64_t far[] = {-5 * kDay + 3, timeutil::DaysFromCivil(2300, 6, 1) * kDay,
                         timeutil::kMinRfc3339Ms - 2 * kDay, timeutil::kMaxRfc3339Ms + 3 * kDay,
                         timeutil::kMaxRfc3339Ms + 40 * kDay};
  for (int64_t t : far) {
    EventRow r = rows[rows.size() - 7];
    r.sequence = static_cast<int64_t>(rows.size()) + 1;
    r.occur_time_ms = t;
    r.event_id = absl::StrCat("far-", r.sequence);
    rows.push_back(r);
  }
  return rows;
}

// --- The fixture ---------------------------------------------------------------

class PgReaderTest : public ::testing::Test {
 public:
  using TestArchive = pdkarchive::testing::TestArchive;

 protected:
  void SetUp() override {
    dir_ = pdkarchive::testing::FreshTestDir("pg_reader");
    absl::StatusOr<std::unique_ptr<TestArchive>> archive =
        TestArchive::Create(pdkarchive::testing::Engine::kPostgres, dir_);
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    connect_.uri = archive_->db();
    absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(connect_);
    ASSERT_TRUE(conn.ok()) << conn.status();
    conn_ = *std::move(conn);
    ASSERT_NO_FATAL_FAILURE(Migrate());
    // Month partitions for the sample's three months; other rows go to the
    // default partition.
    for (int month = 1; month <= 3; ++month) {
      const int64_t from = timeutil::DaysFromCivil(2026, month, 1) * kDay;
      const int64_t to = timeutil::DaysFromCivil(2026, month + 1, 1) * kDay;
      ASSERT_TRUE(conn_
                      ->Exec(absl::StrCat("CREATE TABLE events_y2026m0", month,
                                          " PARTITION OF events FOR VALUES FROM (", from, ") TO (",
                                          to, ")"))
                      .ok());
    }
  }

  // Applies the embedded migrations, as the engine does.
  void Migrate() {
    absl::Status applied = ApplyPostgresMigrations(*conn_, EmbeddedPostgresMigrations());
    ASSERT_TRUE(applied.ok()) << applied;
  }

  void TearDown() override {
    reader_.reset();
    conn_.reset();
    archive_.reset();
    std::filesystem::remove_all(dir_);
  }

  void OpenReader(int max_connections = 4, int lookup_connections = 1) {
    EventReaderOptions options;
    options.max_connections = max_connections;
    options.lookup_connections = lookup_connections;
    absl::StatusOr<std::unique_ptr<ArchiveReader>> reader = pg::OpenReader(connect_, options);
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
  }

  // Inserts `rows` and keeps the rollups and archive_state as the writer does.
  void Insert(const std::vector<EventRow>& rows) {
    ASSERT_TRUE(conn_->Exec("BEGIN").ok());
    for (const EventRow& r : rows) {
      Params event;
      event.Int(r.sequence)
          .Int(r.occur_time_ms)
          .Int(r.receive_time_ms)
          .Text(r.topic)
          .Text(r.family)
          .Text(r.panel_id)
          .Text(r.ou_id)
          .OptionalInt(r.door_id)
          .Text(r.door_name)
          .OptionalInt(r.person_id)
          .Text(r.actor_user_id)
          .Text(r.event_id)
          .Text(r.subscription)
          .Bytes(r.raw);
      ASSERT_TRUE(conn_->Query(kInsertEvent, event).ok());
      const int64_t day = timeutil::DayOf(r.occur_time_ms);
      Params daily;
      daily.Int(day).Text(r.topic).Text(r.family).Text(r.panel_id).Int(r.door_id.value_or(kNoDoor));
      ASSERT_TRUE(conn_->Query(kBumpDaily, daily).ok());
      Params daily_topic;
      daily_topic.Int(day).Text(r.topic).Text(r.family);
      ASSERT_TRUE(conn_->Query(kBumpDailyTopic, daily_topic).ok());
      Params state;
      state.Int(r.sequence);
      ASSERT_TRUE(conn_->Query(kBumpState, state).ok());
    }
    ASSERT_TRUE(conn_->Exec("COMMIT; ANALYZE").ok());
  }

  // `n` plain rows after sequence `first - 1`, one a second from kJan1, fast
  // (no rollups: for scans and the live feed only).
  void InsertMany(int64_t first, int64_t n) {
    Params p;
    p.Int(first).Int(first + n - 1).Int(kJan1);
    constexpr char kInsertMany[] =
        "INSERT INTO events SELECT g, $3::bigint + g * 1000, $3::bigint, 'door.request.granted', "
        "'panel', 'p1', 'ou1', g % 7, 'Door', NULL, '', 'bulk-' || g, 'default', "
        "convert_to('{\"g\":' || g || '}', 'UTF8') FROM generate_series($1::bigint, $2::bigint) g";
    ASSERT_TRUE(conn_->Query(kInsertMany, p).ok());
    Params state;
    state.Int(first + n - 1);
    ASSERT_TRUE(conn_->Query(kBumpState, state).ok());
    ASSERT_TRUE(conn_->Exec("ANALYZE").ok());
  }

  // Every row of `filter` by pages of `limit`, resuming after each page's
  // last row as a page token's cursor does; checks `more` on the way.
  std::vector<EventRow> PageThrough(const EventFilter& filter, bool descending, int limit) {
    std::vector<EventRow> out;
    ListQuery query;
    query.filter = filter;
    query.descending = descending;
    query.limit = limit;
    for (int pages = 0; pages < 1000; ++pages) {
      absl::StatusOr<ListPage> page = reader_->List(query);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      out.insert(out.end(), page->rows.begin(), page->rows.end());
      if (!page->more) break;
      EXPECT_EQ(page->rows.size(), static_cast<size_t>(limit));
      query.after = Cursor{page->rows.back().occur_time_ms, page->rows.back().sequence};
    }
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<TestArchive> archive_;
  ConnectOptions connect_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<ArchiveReader> reader_;
};

inline std::vector<EventFilter> FilterShapes() {
  std::vector<EventFilter> shapes;
  shapes.emplace_back();  // everything
  EventFilter f;
  f.start_ms = kJan1 + 3 * kDay + 5;
  f.end_ms = kJan1 + 40 * kDay;
  shapes.push_back(f);  // time only
  f = {};
  f.door_ids = {3};
  shapes.push_back(f);
  f.door_ids = {3, 1, -1, 3};
  shapes.push_back(f);  // merged arms
  f = {};
  f.person_ids = {101};
  shapes.push_back(f);
  f.person_ids = {101, 103};
  f.start_ms = kJan1 + 10 * kDay;
  shapes.push_back(f);
  f = {};
  f.topics = {"door.forced"};
  shapes.push_back(f);
  f.topics = {"door.*"};
  shapes.push_back(f);  // a prefix: not "door" nor "doorx.y"
  f.topics = {"door.request.*", "org.user.created", "door"};
  shapes.push_back(f);
  f.topics = {"door.forced", "panel.online"};
  shapes.push_back(f);  // merged arms
  f = {};
  f.panel_ids = {"p2"};
  shapes.push_back(f);
  f.panel_ids = {"p2", "p\"3\\"};
  f.end_ms = kJan1 + 50 * kDay;
  shapes.push_back(f);
  f = {};
  f.family = "unknown";
  shapes.push_back(f);
  f = {};
  f.ou_ids = {"ou2"};
  f.door_ids = {1, 2};
  f.topics = {"door.*"};
  shapes.push_back(f);  // AND across fields
  f = {};
  // Hundreds of values: bound as one array each.
  for (int door = -1; door < 400; ++door) f.door_ids.push_back(door);
  f.panel_ids = {"p1", "p\"3\\"};
  for (int panel = 0; panel < 300; ++panel) f.panel_ids.push_back(absl::StrCat("x\"", panel));
  shapes.push_back(f);
  f = {};
  f.topics = {"no.such.*"};
  shapes.push_back(f);  // nothing
  return shapes;
}

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_TESTS_POSTGRES_PG_READER_FIXTURE_H_
