// The PostgreSQL engine's write side (issue 14) on a real server: appends
// read back by SQL, dedupe, sequences in commit order across two nodes,
// the commit feed across nodes, month partitions, text PostgreSQL cannot
// hold, CopyIn, and opening the archive.
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "store/archive.h"
#include "store/postgres/pg_commit_feed.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_migrations.h"
#include "store/postgres/pg_partitions.h"
#include "store/postgres/pg_store.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"
#include "timeutil/time_util.h"

namespace pdkarchive {
namespace {

using store::AppendResult;
using store::Archive;
using store::EventRow;
using testing::Engine;
using testing::TestArchive;

constexpr int64_t kMarch2026Ms = 1772323200000;  // 2026-03-01T00:00:00Z

std::string Key(int64_t n) {
  std::string key = absl::StrCat("key-", n);
  key.resize(16, '.');
  return key;
}

EventRow Row(int64_t n, int64_t occur_ms = kMarch2026Ms + 3600000) {
  EventRow row;
  row.event_id = absl::StrCat("evt-", n);
  row.topic = n % 2 == 0 ? "door.access.granted" : "door.access.denied";
  row.family = "panel";
  row.panel_id = "1070AB";
  row.ou_id = "ou-1";
  row.door_id = n % 3 == 0 ? std::nullopt : std::optional<int64_t>(n % 3);
  row.door_name = "Front";
  row.person_id = 42;
  row.actor_user_id = "";
  row.occur_time_ms = occur_ms;
  row.receive_time_ms = occur_ms + 5;
  row.subscription = "default";
  row.dedupe_key = Key(n);
  row.raw = absl::StrCat("{\"id\":", n, "}");
  return row;
}

store::pg::ConnectOptions Connect(const std::string& uri) {
  store::pg::ConnectOptions options;
  options.uri = uri;
  return options;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pg_store");
    absl::StatusOr<std::unique_ptr<TestArchive>> archive =
        TestArchive::Create(Engine::kPostgres, dir_);
    ASSERT_TRUE(archive.ok()) << archive.status();
    test_archive_ = *std::move(archive);
  }
  void TearDown() override {
    test_archive_.reset();
    std::filesystem::remove_all(dir_);
  }

  const std::string& db() const { return test_archive_->db(); }

  std::unique_ptr<Archive> Open() {
    absl::StatusOr<std::unique_ptr<Archive>> archive = store::OpenArchive(db());
    EXPECT_TRUE(archive.ok()) << archive.status();
    return archive.ok() ? *std::move(archive) : nullptr;
  }

  std::unique_ptr<store::pg::Connection> Sql() {
    absl::StatusOr<std::unique_ptr<store::pg::Connection>> conn =
        store::pg::Connection::Open(Connect(db()));
    EXPECT_TRUE(conn.ok()) << conn.status();
    return conn.ok() ? *std::move(conn) : nullptr;
  }

  // The first value of `sql`'s first row, as text ("" when none).
  std::string Value(const std::string& sql) {
    std::unique_ptr<store::pg::Connection> conn = Sql();
    if (conn == nullptr) return "";
    absl::StatusOr<store::pg::Result> result = conn->Query(sql);
    EXPECT_TRUE(result.ok()) << sql << ": " << result.status();
    if (!result.ok() || result->rows() == 0) return "";
    return std::string(result->bytes(0, 0));
  }

