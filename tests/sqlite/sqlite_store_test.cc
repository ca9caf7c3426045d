// SqliteStore against a real SQLite file: schema, idempotent appends,
// durability settings.
#include "store/sqlite/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "store/raw_codec.h"
#include "store/sqlite/checkpointer.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/sqlite_util.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/heap.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store {
namespace {

// The heap the process holds less SQLite's own (its page cache is bounded
// by cache_size).
size_t AllocatedBytesBesidesSqlite() {
  return testing::HeapBytesInUse() - static_cast<size_t>(sqlite3_memory_used());
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("pdkarchive-store-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "archive.db").string();
  }
  void TearDown() override {
    checkpointer_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Opens store_ at path_ with a WAL limit of `limit_frames`, and starts
  // checkpointer_ on it: every `interval`, and whenever the store asks.
  void OpenWithCheckpointer(int64_t limit_frames, std::chrono::milliseconds interval) {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    store_->set_wal_limit_frames(limit_frames);
    auto checkpointer = Checkpointer::Start(path_, interval);
    ASSERT_TRUE(checkpointer.ok()) << checkpointer.status();
    checkpointer_ = *std::move(checkpointer);
    store_->set_checkpointer(checkpointer_.get());
  }

  static EventRow Row(const std::string& key, int64_t occur) {
    EventRow row;
    row.event_id = key;
    row.topic = "door.request.allowed";
    row.family = "panel";
    row.panel_id = "1070000";
    row.door_id = 3;
    row.door_name = "Front";
    row.occur_time_ms = occur;
    row.receive_time_ms = occur + 5;
    row.subscription = "default";
    row.dedupe_key = absl::StrCat("key-", key, std::string(16, '\0')).substr(0, 16);
    row.raw = absl::StrCat("{\"id\":\"", key, "\"}");
    return row;
  }

  // Creates `path` at schema version `version` (1 or 2, before the rows
  // were compacted) holding `rows`, as an older release wrote them.
  static void WriteOldArchive(const std::string& path, int version,
                              const std::vector<EventRow>& rows) {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    std::vector<Migration> old(EmbeddedMigrations().begin(),
                               EmbeddedMigrations().begin() + version);
    ASSERT_EQ(old.back().number, version);
    ASSERT_TRUE(ApplyMigrations(db, old).ok());
    db.exec("INSERT INTO topics(topic_id, name, family) "
            "VALUES (1, 'door.request.allowed', 'panel')");
    SQLite::Statement insert(
        db, "INSERT INTO events(topic_id, occur_time, receive_time, panel_id, ou_id, door_id, "
            "door_name, actor_user_id, event_id, subscription, dedupe_key, raw) "
            "VALUES (1, ?1, ?1, ?2, '', ?3, ?4, '', ?5, ?6, ?7, ?8)");
    for (const EventRow& row : rows) {
      ASSERT_EQ(row.topic, "door.request.allowed");
      insert.reset();
      insert.clearBindings();
      insert.bind(1, row.occur_time_ms);
      insert.bind(2, row.panel_id);
      if (row.door_id) insert.bind(3, *row.door_id);
      insert.bind(4, row.door_name);
      insert.bind(5, row.event_id);
      insert.bind(6, row.subscription);
      insert.bind(7, row.dedupe_key.data(), static_cast<int>(row.dedupe_key.size()));
      insert.bind(8, row.raw);
      insert.exec();
    }
  }

  std::filesystem::path dir_;
  std::string path_;
  // Set by OpenWithCheckpointer; the checkpointer stops first.
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Checkpointer> checkpointer_;
};

TEST_F(SqliteStoreTest, OpenCreatesTheSchemaAtTheNewestVersion) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(),
            EmbeddedMigrations().back().number);
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  EXPECT_TRUE(db.tableExists("events"));
  EXPECT_EQ(db.execAndGet("SELECT length(value) FROM archive_meta "
                          "WHERE name = 'page_token_key'")
                .getInt(),
            32);
}

TEST_F(SqliteStoreTest, WriteConnectionIsWalWithFullSync) {
  // synchronous is per connection; check the one the store really uses by
  // proving durability settings survive reopen and are applied at open.
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  EventRow row = Row("a", 1000);
  ASSERT_TRUE((*store)->AppendBatch({&row, 1}).ok());
  EXPECT_TRUE(std::filesystem::exists(path_ + "-wal"));
}

