// Crash safety of the real server: `pdk-archive serve` under concurrent
// signed load (several keep-alive clients, unique event ids, some
// redeliveries) is killed with SIGKILL at random moments, several times over
// one archive. After every restart each acknowledged event must be there,
// with the sequence it was acknowledged with and its payload byte for byte;
// nothing that was never sent may appear; the file must pass
// integrity_check. At the end everything ever sent (acknowledged, refused or
// in flight at a kill) is redelivered, and each event must be stored once.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "store/event.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

using testing::HttpConnection;
using testing::ReadAllRows;
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kSecret[] = "crash-test-secret";
constexpr int kCycles = 8;
constexpr int kClients = 4;
// Every this many requests a client redelivers one of its acknowledged events.
constexpr int kRedeliverEvery = 8;

std::string EventBody(const std::string& id, int n) {
  return absl::StrCat(R"({"id":")", id, R"(","body":{"doorId":)", n % 7 + 1,
                      R"(,"personId":)", n % 13 + 1,
                      R"(},"metadata":{"occurred":)", int64_t{1646922708300} + n,
                      R"(,"doorName":"Door )", n % 7 + 1,
                      R"("},"panelId":"1070000","topic":"door.request.allowed"})");
}


// What the clients sent and what the server acknowledged. Thread-safe.
class Ledger {
 public:
  // Records `id` as sent (before its first byte goes out).
  void Sent(const std::string& id, const std::string& body) {
    std::lock_guard lock(mu_);
    bodies_.emplace(id, body);
  }
  void Acked(const std::string& id, int64_t sequence) {
    std::lock_guard lock(mu_);
    acked_[id] = sequence;
    cv_.notify_all();
  }
  // Waits until at least `count` events are acknowledged; false on timeout.
  bool WaitAcked(size_t count, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return acked_.size() >= count; });
  }
  size_t acked_count() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  std::map<std::string, std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::map<std::string, int64_t> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> bodies_;
  std::map<std::string, int64_t> acked_;
};

// One client: a keep-alive connection posting new events, now and then
// redelivering an acknowledged one, until the connection dies or `stop`.
void RunClient(int port, const std::string& id_prefix, Ledger& ledger,
               const std::atomic<bool>& stop) {
  auto conn = HttpConnection::Connect(port, std::chrono::seconds(30));
  if (!conn.ok()) return;
  struct Acked {
    std::string body;
    int64_t sequence;
  };
  std::vector<Acked> mine;
  for (int n = 0; !stop.load(); ++n) {
    if (n % kRedeliverEvery == kRedeliverEvery - 1 && !mine.empty()) {
      const auto& [body, sequence] = mine[static_cast<size_t>(n) % mine.size()];
      auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
      if (!reply.ok()) return;  // the server died under us
      EXPECT_EQ(reply->status, 200) << reply->body;
      EXPECT_EQ(reply->body,
                absl::StrCat("{\"sequence\":", sequence, ",\"duplicate\":true}"));
      continue;
    }
    const std::string id = absl::StrCat(id_prefix, "-", n);
    const std::string body = EventBody(id, n);
    ledger.Sent(id, body);
    auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
    if (!reply.ok()) return;
    ASSERT_EQ(reply->status, 200) << reply->body;
    ASSERT_TRUE(absl::StrContains(reply->body, "\"duplicate\":false")) << reply->body;
    const int64_t sequence = testing::SequenceInReply(reply->body);
    ASSERT_GT(sequence, 0) << reply->body;
    ledger.Acked(id, sequence);
    mine.push_back({body, sequence});
  }
}


// Run against each storage engine: `serve` on a SQLite file, or on a
// database of the test PostgreSQL cluster.
class CrashTest : public ::testing::TestWithParam<testing::Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-crash");
    auto location = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
    db_ = location_->db();
  }
  void TearDown() override {
    location_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> location_;
  std::string db_;
};