  std::filesystem::path dir_;
  std::unique_ptr<TestArchive> test_archive_;
};

TEST_F(PgStoreTest, AppendedRowsReadBackBySql) {
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  std::vector<EventRow> rows = {Row(1), Row(2), Row(3)};
  absl::StatusOr<std::vector<AppendResult>> results = archive->sink().AppendBatch(rows);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*results)[static_cast<size_t>(i)].sequence, i + 1);
    EXPECT_FALSE((*results)[static_cast<size_t>(i)].duplicate);
  }
  std::unique_ptr<store::pg::Connection> conn = Sql();
  ASSERT_NE(conn, nullptr);
  absl::StatusOr<store::pg::Result> back = conn->Query(
      "SELECT sequence, occur_time, receive_time, topic, family, panel_id, ou_id, door_id, "
      "door_name, person_id, actor_user_id, event_id, subscription, encode(raw, 'hex') "
      "FROM events ORDER BY sequence");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->rows(), 3);
  for (int i = 0; i < 3; ++i) {
    const EventRow& row = rows[static_cast<size_t>(i)];
    EXPECT_EQ(back->int64(i, 0), i + 1);
    EXPECT_EQ(back->int64(i, 1), row.occur_time_ms);
    EXPECT_EQ(back->int64(i, 2), row.receive_time_ms);
    EXPECT_EQ(back->bytes(i, 3), row.topic);
    EXPECT_EQ(back->bytes(i, 4), row.family);
    EXPECT_EQ(back->bytes(i, 5), row.panel_id);
    EXPECT_EQ(back->bytes(i, 6), row.ou_id);
    EXPECT_EQ(back->optional_int64(i, 7), row.door_id);
    EXPECT_EQ(back->bytes(i, 8), row.door_name);
    EXPECT_EQ(back->optional_int64(i, 9), row.person_id);
    EXPECT_EQ(back->bytes(i, 10), row.actor_user_id);
    EXPECT_EQ(back->bytes(i, 11), row.event_id);
    EXPECT_EQ(back->bytes(i, 12), row.subscription);
    EXPECT_EQ(back->bytes(i, 13), Hex(row.raw));
  }
  EXPECT_EQ(Value("SELECT last_sequence FROM archive_state"), "3");
  EXPECT_EQ(Value("SELECT count(*) FROM event_keys"), "3");
  // Rollups: day of 2026-03-01; Row(3) names no door.
  const std::string day = absl::StrCat(timeutil::DayOf(kMarch2026Ms));
  EXPECT_EQ(Value(absl::StrCat("SELECT sum(n) FROM counts_daily WHERE day = ", day)), "3");
  EXPECT_EQ(Value(absl::StrCat("SELECT n FROM counts_daily WHERE door_id = ", store::kNoDoor)),
            "1");
  EXPECT_EQ(Value("SELECT n FROM counts_daily_topic WHERE topic = 'door.access.denied'"), "2");
  // A second batch adds to the same rollup rows.
  ASSERT_TRUE(archive->sink().AppendBatch(std::vector<EventRow>{Row(5)}).ok());
  EXPECT_EQ(Value("SELECT n FROM counts_daily_topic WHERE topic = 'door.access.denied'"), "3");
  EXPECT_EQ(Value("SELECT count(*) FROM archive_meta WHERE name = 'page_token_key' "
                  "AND length(value) = 32"),
            "1");
}

TEST_F(PgStoreTest, DuplicatesAnswerTheOriginalAcrossAndWithinBatches) {
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  absl::StatusOr<std::vector<AppendResult>> first =
      archive->sink().AppendBatch(std::vector<EventRow>{Row(1), Row(2), Row(1)});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)[0].sequence, 1);
  EXPECT_FALSE((*first)[0].duplicate);
  EXPECT_EQ((*first)[1].sequence, 2);
  EXPECT_FALSE((*first)[1].duplicate);
  EXPECT_EQ((*first)[2].sequence, 1);
  EXPECT_TRUE((*first)[2].duplicate);
  absl::StatusOr<std::vector<AppendResult>> second =
      archive->sink().AppendBatch(std::vector<EventRow>{Row(2), Row(3), Row(3)});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)[0].sequence, 2);
  EXPECT_TRUE((*second)[0].duplicate);
  EXPECT_EQ((*second)[1].sequence, 3);
  EXPECT_FALSE((*second)[1].duplicate);
  EXPECT_EQ((*second)[2].sequence, 3);
  EXPECT_TRUE((*second)[2].duplicate);
  // A batch of duplicates only stores nothing and moves nothing.
  absl::StatusOr<std::vector<AppendResult>> third =
      archive->sink().AppendBatch(std::vector<EventRow>{Row(3)});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE((*third)[0].duplicate);
  EXPECT_EQ(Value("SELECT count(*) FROM events"), "3");
  EXPECT_EQ(Value("SELECT sum(n) FROM counts_daily"), "3");
  EXPECT_EQ(Value("SELECT last_sequence FROM archive_state"), "3");
  // Another node answers the original too.
  std::unique_ptr<Archive> other = Open();
  ASSERT_NE(other, nullptr);
  absl::StatusOr<std::vector<AppendResult>> redelivered =
      other->sink().AppendBatch(std::vector<EventRow>{Row(1)});
  ASSERT_TRUE(redelivered.ok()) << redelivered.status();
  EXPECT_EQ((*redelivered)[0].sequence, 1);
  EXPECT_TRUE((*redelivered)[0].duplicate);
}