TEST_F(SqliteStoreTest, AppendAssignsIncreasingSequencesAndFindsDuplicates) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  std::vector<EventRow> rows = {Row("a", 1000), Row("b", 900), Row("a", 1000)};
  auto results = (*store)->AppendBatch(rows);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 3u);
  EXPECT_FALSE((*results)[0].duplicate);
  EXPECT_FALSE((*results)[1].duplicate);
  EXPECT_GT((*results)[1].sequence, (*results)[0].sequence);
  // The same key twice in one batch: the second is a duplicate of the first.
  EXPECT_TRUE((*results)[2].duplicate);
  EXPECT_EQ((*results)[2].sequence, (*results)[0].sequence);

  // And across batches, and across reopening the file.
  store->reset();
  auto reopened = SqliteStore::Open(path_);
  ASSERT_TRUE(reopened.ok());
  std::vector<EventRow> again = {Row("b", 900), Row("c", 50)};
  auto second = (*reopened)->AppendBatch(again);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second)[0].duplicate);
  EXPECT_EQ((*second)[0].sequence, (*results)[1].sequence);
  EXPECT_FALSE((*second)[1].duplicate);
  EXPECT_GT((*second)[1].sequence, (*results)[1].sequence);

  // Batches that small are indexed at once. A bigger one is stored unmerged,
  // and its events are found through the store's memory of their hashes,
  // rebuilt on reopening; once merged, through the index.
  EXPECT_EQ((*reopened)->unmerged_rows(), 0);
  std::vector<EventRow> big = {Row("a", 1000)};  // already stored, merged
  for (int i = 0; i < SqliteStore::kDeferFromBatch; ++i) {
    big.push_back(Row(absl::StrCat("big-", i), 3000 + i));
  }
  big.push_back(Row("big-2", 3002));  // a redelivery within the batch
  auto fourth = (*reopened)->AppendBatch(big);
  ASSERT_TRUE(fourth.ok());
  EXPECT_TRUE((*fourth)[0].duplicate);
  EXPECT_EQ((*fourth)[0].sequence, (*results)[0].sequence);
  EXPECT_TRUE(fourth->back().duplicate);
  EXPECT_EQ(fourth->back().sequence, (*fourth)[3].sequence);
  EXPECT_EQ((*reopened)->unmerged_rows(), SqliteStore::kDeferFromBatch);
  reopened->reset();
  auto again_reopened = SqliteStore::Open(path_);
  ASSERT_TRUE(again_reopened.ok());
  EXPECT_EQ((*again_reopened)->unmerged_rows(), SqliteStore::kDeferFromBatch);
  for (bool merged : {false, true}) {
    if (merged) {
      ASSERT_TRUE((*again_reopened)->Merge());
    }
    std::vector<EventRow> redelivered = {Row("big-5", 3005)};
    auto fifth = (*again_reopened)->AppendBatch(redelivered);
    ASSERT_TRUE(fifth.ok());
    EXPECT_TRUE((*fifth)[0].duplicate) << merged;
    EXPECT_EQ((*fifth)[0].sequence, (*fourth)[6].sequence) << merged;
  }
  EXPECT_EQ((*again_reopened)->unmerged_rows(), 0);

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(),
            3 + SqliteStore::kDeferFromBatch);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events WHERE merged = 0").getInt(), 0);
}

TEST_F(SqliteStoreTest, EqualKeysAreOnlyCandidatesTheEventsIdentityDecides) {
  // The store keeps a hash of the key and confirms a match by what the key
  // is made of. Give different events one key, as a collision would.
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  auto with_key = [](EventRow row, const std::string& key) {
    row.dedupe_key = key;
    return row;
  };
  const std::string key(16, 'k');
  EventRow by_id = with_key(Row("id-1", 1000), key);
  EventRow other_id = with_key(Row("id-2", 1000), key);
  EventRow other_topic = with_key(Row("id-1", 1000), key);
  other_topic.topic = "door.request.denied";
  EventRow other_panel = with_key(Row("id-1", 1000), key);
  other_panel.panel_id = "1070001";
  // No event id: the body is the identity, stored compressed or verbatim.
  EventRow body = with_key(Row("", 1000), key);
  body.raw = absl::StrCat("{\"topic\":\"ou.updated\",\"filler\":\"", std::string(200, 'x'),
                          "\"}");
  EventRow other_body = body;
  other_body.raw.back() = ' ';
  EventRow short_body = with_key(Row("", 1000), key);
  short_body.raw = "{}";
  std::vector<EventRow> rows = {by_id, other_id, other_topic, other_panel,
                                body,  other_body, short_body};
  auto first = (*store)->AppendBatch(rows);
  ASSERT_TRUE(first.ok()) << first.status();
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_FALSE((*first)[i].duplicate) << i;
  }
  // Each again, in another batch and in the same one: each finds itself.
  std::vector<EventRow> twice = rows;
  twice.insert(twice.end(), rows.begin(), rows.end());
  auto second = (*store)->AppendBatch(twice);
  ASSERT_TRUE(second.ok()) << second.status();
  for (size_t i = 0; i < twice.size(); ++i) {
    EXPECT_TRUE((*second)[i].duplicate) << i;
    EXPECT_EQ((*second)[i].sequence, (*first)[i % rows.size()].sequence) << i;
  }
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), 7);
}

TEST_F(SqliteStoreTest, MigrationToDedupeHashesKeepsRowsSequencesAndDuplicates) {
  // An archive at schema version 2, as the previous release wrote it: the
  // 16-byte key under a UNIQUE constraint, and the newest rows deleted so the
  // AUTOINCREMENT high-water mark is above the largest sequence.
  {
    std::vector<EventRow> rows;
    for (int i = 0; i < 12; ++i) rows.push_back(Row(absl::StrCat("old-", i), 1000 + i));
    WriteOldArchive(path_, 2, rows);
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM events WHERE sequence > 10");
    ASSERT_EQ(db.execAndGet("SELECT seq FROM sqlite_sequence WHERE name = 'events'").getInt(),
              12);
  }
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  {
    SQLite::Database db(path_, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), EmbeddedMigrations().back().number);
    EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), 10);
    EXPECT_EQ(db.execAndGet("SELECT group_concat(sequence) "
                            "FROM (SELECT sequence FROM events ORDER BY 1)")
                  .getString(),
              "1,2,3,4,5,6,7,8,9,10");
    EXPECT_EQ(db.execAndGet("SELECT panel_id || '|' || door_name || '|' || subscription "
                            "FROM events_with_names WHERE sequence = 4")
                  .getString(),
              "1070000|Front|default");
    EXPECT_EQ(db.execAndGet("SELECT dedupe_key FROM events WHERE sequence = 4").getInt64(),
              DedupeHash(Row("old-3", 0).dedupe_key));
    EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");
  }
  // The reader gives every migrated row back as it was written.
  auto reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  for (int i = 0; i < 10; ++i) {
    auto back = (*reader)->Get(i + 1);
    ASSERT_TRUE(back.ok()) << back.status();
    EventRow expected = Row(absl::StrCat("old-", i), 1000 + i);
    expected.sequence = i + 1;
    expected.receive_time_ms = expected.occur_time_ms;
    expected.dedupe_key.clear();
    back->dedupe_key.clear();
    EXPECT_EQ(*back, expected) << i;
  }
  // A redelivery of a migrated event finds it; a new event continues after
  // the high-water mark, never reusing 11 or 12.
  std::vector<EventRow> rows = {Row("old-3", 1003), Row("new", 2000)};
  auto results = (*store)->AppendBatch(rows);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_TRUE((*results)[0].duplicate);
  EXPECT_EQ((*results)[0].sequence, 4);
  EXPECT_FALSE((*results)[1].duplicate);
  EXPECT_EQ((*results)[1].sequence, 13);
}

