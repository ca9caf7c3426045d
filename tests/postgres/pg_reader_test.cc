// The PostgreSQL engine's reader (store/postgres/pg_reader.h) against a real
// server: rows are inserted with SQL (and the daily rollups kept the way the
// writer keeps them), then every method is checked against a model of the
// same rows written independently here.
#include "store/postgres/pg_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
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
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/archive_reader.h"
#include "store/event.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_count.h"
#include "store/postgres/pg_migrations.h"
#include "store/postgres/pg_query.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {
namespace {

using pdkarchive::testing::Engine;
using pdkarchive::testing::TestArchive;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

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

bool IsPrefix(const std::string& topic) {
  return topic.size() >= 2 && topic.substr(topic.size() - 2) == ".*";
}

template <typename T>
bool In(const std::vector<T>& values, const T& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool Matches(const EventFilter& f, const EventRow& r) {
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

std::vector<EventRow> ModelList(const std::vector<EventRow>& rows, const EventFilter& f,
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

std::string ModelKey(Dimension d, const EventRow& r) {
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

std::vector<CountGroup> ModelCount(const std::vector<EventRow>& rows, const EventFilter& f,
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
std::vector<EventRow> SampleRows() {
  const std::vector<std::pair<std::string, std::string>> topics = {
      {"door.request.granted", "panel"}, {"door.request.denied", "panel"},
      {"door.forced", "panel"},          {"panel.online", "panel"},
      {"org.user.created", "org"},       {"door", "unknown"},
      {"doorx.y", "unknown"}};
  const std::vector<std::string> panels = {"p1", "p2", "p3"};
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
 protected:
  void SetUp() override {
    dir_ = pdkarchive::testing::FreshTestDir("pg_reader");
    absl::StatusOr<std::unique_ptr<TestArchive>> archive =
        TestArchive::Create(Engine::kPostgres, dir_);
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
      ASSERT_TRUE(conn_->Exec(absl::StrCat("CREATE TABLE events_y2026m0", month,
                                           " PARTITION OF events FOR VALUES FROM (", from,
                                           ") TO (", to, ")"))
                      .ok());
    }
  }

  // Applies migrations/postgres/ as the source tree holds them (the files
  // the build embeds), through the engine's own ApplyPostgresMigrations.
  void Migrate() {
    const std::filesystem::path folder =
        std::filesystem::path(PDKARCHIVE_TESTDATA_DIR).parent_path().parent_path() /
        "migrations" / "postgres";
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      if (entry.path().extension() == ".sql") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    ASSERT_FALSE(files.empty()) << folder;
    std::vector<Migration> migrations;
    for (size_t i = 0; i < files.size(); ++i) {
      std::ifstream in(files[i]);
      std::stringstream text;
      text << in.rdbuf();
      names_.push_back(files[i].filename().string());
      sql_.push_back(text.str());
    }
    for (size_t i = 0; i < files.size(); ++i) {
      migrations.push_back({static_cast<int>(i + 1), names_[i], sql_[i]});
    }
    absl::Status applied = ApplyPostgresMigrations(*conn_, migrations);
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
      event.Int(r.sequence).Int(r.occur_time_ms).Int(r.receive_time_ms).Text(r.topic)
          .Text(r.family).Text(r.panel_id).Text(r.ou_id).OptionalInt(r.door_id)
          .Text(r.door_name).OptionalInt(r.person_id).Text(r.actor_user_id).Text(r.event_id)
          .Text(r.subscription).Bytes(r.raw);
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
    ASSERT_TRUE(conn_->Query(
                        "INSERT INTO events SELECT g, $3::bigint + g * 1000, $3::bigint, "
                        "'door.request.granted', 'panel', 'p1', 'ou1', g % 7, 'Door', NULL, '', "
                        "'bulk-' || g, 'default', convert_to('{\"g\":' || g || '}', 'UTF8') "
                        "FROM generate_series($1::bigint, $2::bigint) g",
                        p)
                    .ok());
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
  std::deque<std::string> names_;
  std::deque<std::string> sql_;
  std::unique_ptr<TestArchive> archive_;
  ConnectOptions connect_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<ArchiveReader> reader_;
};

std::vector<EventFilter> FilterShapes() {
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
  f.panel_ids = {"p2", "p3"};
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
  f.topics = {"no.such.*"};
  shapes.push_back(f);  // nothing
  return shapes;
}

TEST_F(PgReaderTest, ListPagesEveryFilterShapeBothWays) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  int shapes_with_rows = 0;
  for (const EventFilter& filter : FilterShapes()) {
    if (!ModelList(rows, filter, false).empty()) ++shapes_with_rows;
    for (bool descending : {false, true}) {
      SCOPED_TRACE(absl::StrCat("shape with ", filter.topics.size(), " topics, ",
                                filter.door_ids.size(), " doors, descending ", descending));
      const std::vector<EventRow> want = ModelList(rows, filter, descending);
      EXPECT_EQ(PageThrough(filter, descending, 7), want);
      EXPECT_EQ(PageThrough(filter, descending, 1000), want);
    }
  }
  EXPECT_EQ(shapes_with_rows, static_cast<int>(FilterShapes().size()) - 1);
}

TEST_F(PgReaderTest, ListKeepsPayloadBytesAndLeavesThemOutWhenAsked) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  ListQuery query;
  query.limit = 1000;
  absl::StatusOr<ListPage> page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->rows.size(), rows.size());
  EXPECT_FALSE(page->more);
  const EventRow& first_binary = *std::find_if(page->rows.begin(), page->rows.end(),
                                               [](const EventRow& r) { return r.sequence == 1; });
  EXPECT_EQ(first_binary.raw, rows[0].raw);  // holds NUL and 0xff
  EXPECT_TRUE(first_binary.dedupe_key.empty());
  query.with_raw = false;
  page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  for (const EventRow& r : page->rows) EXPECT_TRUE(r.raw.empty());
  EXPECT_EQ(page->rows.front().event_id, ModelList(rows, {}, false).front().event_id);
}

TEST_F(PgReaderTest, ListStopsAtItsByteBudgetButKeepsTheFirstRow) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  const std::vector<EventRow> all = ModelList(rows, {}, false);
  ListQuery query;
  query.limit = 100;
  query.max_bytes = RowReplyBytes(all[0]) + RowReplyBytes(all[1]) + RowReplyBytes(all[2]);
  absl::StatusOr<ListPage> page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows, std::vector<EventRow>(all.begin(), all.begin() + 3));
  EXPECT_TRUE(page->more);
  query.max_bytes = 1;
  page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows, std::vector<EventRow>(all.begin(), all.begin() + 1));
  EXPECT_TRUE(page->more);
  query.limit = 0;
  EXPECT_EQ(reader_->List(query).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PgReaderTest, GetReadsOneRowOrSaysNotFound) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  for (const EventRow& want : {rows[0], rows[1], rows.back()}) {
    absl::StatusOr<EventRow> got = reader_->Get(want.sequence);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want);
  }
  EXPECT_EQ(reader_->Get(100000).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgReaderTest, MaxSequenceAndPageTokenKey) {
  OpenReader();
  absl::StatusOr<int64_t> newest = reader_->MaxSequence();
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(*newest, 0);
  EXPECT_EQ(reader_->PageTokenKey().status().code(), absl::StatusCode::kFailedPrecondition);
  Insert(SampleRows());
  newest = reader_->MaxSequence();
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(*newest, static_cast<int64_t>(SampleRows().size()));
  const std::string key("k\0\xff-secret", 10);
  Params p;
  p.Bytes(key);
  ASSERT_TRUE(
      conn_->Query("INSERT INTO archive_meta (name, value) VALUES ('page_token_key', $1)", p)
          .ok());
  absl::StatusOr<std::string> got = reader_->PageTokenKey();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, key);
}