// Collects the payloads of NOTIFY pdkarchive_commits on a connection of its
// own, as a third party watching both nodes.
class NotifyRecorder {
 public:
  explicit NotifyRecorder(const std::string& uri) {
    absl::StatusOr<std::unique_ptr<store::pg::Connection>> conn =
        store::pg::Connection::Open(Connect(uri));
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) return;
    conn_ = *std::move(conn);
    EXPECT_TRUE(conn_->Exec("LISTEN pdkarchive_commits").ok());
    thread_ = std::thread([this] { Run(); });
  }
  ~NotifyRecorder() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Waits until a payload of at least `sequence` arrived or `timeout` passed.
  std::vector<int64_t> WaitFor(int64_t sequence, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !seen_.empty() && seen_.back() >= sequence; });
    return seen_;
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd fd = {PQsocket(conn_->raw()), POLLIN, 0};
      poll(&fd, 1, 50);
      if (PQconsumeInput(conn_->raw()) == 0) return;
      while (PGnotify* notify = PQnotifies(conn_->raw())) {
        {
          std::lock_guard lock(mu_);
          seen_.push_back(std::stoll(notify->extra));
        }
        PQfreemem(notify);
        cv_.notify_all();
      }
    }
  }

  std::unique_ptr<store::pg::Connection> conn_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int64_t> seen_;
  std::thread thread_;
};

TEST_F(PgStoreTest, TwoNodesAppendingAtOnceStoreEachEventOnceInCommitOrder) {
  std::unique_ptr<Archive> nodes[2] = {Open(), Open()};
  ASSERT_NE(nodes[0], nullptr);
  ASSERT_NE(nodes[1], nullptr);
  NotifyRecorder recorder(db());
  std::mutex sink_mu[2];  // a sink takes one caller at a time, like its writer
  constexpr int kThreads = 4;
  constexpr int kRowsPerThread = 2000;
  constexpr int kBatch = 50;
  // Threads 0 and 2 send keys 0..1999, threads 1 and 3 keys 1000..2999:
  // every key is sent at least twice, half of them four times, to both nodes.
  constexpr int64_t kDistinct = 3000;
  std::mutex results_mu;
  std::map<int64_t, std::set<int64_t>> sequences_of_key;
  std::vector<int64_t> batch_newest;  // the last fresh sequence of each batch
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const int node = t % 2 == 0 ? 0 : 1;
      const int64_t base = (t % 2) * 1000;
      for (int start = 0; start < kRowsPerThread; start += kBatch) {
        std::vector<EventRow> rows;
        for (int i = start; i < start + kBatch; ++i) rows.push_back(Row(base + i));
        absl::StatusOr<std::vector<AppendResult>> results;
        {
          std::lock_guard lock(sink_mu[node]);
          results = nodes[node]->sink().AppendBatch(rows);
        }
        if (!results.ok()) {
          ADD_FAILURE() << results.status();
          ++failures;
          return;
        }
        std::lock_guard lock(results_mu);
        int64_t fresh_before = 0;
        for (size_t i = 0; i < rows.size(); ++i) {
          const AppendResult& r = (*results)[i];
          sequences_of_key[base + start + static_cast<int64_t>(i)].insert(r.sequence);
          if (!r.duplicate) {
            // The fresh rows of one batch take consecutive sequences.
            if (fresh_before != 0) {
              EXPECT_EQ(r.sequence, fresh_before + 1);
            }
            fresh_before = r.sequence;
          }
        }
        if (fresh_before != 0) batch_newest.push_back(fresh_before);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  // Every key answered one sequence, wherever and however often it was sent,
  // and the sequences are exactly 1..kDistinct.
  ASSERT_EQ(static_cast<int64_t>(sequences_of_key.size()), kDistinct);
  std::set<int64_t> all;
  for (const auto& [key, sequences] : sequences_of_key) {
    EXPECT_EQ(sequences.size(), 1u) << "key " << key;
    all.insert(*sequences.begin());
  }
  EXPECT_EQ(static_cast<int64_t>(all.size()), kDistinct);
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kDistinct);
  EXPECT_EQ(Value("SELECT count(*) FROM events"), absl::StrCat(kDistinct));
  EXPECT_EQ(Value("SELECT count(DISTINCT sequence) FROM events"), absl::StrCat(kDistinct));
  EXPECT_EQ(Value("SELECT max(sequence) FROM events"), absl::StrCat(kDistinct));
  EXPECT_EQ(Value("SELECT count(*) FROM event_keys"), absl::StrCat(kDistinct));
  EXPECT_EQ(Value("SELECT sum(n) FROM counts_daily"), absl::StrCat(kDistinct));
  EXPECT_EQ(Value("SELECT sum(n) FROM counts_daily_topic"), absl::StrCat(kDistinct));
  EXPECT_EQ(Value("SELECT last_sequence FROM archive_state"), absl::StrCat(kDistinct));
  // Commits were announced in commit order: each batch's newest sequence,
  // strictly increasing.
  std::vector<int64_t> seen = recorder.WaitFor(kDistinct, std::chrono::seconds(5));
  ASSERT_FALSE(seen.empty());
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_LT(seen[i - 1], seen[i]) << "notification " << i;
  }
  std::sort(batch_newest.begin(), batch_newest.end());
  EXPECT_EQ(seen, batch_newest);
}