TEST_F(SqliteStoreTest, AnArchiveFromBeforeTheTwoPointZeroIdsMigratesWithoutRewritingRows) {
  // The previous release's archive: schema 7, 1.0 rows only (written at
  // schema 1, so that migration 2 counts them into the rollups).
  std::vector<EventRow> rows;
  for (int i = 0; i < 6; ++i) rows.push_back(Row(absl::StrCat("v1-", i), 1000 + i));
  WriteOldArchive(path_, 1, rows);
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    RegisterArchiveFunctions(db);
    std::vector<Migration> previous(EmbeddedMigrations().begin(),
                                    EmbeddedMigrations().begin() + 7);
    ASSERT_TRUE(ApplyMigrations(db, previous).ok());
    ASSERT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 7);
  }
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  {
    SQLite::Database db(path_, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), EmbeddedMigrations().back().number);
    // The old rows were not rewritten: their records end before the new
    // columns, which read NULL.
    EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events WHERE device_id IS NULL AND "
                            "holder_id IS NULL AND holder_name IS NULL AND "
                            "cloud_node_id IS NULL AND system_id IS NULL")
                  .getInt(),
              6);
    EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");
  }
  // A 2.0 row beside them.
  EventRow v2 = Row("v2-0", 2000);
  v2.door_id.reset();
  v2.device_id = "3f2c1b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f";
  v2.holder_id = "c0ffee00-1234-4abc-8def-001122334455";
  v2.holder_name = "Ann Example";
  v2.cloud_node_id = "7e57ab1e-0000-4000-8000-000000000001";
  v2.system_id = "5y5-0001";
  auto appended = (*store)->AppendBatch({&v2, 1});
  ASSERT_TRUE(appended.ok()) << appended.status();
  auto reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  for (int i = 0; i < 6; ++i) {
    auto back = (*reader)->Get(i + 1);
    ASSERT_TRUE(back.ok()) << back.status();
    EventRow expected = rows[static_cast<size_t>(i)];
    expected.sequence = i + 1;
    expected.receive_time_ms = expected.occur_time_ms;
    expected.dedupe_key.clear();
    EXPECT_EQ(*back, expected) << i;
    EXPECT_EQ(back->device_id, "");
  }
  auto back = (*reader)->Get((*appended)[0].sequence);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->device_id, v2.device_id);
  EXPECT_EQ(back->holder_id, v2.holder_id);
  EXPECT_EQ(back->holder_name, v2.holder_name);
  EXPECT_EQ(back->cloud_node_id, v2.cloud_node_id);
  EXPECT_EQ(back->system_id, v2.system_id);
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT device_id FROM events_with_names WHERE device_id IS NOT NULL")
                .getString(),
            v2.device_id);
  // Counted by door over whole days (the rollups' range): the 1.0 rows under
  // door 3, the 2.0 row under its device id, none under "no door".
  store::EventFilter whole_days;
  whole_days.start_ms = 0;
  whole_days.end_ms = timeutil::kDayMs;
  auto counts = (*reader)->Count(whole_days, {store::Dimension::kDoor}, 100);
  ASSERT_TRUE(counts.ok()) << counts.status();
  std::vector<store::CountGroup> want = {{{"3"}, 6}, {{v2.device_id}, 1}};
  EXPECT_EQ(*counts, want);
}

TEST_F(SqliteStoreTest, RowRoundTripsThroughTheFile) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  EventRow row = Row("z", 1646922708300);
  row.person_id = 17;
  row.ou_id = "ou-1";
  row.actor_user_id = "user-9";
  row.raw = "{\"exact\": \"bytes\" }";
  auto result = (*store)->AppendBatch({&row, 1});
  ASSERT_TRUE(result.ok());
  row.sequence = (*result)[0].sequence;
  auto reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  auto back = (*reader)->Get(row.sequence);
  ASSERT_TRUE(back.ok()) << back.status();
  // The archive keeps a 64-bit hash of the dedupe key, not the key.
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT dedupe_key FROM events").getInt64(),
            DedupeHash(row.dedupe_key));
  back->dedupe_key.clear();
  row.dedupe_key.clear();
  EXPECT_EQ(*back, row);
}