std::vector<std::vector<Dimension>> DimensionSets() {
  using D = Dimension;
  return {{},
          {D::kTopic},
          {D::kDay},
          {D::kDoor},
          {D::kPanel},
          {D::kDoor, D::kDay},
          {D::kDay, D::kTopic},
          {D::kTopic, D::kPanel, D::kDoor, D::kDay},
          {D::kPerson},
          {D::kHour},
          {D::kHour, D::kDoor}};
}

TEST_F(PgReaderTest, CountsMatchTheModelFromRollupsAndFromEvents) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  std::vector<EventFilter> filters = FilterShapes();
  // Whole days (the rollups answer these unless a dimension or field needs
  // the events).
  EventFilter days;
  days.start_ms = kJan1 + 2 * kDay;
  days.end_ms = kJan1 + 31 * kDay;
  filters.push_back(days);
  days.topics = {"door.*"};
  days.door_ids = {1, 3};
  filters.push_back(days);
  days = {};
  days.end_ms = kJan1;  // only the far past
  filters.push_back(days);
  int rollup_counts = 0;
  int event_counts = 0;
  for (const EventFilter& filter : filters) {
    for (const std::vector<Dimension>& dims : DimensionSets()) {
      const bool rollup = ChooseCountSource(filter, dims) != CountSource::kEvents;
      (rollup ? rollup_counts : event_counts)++;
      SCOPED_TRACE(absl::StrCat(dims.size(), " dimensions, rollup ", rollup));
      absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, dims);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, ModelCount(rows, filter, dims));
    }
  }
  EXPECT_GT(rollup_counts, 20);
  EXPECT_GT(event_counts, 20);
}

