// Two `pdk-archive serve` nodes on one PostgreSQL archive, as a site runs
// them behind a load balancer: every contract of DESIGN.md holds across them.
// Deliveries to both are stored once, a redelivery to the other node answers
// the original sequence, a watch on one node sees the other's commits
// exactly once and in order, page tokens from one node page on the other,
// and kill -9 of a node under load loses nothing it acknowledged.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

namespace pb = ::pdk::archive::v1;
using testing::HttpConnection;
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kSecret[] = "two-node-secret";

std::string EventBody(const std::string& id, int n) {
  return absl::StrCat(R"({"id":")", id, R"(","body":{"doorId":)", n % 5 + 1,
                      R"(},"metadata":{"occurred":)", int64_t{1767225600000} + (n % 97) * 1000,
                      R"(},"panelId":"p1","topic":"door.request.allowed"})");
}

// What the clients sent and what either node acknowledged. Thread-safe.
class Ledger {
 public:
  void Acked(const std::string& body, int64_t sequence) {
    std::lock_guard lock(mu_);
    acked_.emplace_back(body, sequence);
  }
  // An acknowledged delivery, picked by `n`; false when there is none yet.
  bool Pick(size_t n, std::string* body, int64_t* sequence) {
    std::lock_guard lock(mu_);
    if (acked_.empty()) return false;
    std::tie(*body, *sequence) = acked_[n % acked_.size()];
    return true;
  }
  std::vector<std::pair<std::string, int64_t>> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, int64_t>> acked_;
};

// Posts new events to `port` until `stop` or `count` are acknowledged, every
// fourth request redelivering an event either node acknowledged earlier.
// Returns quietly when the connection dies (the node was killed).
void RunClient(int port, const std::string& prefix, int count, Ledger& ledger,
               const std::atomic<bool>& stop) {
  auto conn = HttpConnection::Connect(port, std::chrono::seconds(30));
  if (!conn.ok()) return;
  int sent = 0;
  for (size_t n = 0; sent < count && !stop.load(); ++n) {
    std::string body;
    int64_t sequence = 0;
    if (n % 4 == 3 && ledger.Pick(n * 7919, &body, &sequence)) {
      auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
      if (!reply.ok()) return;
      EXPECT_EQ(reply->body, absl::StrCat("{\"sequence\":", sequence, ",\"duplicate\":true}"));
      continue;
    }
    body = EventBody(absl::StrCat(prefix, "-", sent), sent);
    ++sent;
    auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
    if (!reply.ok()) return;
    ASSERT_EQ(reply->status, 200) << reply->body;
    ASSERT_TRUE(absl::StrContains(reply->body, "\"duplicate\":false")) << reply->body;
    ledger.Acked(body, testing::SequenceInReply(reply->body));
  }
}

std::unique_ptr<pb::EventArchive::Stub> Stub(const ServerProcess& node) {
  return pb::EventArchive::NewStub(
      grpc::CreateChannel(node.grpc_address(), grpc::InsecureChannelCredentials()));
}

class TwoNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-two-node");
    auto location = testing::TestArchive::Create(testing::Engine::kPostgres, dir_);
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
  }
  void TearDown() override {
    location_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> location_;
};

