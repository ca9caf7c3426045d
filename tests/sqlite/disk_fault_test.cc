// A full disk and a failing device, through the real HTTP interface: the
// archive lives on CrashVfs with a fault switched on and off, in front of it
// the group-commit writer, the webhook handler and a Pistache server on
// 127.0.0.1:0; queries go through an EventReader on the same file with the
// ordinary VFS. While the fault is on, deliveries get 503 with Retry-After
// (never 200) and /healthz says why; queries keep answering with what was
// committed; once it is off, ingest recovers without a restart and nothing
// committed before is lost.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ingest/http_server.h"
#include "ingest/metrics.h"
#include "ingest/webhook_handler.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite/crash_vfs.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/ingest_stack.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

using testing::CrashVfs;
using testing::DiskFault;
using testing::HttpReply;
using testing::HttpRequest;
using testing::SignedHeaders;

constexpr char kSecret[] = "disk-fault-secret";

struct FaultCase {
  const char* name;
  DiskFault fault;
  // What /healthz and the 503 bodies must say.
  const char* reason;
};

// Names the case in test listings (gtest would print its bytes).
void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.name; }

std::string EventBody(const std::string& id, int n,
                      const std::string& topic = "door.request.allowed") {
  return absl::StrCat(R"({"id":")", id, R"(","body":{"doorId":)", n % 7 + 1, R"(,"personId":)",
                      n % 13 + 1, R"(},"metadata":{"occurred":)", int64_t{1646922708300} + n,
                      R"(},"panelId":"1070000","topic":")", topic, R"("})");
}

// An ingest stack over `sink` with the test's secret, on a free loopback port.
ingest::WebhookOptions SignedOptions() {
  ingest::WebhookOptions options;
  options.secret = kSecret;
  return options;
}