INSTANTIATE_TEST_SUITE_P(Engines, CrashTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

TEST_P(CrashTest, EveryAcknowledgedEventSurvivesKillNineAndRedeliveryStoresOnce) {
  // PDKARCHIVE_CRASH_SEED replays a run; the seed is printed either way.
  uint32_t seed = std::random_device{}();
  if (const char* env = std::getenv("PDKARCHIVE_CRASH_SEED")) {
    ASSERT_TRUE(absl::SimpleAtoi(env, &seed)) << env;
  }
  std::cout << "[crash] seed " << seed << "\n";
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937 random(seed);

  Ledger ledger;
  int64_t checked_total = 0;
  int64_t lost_total = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    auto server = ServerProcess::Start(db_, {"--secret", kSecret});
    ASSERT_TRUE(server.ok()) << "cycle " << cycle << ": " << server.status();

    // Whatever was stored before this start is still there.
    if (cycle > 0) {
      ASSERT_EQ(testing::ArchiveIntegrity(db_), "ok") << "cycle " << cycle;
      const std::map<std::string, std::string> sent = ledger.bodies();
      const std::map<std::string, int64_t> acked = ledger.acked();
      std::map<std::string, const store::EventRow*> by_id;
      const std::vector<store::EventRow> rows = ReadAllRows(db_);
      for (const store::EventRow& row : rows) {
        auto it = sent.find(row.event_id);
        ASSERT_NE(it, sent.end()) << "stored but never sent: " << row.event_id;
        EXPECT_EQ(row.raw, it->second) << row.event_id;
        EXPECT_TRUE(by_id.emplace(row.event_id, &row).second)
            << "stored twice: " << row.event_id;
      }
      int64_t lost = 0;
      for (const auto& [id, sequence] : acked) {
        auto it = by_id.find(id);
        if (it == by_id.end()) {
          ++lost;
          ADD_FAILURE() << "acknowledged with sequence " << sequence << " but lost: " << id;
          continue;
        }
        EXPECT_EQ(it->second->sequence, sequence) << id;
      }
      checked_total += static_cast<int64_t>(acked.size());
      lost_total += lost;
      std::cout << "[crash] restart " << cycle << ": " << rows.size() << " rows, "
                << acked.size() << " acknowledged checked, lost " << lost << "\n";
    }

    // Load, then SIGKILL once a random number of new acknowledgements is in,
    // with a little jitter so the kill lands at varied points of a commit.
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back(RunClient, server->http_port(), absl::StrCat("crash-", cycle, "-", c),
                           std::ref(ledger), std::cref(stop));
    }
    const size_t target =
        ledger.acked_count() + std::uniform_int_distribution<size_t>(40, 600)(random);
    const bool reached = ledger.WaitAcked(target, std::chrono::seconds(120));
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(random)));
    auto code = server->Stop(SIGKILL);
    stop.store(true);
    for (std::thread& t : clients) t.join();
    ASSERT_TRUE(reached) << "cycle " << cycle << ": load stalled at "
                         << ledger.acked_count() << " acknowledgements";
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, -SIGKILL);
  }

  // A last restart: check, then redeliver everything ever sent.
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(testing::ArchiveIntegrity(db_), "ok");
  const std::map<std::string, std::string> sent = ledger.bodies();
  const std::map<std::string, int64_t> acked = ledger.acked();
  // Events that were committed but whose 200 the kill cut off.
  int64_t stored_unacked = 0;
  {
    std::map<std::string, int64_t> stored;
    for (const store::EventRow& row : ReadAllRows(db_)) stored[row.event_id] = row.sequence;
    int64_t lost = 0;
    for (const auto& [id, sequence] : acked) {
      auto it = stored.find(id);
      if (it == stored.end() || it->second != sequence) ++lost;
    }
    EXPECT_EQ(lost, 0);
    checked_total += static_cast<int64_t>(acked.size());
    lost_total += lost;
    stored_unacked = static_cast<int64_t>(stored.size()) -
                     static_cast<int64_t>(acked.size()) + lost;
  }

  std::vector<std::pair<std::string, std::string>> all(sent.begin(), sent.end());
  std::atomic<int64_t> redelivered{0};
  std::vector<std::thread> senders;
  for (int c = 0; c < kClients; ++c) {
    senders.emplace_back([&, c] {
      auto conn = HttpConnection::Connect(server->http_port(), std::chrono::seconds(30));
      ASSERT_TRUE(conn.ok()) << conn.status();
      for (size_t i = static_cast<size_t>(c); i < all.size(); i += kClients) {
        const auto& [id, body] = all[i];
        auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
        ASSERT_TRUE(reply.ok()) << id << ": " << reply.status();
        ASSERT_EQ(reply->status, 200) << id << ": " << reply->body;
        if (auto it = acked.find(id); it != acked.end()) {
          EXPECT_EQ(reply->body,
                    absl::StrCat("{\"sequence\":", it->second, ",\"duplicate\":true}"));
        }
        redelivered.fetch_add(1);
      }
    });
  }
  for (std::thread& t : senders) t.join();
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << server->Stderr();

  ASSERT_EQ(testing::ArchiveIntegrity(db_), "ok");
  std::map<std::string, int> copies;
  for (const store::EventRow& row : ReadAllRows(db_)) ++copies[row.event_id];
  EXPECT_EQ(copies.size(), sent.size());
  int64_t not_once = 0;
  for (const auto& [id, body] : sent) {
    if (copies[id] != 1) {
      ++not_once;
      ADD_FAILURE() << id << " stored " << copies[id] << " times after redelivery";
    }
  }
  EXPECT_EQ(ReadAllRows(db_).size(), sent.size());

  std::cout << "[crash] cycles " << kCycles << ", events sent " << sent.size()
            << ", acknowledged " << acked.size() << ", acknowledged events checked "
            << checked_total << " (over " << kCycles << " restarts), lost " << lost_total
            << ", stored though unacknowledged " << stored_unacked
            << ", redelivered " << redelivered.load() << ", not stored exactly once "
            << not_once << "\n"
            << std::flush;
  RecordProperty("kill_cycles", kCycles);
  RecordProperty("events_sent", static_cast<int>(sent.size()));
  RecordProperty("events_acknowledged", static_cast<int>(acked.size()));
  RecordProperty("acknowledged_checks", static_cast<int>(checked_total));
  RecordProperty("lost", static_cast<int>(lost_total));
  EXPECT_EQ(lost_total, 0);
}

}  // namespace
}  // namespace pdkarchive
