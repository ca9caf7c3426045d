// The reader's statement building (store/sqlite/read_query.h), and above all
// IndexedPlusTail: every read of an index or a rollup also reads the events
// not merged into them yet, each exactly once.
#include "store/sqlite/read_query.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "store/event.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/test_support/test_dir.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::sqlite {
namespace {

constexpr char kTail[] = "FROM events NOT INDEXED";
constexpr char kTailCondition[] =
    "sequence > (SELECT value FROM archive_meta WHERE name = 'merged_through') AND merged = 0";
constexpr char kIndexed[] = "merged = 1";

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Every value is bound: one per placeholder, and no input text in the SQL.
void ExpectBound(const Query& query) {
  EXPECT_EQ(Occurrences(query.sql, "?"), query.values.size()) << query.sql;
}

TEST(IndexedPlusTailTest, AListReadsEveryIndexedArmAndTheTailOnce) {
  ListQuery query;
  query.filter.door_ids = {7, 3};
  query.filter.ou_ids = {"ou-secret"};
  query.after = Cursor{1000, 5};
  query.limit = 10;
  const Query built = BuildList(query, std::vector<int64_t>{4});
  ExpectBound(built);
  EXPECT_EQ(built.sql.find("ou-secret"), std::string::npos);
  // Two arms (one per door) over the indexes, then one over the tail.
  const std::vector<std::string> arms = absl::StrSplit(built.sql, " UNION ALL ");
  ASSERT_EQ(arms.size(), 3u) << built.sql;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NE(arms[i].find(kIndexed), std::string::npos) << arms[i];
    EXPECT_EQ(arms[i].find(kTail), std::string::npos) << arms[i];
    EXPECT_NE(arms[i].find("door_id = ?"), std::string::npos) << arms[i];
  }
  // The tail arm carries the whole filter (both doors) and the cursor.
  EXPECT_NE(arms[2].find(kTail), std::string::npos) << arms[2];
  EXPECT_NE(arms[2].find(kTailCondition), std::string::npos) << arms[2];
  EXPECT_EQ(arms[2].find(kIndexed), std::string::npos) << arms[2];
  EXPECT_NE(arms[2].find("door_id IN (?, ?)"), std::string::npos) << arms[2];
  EXPECT_NE(arms[2].find("(occur_time, sequence) > (?, ?)"), std::string::npos) << arms[2];
  EXPECT_TRUE(arms[2].ends_with(" ORDER BY occur_time, sequence LIMIT ?")) << arms[2];
  // One row more than asked for, so the caller learns whether more follow.
  EXPECT_EQ(std::get<int64_t>(built.values.back()), 11);
}

TEST(IndexedPlusTailTest, RowsRestrictEachPartAndKeepTheOrder) {
  Conditions arm;
  arm.Add("door_id = ?");
  arm.AddValue(int64_t{3});
  Conditions tail;
  tail.AddIn("door_id IN (", std::vector<int64_t>{3}, ")");
  const Query built = IndexedPlusTail::Rows({arm}, tail, /*descending=*/true, 50);
  ExpectBound(built);
  EXPECT_EQ(Occurrences(built.sql, kIndexed), 1u) << built.sql;
  EXPECT_EQ(Occurrences(built.sql, kTailCondition), 1u) << built.sql;
  EXPECT_EQ(Occurrences(built.sql, kTail), 1u) << built.sql;
  EXPECT_TRUE(built.sql.ends_with(" ORDER BY occur_time DESC, sequence DESC LIMIT ?"));
  EXPECT_EQ(built.values, (std::vector<Value>{int64_t{3}, int64_t{3}, int64_t{50}}));
}

TEST(IndexedPlusTailTest, ACountCountsTheIndexedEventsAndTheTailApart) {
  EventFilter filter;
  filter.start_ms = 5;
  Conditions conditions;
  conditions.AddFilter(filter, std::nullopt);
  const IndexedPlusTail::CountQueries queries =
      IndexedPlusTail::Count("name", conditions, std::nullopt);
  ExpectBound(queries.indexed);
  ExpectBound(queries.tail);
  EXPECT_EQ(queries.indexed.sql,
            "SELECT name, COUNT(*) FROM events CROSS JOIN topics USING (topic_id) "
            "WHERE occur_time >= ? AND merged = 1 GROUP BY name ORDER BY name");
  EXPECT_EQ(queries.tail.sql,
            absl::StrCat("SELECT name, COUNT(*) FROM events NOT INDEXED CROSS JOIN topics "
                         "USING (topic_id) WHERE occur_time >= ? AND ",
                         kTailCondition, " GROUP BY name"));

  // A rollup holds merged events only: it is the indexed part as it is.
  Query rollup{"SELECT COALESCE(SUM(n), 0) FROM counts_daily_topic", {}};
  const IndexedPlusTail::CountQueries from_rollup =
      IndexedPlusTail::Count("", Conditions(), rollup);
  EXPECT_EQ(from_rollup.indexed.sql, rollup.sql);
  EXPECT_EQ(from_rollup.tail.sql,
            absl::StrCat("SELECT COUNT(*) FROM events NOT INDEXED CROSS JOIN topics "
                         "USING (topic_id) WHERE ",
                         kTailCondition));
}