TEST_F(SqliteStoreTest, NamesAddedAfterAReaderStartedReadBackCorrectly) {
  // Panel ids, door names and subscriptions are stored once and cached by
  // the reader; one it has not seen yet must still come back right.
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  EventRow first = Row("n1", 1000);
  ASSERT_TRUE((*store)->AppendBatch({&first, 1}).ok());
  auto reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  auto back = (*reader)->Get(1);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->panel_id, "1070000");
  EventRow second = Row("n2", 2000);
  second.panel_id = "1070009";
  second.door_name = "Loading dock";
  second.subscription = "second-subscription";
  ASSERT_TRUE((*store)->AppendBatch({&second, 1}).ok());
  back = (*reader)->Get(2);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->panel_id, "1070009");
  EXPECT_EQ(back->door_name, "Loading dock");
  EXPECT_EQ(back->subscription, "second-subscription");
  // The same names are not stored twice.
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM names").getInt(), 6);
  // And the filters find the new panel.
  EventFilter filter;
  filter.panel_ids = {"1070009"};
  auto groups = (*reader)->Count(filter, {Dimension::kPanel});
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].key, std::vector<std::string>{"1070009"});
  EXPECT_EQ((*groups)[0].count, 1);
  ListQuery query;
  query.filter = filter;
  auto page = (*reader)->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0].sequence, 2);
}

TEST_F(SqliteStoreTest, ARowWhoseNameIsMissingIsDataLossNotAGuess) {
  {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok());
    EventRow row = Row("lost-name", 1000);
    ASSERT_TRUE((*store)->AppendBatch({&row, 1}).ok());
  }
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM names WHERE value = 'Front'");
  }
  auto reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  auto back = (*reader)->Get(1);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss) << back.status();
  auto page = (*reader)->List(ListQuery{});
  EXPECT_EQ(page.status().code(), absl::StatusCode::kDataLoss) << page.status();
}

TEST_F(SqliteStoreTest, PayloadsAndUuidsArePackedAndReadBackExactly) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  EventRow uuid_row = Row("u", 5);
  uuid_row.event_id = "679521e4-c455-423f-8155-d012c98f5dcc";
  uuid_row.raw =
      R"({"id":"679521e4-c455-423f-8155-d012c98f5dcc","body":{"doorId":1,"personId":1,)"
      R"("requestFactor":"CARD_OR_PIN"},"metadata":{"occurred":1646922708300,)"
      R"("doorName":"Door Name"},"panelId":"1070000","topic":"door.request.allowed"})";
  EventRow upper_row = Row("v", 6);
  upper_row.event_id = "679521E4-C455-423F-8155-D012C98F5DCC";  // not canonical: kept as text
  upper_row.raw = "x";  // too short to gain from compression: kept as text
  std::vector<EventRow> rows = {uuid_row, upper_row};
  auto results = (*store)->AppendBatch(rows);
  ASSERT_TRUE(results.ok());
  {
    SQLite::Database db(path_, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT typeof(event_id), length(event_id), typeof(raw), "
                            "length(raw) FROM events ORDER BY sequence");
    ASSERT_TRUE(q.executeStep());
    EXPECT_EQ(q.getColumn(0).getString(), "blob");
    EXPECT_EQ(q.getColumn(1).getInt(), 16);
    EXPECT_EQ(q.getColumn(2).getString(), "blob");
    EXPECT_LT(q.getColumn(3).getInt(), static_cast<int>(uuid_row.raw.size()) / 2)
        << "the spec dictionary should more than halve a door event";
    ASSERT_TRUE(q.executeStep());
    EXPECT_EQ(q.getColumn(0).getString(), "text");
    EXPECT_EQ(q.getColumn(2).getString(), "text");
  }
  auto reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  for (size_t i = 0; i < rows.size(); ++i) {
    auto back = (*reader)->Get((*results)[i].sequence);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->event_id, rows[i].event_id);
    EXPECT_EQ(back->raw, rows[i].raw);
  }
}

TEST_F(SqliteStoreTest, CorruptStoredPayloadIsDataLossNotACrash) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  EventRow row = Row("c", 5);
  row.raw = std::string(300, 'a');
  auto results = (*store)->AppendBatch({&row, 1});
  ASSERT_TRUE(results.ok());
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("UPDATE events SET raw = X'01DEADBEEF'");
  }
  auto reader = EventReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  auto back = (*reader)->Get((*results)[0].sequence);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(SqliteStoreTest, AbsentDoorAndPersonAreNull) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  EventRow row = Row("n", 1);
  row.door_id.reset();
  ASSERT_TRUE((*store)->AppendBatch({&row, 1}).ok());
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT door_id IS NULL AND person_id IS NULL FROM events").getInt(),
            1);
}

TEST_F(SqliteStoreTest, NewerSchemaThanTheBinaryIsRefused) {
  {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok());
  }
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version=999");
  }
  auto store = SqliteStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("999"), absl::string_view::npos);
}

TEST_F(SqliteStoreTest, MigrationsApplyOnceAndInOrder) {
  const std::vector<Migration> migrations = {
      {1, "0001_a.sql", "CREATE TABLE a(x);"},
      {2, "0002_b.sql", "CREATE TABLE b(y); INSERT INTO b VALUES (1);"},
  };
  SQLite::Database db(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  ASSERT_TRUE(ApplyMigrations(db, migrations).ok());
  ASSERT_TRUE(ApplyMigrations(db, migrations).ok());
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 2);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM b").getInt(), 1);
}