TEST_F(PgStoreTest, FeedHearsTheOtherNodesCommitsWithinASecond) {
  std::unique_ptr<Archive> a = Open();
  std::unique_ptr<Archive> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int64_t> heard;
  const int id = b->feed().Subscribe([&](int64_t sequence) {
    std::lock_guard lock(mu);
    heard.push_back(sequence);
    cv.notify_all();
  });
  auto wait_for = [&](int64_t sequence) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(1),
                       [&] { return !heard.empty() && heard.back() >= sequence; });
  };
  ASSERT_TRUE(a->sink().AppendBatch(std::vector<EventRow>{Row(1), Row(2)}).ok());
  EXPECT_TRUE(wait_for(2));
  EXPECT_EQ(b->feed().last_sequence(), 2);
  // A local Publish reaches listeners at once; an older one reaches nobody.
  b->feed().Publish(1);
  ASSERT_TRUE(b->sink().AppendBatch(std::vector<EventRow>{Row(3)}).ok());
  b->feed().Publish(3);
  EXPECT_TRUE(wait_for(3));
  // The feed's connection killed: it reconnects and catches up.
  {
    std::unique_ptr<store::pg::Connection> admin = Sql();
    ASSERT_NE(admin, nullptr);
    ASSERT_TRUE(admin
                    ->Query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                    .ok());
  }
  // Both stores lost their connections too: the next batch opens a new one.
  absl::StatusOr<std::vector<AppendResult>> after = a->sink().AppendBatch(
      std::vector<EventRow>{Row(4)});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)[0].sequence, 4);
  {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(3),
                            [&] { return !heard.empty() && heard.back() >= 4; }));
  }
  b->feed().Unsubscribe(id);
  std::lock_guard lock(mu);
  for (size_t i = 1; i < heard.size(); ++i) EXPECT_LT(heard[i - 1], heard[i]);
  EXPECT_EQ(heard.back(), 4);
}

TEST_F(PgStoreTest, MonthPartitionsAreMadeOnDemandAndFarTimesGoOutside) {
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  const int64_t may_2003 = timeutil::DaysFromCivil(2003, 5, 10) * timeutil::kDayMs;
  const int64_t year_2500 = timeutil::DaysFromCivil(2500, 1, 1) * timeutil::kDayMs;
  const int64_t before_1970 = -timeutil::kDayMs * 400;
  EXPECT_EQ(Value("SELECT to_regclass('events_y2003m05') IS NULL"), "t");
  absl::StatusOr<std::vector<AppendResult>> results = archive->sink().AppendBatch(
      std::vector<EventRow>{Row(1, may_2003), Row(2, year_2500), Row(3, before_1970)});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ(Value("SELECT tableoid::regclass FROM events WHERE sequence = 1"), "events_y2003m05");
  EXPECT_EQ(Value("SELECT tableoid::regclass FROM events WHERE sequence = 2"), "events_outside");
  EXPECT_EQ(Value("SELECT tableoid::regclass FROM events WHERE sequence = 3"), "events_outside");
  // The months around now were made at open.
  const std::optional<store::pg::MonthKey> now = store::pg::PartitionMonthOf(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  ASSERT_TRUE(now.has_value());
  for (store::pg::MonthKey month : {*now - 1, *now, *now + 1, *now + 2}) {
    EXPECT_EQ(Value(absl::StrCat("SELECT to_regclass('", store::pg::PartitionName(month),
                                 "') IS NOT NULL")),
              "t")
        << store::pg::PartitionName(month);
  }
  // The partition's bounds are the month's.
  EXPECT_EQ(Value("SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
                  "WHERE relname = 'events_y2003m05'"),
            absl::StrCat("FOR VALUES FROM ('",
                         timeutil::DaysFromCivil(2003, 5, 1) * timeutil::kDayMs, "') TO ('",
                         timeutil::DaysFromCivil(2003, 6, 1) * timeutil::kDayMs, "')"));
  // A second node, which did not make it, writes to it too.
  std::unique_ptr<Archive> other = Open();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->sink().AppendBatch(std::vector<EventRow>{Row(4, may_2003 + 1)}).ok());
  EXPECT_EQ(Value("SELECT count(*) FROM events_y2003m05"), "2");
}