TEST(ReadQueryTest, ReadsBySequenceNeedNoTail) {
  const Query one = RowBySequence(9);
  ExpectBound(one);
  EXPECT_EQ(one.sql.find("merged"), std::string::npos) << one.sql;
  const Query window = RowsInSequenceWindow(Conditions(), 1, 9, 100);
  ExpectBound(window);
  EXPECT_EQ(window.sql.find("merged"), std::string::npos) << window.sql;
  EXPECT_EQ(window.values, (std::vector<Value>{int64_t{1}, int64_t{9}, int64_t{100}}));
}

class IndexedPlusTailFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = pdkarchive::testing::FreshTestDir("read-query");
    path_ = (dir_ / "archive.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static EventRow Row(int i) {
    EventRow row;
    row.event_id = absl::StrCat("event-", i);
    row.topic = i % 2 == 0 ? "door.request.allowed" : "door.request.denied";
    row.family = "panel";
    row.panel_id = "1070000";
    row.door_id = i % 3;
    row.door_name = "Front";
    row.occur_time_ms = timeutil::kDayMs + i * 1000;
    row.receive_time_ms = row.occur_time_ms + 5;
    row.subscription = "default";
    row.dedupe_key = absl::StrCat("key-", i);
    row.raw = absl::StrCat("{\"id\":", i, "}");
    return row;
  }

  // Every way of reading the archive sees each of `want` rows exactly once.
  void ExpectEachRowOnce(EventReader& reader, int64_t want) {
    ListQuery query;
    query.limit = 1000;
    for (bool descending : {false, true}) {
      query.descending = descending;
      absl::StatusOr<ListPage> page = reader.List(query);
      ASSERT_TRUE(page.ok()) << page.status();
      std::set<int64_t> seen;
      for (const EventRow& row : page->rows) seen.insert(row.sequence);
      EXPECT_EQ(page->rows.size(), static_cast<size_t>(want)) << descending;
      EXPECT_EQ(seen.size(), static_cast<size_t>(want)) << descending;
    }
    // Several doors: the list runs one indexed arm per door.
    query.filter.door_ids = {0, 1, 2};
    absl::StatusOr<ListPage> by_door = reader.List(query);
    ASSERT_TRUE(by_door.ok()) << by_door.status();
    EXPECT_EQ(by_door->rows.size(), static_cast<size_t>(want));

    std::set<int64_t> scanned;
    int64_t visits = 0;
    absl::StatusOr<ScanProgress> scan =
        reader.ScanEach({}, std::nullopt, 1000, true, [&](const EventView& row) {
          scanned.insert(row.sequence);
          ++visits;
          return true;
        });
    ASSERT_TRUE(scan.ok()) << scan.status();
    EXPECT_TRUE(scan->exhausted);
    EXPECT_EQ(visits, want);
    EXPECT_EQ(scanned.size(), static_cast<size_t>(want));

    // From the events (by hour), and from each rollup (topic and day; door).
    for (const std::vector<Dimension>& dimensions :
         {std::vector<Dimension>{Dimension::kHour}, std::vector<Dimension>{},
          std::vector<Dimension>{Dimension::kTopic, Dimension::kDay},
          std::vector<Dimension>{Dimension::kDoor}}) {
      absl::StatusOr<std::vector<CountGroup>> groups = reader.Count({}, dimensions);
      ASSERT_TRUE(groups.ok()) << groups.status();
      int64_t total = 0;
      for (const CountGroup& group : *groups) total += group.count;
      EXPECT_EQ(total, want) << dimensions.size();
    }

    absl::StatusOr<SequencePage> fed = reader.ListAfterSequence({}, 0, 1000);
    ASSERT_TRUE(fed.ok()) << fed.status();
    EXPECT_EQ(fed->rows.size(), static_cast<size_t>(want));
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(IndexedPlusTailFileTest, ListsCountsAndScansSeeAnUnmergedRowOnce) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  // A small batch is merged at once; a big one is stored unmerged.
  std::vector<EventRow> small = {Row(0), Row(1), Row(2)};
  ASSERT_TRUE((*store)->AppendBatch(small).ok());
  std::vector<EventRow> big;
  for (int i = 3; i < 3 + 2 * SqliteStore::kDeferFromBatch; ++i) big.push_back(Row(i));
  ASSERT_TRUE((*store)->AppendBatch(big).ok());
  const int64_t total = static_cast<int64_t>(small.size() + big.size());
  ASSERT_EQ((*store)->unmerged_rows(), static_cast<int64_t>(big.size()));

  absl::StatusOr<std::unique_ptr<EventReader>> reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExpectEachRowOnce(**reader, total);
  ASSERT_TRUE((*store)->Merge());
  ASSERT_EQ((*store)->unmerged_rows(), 0);
  ExpectEachRowOnce(**reader, total);
}

}  // namespace
}  // namespace pdkarchive::store::sqlite