TEST_F(SqliteStoreTest, FailingMigrationLeavesNoTrace) {
  const std::vector<Migration> migrations = {
      {1, "0001_a.sql", "CREATE TABLE a(x);"},
      {2, "0002_bad.sql", "CREATE TABLE c(z); THIS IS NOT SQL;"},
  };
  SQLite::Database db(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  absl::Status s = ApplyMigrations(db, migrations);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("0002_bad.sql"), absl::string_view::npos);
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 1);
  EXPECT_FALSE(db.tableExists("c"));
}

// The rollups' keys and bounds are the events': days before 1970 floored,
// not truncated, and every day outside the years 0000-9999 keyed "" (where
// strftime alone gives NULL past 9999, "-001-12-31" in year -1).
TEST_F(SqliteStoreTest, DailyRollupsCountWhatTheEventsHoldAndMigrationBackfillsThem) {
  using timeutil::kDayMs;
  const auto day_key = [](int64_t ms) {
    return timeutil::FormatDayKey(timeutil::DayOf(ms)).value_or("");
  };
  std::map<std::vector<std::string>, int64_t> expected;  // (door, day) -> count
  std::map<std::vector<std::string>, int64_t> expected_by_day;  // (topic, day) -> count
  const int64_t moon_ms = timeutil::DaysFromCivil(1969, 7, 20) * kDayMs;
  const int64_t new_year_1970_ms = 0;
  const std::vector<int64_t> odd_times = {
      -1,
      -kDayMs,
      -kDayMs - 1,
      moon_ms + 1,
      moon_ms - 1,
      timeutil::kMinRfc3339Ms,
      timeutil::kMaxRfc3339Ms,
      timeutil::kMinRfc3339Ms - 1,                            // year -1
      timeutil::DaysFromCivil(-5000, 1, 1) * kDayMs,          // before strftime's range
      timeutil::kMaxRfc3339Ms + 1,                            // year 10000
      timeutil::DaysFromCivil(20000, 6, 1) * kDayMs + 12345,  // year 20000
      int64_t{1} << 60,
      -(int64_t{1} << 60),
  };
  constexpr int64_t kOutOfRange = 6;  // the last six
  std::vector<EventRow> rows;
  int64_t total = 0;
  int64_t moon_to_1970 = 0;  // in [1969-07-20, 1970-01-01)
  {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 500 + static_cast<int>(odd_times.size()); ++i) {
      const bool odd = i >= 500;
      EventRow row = Row(absl::StrCat("r", i), odd ? odd_times[static_cast<size_t>(i - 500)]
                                                   : 1646870400000 + int64_t{i} * 3600000 * 7);
      if (odd) {
        row.door_id = 3;
      } else if (i % 5 == 0) {
        row.door_id.reset();
      } else {
        row.door_id = i % 4;
      }
      rows.push_back(row);
      expected[{row.door_id ? absl::StrCat(*row.door_id) : "", day_key(row.occur_time_ms)}] += 1;
      expected_by_day[{row.topic, day_key(row.occur_time_ms)}] += 1;
      ++total;
      if (row.occur_time_ms >= moon_ms && row.occur_time_ms < new_year_1970_ms) ++moon_to_1970;
    }
    rows.push_back(rows[3]);  // a duplicate is not counted twice
    ASSERT_TRUE((*store)->AppendBatch(rows).ok());
  }
  ASSERT_EQ((expected[{"3", ""}]), kOutOfRange);
  ASSERT_EQ((expected[{"3", "1969-12-31"}]), 2);
  ASSERT_EQ((expected[{"3", "1969-07-19"}]), 1);
  ASSERT_EQ(moon_to_1970, 4);
  // A start bound off whole days: counted from the events, not the rollups.
  EventFilter from_events;
  from_events.start_ms = -(int64_t{1} << 61) + 1;
  ASSERT_NE(*from_events.start_ms % kDayMs, 0);
  EventFilter moon_to_new_year;
  moon_to_new_year.start_ms = moon_ms;
  moon_to_new_year.end_ms = new_year_1970_ms;
  auto check = [&](const char* when) {
    auto reader = EventReader::Open(path_);
    ASSERT_TRUE(reader.ok());
    auto got_of = [&](const EventFilter& filter, const std::vector<Dimension>& dimensions) {
      std::map<std::vector<std::string>, int64_t> got;
      auto groups = (*reader)->Count(filter, dimensions);
      EXPECT_TRUE(groups.ok()) << groups.status();
      if (!groups.ok()) return got;
      for (size_t i = 0; i < groups->size(); ++i) {
        const CountGroup& g = (*groups)[i];
        EXPECT_TRUE(got.emplace(g.key, g.count).second) << when << ": key twice";
        if (i > 0) {
          EXPECT_LT((*groups)[i - 1].key, g.key) << when << ": not sorted";
        }
      }
      return got;
    };
    EXPECT_EQ(got_of(EventFilter{}, {Dimension::kDoor, Dimension::kDay}), expected) << when;
    EXPECT_EQ(got_of(from_events, {Dimension::kDoor, Dimension::kDay}), expected) << when;
    EXPECT_EQ(got_of(EventFilter{}, {Dimension::kTopic, Dimension::kDay}), expected_by_day)
        << when;
    EXPECT_EQ(got_of(from_events, {Dimension::kTopic, Dimension::kDay}), expected_by_day)
        << when;
    EXPECT_EQ((got_of(EventFilter{}, {Dimension::kHour})[{""}]), kOutOfRange) << when;
    using Groups = std::map<std::vector<std::string>, int64_t>;
    EXPECT_EQ(got_of(EventFilter{}, {}), (Groups{{{}, total}})) << when;
    EXPECT_EQ(got_of(moon_to_new_year, {}), (Groups{{{}, moon_to_1970}})) << when;
  };
  check("stored, not merged yet");
  {
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Merge());
    SQLite::Database db(path_, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT SUM(n) FROM counts_daily").getInt64(), total);
  }
  check("merged into the rollups");
  // The same events in an archive from before migration 0002: the rollups
  // are built from them.
  path_ = (dir_ / "version1.db").string();
  rows.pop_back();
  WriteOldArchive(path_, 1, rows);
  ASSERT_TRUE(SqliteStore::Open(path_).ok());
  check("backfilled by the migration");
}