class DiskFaultTest : public ::testing::TestWithParam<FaultCase> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("pdkarchive-diskfault-", ::getpid(), "-", GetParam().name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "archive.db").string();
    vfs_ = std::make_unique<CrashVfs>();
    store::OpenOptions options;
    options.vfs = vfs_->name();
    auto store = store::SqliteStore::Open(db_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    // Checkpoints between nearly every batch, so they meet the fault too.
    store_->set_wal_limit_frames(4);
    stack_ = std::make_unique<testing::IngestStack>(*store_, SignedOptions());
    ASSERT_NE(stack_->port(), 0);
    auto reader = store::EventReader::Open(db_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
  }
  void TearDown() override {
    stack_.reset();
    reader_.reset();
    store_.reset();
    vfs_.reset();
    std::filesystem::remove_all(dir_);
  }

  HttpReply Post(const std::string& body) {
    auto reply =
        HttpRequest(stack_->port(), "POST", "/webhooks", body, SignedHeaders(kSecret, body));
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *reply : HttpReply{};
  }
  HttpReply Health() {
    auto reply = HttpRequest(stack_->port(), "GET", "/healthz");
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *reply : HttpReply{};
  }
  int64_t Total() {
    auto groups = reader_->Count(store::EventFilter{}, {});
    EXPECT_TRUE(groups.ok()) << groups.status();
    return groups.ok() && groups->size() == 1 ? (*groups)[0].count : -1;
  }
  // Every stored sequence, ascending.
  std::vector<int64_t> Sequences() {
    store::ListQuery query;
    query.limit = 1000;
    auto page = reader_->List(query);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<int64_t> out;
    if (page.ok()) {
      for (const store::EventRow& row : page->rows) out.push_back(row.sequence);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // The sequence of a 200 reply, -1 when the body is not one.
  static int64_t SequenceOf(const HttpReply& reply) {
    return testing::SequenceInReply(reply.body);
  }

  std::filesystem::path dir_;
  std::string db_;
  std::unique_ptr<CrashVfs> vfs_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<testing::IngestStack> stack_;
  std::unique_ptr<store::EventReader> reader_;
};

TEST_P(DiskFaultTest, RefusesWith503WhileTheDiskFailsAndRecoversByItself) {
  constexpr int kBefore = 6;
  std::vector<int64_t> committed;
  for (int n = 0; n < kBefore; ++n) {
    HttpReply reply = Post(EventBody(absl::StrCat("before-", n), n));
    ASSERT_EQ(reply.status, 200) << reply.body;
    committed.push_back(SequenceOf(reply));
  }
  ASSERT_EQ(Health().status, 200);

  vfs_->SetFault(GetParam().fault);

  // Deliveries, one at a time and concurrently: 503 with Retry-After, never 200.
  constexpr int kClients = 4;
  constexpr int kPerClient = 3;
  // The first one brings a topic the archive has not seen: its topics row
  // is rolled back with the batch and must not be remembered.
  std::vector<std::string> refused = {EventBody("during-new-topic", 50, "door.fault.new")};
  for (int c = 0; c < kClients; ++c) {
    for (int n = 0; n < kPerClient; ++n) {
      refused.push_back(EventBody(absl::StrCat("during-", c, "-", n), c * kPerClient + n));
    }
  }
  HttpReply first = Post(refused[0]);
  EXPECT_EQ(first.status, 503) << first.body;
  EXPECT_FALSE(first.Header("Retry-After").empty());
  EXPECT_TRUE(absl::StrContains(first.body, GetParam().reason)) << first.body;
  {
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int n = 0; n < kPerClient; ++n) {
          const std::string& body = refused[static_cast<size_t>(1 + c * kPerClient + n)];
          auto reply =
              HttpRequest(stack_->port(), "POST", "/webhooks", body, SignedHeaders(kSecret, body));
          ASSERT_TRUE(reply.ok()) << reply.status();
          EXPECT_EQ(reply->status, 503) << reply->body;
          EXPECT_FALSE(reply->Header("Retry-After").empty());
        }
      });
    }
    for (std::thread& t : clients) t.join();
  }

  HttpReply sick = Health();
  EXPECT_EQ(sick.status, 503) << sick.body;
  EXPECT_FALSE(sick.Header("Retry-After").empty());
  EXPECT_TRUE(absl::StrContains(sick.body, GetParam().reason)) << sick.body;

  // Queries keep answering with what was committed before the fault.
  EXPECT_EQ(Total(), kBefore);
  EXPECT_EQ(Sequences(), committed);

  vfs_->SetFault(DiskFault::kNone);

  // The next delivery succeeds without a restart, and health follows.
  HttpReply after = Post(EventBody("after-0", 100));
  ASSERT_EQ(after.status, 200) << after.body;
  committed.push_back(SequenceOf(after));
  HttpReply healthy = Health();
  EXPECT_EQ(healthy.status, 200) << healthy.body;
  EXPECT_EQ(healthy.body, R"({"status":"ok"})");

  // What was refused was not stored: PDK's redelivery stores it now, once.
  for (const std::string& body : refused) {
    HttpReply reply = Post(body);
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_TRUE(absl::StrContains(reply.body, "\"duplicate\":false")) << reply.body;
    committed.push_back(SequenceOf(reply));
  }
  EXPECT_EQ(Total(), kBefore + 1 + static_cast<int64_t>(refused.size()));
  store::EventFilter new_topic;
  new_topic.topics = {"door.fault.new"};
  auto found = reader_->Count(new_topic, {store::Dimension::kTopic});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, (std::vector<store::CountGroup>{{{"door.fault.new"}, 1}}));
  std::vector<int64_t> stored = Sequences();
  std::sort(committed.begin(), committed.end());
  EXPECT_EQ(stored, committed);

  SQLite::Database check(db_, SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
}

// The store alone on the fault VFS, each test in its own empty directory.
class DiskFaultStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-diskfault");
    db_ = (dir_ / "archive.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::string db_;
};