TEST_F(PgStoreTest, TextPostgresCannotHoldIsReplacedAndRawKeptByteForByte) {
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  EventRow row = Row(1);
  row.door_name = std::string("Fr\0nt", 5);
  row.event_id = "id-\xff-bad";
  row.raw = std::string("{\"a\":\"\0\xff\"}", 11);
  ASSERT_TRUE(archive->sink().AppendBatch(std::vector<EventRow>{row}).ok());
  EXPECT_EQ(Value("SELECT door_name FROM events"), "Fr\xEF\xBF\xBDnt");
  EXPECT_EQ(Value("SELECT event_id FROM events"), "id-\xEF\xBF\xBD-bad");
  EXPECT_EQ(Value("SELECT encode(raw, 'hex') FROM events"), Hex(row.raw));
}

TEST_F(PgStoreTest, ABatchOfLargePayloadsIsWrittenInPartsOfOneTransaction) {
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  NotifyRecorder recorder(db());
  // 72 MiB of payload: more than one statement carries (64 MiB).
  std::vector<EventRow> rows = {Row(1), Row(2), Row(3)};
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].raw.assign(size_t{24} << 20, static_cast<char>('a' + i));
  }
  absl::StatusOr<std::vector<AppendResult>> results = archive->sink().AppendBatch(rows);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ((*results)[2].sequence, 3);
  EXPECT_EQ(Value("SELECT string_agg(length(raw)::text, ',' ORDER BY sequence) FROM events"),
            absl::StrCat(24 << 20, ",", 24 << 20, ",", 24 << 20));
  EXPECT_EQ(Value("SELECT string_agg(get_byte(raw, 1000)::text, ',' ORDER BY sequence) "
                  "FROM events"),
            "97,98,99");
  EXPECT_EQ(Value("SELECT last_sequence FROM archive_state"), "3");
  EXPECT_EQ(Value("SELECT sum(n) FROM counts_daily"), "3");
  // One notification for the batch, when it committed.
  EXPECT_EQ(recorder.WaitFor(3, std::chrono::seconds(2)), std::vector<int64_t>{3});
}

TEST_F(PgStoreTest, CopyInKeepsSequencesAndLaterAppendsGoAbove) {
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  std::vector<EventRow> copied = {Row(1), Row(2)};
  copied[0].sequence = 10;
  copied[1].sequence = 20;
  ASSERT_TRUE(archive->CopyIn(copied).ok());
  EXPECT_EQ(Value("SELECT string_agg(sequence::text, ',' ORDER BY sequence) FROM events"),
            "10,20");
  EXPECT_EQ(Value("SELECT last_sequence FROM archive_state"), "20");
  EXPECT_EQ(Value("SELECT sum(n) FROM counts_daily"), "2");
  absl::StatusOr<std::vector<AppendResult>> appended =
      archive->sink().AppendBatch(std::vector<EventRow>{Row(3), Row(1)});
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_EQ((*appended)[0].sequence, 21);
  EXPECT_FALSE((*appended)[0].duplicate);
  EXPECT_EQ((*appended)[1].sequence, 10);
  EXPECT_TRUE((*appended)[1].duplicate);
  // Not above the archive's last sequence, or not ascending: refused.
  std::vector<EventRow> stale = {Row(7)};
  stale[0].sequence = 21;
  EXPECT_TRUE(absl::IsInvalidArgument(archive->CopyIn(stale)));
  std::vector<EventRow> unordered = {Row(8), Row(9)};
  unordered[0].sequence = 40;
  unordered[1].sequence = 30;
  EXPECT_TRUE(absl::IsInvalidArgument(archive->CopyIn(unordered)));
  // A key stored already fails the copy half-way: nothing of it stays.
  std::vector<EventRow> clash = {Row(8), Row(3)};
  clash[0].sequence = 50;
  clash[1].sequence = 51;
  EXPECT_TRUE(absl::IsInvalidArgument(archive->CopyIn(clash)));
  EXPECT_EQ(Value("SELECT count(*) FROM events"), "3");
  EXPECT_EQ(Value("SELECT last_sequence FROM archive_state"), "21");
}