TEST_F(PgReaderTest, CountTakesTheRollupsWhenTheyAnswer) {
  Insert(SampleRows());
  OpenReader();
  // A rollup row with no events behind it shows which table answered.
  ASSERT_TRUE(conn_->Exec("INSERT INTO counts_daily_topic VALUES (20454, 'x.y', 'org', 5); "
                          "INSERT INTO counts_daily VALUES (20454, 'x.y', 'org', 'p9', "
                          "-9223372036854775808, 7)")
                  .ok());
  EventFilter filter;
  filter.topics = {"x.*"};
  absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, {Dimension::kDay});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<CountGroup>{{{"2026-01-01"}, 5}}));
  got = reader_->Count(filter, {Dimension::kDoor, Dimension::kPanel});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<CountGroup>{{{"", "p9"}, 7}}));
  // Hours need the events, which hold no such topic.
  got = reader_->Count(filter, {Dimension::kHour});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
  // Not a whole day: the events.
  filter.start_ms = 1;
  got = reader_->Count(filter, {});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<CountGroup>{{{}, 0}}));
}

TEST_F(PgReaderTest, CountWithoutDimensionsIsOneGroupEvenWhenEmpty) {
  OpenReader();
  for (const EventFilter& filter : FilterShapes()) {
    absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, {});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, (std::vector<CountGroup>{{{}, 0}}));
  }
  EXPECT_EQ(reader_->Count({}, {Dimension::kDay, Dimension::kDay}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PgReaderTest, CountStopsPastMaxGroups) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  for (const std::vector<Dimension>& dims : DimensionSets()) {
    if (dims.empty()) continue;
    for (EventFilter filter : {EventFilter{}, FilterShapes()[1]}) {
      const int64_t groups = static_cast<int64_t>(ModelCount(rows, filter, dims).size());
      absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, dims, groups);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(static_cast<int64_t>(got->size()), groups);
      EXPECT_EQ(reader_->Count(filter, dims, groups - 1).status().code(),
                absl::StatusCode::kResourceExhausted);
    }
  }
}

TEST_F(PgReaderTest, ScanEachResumesAfterItsLastRow) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  for (const EventFilter& filter : FilterShapes()) {
    const std::vector<EventRow> want = ModelList(rows, filter, false);
    std::vector<EventRow> got;
    std::optional<Cursor> after;
    for (int calls = 0; calls < 1000; ++calls) {
      absl::StatusOr<ScanProgress> progress = reader_->ScanEach(
          filter, after, 50, /*with_raw=*/true, [&](const EventView& v) {
            EventRow& r = got.emplace_back();
            r.sequence = v.sequence;
            r.event_id = v.event_id;
            r.topic = v.topic;
            r.family = v.family;
            r.panel_id = v.panel_id;
            r.ou_id = v.ou_id;
            r.door_id = v.door_id;
            r.door_name = v.door_name;
            r.person_id = v.person_id;
            r.actor_user_id = v.actor_user_id;
            r.occur_time_ms = v.occur_time_ms;
            r.receive_time_ms = v.receive_time_ms;
            r.subscription = v.subscription;
            r.raw = v.raw;
            return true;
          });
      ASSERT_TRUE(progress.ok()) << progress.status();
      if (progress->rows > 0) after = progress->last;
      if (progress->exhausted) break;
      EXPECT_EQ(progress->rows, 50);
    }
    EXPECT_EQ(got, want);
  }
}

