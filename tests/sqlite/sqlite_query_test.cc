// The SQLite engine's own read machinery, below the engine-neutral query
// suites: every list shape is answered from an index (EXPLAIN QUERY PLAN),
// and the deferred indexing of the newest rows (merges) never changes an
// answer.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/query_support.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive::query {
namespace {

// kRowCount rows stored through the writer, read through EventReader.
class SqliteQueryPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-sqlite-plan");
    path_ = (dir_ / "archive.db").string();
    auto sqlite_store = store::SqliteStore::Open(path_);
    ASSERT_TRUE(sqlite_store.ok()) << sqlite_store.status();
    store_ = *std::move(sqlite_store);
    {
      store::GroupCommitWriter writer(*store_, feed_);
      AppendThrough(writer, MakeRows(kRowCount, 0, 42));
      writer.Stop();
    }
    auto reader = store::EventReader::Open(path_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
  }
  void TearDown() override {
    reader_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::string path_;
  store::LocalCommitFeed feed_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<store::EventReader> reader_;
};

TEST_F(SqliteQueryPlanTest, ListQueriesUseAnIndex) {
  auto plan = [&](const store::EventFilter& filter, bool with_cursor,
                  bool descending) {
    store::ListQuery query;
    query.filter = filter;
    query.descending = descending;
    if (with_cursor) query.after = store::Cursor{kBaseMs + kDayMs, 1500};
    auto details = reader_->ExplainList(query);
    EXPECT_TRUE(details.ok()) << details.status();
    std::string joined;
    for (const std::string& line : *details) joined += line + "\n";
    return joined;
  };
  store::EventFilter time;
  time.start_ms = kBaseMs;
  time.end_ms = kBaseMs + kDayMs;
  store::EventFilter door = time;
  door.door_ids = {3};
  store::EventFilter doors = time;
  doors.door_ids = {3, 4, 5};
  store::EventFilter person = time;
  person.person_ids = {101};
  store::EventFilter topic = time;
  topic.topics = {"door.forced"};
  store::EventFilter prefix = time;
  prefix.topics = {"door.*"};
  store::EventFilter panel = time;
  panel.panel_ids = {"1070001"};
  store::EventFilter panels = time;
  panels.panel_ids = {"1070001", "1070002"};
  store::EventFilter open_time;  // no bounds at all: ordered index walk

  store::EventFilter door_only;
  door_only.door_ids = {3};
  store::EventFilter prefix_only;
  prefix_only.topics = {"door.request.*"};

  // Where the planner may fairly choose between two indexes (a topic prefix
  // within a time range is walked in time order), either is accepted.
  struct Case {
    std::string name;
    store::EventFilter filter;
    std::vector<std::string> indexes;
  };
  for (const Case& c : std::vector<Case>{
           {"time", time, {"events_by_time"}},
           {"door", door, {"events_by_door"}},
           {"doors", doors, {"events_by_door"}},
           {"door only", door_only, {"events_by_door"}},
           {"person", person, {"events_by_person"}},
           {"panel", panel, {"events_by_panel"}},
           {"panels", panels, {"events_by_panel"}},
           {"topic", topic, {"events_by_topic"}},
           {"prefix", prefix, {"events_by_topic", "events_by_time"}},
           {"prefix only", prefix_only, {"events_by_topic", "events_by_time"}},
           {"open", open_time, {"events_by_time"}}}) {
    for (bool with_cursor : {false, true}) {
      for (bool descending : {false, true}) {
        const std::string text = plan(c.filter, with_cursor, descending);
        SCOPED_TRACE(absl::StrCat(c.name, with_cursor ? " cursor" : "",
                                  descending ? " desc" : "", "\n", text));
        bool indexed = false;
        for (const std::string& index : c.indexes) {
          indexed =
              indexed || text.find("USING INDEX " + index) != std::string::npos;
        }
        EXPECT_TRUE(indexed);
        if (::testing::Test::HasFailure() || getenv("SHOW_PLANS") != nullptr) {
          std::printf("%s%s%s:\n%s", c.name.c_str(),
                      with_cursor ? " cursor" : "", descending ? " desc" : "",
                      text.c_str());
        }
        EXPECT_EQ(text.find("SCAN events\n"), std::string::npos);
        // The last arm reads the events not merged into the indexes yet by
        // sequence, and sorts them (a few thousand at most). Every other arm
        // comes out in report order: nothing is read whole and sorted.
        const size_t unmerged = text.rfind("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)");
        ASSERT_NE(unmerged, std::string::npos);
        EXPECT_EQ(text.substr(0, unmerged).find("USE TEMP B-TREE FOR ORDER BY"),
                  std::string::npos);
      }
    }
  }
}


// Everything a reader answers, as text, for ReadsDoNotDependOnWhatIsMerged.
std::string ReadEverything(store::EventReader& reader, const std::vector<int64_t>& sequences) {
  std::string out;
  store::EventFilter all;
  store::EventFilter day;  // whole UTC days: counts come from the rollups
  day.start_ms = kBaseMs + kDayMs;
  day.end_ms = kBaseMs + 3 * kDayMs;
  store::EventFilter hours = day;  // not whole days: counts from the events
  hours.start_ms = *day.start_ms + kHourMs + 7;
  store::EventFilter door = day;
  door.door_ids = {3};
  store::EventFilter doors;
  doors.door_ids = {3, 4, 5};
  store::EventFilter person;
  person.person_ids = {101, 102};
  store::EventFilter prefix = day;
  prefix.topics = {"door.*"};
  store::EventFilter panel;
  panel.panel_ids = {"p1"};
  store::EventFilter panels = hours;
  panels.panel_ids = {"p1", "p2"};
  const std::vector<store::EventFilter> filters = {all,    day,    hours,  door, doors,
                                                   person, prefix, panel, panels};
  for (size_t f = 0; f < filters.size(); ++f) {
    for (bool descending : {false, true}) {
      store::ListQuery query;
      query.filter = filters[f];
      query.descending = descending;
      query.limit = 97;
      absl::StrAppend(&out, "list ", f, descending ? " desc" : "", ":");
      for (int pages = 0; pages < 1000; ++pages) {
        absl::StatusOr<store::ListPage> page = reader.List(query);
        EXPECT_TRUE(page.ok()) << page.status();
        if (!page.ok()) return out;
        for (const EventRow& row : page->rows) {
          absl::StrAppend(&out, " ", row.sequence, "/", row.occur_time_ms, "/", row.panel_id,
                          "/", row.raw);
        }
        if (!page->more) break;
        query.after = store::Cursor{page->rows.back().occur_time_ms, page->rows.back().sequence};
      }
      out += "\n";
    }
    absl::StrAppend(&out, "export ", f, ":");
    std::optional<store::Cursor> after;
    for (int batches = 0; batches < 1000; ++batches) {
      absl::StatusOr<store::ScanProgress> progress = reader.ScanEach(
          filters[f], after, 113, /*with_raw=*/true, [&](const store::EventView& row) {
            absl::StrAppend(&out, " ", row.sequence, "/", std::string(row.topic), "/", std::string(row.raw));
            return true;
          });
      EXPECT_TRUE(progress.ok()) << progress.status();
      if (!progress.ok() || progress->exhausted || !progress->last) break;
      after = progress->last;
    }
    out += "\n";
    using store::Dimension;
    for (const std::vector<Dimension>& dimensions : std::vector<std::vector<Dimension>>{
             {},
             {Dimension::kTopic},
             {Dimension::kDoor, Dimension::kDay},
             {Dimension::kDay, Dimension::kDoor},
             {Dimension::kPanel, Dimension::kTopic},
             {Dimension::kPerson},
             {Dimension::kHour, Dimension::kDoor}}) {
      absl::StatusOr<std::vector<store::CountGroup>> groups = reader.Count(filters[f], dimensions);
      EXPECT_TRUE(groups.ok()) << groups.status();
      if (!groups.ok()) return out;
      absl::StrAppend(&out, "count ", f, " by ", dimensions.size(), ":");
      for (const store::CountGroup& group : *groups) {
        absl::StrAppend(&out, " ", absl::StrJoin(group.key, "|"), "=", group.count);
      }
      out += "\n";
    }
  }
  for (size_t i = 0; i < sequences.size(); i += 97) {
    absl::StatusOr<EventRow> row = reader.Get(sequences[i]);
    EXPECT_TRUE(row.ok()) << row.status();
    if (row.ok()) absl::StrAppend(&out, "get ", row->sequence, " ", row->raw, "\n");
  }
  return out;
}

// Each test in its own empty directory, removed afterwards.
class DeferredIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-deferred");
    path_ = (dir_ / "archive.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Polls the file for up to 5 s until no event in it is unmerged; returns
  // how many are left.
  static int64_t WaitUntilNoneUnmergedInFile(SQLite::Database& db) {
    int64_t unmerged = -1;
    for (int i = 0; i < 100 && unmerged != 0; ++i) {
      unmerged = db.execAndGet("SELECT count(*) FROM events WHERE merged = 0").getInt64();
      if (unmerged != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return unmerged;
  }
  // Polls what the writer reports (pdkarchive_unmerged_events) the same way.
  static int64_t WaitUntilNoneUnmergedReported(const store::GroupCommitWriter& writer) {
    auto reported_now = [&] {
      return store::FindEngineStat(writer.stats().engine, "unmerged_events").value_or(-1);
    };
    int64_t reported = reported_now();
    for (int i = 0; i < 250 && reported != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      reported = reported_now();
    }
    return reported;
  }

  std::filesystem::path dir_;
  std::string path_;
};

// The newest events are stored unmerged, in no secondary index and not yet
// in the rollups (store/sqlite/sqlite_store.h, SqliteStore::Merge); every read must
// answer the same whichever of its events are merged.
TEST_F(DeferredIndexTest, ReadsDoNotDependOnWhatIsMerged) {
  const std::vector<EventRow> rows = MakeRows(kRowCount, 0, 42);
  const size_t half = rows.size() / 2;
  // Batches of 100 are stored unmerged; batches of 3, merged at once.
  auto append = [](store::SqliteStore& store, std::span<const EventRow> part,
                   size_t batch = 100) {
    std::vector<int64_t> sequences;
    for (size_t i = 0; i < part.size(); i += batch) {
      auto results =
          store.AppendBatch(part.subspan(i, std::min<size_t>(batch, part.size() - i)));
      EXPECT_TRUE(results.ok()) << results.status();
      if (!results.ok()) return sequences;
      for (const store::AppendResult& r : *results) {
        EXPECT_FALSE(r.duplicate);
        sequences.push_back(r.sequence);
      }
    }
    return sequences;
  };

  // Archive one: nothing merged.
  const std::string unmerged_path = (dir_ / "unmerged.db").string();
  auto unmerged_store = store::SqliteStore::Open(unmerged_path);
  ASSERT_TRUE(unmerged_store.ok()) << unmerged_store.status();
  const std::vector<int64_t> sequences = append(**unmerged_store, rows);
  ASSERT_EQ(sequences.size(), rows.size());
  EXPECT_EQ((*unmerged_store)->unmerged_rows(), static_cast<int64_t>(rows.size()));
  auto unmerged_reader = store::EventReader::Open(unmerged_path);
  ASSERT_TRUE(unmerged_reader.ok()) << unmerged_reader.status();
  const std::string nothing_merged = ReadEverything(**unmerged_reader, sequences);

  // Archive two: the first half merged; then 300 events merged as they are
  // stored, the rest unmerged; then everything merged.
  const std::string mixed_path = (dir_ / "mixed.db").string();
  auto mixed_store = store::SqliteStore::Open(mixed_path);
  ASSERT_TRUE(mixed_store.ok()) << mixed_store.status();
  std::vector<int64_t> mixed_sequences =
      append(**mixed_store, std::span<const EventRow>(rows).first(half));
  ASSERT_TRUE((*mixed_store)->Merge());
  EXPECT_EQ((*mixed_store)->unmerged_rows(), 0);
  for (int64_t s : append(**mixed_store, std::span<const EventRow>(rows).subspan(half, 300),
                         /*batch=*/3)) {
    mixed_sequences.push_back(s);
  }
  EXPECT_EQ((*mixed_store)->unmerged_rows(), 0);
  for (int64_t s : append(**mixed_store, std::span<const EventRow>(rows).subspan(half + 300))) {
    mixed_sequences.push_back(s);
  }
  EXPECT_EQ(mixed_sequences, sequences);
  EXPECT_EQ((*mixed_store)->unmerged_rows(), static_cast<int64_t>(rows.size() - half - 300));
  auto mixed_reader = store::EventReader::Open(mixed_path);
  ASSERT_TRUE(mixed_reader.ok()) << mixed_reader.status();
  const std::string half_merged = ReadEverything(**mixed_reader, sequences);
  ASSERT_TRUE((*mixed_store)->Merge());
  const std::string all_merged = ReadEverything(**mixed_reader, sequences);

  // Not vacuous: every list and export saw rows, every count some groups.
  EXPECT_GT(nothing_merged.size(), 100000u);
  EXPECT_EQ(nothing_merged.find(":\n"), std::string::npos) << "a read came back empty";
  EXPECT_EQ(half_merged, nothing_merged);
  EXPECT_EQ(all_merged, nothing_merged);
  // And the totals are right.
  absl::StatusOr<std::vector<store::CountGroup>> total = (*mixed_reader)->Count({}, {});
  ASSERT_TRUE(total.ok()) << total.status();
  ASSERT_EQ(total->size(), 1u);
  EXPECT_EQ((*total)[0].count, static_cast<int64_t>(rows.size()));

  // The merged events are in the indexes and the rollups, on disk.
  {
    SQLite::Database db(mixed_path, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM events WHERE merged = 0").getInt64(), 0);
    EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM events INDEXED BY events_by_time "
                            "WHERE merged = 1 AND occur_time > -1e18").getInt64(),
              static_cast<int64_t>(rows.size()));
    EXPECT_EQ(db.execAndGet("SELECT SUM(n) FROM counts_daily").getInt64(),
              static_cast<int64_t>(rows.size()));
    EXPECT_EQ(db.execAndGet("SELECT SUM(n) FROM counts_daily_topic").getInt64(),
              static_cast<int64_t>(rows.size()));
    EXPECT_EQ(db.execAndGet("SELECT value FROM archive_meta WHERE name = 'merged_through'")
                  .getInt64(),
              sequences.back());
  }
  unmerged_reader->reset();
  mixed_reader->reset();
  unmerged_store->reset();
  mixed_store->reset();
}

// Events left unmerged under load are merged by the writer once nothing has
// arrived for a moment: seen in the file, while the writer is still running.
TEST_F(DeferredIndexTest, TheWriterMergesWhatIsLeftOnceIdle) {
  auto store = store::SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<EventRow> rows = MakeRows(21, 0, 5);
  // 20 in one batch, stored unmerged: too few for a merge while busy.
  ASSERT_TRUE((*store)->AppendBatch(std::span<const EventRow>(rows).first(20)).ok());
  ASSERT_EQ((*store)->unmerged_rows(), 20);
  store::LocalCommitFeed feed;
  store::GroupCommitWriter writer(**store, feed);
  std::promise<absl::StatusOr<store::AppendResult>> done;
  writer.Submit(rows[20], [&](absl::StatusOr<store::AppendResult> r) { done.set_value(r); });
  absl::StatusOr<store::AppendResult> last = done.get_future().get();
  ASSERT_TRUE(last.ok()) << last.status();

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(WaitUntilNoneUnmergedInFile(db), 0);
  // What /metrics reports as pdkarchive_unmerged_events follows.
  EXPECT_EQ(WaitUntilNoneUnmergedReported(writer), 0);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt64(), 21);
  EXPECT_EQ(db.execAndGet("SELECT sum(n) FROM counts_daily").getInt64(), 21);
  EXPECT_EQ(db.execAndGet("SELECT value FROM archive_meta WHERE name = 'merged_through'")
                .getInt64(),
            20);
  writer.Stop();
}

// Events an earlier run left unmerged (a crash, or a kill before the idle
// merge) are merged soon after the writer starts, with no traffic at all.
TEST_F(DeferredIndexTest, TheWriterMergesWhatAnEarlierRunLeftWithoutTraffic) {
  {
    auto store = store::SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::vector<EventRow> rows = MakeRows(20, 0, 5);
    ASSERT_TRUE((*store)->AppendBatch(rows).ok());
    ASSERT_EQ((*store)->unmerged_rows(), 20);
  }  // closed with its events unmerged, as a killed server leaves them
  auto store = store::SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ((*store)->unmerged_rows(), 20);
  store::LocalCommitFeed feed;
  store::GroupCommitWriter writer(**store, feed);
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(WaitUntilNoneUnmergedInFile(db), 0);
  EXPECT_EQ(db.execAndGet("SELECT sum(n) FROM counts_daily").getInt64(), 20);
  EXPECT_EQ(WaitUntilNoneUnmergedReported(writer), 0);
  writer.Stop();
}


// Sentinels and large filters (issue 13, item 7).

// The rollups keep "no door" as door INT64_MIN; a filter on that number asks
}  // namespace
}  // namespace pdkarchive::query