// An archive of the previous release (schema 4, 1.0 rows and their rollups)
// opens at the newest schema: its rows read back with empty 2.0 ids, and a
// 2.0 row counts by door under its device id beside them.
TEST_F(PgStoreTest, AnArchiveFromBeforeTheTwoPointZeroIdsMigrates) {
  {
    std::unique_ptr<store::pg::Connection> conn = Sql();
    ASSERT_NE(conn, nullptr);
    const std::vector<store::Migration>& all = store::pg::EmbeddedPostgresMigrations();
    ASSERT_GE(all.size(), 5u);
    std::vector<store::Migration> previous(all.begin(), all.begin() + 4);
    ASSERT_TRUE(store::pg::ApplyPostgresMigrations(*conn, previous).ok());
    const int64_t day = kMarch2026Ms / timeutil::kDayMs;
    // The month's partition, as the previous release made it.
    ASSERT_TRUE(conn->Exec(absl::StrCat("CREATE TABLE events_y2026m03 PARTITION OF events FOR "
                                        "VALUES FROM (", kMarch2026Ms, ") TO (",
                                        kMarch2026Ms + 31 * timeutil::kDayMs, ")"))
                    .ok());
    ASSERT_TRUE(conn->Exec(absl::StrCat(
                    "INSERT INTO events (sequence, occur_time, receive_time, topic, family, "
                    "panel_id, ou_id, door_id, door_name, person_id, actor_user_id, event_id, "
                    "subscription, raw) VALUES "
                    "(1, ", kMarch2026Ms + 1, ", ", kMarch2026Ms + 2,
                    ", 'door.access.granted', 'panel', '1070AB', 'ou-1', 1, 'Front', 42, '', "
                    "'evt-1', 'default', '\\x7b7d'), "
                    "(2, ", kMarch2026Ms + 3, ", ", kMarch2026Ms + 4,
                    ", 'door.access.granted', 'panel', '1070AB', 'ou-1', NULL, 'Front', 42, '', "
                    "'evt-2', 'default', '\\x7b7d'); "
                    "INSERT INTO counts_daily VALUES (", day,
                    ", 'door.access.granted', 'panel', '1070AB', 1, 1), (", day,
                    ", 'door.access.granted', 'panel', '1070AB', ", store::kNoDoor, ", 1); "
                    "INSERT INTO counts_daily_topic VALUES (", day,
                    ", 'door.access.granted', 'panel', 2); "
                    "INSERT INTO event_keys VALUES ('\\x01', 1), ('\\x02', 2); "
                    "UPDATE archive_state SET last_sequence = 2"))
                    .ok());
  }
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  EXPECT_EQ(Value("SELECT max(version) FROM pdkarchive_schema"),
            absl::StrCat(store::pg::EmbeddedPostgresMigrations().back().number));
  EventRow v2 = Row(3, kMarch2026Ms + 5);
  v2.door_id.reset();
  v2.person_id.reset();
  v2.device_id = "3f2c1b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f";
  v2.holder_id = "c0ffee00-1234-4abc-8def-001122334455";
  v2.holder_name = "Ann Example";
  v2.cloud_node_id = "7e57ab1e-0000-4000-8000-000000000001";
  v2.system_id = "5y5-0001";
  auto appended = archive->sink().AppendBatch({&v2, 1});
  ASSERT_TRUE(appended.ok()) << appended.status();
  auto reader = archive->OpenReader(store::EventReaderOptions{});
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (int64_t sequence : {1, 2}) {
    absl::StatusOr<EventRow> back = (*reader)->Get(sequence);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->event_id, absl::StrCat("evt-", sequence));
    EXPECT_EQ(back->device_id, "");
    EXPECT_EQ(back->holder_id, "");
    EXPECT_EQ(back->holder_name, "");
    EXPECT_EQ(back->cloud_node_id, "");
    EXPECT_EQ(back->system_id, "");
  }
  absl::StatusOr<EventRow> back = (*reader)->Get(3);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->device_id, v2.device_id);
  EXPECT_EQ(back->holder_id, v2.holder_id);
  EXPECT_EQ(back->holder_name, v2.holder_name);
  EXPECT_EQ(back->cloud_node_id, v2.cloud_node_id);
  EXPECT_EQ(back->system_id, v2.system_id);
  // Whole days: the rollups answer; old and new rollup rows side by side.
  store::EventFilter march;
  march.start_ms = kMarch2026Ms;
  march.end_ms = kMarch2026Ms + timeutil::kDayMs;
  auto counts = (*reader)->Count(march, {store::Dimension::kDoor}, 100);
  ASSERT_TRUE(counts.ok()) << counts.status();
  std::vector<store::CountGroup> want = {{{""}, 1}, {{"1"}, 1}, {{v2.device_id}, 1}};
  EXPECT_EQ(*counts, want);
  march.device_ids = {v2.device_id};
  march.door_ids = {1};
  counts = (*reader)->Count(march, {}, 100);
  ASSERT_TRUE(counts.ok()) << counts.status();
  want = {{{}, 2}};
  EXPECT_EQ(*counts, want);
}