TEST_F(PgReaderTest, ScanEachStopsWhenTheVisitorSaysSo) {
  Insert(SampleRows());
  OpenReader();
  int seen = 0;
  absl::StatusOr<ScanProgress> progress =
      reader_->ScanEach({}, std::nullopt, 100, false, [&](const EventView& v) {
        EXPECT_TRUE(v.raw.empty());
        return ++seen < 3;
      });
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rows, 3);
  EXPECT_FALSE(progress->exhausted);
  const std::vector<EventRow> all = ModelList(SampleRows(), {}, false);
  EXPECT_EQ(progress->last, (Cursor{all[2].occur_time_ms, all[2].sequence}));
}

TEST_F(PgReaderTest, LargeScansReadInChunksFromOneSnapshot) {
  InsertMany(1, 10000);
  OpenReader();
  int64_t expected = 1;
  bool in_order = true;
  absl::StatusOr<ScanProgress> progress =
      reader_->ScanEach({}, std::nullopt, 9000, true, [&](const EventView& v) {
        in_order = in_order && v.sequence == expected++;
        if (v.sequence == 10) {
          // A commit during the scan is not seen by it.
          EXPECT_TRUE(conn_->Exec("DELETE FROM events WHERE sequence > 9990").ok());
        }
        return true;
      });
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(progress->rows, 9000);
  EXPECT_FALSE(progress->exhausted);
  progress = reader_->ScanEach({}, progress->last, 9000, true, [&](const EventView& v) {
    in_order = in_order && v.sequence == expected++;
    return true;
  });
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(progress->rows, 990);
  EXPECT_TRUE(progress->exhausted);
}

TEST_F(PgReaderTest, ListAfterSequenceReadsTheFeedInSequenceOrder) {
  const std::vector<EventRow> rows = SampleRows();
  OpenReader();
  absl::StatusOr<SequencePage> page = reader_->ListAfterSequence({}, 0, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->newest, 0);
  EXPECT_EQ(page->scanned_through, 0);
  Insert(rows);
  const int64_t n = static_cast<int64_t>(rows.size());
  // A filter: every matching row in (after, scanned_through], in order.
  EventFilter filter;
  filter.topics = {"door.*"};
  std::vector<EventRow> got;
  int64_t after = 0;
  for (int calls = 0; calls < 100 && after < n; ++calls) {
    page = reader_->ListAfterSequence(filter, after, 9);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->newest, n);
    EXPECT_GT(page->scanned_through, after);
    for (const EventRow& r : page->rows) EXPECT_LE(r.sequence, page->scanned_through);
    got.insert(got.end(), page->rows.begin(), page->rows.end());
    after = page->scanned_through;
  }
  std::vector<EventRow> want;
  for (const EventRow& r : rows) {
    if (Matches(filter, r)) want.push_back(r);
  }
  EXPECT_EQ(got, want);
  // A byte budget cuts the page but keeps its first row.
  page = reader_->ListAfterSequence({}, 0, 100, 1);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0], rows[0]);
  EXPECT_EQ(page->scanned_through, 1);
  // Nothing new.
  page = reader_->ListAfterSequence({}, n, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->scanned_through, n);
  EXPECT_EQ(page->newest, n);
}

TEST_F(PgReaderTest, ListAfterSequenceLooksAtABoundedWindow) {
  InsertMany(1, 20000);
  OpenReader();
  EventFilter none;
  none.topics = {"no.such"};
  absl::StatusOr<SequencePage> page = reader_->ListAfterSequence(none, 100, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->newest, 20000);
  EXPECT_EQ(page->scanned_through, 100 + 8192);
  page = reader_->ListAfterSequence({}, 100, 5);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->rows.size(), 5u);
  EXPECT_EQ(page->rows.front().sequence, 101);
  EXPECT_EQ(page->scanned_through, 105);
}