// How many unmerged events Maintain merges for each load, seen in the file:
// the writer's policy (store/sqlite/sqlite_store.h), not a guess at timing.
TEST_F(SqliteStoreTest, MaintainMergesWhatTheLoadAllowsOldestFirst) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  auto in_file = [&](const std::string& sql) {
    SQLite::Database db(path_, SQLite::OPEN_READONLY);
    return db.execAndGet(sql).getInt64();
  };
  auto unmerged_in_file = [&] {
    return in_file("SELECT count(*) FROM events WHERE merged = 0");
  };
  auto merged_through = [&] {
    return in_file("SELECT value FROM archive_meta WHERE name = 'merged_through'");
  };
  int next = 0;
  std::vector<int64_t> sequences;
  auto append = [&](int64_t n) {
    std::vector<EventRow> rows;
    for (int64_t i = 0; i < n; ++i, ++next) rows.push_back(Row(absl::StrCat("m", next), next));
    auto results = (*store)->AppendBatch(rows);
    ASSERT_TRUE(results.ok());
    for (const AppendResult& r : *results) sequences.push_back(r.sequence);
  };
  const int64_t slice = SqliteStore::kMergeCaughtUpRows;
  const int64_t batch = SqliteStore::kDeferFromBatch;
  // Three and a half slices' worth, in deferred batches.
  while (next < 3 * slice + slice / 2) append(batch);
  const int64_t deferred = next;
  ASSERT_LT(deferred, SqliteStore::kMergeRows);

  // Right after a deferred batch an empty queue is a lull between bursts,
  // not catching up: nothing is merged below kMergeRows.
  (*store)->Maintain(BatchSink::Load::kCaughtUp);
  (*store)->Maintain(BatchSink::Load::kBacklog);
  EXPECT_EQ(unmerged_in_file(), deferred);
  EXPECT_EQ(merged_through(), 0);

  // A batch small enough to index directly means the writer keeps up: each
  // caught-up Maintain then merges the oldest slice, and moves the mark to
  // its last event.
  append(1);
  EXPECT_EQ(unmerged_in_file(), deferred) << "the small batch itself is stored merged";
  for (int64_t merged = slice; merged <= deferred; merged += slice) {
    (*store)->Maintain(BatchSink::Load::kCaughtUp);
    EXPECT_EQ(unmerged_in_file(), deferred - merged);
    EXPECT_EQ(merged_through(), sequences[static_cast<size_t>(merged - 1)]);
    EXPECT_EQ((*store)->unmerged_rows(), deferred - merged);
  }
  // Less than a slice is left for an idle moment.
  (*store)->Maintain(BatchSink::Load::kCaughtUp);
  EXPECT_EQ(unmerged_in_file(), deferred % slice);

  // Redeliveries are found on both sides of the mark, and across reopening.
  const int first_unmerged = static_cast<int>(deferred - deferred % slice);
  for (int reopen = 0; reopen < 2; ++reopen) {
    if (reopen) {
      store->reset();
      store = SqliteStore::Open(path_);
      ASSERT_TRUE(store.ok());
      EXPECT_EQ((*store)->unmerged_rows(), deferred % slice);
    }
    std::vector<EventRow> again = {Row("m0", 0), Row(absl::StrCat("m", first_unmerged - 1),
                                                     first_unmerged - 1),
                                   Row(absl::StrCat("m", first_unmerged), first_unmerged)};
    auto results = (*store)->AppendBatch(again);
    ASSERT_TRUE(results.ok());
    for (size_t i = 0; i < again.size(); ++i) EXPECT_TRUE((*results)[i].duplicate) << i;
    EXPECT_EQ((*results)[2].sequence, sequences[static_cast<size_t>(first_unmerged)]);
  }

  (*store)->Maintain(BatchSink::Load::kIdle);
  EXPECT_EQ(unmerged_in_file(), 0);
  EXPECT_EQ((*store)->unmerged_rows(), 0);
  EXPECT_EQ(merged_through(), sequences.at(static_cast<size_t>(deferred - 1)));
  EXPECT_EQ(in_file("SELECT sum(n) FROM counts_daily"), next);
  EXPECT_EQ(in_file("SELECT sum(n) FROM counts_daily_topic"), next);
  EXPECT_EQ(in_file("SELECT count(*) FROM events INDEXED BY events_by_time "
                    "WHERE occur_time >= 0 AND merged = 1"),
            next);
  EXPECT_EQ(in_file("SELECT count(*) FROM events"), next);
}