TEST_F(PgStoreTest, ADatabaseOfSomethingElseIsRefused) {
  std::unique_ptr<store::pg::Connection> conn = Sql();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->Exec("CREATE TABLE invoices (id integer)").ok());
  absl::StatusOr<std::unique_ptr<Archive>> archive = store::OpenArchive(db());
  EXPECT_TRUE(absl::IsFailedPrecondition(archive.status())) << archive.status();
}

TEST(PgArchiveOpenTest, AServerThatIsDownIsUnavailable) {
  // Port 1 on loopback: nothing listens there.
  absl::StatusOr<std::unique_ptr<Archive>> archive =
      store::OpenArchive("postgresql://postgres@127.0.0.1:1/postgres");
  EXPECT_TRUE(absl::IsUnavailable(archive.status())) << archive.status();
}

TEST_F(PgStoreTest, NodesOpeningANewDatabaseTogetherAllSucceed) {
  constexpr int kNodes = 4;
  std::vector<std::unique_ptr<Archive>> archives(kNodes);
  std::vector<absl::Status> statuses(kNodes);
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<Archive>> archive = store::OpenArchive(db());
      statuses[static_cast<size_t>(i)] = archive.status();
      if (archive.ok()) archives[static_cast<size_t>(i)] = *std::move(archive);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : statuses) EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(Value("SELECT count(*) FROM archive_meta WHERE name = 'page_token_key'"), "1");
  EXPECT_EQ(Value("SELECT count(*) FROM pdkarchive_schema"),
            absl::StrCat(store::pg::EmbeddedPostgresMigrations().size()));
}

// The output of shell command `command`, and whether it exited 0.
std::pair<bool, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {false, ""};
  char buffer[512];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return {status == 0, out};
}

// A cluster of the test's own (scripts/pg_cluster.sh), to stop and start.
// Its directory is short: the server's Unix socket path must fit 107 bytes.
class OwnCluster {
 public:
  OwnCluster()
      : script_(std::filesystem::path(PDKARCHIVE_TESTDATA_DIR) / "../../scripts/pg_cluster.sh") {
    char dir[] = "/tmp/pgc-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    // The server may run as another user (postgres, when tests run as root).
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all |
                                          std::filesystem::perms::group_exec |
                                          std::filesystem::perms::others_exec);
    dir_ = std::filesystem::path(dir) / "c";
    auto [ok, uri] = Shell(absl::StrCat(script_.string(), " start ", dir_.string()));
    EXPECT_TRUE(ok) << uri;
    if (ok) uri_ = uri;
  }
  ~OwnCluster() {
    Shell(absl::StrCat(script_.string(), " stop ", dir_.string()));
    std::filesystem::remove_all(dir_.parent_path());
  }
  const std::string& uri() const { return uri_; }
  bool PgCtl(const std::string& args) {
    const std::string as_owner = getuid() == 0 ? "runuser -u postgres -- " : "";
    auto [ok, out] = Shell(absl::StrCat(as_owner, "/usr/lib/postgresql/15/bin/pg_ctl -D ",
                                        dir_.string(), "/data -l ", dir_.string(),
                                        "/server.log -w ", args, " 2>&1"));
    EXPECT_TRUE(ok) << out;
    return ok;
  }

 private:
  std::filesystem::path dir_;
  std::filesystem::path script_;
  std::string uri_;
};