// A batch larger than SQLite's page cache spills pages to the WAL while its
// statements run, so a full disk fails a statement step itself, not just the
// COMMIT. The store must answer with an error and stay usable.
TEST_F(DiskFaultStoreTest, DiskFullInTheMiddleOfABatchIsAnErrorAndTheStoreRecovers) {
  const std::string& db = db_;
  {
    CrashVfs vfs;
    store::OpenOptions options;
    options.vfs = vfs.name();
    auto opened = store::SqliteStore::Open(db, options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store::SqliteStore& sqlite = **opened;

    // About 4 MB of incompressible payloads: twice the default cache.
    constexpr int kRows = 2000;
    std::mt19937 random(7);
    std::vector<store::EventRow> big;
    for (int n = 0; n < kRows; ++n) {
      store::EventRow row;
      row.event_id = absl::StrCat("spill-", n);
      row.topic = "door.request.allowed";
      row.family = "panel";
      row.occur_time_ms = int64_t{1646922708300} + n;
      row.subscription = "default";
      row.dedupe_key = row.event_id;
      row.raw.resize(4000);
      for (char& c : row.raw) c = static_cast<char>('!' + random() % 90);
      big.push_back(std::move(row));
    }
    vfs.SetFault(DiskFault::kDiskFull);
    auto refused = sqlite.AppendBatch(big);
    EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
    EXPECT_TRUE(absl::StrContains(refused.status().message(), "disk is full")) << refused.status();

    vfs.SetFault(DiskFault::kNone);
    auto stored = sqlite.AppendBatch(big);
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_EQ(stored->size(), big.size());
    EXPECT_EQ(stored->front().sequence, 1);
    EXPECT_FALSE(stored->back().duplicate);
  }
  {
    SQLite::Database check(db, SQLite::OPEN_READONLY);
    EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
    EXPECT_EQ(check.execAndGet("SELECT count(*) FROM events").getInt64(), 2000);
  }
}

// A merge the disk refuses changes nothing: the events stay unmerged and
// readable, and the next merge indexes them.
TEST_F(DiskFaultStoreTest, RefusedMergeLeavesTheEventsReadableAndIsRetried) {
  const std::string& db = db_;
  CrashVfs vfs;
  store::OpenOptions options;
  options.vfs = vfs.name();
  auto opened = store::SqliteStore::Open(db, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  store::SqliteStore& sqlite = **opened;
  std::vector<store::EventRow> rows;
  for (int n = 0; n < 100; ++n) {
    store::EventRow row;
    row.event_id = absl::StrCat("merge-", n);
    row.topic = "door.request.allowed";
    row.family = "panel";
    row.door_id = n % 5;
    row.occur_time_ms = int64_t{1646922708300} + n;
    row.subscription = "default";
    row.dedupe_key = row.event_id;
    row.raw = absl::StrCat("{\"n\":", n, "}");
    rows.push_back(std::move(row));
  }
  ASSERT_TRUE(sqlite.AppendBatch(rows).ok());
  ASSERT_EQ(sqlite.unmerged_rows(), 100);

  auto reader = store::EventReader::Open(db);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto count = [&] {
    store::EventFilter door;
    door.door_ids = {3};
    auto groups = (*reader)->Count(door, {});
    EXPECT_TRUE(groups.ok()) << groups.status();
    return groups.ok() && groups->size() == 1 ? (*groups)[0].count : -1;
  };
  for (DiskFault fault : {DiskFault::kDiskFull, DiskFault::kIoError, DiskFault::kSyncError}) {
    vfs.SetFault(fault);
    EXPECT_FALSE(sqlite.Merge());
    vfs.SetFault(DiskFault::kNone);
    EXPECT_EQ(sqlite.unmerged_rows(), 100);
    EXPECT_EQ(count(), 20);
  }
  // A redelivery is still found while they wait.
  auto again = sqlite.AppendBatch(std::vector<store::EventRow>{rows[42]});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)[0].duplicate);

  ASSERT_TRUE(sqlite.Merge());
  EXPECT_EQ(sqlite.unmerged_rows(), 0);
  EXPECT_EQ(count(), 20);
  {
    SQLite::Database check(db, SQLite::OPEN_READONLY);
    EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
    EXPECT_EQ(check.execAndGet("SELECT count(*) FROM events WHERE merged = 0").getInt64(), 0);
    EXPECT_EQ(check.execAndGet("SELECT sum(n) FROM counts_daily").getInt64(), 100);
  }
  reader->reset();
  opened->reset();
}

INSTANTIATE_TEST_SUITE_P(
    Faults, DiskFaultTest,
    ::testing::Values(FaultCase{"DiskFull", DiskFault::kDiskFull, "database or disk is full"},
                      FaultCase{"WriteIoError", DiskFault::kIoError, "disk I/O error"},
                      FaultCase{"SyncIoError", DiskFault::kSyncError, "disk I/O error"}),
    [](const ::testing::TestParamInfo<FaultCase>& test) { return test.param.name; });

}  // namespace
}  // namespace pdkarchive
