// The PostgreSQL reader's plans and bounds: each list shape walks its index
// in order, deadlines and cancellation stop a statement that waits, lookups
// keep a connection of their own, a lost connection is replaced.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/archive_reader.h"
#include "store/event.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_count.h"
#include "store/postgres/pg_query.h"
#include "store/postgres/pg_reader.h"
#include "tests/postgres/pg_reader_fixture.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The plan of `query` as EXPLAIN gives it, one line a node or detail.
std::string Explain(Connection& conn, const Query& query) {
  absl::StatusOr<Result> plan = conn.Query("EXPLAIN (COSTS OFF) " + query.sql, query.params);
  EXPECT_TRUE(plan.ok()) << plan.status() << "\n" << query.sql;
  std::string text;
  if (!plan.ok()) return text;
  for (int i = 0; i < plan->rows(); ++i)
    absl::StrAppend(&text, std::string(plan->bytes(i, 0)), "\n");
  return text;
}

TEST_F(PgReaderTest, ListShapesWalkTheirIndexesInOrder) {
  // 30,000 rows over three months: 300 doors, 500 people, 15 topics, 20
  // panels; the rollups summed from them.
  Params p;
  p.Int(kJan1);
  constexpr char kInsertRows[] =
      "INSERT INTO events SELECT g, $1::bigint + g::bigint * 259000, $1::bigint, "
      "'topic.' || (g % 15) || '.x', 'panel', 'panel-' || (g % 20), 'ou1', "
      "NULLIF(g % 301, 300), 'Door', NULLIF(g % 503, 500), '', 'e' || g, 'default', "
      "convert_to(repeat('x', 300), 'UTF8') FROM generate_series(1, 30000) g";
  constexpr char kSumRollups[] =
      "INSERT INTO counts_daily_topic SELECT floor(occur_time / 86400000.0), topic, family, "
      "count(*) FROM events GROUP BY 1, 2, 3; "
      "UPDATE archive_state SET last_sequence = 30000; ANALYZE";
  ASSERT_TRUE(conn_->Query(kInsertRows, p).ok());
  ASSERT_TRUE(conn_->Exec(kSumRollups).ok());
  struct Shape {
    std::string name;
    EventFilter filter;
    std::string index;  // the index every arm walks
    size_t arms = 1;
  };
  std::vector<Shape> shapes;
  EventFilter f;
  f.start_ms = kJan1 + 10 * kDay;
  f.end_ms = kJan1 + 40 * kDay;
  shapes.push_back({"time", f, "_occur_time_sequence_idx"});
  f = {};
  f.door_ids = {17};
  shapes.push_back({"door", f, "_door_id_occur_time_sequence_idx"});
  f.door_ids = {17, 18, 19};
  shapes.push_back({"doors", f, "_door_id_occur_time_sequence_idx", 3});
  f = {};
  f.person_ids = {42};
  shapes.push_back({"person", f, "_person_id_occur_time_sequence_idx"});
  f = {};
  f.topics = {"topic.3.x"};
  shapes.push_back({"topic", f, "_topic_occur_time_sequence_idx"});
  f.topics = {"topic.1.*"};  // topic.1.x alone: topic.10.x does not start with
                             // "topic.1."
  shapes.push_back({"topic prefix", f, "_topic_occur_time_sequence_idx"});
  f.topics = {"topic.*"};
  f.family = "panel";
  f.start_ms = kJan1 + 10 * kDay;
  shapes.push_back({"topic prefix and time", f, "_topic_occur_time_sequence_idx", 15});
  f = {};
  f.panel_ids = {"panel-3"};
  shapes.push_back({"panel", f, "_panel_id_occur_time_sequence_idx"});
  for (const Shape& shape : shapes) {
    for (bool descending : {false, true}) {
      SCOPED_TRACE(absl::StrCat(shape.name, descending ? " descending" : ""));
      ListQuery query;
      query.filter = shape.filter;
      query.descending = descending;
      // Resuming with most matches ahead, in either direction.
      query.after = Cursor{kJan1 + (descending ? 70 : 20) * kDay, 5};
      // The reader resolves prefixes first.
      if (std::optional<Query> resolve = ResolvePrefixes(query.filter.topics)) {
        absl::StatusOr<Result> topics = conn_->Query(resolve->sql, resolve->params);
        ASSERT_TRUE(topics.ok()) << topics.status();
        query.filter.topics.clear();
        for (int i = 0; i < topics->rows(); ++i) {
          query.filter.topics.emplace_back(topics->bytes(i, 0));
        }
        ASSERT_EQ(query.filter.topics.size(), shape.arms);
      }
      // A first page of a few rows (of ~100 matches per door here, as of
      // thousands at scale, where a page is a small part of the matches).
      const std::string plan = Explain(*conn_, BuildList(query, 11));
      // Index scans in order, merged; no sort of the matches. (The default
      // partition is empty here, and read whole.)
      EXPECT_EQ(plan.find("Sort\n"), std::string::npos) << plan;
      EXPECT_EQ(plan.find("->  Sort"), std::string::npos) << plan;
      std::string without_outside = plan;
      for (size_t at;
           (at = without_outside.find("Seq Scan on events_outside")) != std::string::npos;) {
        without_outside.erase(at, 10);
      }
      EXPECT_EQ(without_outside.find("Seq Scan"), std::string::npos) << plan;
      EXPECT_EQ(plan.find("Bitmap"), std::string::npos) << plan;
      EXPECT_NE(plan.find(shape.index), std::string::npos) << plan;
      size_t limits = 0;
      for (size_t at = plan.find("Limit"); at != std::string::npos;
           at = plan.find("Limit", at + 1)) {
        ++limits;
      }
      EXPECT_EQ(limits, shape.arms == 1 ? 1 : shape.arms + 1) << plan;
    }
  }
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
  absl::StatusOr<ScanProgress> progress = reader_->ScanEach(
      {}, std::nullopt, 10, true, [](const EventView&) { return true; }, control);
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
  EXPECT_EQ(reader_->List(ListQuery{}, soon).status().code(), absl::StatusCode::kDeadlineExceeded);
  lock.Release();
  scan.join();
}

TEST_F(PgReaderTest, ALostConnectionIsUnavailableAndReplaced) {
  Insert(SampleRows());
  connect_.application_name = "pg_reader_test victim";
  OpenReader(/*max_connections=*/1);
  ASSERT_TRUE(reader_->Get(1).ok());
  ASSERT_TRUE(conn_
                  ->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
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