TEST(PgServerRestartTest, IsUnavailableThenTheWriterAndFeedReconnect) {
  OwnCluster cluster;
  ASSERT_FALSE(cluster.uri().empty());
  absl::StatusOr<std::unique_ptr<Archive>> opened = store::OpenArchive(cluster.uri());
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Archive> archive = *std::move(opened);
  std::atomic<int64_t> heard{0};
  const int id = archive->feed().Subscribe([&](int64_t sequence) { heard = sequence; });
  ASSERT_TRUE(archive->sink().AppendBatch(std::vector<EventRow>{Row(1)}).ok());
  ASSERT_TRUE(cluster.PgCtl("-m fast stop"));
  absl::StatusOr<std::vector<AppendResult>> down =
      archive->sink().AppendBatch(std::vector<EventRow>{Row(2)});
  EXPECT_TRUE(absl::IsUnavailable(down.status())) << down.status();
  ASSERT_TRUE(cluster.PgCtl("start"));
  absl::StatusOr<std::vector<AppendResult>> up =
      archive->sink().AppendBatch(std::vector<EventRow>{Row(2)});
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ((*up)[0].sequence, 2);
  EXPECT_EQ(store::FindEngineStat(archive->sink().Stats(), "postgres_reconnects_total"), 1);
  // The feed reconnects within its retry delay and catches up within a
  // second of that.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (heard.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(heard.load(), 2);
  archive->feed().Unsubscribe(id);
  const auto closing = std::chrono::steady_clock::now();
  archive.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - closing, std::chrono::seconds(1));
}

// Not a timed assertion: prints the single-node append rate for the report.
TEST_F(PgStoreTest, AppendRateOfFullBatches) {
  std::unique_ptr<Archive> archive = Open();
  ASSERT_NE(archive, nullptr);
  constexpr int kBatches = 40;
  constexpr int kBatchRows = 256;
  std::vector<std::vector<EventRow>> batches(kBatches);
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kBatchRows; ++i) {
      EventRow row = Row(b * kBatchRows + i, kMarch2026Ms + (b * kBatchRows + i) * 1000);
      row.raw.append(400, 'x');  // about a real payload's size
      batches[static_cast<size_t>(b)].push_back(std::move(row));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  for (const std::vector<EventRow>& batch : batches) {
    absl::StatusOr<std::vector<AppendResult>> results = archive->sink().AppendBatch(batch);
    ASSERT_TRUE(results.ok()) << results.status();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("AppendBatch: %d rows in %d-row batches in %.3f s = %.0f rows/s\n",
              kBatches * kBatchRows, kBatchRows, seconds, kBatches * kBatchRows / seconds);
  EXPECT_EQ(Value("SELECT count(*) FROM events"), absl::StrCat(kBatches * kBatchRows));
}

// Not a timed assertion: the same rows through two nodes at once, whose
// commits take turns (pg_store.h), for the report.
TEST_F(PgStoreTest, AppendRateOfTwoNodesAtOnce) {
  std::unique_ptr<Archive> nodes[2] = {Open(), Open()};
  ASSERT_NE(nodes[0], nullptr);
  ASSERT_NE(nodes[1], nullptr);
  constexpr int kBatches = 20;  // per node
  constexpr int kBatchRows = 256;
  std::atomic<int> failures{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    threads.emplace_back([&, node] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<EventRow> batch;
        for (int i = 0; i < kBatchRows; ++i) {
          const int64_t n = (node * kBatches + b) * kBatchRows + i;
          EventRow row = Row(n, kMarch2026Ms + n * 1000);
          row.raw.append(400, 'x');
          batch.push_back(std::move(row));
        }
        if (!nodes[node]->sink().AppendBatch(batch).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(failures.load(), 0);
  const int rows = 2 * kBatches * kBatchRows;
  std::printf("AppendBatch, two nodes: %d rows in %d-row batches in %.3f s = %.0f rows/s\n", rows,
              kBatchRows, seconds, rows / seconds);
  EXPECT_EQ(Value("SELECT count(*) FROM events"), absl::StrCat(rows));
  EXPECT_EQ(Value("SELECT max(sequence) FROM events"), absl::StrCat(rows));
}

}  // namespace
}  // namespace pdkarchive