// The checkpointer copies frames into the database file as the WAL grows,
// long before a restart is due, so the restart itself has little to copy.
TEST_F(SqliteStoreTest, MaintainNudgesTheCheckpointerAsTheWalGrows) {
  constexpr int64_t kLimit = 4000;
  // No timer: this checkpointer runs only when nudged.
  ASSERT_NO_FATAL_FAILURE(OpenWithCheckpointer(kLimit, std::chrono::hours(1)));
  const std::string wal = path_ + "-wal";
  const uintmax_t initial = std::filesystem::file_size(path_);
  // WAL frames of 4 KiB pages, each with its 24-byte header.
  auto wal_frames = [&] {
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(wal, ec);
    return ec ? 0 : static_cast<int64_t>(size / (4096 + 24));
  };
  int next = 0;
  while (wal_frames() < kLimit / SqliteStore::kNudgesPerWalLimit + 100) {
    std::vector<EventRow> rows;
    for (int i = 0; i < 100; ++i, ++next) {
      EventRow row = Row(absl::StrCat("n", next), next * 7919LL % 1000003);
      row.raw = absl::StrCat(next, "-", std::string(300, static_cast<char>('a' + next % 26)));
      rows.push_back(row);
    }
    ASSERT_TRUE(store_->AppendBatch(rows).ok());
    store_->Maintain(BatchSink::Load::kBacklog);
  }
  ASSERT_LT(wal_frames(), kLimit) << "a restart would copy the frames itself";
  uintmax_t copied = initial;
  for (int i = 0; i < 500 && copied <= initial; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    copied = std::filesystem::file_size(path_);
  }
  EXPECT_GT(copied, initial + (1u << 20)) << "the checkpointer copied nothing";
}

// Batches of `count` events with keys and times spread out, so each one
// dirties many pages, starting at event `*next`.
std::vector<EventRow> SpreadBatch(int* next, int count) {
  std::vector<EventRow> rows;
  for (int i = 0; i < count; ++i, ++*next) {
    EventRow row;
    row.topic = "door.request.allowed";
    row.family = "panel";
    row.panel_id = absl::StrCat("panel-", *next % 7);
    row.event_id = absl::StrCat("spread-", *next);
    row.dedupe_key = row.event_id;
    row.door_id = *next % 97;
    row.person_id = *next * 31 % 1009;
    row.occur_time_ms = *next * 7919LL % 1000003 * 1000;
    row.receive_time_ms = row.occur_time_ms;
    row.raw = absl::StrCat(R"({"id":"spread-)", *next, R"("})");
    rows.push_back(row);
  }
  return rows;
}

// A restart copies, with the write lock held, what the checkpointer has not
// copied yet; so it waits until the checkpointer has caught up.
TEST_F(SqliteStoreTest, TheWalRestartsOnceTheCheckpointerHasCaughtUp) {
  constexpr int64_t kLimit = 1000;
  // No timer: this checkpointer runs only when asked.
  ASSERT_NO_FATAL_FAILURE(OpenWithCheckpointer(kLimit, std::chrono::hours(1)));
  int next = 0;
  while (store_->wal_frames() < kLimit) {
    ASSERT_TRUE(store_->AppendBatch(SpreadBatch(&next, 50)).ok());
    store_->Maintain(BatchSink::Load::kIdle);
  }
  // Past the limit: the store asked for a catch-up instead of restarting.
  EXPECT_EQ(store_->wal_restarts(), 0);
  const int64_t frames = store_->wal_frames();
  std::optional<int64_t> through;
  for (int i = 0; i < 1000 && !through.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    through = checkpointer_->caught_up_through();
  }
  ASSERT_TRUE(through.has_value()) << "the checkpointer never caught up";
  EXPECT_EQ(*through, frames) << "nothing was committed meanwhile: it copied every frame";
  store_->Maintain(BatchSink::Load::kIdle);
  EXPECT_EQ(store_->wal_restarts(), 1);
  EXPECT_EQ(store_->wal_frames(), 0);
  ASSERT_TRUE(store_->AppendBatch(SpreadBatch(&next, 1)).ok());
  EXPECT_LT(store_->wal_frames(), 100) << "the WAL did not start over";
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), next);
}

// A checkpointer that cannot catch up does not let the WAL grow without
// bound: at kRestartAnywayLimits times the limit the store restarts it.
TEST_F(SqliteStoreTest, TheWalRestartsAnywayWhenTheCheckpointerCannotCatchUp) {
  constexpr int64_t kLimit = 500;
  ASSERT_NO_FATAL_FAILURE(OpenWithCheckpointer(kLimit, std::chrono::hours(1)));
  // Held, as it is during a writer's restart: it starts no pass.
  ASSERT_TRUE(checkpointer_->PauseForRestart());
  int next = 0;
  int64_t largest = 0;
  while (store_->wal_restarts() == 0) {
    ASSERT_LT(next, 100000) << "the WAL never restarted";
    ASSERT_TRUE(store_->AppendBatch(SpreadBatch(&next, 20)).ok());
    const int64_t frames = store_->wal_frames();
    largest = std::max(largest, frames);
    // kBacklog: no merge of its own in Maintain below 2,048 events.
    store_->Maintain(BatchSink::Load::kBacklog);
    if (store_->wal_restarts() == 0) {
      ASSERT_FALSE(checkpointer_->caught_up_through().has_value());
      ASSERT_LT(frames, SqliteStore::kRestartAnywayLimits * kLimit);
    }
  }
  EXPECT_GE(largest, SqliteStore::kRestartAnywayLimits * kLimit);
  EXPECT_EQ(store_->wal_frames(), 0);
}

