// Graceful shutdown of the real server: SIGTERM while keep-alive clients keep
// posting. Every 200 a client received must be on disk; once the signal is
// sent, every answer is a 200 for something on disk, a 503 with Retry-After,
// or a connection error; the process exits 0 within a few seconds.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
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
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kSecret[] = "shutdown-test-secret";
constexpr int kClients = 4;
// Generous: the server's own shutdown takes a fraction of a second.
constexpr auto kExitDeadline = std::chrono::seconds(10);

std::string EventBody(const std::string& id) {
  return absl::StrCat(R"({"id":")", id,
                      R"(","body":{"doorId":1,"personId":2},"metadata":{"occurred":)"
                      R"(1646922708300},"panelId":"1070000","topic":"door.request.allowed"})");
}


// Event id -> sequence of every row, read through the store's reader.
std::map<std::string, int64_t> StoredSequences(const std::string& db_path) {
  std::map<std::string, int64_t> stored;
  for (const store::EventRow& row : testing::ReadAllRows(db_path)) {
    stored[row.event_id] = row.sequence;
  }
  return stored;
}

// What the clients saw, split at the moment SIGTERM was sent. Thread-safe.
struct Tally {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int64_t> acked;  // every 200, before or after
  int64_t acked_before_signal = 0;
  int64_t acked_after_signal = 0;
  int64_t unavailable_after_signal = 0;  // 503 with Retry-After
  int64_t errors_after_signal = 0;       // connection refused, reset or closed
  int64_t unexpected = 0;                // anything else (must stay 0)
};

void RunClient(int port, int client, const std::atomic<bool>& signalled,
               const std::atomic<bool>& exited, Tally& tally) {
  int n = 0;
  while (!exited.load()) {
    auto conn = HttpConnection::Connect(port, std::chrono::seconds(20));
    if (!conn.ok()) {
      // The listener is gone (or never came): this client is done.
      std::lock_guard lock(tally.mu);
      if (signalled.load()) {
        ++tally.errors_after_signal;
      } else {
        ++tally.unexpected;
        ADD_FAILURE() << "connect before the signal: " << conn.status();
      }
      return;
    }
    while (!exited.load()) {
      const std::string id = absl::StrCat("shutdown-", client, "-", n++);
      const std::string body = EventBody(id);
      const bool sent_after_signal = signalled.load();
      auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
      std::lock_guard lock(tally.mu);
      // A reply is judged by when its request was sent: one sent just before
      // the signal may be answered either way, so only count it if 200.
      const bool after = sent_after_signal || signalled.load();
      if (!reply.ok()) {
        if (after) {
          ++tally.errors_after_signal;
        } else {
          ++tally.unexpected;
          ADD_FAILURE() << "error before the signal: " << reply.status();
        }
        break;  // reconnect (and find the listener gone)
      }
      if (reply->status == 200) {
        const int64_t sequence = testing::SequenceInReply(reply->body);
        EXPECT_GT(sequence, 0) << reply->body;
        EXPECT_TRUE(absl::StrContains(reply->body, "\"duplicate\":false")) << reply->body;
        tally.acked[id] = sequence;
        ++(after ? tally.acked_after_signal : tally.acked_before_signal);
        tally.cv.notify_all();
      } else if (reply->status == 503 && after) {
        EXPECT_FALSE(reply->Header("Retry-After").empty());
        EXPECT_TRUE(absl::StrContains(reply->body, "\"error\"")) << reply->body;
        ++tally.unavailable_after_signal;
      } else {
        ++tally.unexpected;
        ADD_FAILURE() << "status " << reply->status << (after ? " after" : " before")
                      << " the signal: " << reply->body;
      }
    }
  }
}

// Run against each storage engine: `serve` on a SQLite file, or on a
// database of the test PostgreSQL cluster.
class ShutdownTest : public ::testing::TestWithParam<testing::Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-shutdown");
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

INSTANTIATE_TEST_SUITE_P(Engines, ShutdownTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

TEST_P(ShutdownTest, SigtermUnderLoadCommitsEveryAcknowledgedEventAndExitsZero) {
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = server->http_port();

  Tally tally;
  std::atomic<bool> signalled{false};
  std::atomic<bool> exited{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back(RunClient, port, c, std::cref(signalled), std::cref(exited),
                         std::ref(tally));
  }
  {
    std::unique_lock lock(tally.mu);
    ASSERT_TRUE(tally.cv.wait_for(lock, std::chrono::seconds(60),
                                  [&] { return tally.acked_before_signal >= 300; }))
        << "load never got going";
  }

  signalled.store(true);
  const auto signal_time = std::chrono::steady_clock::now();
  auto code = server->Stop(SIGTERM, kExitDeadline);
  const auto exit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - signal_time)
                           .count();
  exited.store(true);
  for (std::thread& t : clients) t.join();
  ASSERT_TRUE(code.ok()) << code.status() << "; stderr: " << server->Stderr();
  EXPECT_EQ(*code, 0) << server->Stderr();
  EXPECT_TRUE(absl::StrContains(server->Stderr(), "SIGTERM")) << server->Stderr();

  // A fresh connection now finds nobody listening.
  EXPECT_FALSE(HttpConnection::Connect(port).ok());

  const std::map<std::string, int64_t> stored = StoredSequences(db_);
  int64_t missing = 0;
  for (const auto& [id, sequence] : tally.acked) {
    auto it = stored.find(id);
    if (it == stored.end() || it->second != sequence) {
      ++missing;
      ADD_FAILURE() << id << " was acknowledged with sequence " << sequence
                    << " but is not on disk with it";
    }
  }
  EXPECT_EQ(tally.unexpected, 0);
  EXPECT_EQ(testing::ArchiveIntegrity(db_), "ok");

  std::cout << "[shutdown] exit code " << *code << " after " << exit_ms
            << " ms; acknowledged before SIGTERM " << tally.acked_before_signal
            << ", after " << tally.acked_after_signal << "; 503 after "
            << tally.unavailable_after_signal << "; connection errors after "
            << tally.errors_after_signal << "; rows on disk " << stored.size()
            << "; acknowledged but missing " << missing << "\n"
            << std::flush;
  RecordProperty("exit_ms", static_cast<int>(exit_ms));
  RecordProperty("acked", static_cast<int>(tally.acked.size()));
  RecordProperty("unavailable_after_signal", static_cast<int>(tally.unavailable_after_signal));
  RecordProperty("missing", static_cast<int>(missing));
}

TEST_P(ShutdownTest, IdleKeepAliveConnectionsDoNotHoldUpTheExit) {
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  // Connections that made one request and then sit idle, and some that never
  // sent a byte: neither may keep the process alive.
  std::vector<HttpConnection> idle;
  for (int i = 0; i < 40; ++i) {
    auto conn = HttpConnection::Connect(server->http_port());
    ASSERT_TRUE(conn.ok()) << conn.status();
    if (i % 2 == 0) {
      auto reply = conn->Request("GET", "/healthz");
      ASSERT_TRUE(reply.ok()) << reply.status();
      ASSERT_EQ(reply->status, 200);
    }
    idle.push_back(*std::move(conn));
  }
  const std::string body = EventBody("idle-1");
  auto reply = idle[0].Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(reply->status, 200);

  const auto start = std::chrono::steady_clock::now();
  auto code = server->Stop(SIGTERM, kExitDeadline);
  const auto exit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << server->Stderr();
  std::cout << "[shutdown] with " << idle.size() << " idle connections: exit after "
            << exit_ms << " ms\n";
  EXPECT_EQ(StoredSequences(db_).count("idle-1"), 1u);
}

}  // namespace
}  // namespace pdkarchive