// Holds an exclusive lock on `table` from a connection of its own, so any
// read of it waits until Release.
class TableLock {
 public:
  TableLock(const ConnectOptions& connect, const std::string& table) {
    absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(connect);
    EXPECT_TRUE(conn.ok()) << conn.status();
    conn_ = *std::move(conn);
    EXPECT_TRUE(
        conn_->Exec(absl::StrCat("BEGIN; LOCK TABLE ", table, " IN ACCESS EXCLUSIVE MODE")).ok());
  }
  ~TableLock() { Release(); }
  void Release() {
    if (conn_) {
      EXPECT_TRUE(conn_->Exec("ROLLBACK").ok());
    }
    conn_.reset();
  }

 private:
  std::unique_ptr<Connection> conn_;
};

TEST_F(PgReaderTest, ADeadlineStopsAStatementThatWaits) {
  Insert(SampleRows());
  OpenReader();
  TableLock lock(connect_, "events");
  QueryControl control;
  control.deadline = steady_clock::now() + milliseconds(100);
  const auto start = steady_clock::now();
  ListQuery query;
  absl::StatusOr<ListPage> page = reader_->List(query, control);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kDeadlineExceeded) << page.status();
  EXPECT_LT(steady_clock::now() - start, milliseconds(3000));
  control.deadline = steady_clock::now() + milliseconds(1);
  EXPECT_EQ(reader_->Count({}, {Dimension::kHour}, 0, control).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  lock.Release();
  // The reader goes on with fresh connections.
  page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows.size(), 100u);
}

TEST_F(PgReaderTest, CancellationStopsAStatementThatWaits) {
  Insert(SampleRows());
  OpenReader();
  TableLock lock(connect_, "events");
  std::atomic<bool> cancelled{false};
  QueryControl control;
  control.cancelled = &cancelled;
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    cancelled = true;
  });
  const auto start = steady_clock::now();
  absl::StatusOr<ScanProgress> progress =
      reader_->ScanEach({}, std::nullopt, 10, true, [](const EventView&) { return true; },
                        control);
  canceller.join();
  EXPECT_EQ(progress.status().code(), absl::StatusCode::kCancelled) << progress.status();
  EXPECT_LT(steady_clock::now() - start, milliseconds(3000));
  // Already cancelled: stops before it starts.
  EXPECT_EQ(reader_->Get(1, control).status().code(), absl::StatusCode::kCancelled);
}

TEST_F(PgReaderTest, LookupsKeepAConnectionScansCannotTake) {
  Insert(SampleRows());
  OpenReader(/*max_connections=*/2, /*lookup_connections=*/1);
  TableLock lock(connect_, "counts_daily_topic");
  // A count that waits on the lock holds the one scan connection.
  std::thread scan([&] {
    absl::StatusOr<std::vector<CountGroup>> got = reader_->Count({}, {Dimension::kTopic});
    EXPECT_TRUE(got.ok()) << got.status();
  });
  std::this_thread::sleep_for(milliseconds(200));
  // A lookup still gets the connection kept for lookups.
  QueryControl soon;
  soon.deadline = steady_clock::now() + milliseconds(2000);
  absl::StatusOr<EventRow> row = reader_->Get(5, soon);
  EXPECT_TRUE(row.ok()) << row.status();
  EXPECT_TRUE(reader_->MaxSequence().ok());
  // Another scan waits for a connection until its deadline.
  soon.deadline = steady_clock::now() + milliseconds(100);
  EXPECT_EQ(reader_->List(ListQuery{}, soon).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  lock.Release();
  scan.join();
}

TEST_F(PgReaderTest, ALostConnectionIsUnavailableAndReplaced) {
  Insert(SampleRows());
  connect_.application_name = "pg_reader_test victim";
  OpenReader(/*max_connections=*/1);
  ASSERT_TRUE(reader_->Get(1).ok());
  ASSERT_TRUE(conn_->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'pg_reader_test victim'")
                  .ok());
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(reader_->Get(1).status().code(), absl::StatusCode::kUnavailable);
  absl::StatusOr<EventRow> row = reader_->Get(1);
  EXPECT_TRUE(row.ok()) << row.status();
}

TEST_F(PgReaderTest, OpeningAnUnreachableServerIsUnavailable) {
  ConnectOptions nowhere;
  nowhere.uri = "postgresql://postgres@127.0.0.1:1/none";
  EXPECT_EQ(pg::OpenReader(nowhere, {}).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace pdkarchive::store::pg