TEST_F(TwoNodeTest, BothNodesKeepEveryContractBetweenThem) {
  // Started together: the schema migration must not race.
  std::optional<absl::StatusOr<ServerProcess>> started_a;
  std::optional<absl::StatusOr<ServerProcess>> started_b;
  {
    std::thread start_a(
        [&] { started_a.emplace(ServerProcess::Start(location_->db(), {"--secret", kSecret})); });
    std::thread start_b(
        [&] { started_b.emplace(ServerProcess::Start(location_->db(), {"--secret", kSecret})); });
    start_a.join();
    start_b.join();
  }
  absl::StatusOr<ServerProcess>& a = *started_a;
  absl::StatusOr<ServerProcess>& b = *started_b;
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();

  // A watch on node A from the start, collecting what it streams.
  auto watch_stub = Stub(*a);
  grpc::ClientContext watch_context;
  auto watch = watch_stub->WatchEvents(&watch_context, pb::WatchEventsRequest());
  std::vector<int64_t> watched;
  std::mutex watched_mu;
  std::thread watcher([&] {
    pb::Event event;
    while (watch->Read(&event)) {
      std::lock_guard lock(watched_mu);
      watched.push_back(event.sequence());
    }
  });

  constexpr int kPerClient = 150;
  Ledger ledger;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    const int port = c % 2 == 0 ? a->http_port() : b->http_port();
    clients.emplace_back(RunClient, port, absl::StrCat("c", c), kPerClient, std::ref(ledger),
                         std::cref(stop));
  }
  for (std::thread& t : clients) t.join();
  const auto acked = ledger.acked();
  ASSERT_EQ(acked.size(), 4u * kPerClient);

  // Stored once each, with the sequence it was acknowledged with; the
  // sequences are 1..N with no gap.
  EXPECT_EQ(testing::ArchiveIntegrity(location_->db()), "ok");
  std::map<int64_t, std::string> stored;
  for (const store::EventRow& row : testing::ReadAllRows(location_->db())) {
    stored[row.sequence] = row.raw;
  }
  ASSERT_EQ(stored.size(), acked.size());
  for (const auto& [body, sequence] : acked) EXPECT_EQ(stored[sequence], body) << sequence;

  // The watch on A saw every commit of both nodes, once, in sequence order,
  // within a second or so of the last one.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(watched_mu);
      if (watched.size() >= acked.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  watch_context.TryCancel();
  watcher.join();
  watch->Finish();
  std::vector<int64_t> expected;
  for (const auto& [sequence, body] : stored) expected.push_back(sequence);
  EXPECT_EQ(watched, expected);

  // Paging: each page asked of the other node, with the token the last one
  // gave.
  auto stub_a = Stub(*a);
  auto stub_b = Stub(*b);
  std::vector<int64_t> listed;
  std::string token;
  for (int page = 0; page < 1000; ++page) {
    pb::ListEventsRequest request;
    request.set_page_size(37);
    request.set_page_token(token);
    pb::ListEventsResponse response;
    grpc::ClientContext context;
    grpc::Status status =
        (page % 2 == 0 ? stub_a : stub_b)->ListEvents(&context, request, &response);
    ASSERT_TRUE(status.ok()) << "page " << page << ": " << status.error_message();
    for (const pb::Event& event : response.events()) listed.push_back(event.sequence());
    token = response.next_page_token();
    if (token.empty()) break;
  }
  std::vector<int64_t> listed_sorted = listed;
  std::sort(listed_sorted.begin(), listed_sorted.end());
  EXPECT_EQ(listed_sorted, expected);
  EXPECT_EQ(std::set<int64_t>(listed.begin(), listed.end()).size(), listed.size());

  EXPECT_EQ(a->Stop(SIGTERM).value_or(-1), 0) << a->Stderr();
  EXPECT_EQ(b->Stop(SIGTERM).value_or(-1), 0) << b->Stderr();
}

TEST_F(TwoNodeTest, KillNineOfOneNodeUnderLoadLosesNothingItAcknowledged) {
  auto a = ServerProcess::Start(location_->db(), {"--secret", kSecret});
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = ServerProcess::Start(location_->db(), {"--secret", kSecret});
  ASSERT_TRUE(b.ok()) << b.status();

  Ledger ledger;
  std::atomic<bool> stop_a{false};
  std::atomic<bool> stop_b{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back(RunClient, a->http_port(), absl::StrCat("a", c), 1 << 30,
                         std::ref(ledger), std::cref(stop_a));
  }
  std::thread on_b(RunClient, b->http_port(), "b", 1 << 30, std::ref(ledger), std::cref(stop_b));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ledger.size() < 400 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto killed = a->Stop(SIGKILL);
  stop_a.store(true);
  for (std::thread& t : clients) t.join();
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(*killed, -SIGKILL);
  // Node B goes on alone for a while.
  const size_t at_kill = ledger.size();
  while (ledger.size() < at_kill + 100 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop_b.store(true);
  on_b.join();
  ASSERT_GE(ledger.size(), at_kill + 100) << "node B stalled after node A was killed";

  EXPECT_EQ(testing::ArchiveIntegrity(location_->db()), "ok");
  std::map<int64_t, std::string> stored;
  for (const store::EventRow& row : testing::ReadAllRows(location_->db())) {
    stored[row.sequence] = row.raw;
  }
  int64_t lost = 0;
  for (const auto& [body, sequence] : ledger.acked()) {
    if (stored[sequence] != body) {
      ++lost;
      ADD_FAILURE() << "acknowledged as " << sequence << " but not stored so";
    }
  }
  EXPECT_EQ(lost, 0);

  // Everything redelivered to the surviving node answers its original.
  auto conn = HttpConnection::Connect(b->http_port());
  ASSERT_TRUE(conn.ok()) << conn.status();
  for (const auto& [body, sequence] : ledger.acked()) {
    auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_EQ(reply->body, absl::StrCat("{\"sequence\":", sequence, ",\"duplicate\":true}"));
  }
  EXPECT_EQ(b->Stop(SIGTERM).value_or(-1), 0) << b->Stderr();
}

}  // namespace
}  // namespace pdkarchive