TEST_F(SqliteStoreTest, CheckpointerKeepsTheWalBoundedUnderSteadyWrites) {
  // A small bound (64 frames = 256 KiB) so the test writes little.
  ASSERT_NO_FATAL_FAILURE(OpenWithCheckpointer(64, std::chrono::milliseconds(5)));
  uintmax_t largest_wal = 0;
  int next = 0;
  for (int batch = 0; batch < 60; ++batch) {
    std::vector<EventRow> rows;
    for (int i = 0; i < 200; ++i, ++next) {
      EventRow row = Row(absl::StrCat("w", next), next);
      row.raw = absl::StrCat(next, "-", std::string(300, static_cast<char>('a' + next % 26)));
      row.door_name = absl::StrCat("door ", next * 7919 % 1000);
      rows.push_back(row);
    }
    ASSERT_TRUE(store_->AppendBatch(rows).ok());
    checkpointer_->Nudge();
    store_->Maintain(BatchSink::Load::kBacklog);
    std::error_code ec;
    largest_wal = std::max(largest_wal, std::filesystem::file_size(path_ + "-wal", ec));
  }
  // 60 batches write several MiB of WAL frames; with the limit, the WAL
  // never holds much more than one batch beyond 64 frames.
  EXPECT_LT(largest_wal, 2u << 20) << "largest WAL " << largest_wal;
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), 60 * 200);
  EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");
}

TEST_F(SqliteStoreTest, WalRestartBlockedByAReaderIsRetriedLater) {
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok());
  (*store)->set_wal_limit_frames(64);
  auto big_batch = [](int first) {
    std::vector<EventRow> rows;
    for (int i = first; i < first + 300; ++i) {
      EventRow row = Row(absl::StrCat("r", i), i);
      row.door_name = absl::StrCat("door ", i * 7919 % 1000);
      rows.push_back(row);
    }
    return rows;
  };
  // Frames in the WAL, as a PASSIVE checkpoint from another connection
  // reports them (the second column of its result row).
  auto wal_frames = [&] {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    SQLite::Statement pragma(db, "PRAGMA wal_checkpoint(PASSIVE)");
    EXPECT_TRUE(pragma.executeStep());
    return pragma.getColumn(1).getInt();
  };
  ASSERT_TRUE((*store)->AppendBatch(big_batch(0)).ok());
  {
    // A reader on the current snapshot; the next commit makes it old, and
    // an old snapshot keeps RESTART from finishing.
    SQLite::Database reader(path_, SQLite::OPEN_READONLY);
    reader.exec("BEGIN");
    EXPECT_EQ(reader.execAndGet("SELECT count(*) FROM events").getInt(), 300);
    ASSERT_TRUE((*store)->AppendBatch(big_batch(300)).ok());
    (*store)->Maintain(BatchSink::Load::kBacklog);  // blocked: the WAL keeps its frames
    EXPECT_GT(wal_frames(), 64);
    reader.exec("COMMIT");
  }
  // No new batch: the store must still know the WAL is over its limit.
  (*store)->Maintain(BatchSink::Load::kBacklog);
  std::vector<EventRow> small = {Row("small", 1)};
  ASSERT_TRUE((*store)->AppendBatch(small).ok());
  EXPECT_LT(wal_frames(), 64) << "the WAL did not start over";
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), 601);
}

TEST_F(SqliteStoreTest, UnwritableLocationFailsToOpen) {
  auto store = SqliteStore::Open((dir_ / "missing-dir" / "x.db").string());
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace pdkarchive::store

namespace pdkarchive::store {
namespace {

TEST_F(SqliteStoreTest, IdCachesStayBoundedWhateverTheNamesHold) {
  // Door names are client data: 100 distinct 900 KiB names are 90 MB that
  // the writer must not keep just to save a lookup.
  testing::UseOneMallocArena();
  auto store = SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->AppendBatch(std::vector<EventRow>{Row("warm-up", 1)}).ok());
  const size_t before = AllocatedBytesBesidesSqlite();
  constexpr int kEvents = 100;
  constexpr size_t kNameBytes = 900 * 1024;
  for (int i = 0; i < kEvents; ++i) {
    EventRow row = Row(absl::StrCat("big-", i), 1000 + i);
    row.door_name = std::string(kNameBytes, static_cast<char>('a' + i % 26));
    row.door_name += std::to_string(i);
    row.topic = absl::StrCat("door.request.", std::string(4096, 'x'), i);
    auto results = (*store)->AppendBatch(std::vector<EventRow>{row});
    ASSERT_TRUE(results.ok()) << results.status();
  }
  const size_t after = AllocatedBytesBesidesSqlite();
  EXPECT_LT(after - std::min(after, before), size_t{16} << 20)
      << "the writer kept " << (after - before) << " bytes for " << kEvents << " names";
  // The names are stored all the same, and repeating one finds its id.
  EventRow again = Row("again", 5000);
  again.door_name = std::string(kNameBytes, 'b') + "1";
  ASSERT_TRUE((*store)->AppendBatch(std::vector<EventRow>{again}).ok());
  store->reset();
  std::vector<EventRow> rows = testing::ReadAllRows(path_);
  ASSERT_EQ(rows.size(), static_cast<size_t>(kEvents + 2));
  EXPECT_EQ(rows[5].door_name, std::string(kNameBytes, 'e') + "4");
  EXPECT_EQ(rows.back().door_name, rows[2].door_name);
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM names WHERE length(value) > 1000").getInt(),
            kEvents);
}

}  // namespace
}  // namespace pdkarchive::store
