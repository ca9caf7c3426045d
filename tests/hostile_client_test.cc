// Ingest facing hostile or broken clients: a real Pistache server on
// 127.0.0.1:0 in front of the group-commit writer and a SQLite file, with
// short header and body timeouts so slow clients are cut off quickly.
// Slowloris connections, hundreds of idle connections, an oversized header
// block and a flood of badly signed deliveries must neither crash the server
// nor keep it from answering a normal signed delivery promptly.
#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ingest/http_server.h"
#include "ingest/metrics.h"
#include "ingest/webhook_handler.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/ingest_stack.h"
#include "tests/test_support/raw_socket.h"

namespace pdkarchive {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::HttpConnection;
using testing::HttpReply;
using testing::RawSocket;
using testing::SignedHeaders;

constexpr char kSecret[] = "hostile-client-secret";
// The header and body timeout of the slow-client tests. Not much shorter:
// the wait for an answer (the commit) counts against the header timeout, so
// on a disk that stalls an fsync for seconds a short timeout would cut off
// well-behaved clients too.
constexpr milliseconds kSlowClientTimeout{3000};
// The timeouts of the other tests, which are not about slow clients.
constexpr milliseconds kRelaxedTimeout{30000};
// How much later than its timeout a slow client may be cut off: Pistache
// checks timeouts on its own timers, and CI machines are busy.
constexpr milliseconds kTimeoutSlack{3000};
// "Promptly" for a normal delivery next to hostile traffic: well under the
// slow clients' timeout, so waiting for them to be cut off would show.
constexpr milliseconds kPrompt{2000};

int64_t MillisSince(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count();
}

// An answer that cuts a slow client off: a 408, or the connection closed
// without one (a reset may also swallow the 408 the server sent).
bool IsCutOff(const RawSocket::Answer& answer) {
  return absl::StartsWith(answer.bytes, "HTTP/1.1 408") ||
         (answer.bytes.empty() && answer.closed);
}

std::string EventBody(const std::string& id) {
  return absl::StrCat(R"({"id":")", id,
                      R"(","body":{"doorId":3,"personId":17},"metadata":{"occurred":)"
                      R"(1646922708300,"doorName":"Front"},"panelId":"1070000",)"
                      R"("topic":"door.request.allowed"})");
}

class HostileClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Hundreds of connections need twice as many descriptors in this one
    // process (both ends); lift the soft limit to the hard one.
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
      limit.rlim_cur = limit.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
  }

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("pdkarchive-hostile-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "archive.db").string();
    auto store = store::SqliteStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ingest::WebhookOptions options;
    options.secret = kSecret;
    options.max_body_bytes = 64 * 1024;
    ingest::HttpServerOptions http;
    http.threads = 2;
    http.max_body_bytes = options.max_body_bytes;
    http.header_timeout = ClientTimeout();
    http.body_timeout = ClientTimeout();
    stack_ = std::make_unique<testing::IngestStack>(*store_, options, http);
    ASSERT_NE(stack_->port(), 0);
  }

  void TearDown() override {
    stack_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The header and body timeout the server is started with.
  virtual milliseconds ClientTimeout() const { return kRelaxedTimeout; }

  int port() const { return stack_->port(); }

  // Posts one new signed event on a fresh connection; returns the latency in
  // microseconds, or -1 (after recording a failure) when it did not get a 200.
  int64_t PostOnce(const std::string& id) {
    const std::string body = EventBody(id);
    const auto start = steady_clock::now();
    auto reply =
        testing::HttpRequest(port(), "POST", "/webhooks", body, SignedHeaders(kSecret, body));
    const int64_t micros =
        std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - start)
            .count();
    if (!reply.ok() || reply->status != 200) {
      ADD_FAILURE() << id << ": "
                    << (reply.ok() ? absl::StrCat(reply->status, " ", reply->body)
                                   : std::string(reply.status().message()));
      return -1;
    }
    return micros;
  }

  int64_t CountRows() {
    SQLite::Database db(db_, SQLite::OPEN_READONLY);
    return db.execAndGet("SELECT count(*) FROM events").getInt64();
  }

  std::filesystem::path dir_;
  std::string db_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<testing::IngestStack> stack_;
};

// The same server, with header and body timeouts short enough to wait for.
class SlowClientTest : public HostileClientTest {
 protected:
  milliseconds ClientTimeout() const override { return kSlowClientTimeout; }
};

TEST_F(SlowClientTest, HeadersTrickledByteByByteAreCutOffAtTheHeaderTimeout) {
  auto slow = RawSocket::Connect(port());
  ASSERT_NE(slow, nullptr);
  const std::string body = EventBody("slow-headers");
  const std::string request = absl::StrCat(
      "POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-PDK-SIGNATURE: ",
      SignedHeaders(kSecret, body)[1].second, "\r\nContent-Length: ", body.size(),
      "\r\n\r\n", body);
  const auto start = steady_clock::now();
  bool answered = false;
  // One byte every 100 ms: the whole header would take far longer than the
  // timeout.
  for (size_t i = 0; i < request.size() && !answered; ++i) {
    if (!slow->Send(request.substr(i, 1))) break;
    answered = slow->Answered(milliseconds(100));
    if (MillisSince(start) > (kSlowClientTimeout + kTimeoutSlack).count()) break;
  }
  const RawSocket::Answer answer = slow->ReadAnswer(milliseconds(1000));
  const int64_t cut_ms = MillisSince(start);
  EXPECT_TRUE(IsCutOff(answer)) << answer.StatusLine();
  EXPECT_LT(cut_ms, (kSlowClientTimeout + kTimeoutSlack).count() + 1000);
  std::cout << "[hostile] trickled headers cut off after " << cut_ms << " ms (timeout "
            << kSlowClientTimeout.count() << " ms): "
            << answer.StatusLine() << "\n";
  EXPECT_EQ(CountRows(), 0);
  EXPECT_GE(PostOnce("after-slow-headers"), 0);
}

TEST_F(SlowClientTest, BodyTrickledAfterTheHeadersIsCutOffAtTheBodyTimeout) {
  auto slow = RawSocket::Connect(port());
  ASSERT_NE(slow, nullptr);
  const std::string body = EventBody("slow-body");
  ASSERT_TRUE(slow->Send(absl::StrCat("POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "X-PDK-SIGNATURE: ",
                                      SignedHeaders(kSecret, body)[1].second,
                                      "\r\nContent-Length: ", body.size(), "\r\n\r\n")));
  const auto start = steady_clock::now();
  bool answered = false;
  for (size_t i = 0; i < body.size() && !answered; ++i) {
    if (!slow->Send(body.substr(i, 1))) break;
    answered = slow->Answered(milliseconds(100));
    if (MillisSince(start) > (kSlowClientTimeout + kTimeoutSlack).count()) break;
  }
  const RawSocket::Answer answer = slow->ReadAnswer(milliseconds(1000));
  const int64_t cut_ms = MillisSince(start);
  EXPECT_TRUE(IsCutOff(answer)) << answer.StatusLine();
  EXPECT_LT(cut_ms, (kSlowClientTimeout + kTimeoutSlack).count() + 1000);
  std::cout << "[hostile] trickled body cut off after " << cut_ms << " ms (timeout "
            << kSlowClientTimeout.count() << " ms): "
            << answer.StatusLine() << "\n";
  EXPECT_EQ(CountRows(), 0);
}

TEST_F(SlowClientTest, FiftySlowlorisConnectionsDoNotStarveANormalDelivery) {
  constexpr int kSlow = 50;
  const std::string partial =
      "POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  std::vector<std::unique_ptr<RawSocket>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(RawSocket::Connect(port()));
    ASSERT_NE(slow.back(), nullptr) << i;
  }
  // A trickler feeds every slow connection one byte every 100 ms until the
  // server cuts it off; meanwhile normal deliveries must go straight through.
  const auto start = steady_clock::now();
  std::vector<int64_t> cut_ms(kSlow, -1);
  std::thread trickler([&] {
    for (size_t byte = 0; byte < partial.size(); ++byte) {
      bool any_open = false;
      for (int i = 0; i < kSlow; ++i) {
        if (cut_ms[static_cast<size_t>(i)] >= 0) continue;
        auto& s = slow[static_cast<size_t>(i)];
        if (s->Answered(milliseconds(0)) || !s->Send(partial.substr(byte, 1))) {
          cut_ms[static_cast<size_t>(i)] = MillisSince(start);
          continue;
        }
        any_open = true;
      }
      if (!any_open || MillisSince(start) > (kSlowClientTimeout + kTimeoutSlack).count()) break;
      std::this_thread::sleep_for(milliseconds(100));  // the trickle rate, not a wait
    }
  });
  std::vector<int64_t> latencies;
  for (int i = 0; i < 10; ++i) latencies.push_back(PostOnce(absl::StrCat("normal-", i)));
  trickler.join();

  int cut_off = 0;
  for (int i = 0; i < kSlow; ++i) {
    auto& s = slow[static_cast<size_t>(i)];
    const RawSocket::Answer answer = s->ReadAnswer(milliseconds(2000));
    if (IsCutOff(answer)) {
      ++cut_off;
    } else {
      ADD_FAILURE() << "slow connection " << i << ": " << answer.StatusLine();
    }
  }
  const int64_t worst = *std::max_element(latencies.begin(), latencies.end());
  std::cout << "[hostile] " << kSlow << " slowloris connections: " << cut_off
            << " cut off (the last after "
            << *std::max_element(cut_ms.begin(), cut_ms.end())
            << " ms); normal deliveries meanwhile: worst " << worst << " us\n";
  EXPECT_EQ(cut_off, kSlow);
  for (int64_t micros : latencies) {
    EXPECT_GE(micros, 0);
    EXPECT_LT(micros, std::chrono::microseconds(kPrompt).count());
  }
  EXPECT_EQ(CountRows(), 10);
}

TEST_F(HostileClientTest, HundredsOfIdleConnectionsDoNotBlockIngest) {
  // Half never send a byte; half make one keep-alive request and go quiet.
  constexpr int kIdle = 300;
  std::vector<std::unique_ptr<RawSocket>> silent;
  std::vector<HttpConnection> kept_alive;
  for (int i = 0; i < kIdle; ++i) {
    if (i % 2 == 0) {
      silent.push_back(RawSocket::Connect(port()));
      ASSERT_NE(silent.back(), nullptr) << i;
    } else {
      auto conn = HttpConnection::Connect(port());
      ASSERT_TRUE(conn.ok()) << i << ": " << conn.status();
      auto reply = conn->Request("GET", "/healthz");
      ASSERT_TRUE(reply.ok()) << i << ": " << reply.status();
      ASSERT_EQ(reply->status, 200);
      kept_alive.push_back(*std::move(conn));
    }
  }
  std::vector<int64_t> latencies;
  for (int i = 0; i < 20; ++i) latencies.push_back(PostOnce(absl::StrCat("among-idle-", i)));
  const int64_t worst = *std::max_element(latencies.begin(), latencies.end());
  std::cout << "[hostile] " << kIdle << " idle connections open: 20 deliveries, worst "
            << worst << " us\n";
  for (int64_t micros : latencies) {
    EXPECT_GE(micros, 0);
    EXPECT_LT(micros, std::chrono::microseconds(kPrompt).count());
  }
  EXPECT_EQ(CountRows(), 20);
  // The idle keep-alive connections still work.
  const std::string body = EventBody("on-idle-connection");
  auto reply = kept_alive.back().Request("POST", "/webhooks", body,
                                         SignedHeaders(kSecret, body));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
}

TEST_F(HostileClientTest, OversizedHeaderBlockIsRefusedAndTheServerCarriesOn) {
  // Far more header bytes than the 16 KiB head limit, in one header and in
  // thousands of small ones (over the 100-field limit long before that).
  const std::string huge_value(512 * 1024, 'h');
  std::string many;
  for (int i = 0; many.size() < 512 * 1024; ++i) {
    absl::StrAppend(&many, "X-Header-", i, ": value-", i, "\r\n");
  }
  for (const std::string& headers :
       {absl::StrCat("X-Huge: ", huge_value, "\r\n"), many}) {
    auto conn = RawSocket::Connect(port());
    ASSERT_NE(conn, nullptr);
    conn->Send(absl::StrCat("POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\n", headers,
                            "Content-Length: 2\r\n\r\n{}"));
    const RawSocket::Answer answer = conn->ReadAnswer(milliseconds(5000));
    const std::string status_line = answer.StatusLine();
    std::cout << "[hostile] " << headers.size() << " bytes of headers: " << status_line
              << "\n";
    // One JSON 431, then the connection is closed: nothing of what followed
    // was taken for a request.
    EXPECT_TRUE(absl::StartsWith(answer.bytes, "HTTP/1.1 431 ")) << status_line;
    EXPECT_TRUE(absl::StrContains(answer.bytes, "\r\n\r\n{\"error\":\"request ")) << answer.bytes;
    EXPECT_EQ(answer.bytes.find("HTTP/1.1", 1), std::string::npos) << answer.bytes;
    EXPECT_TRUE(answer.closed);
  }
  EXPECT_EQ(CountRows(), 0);
  EXPECT_GE(PostOnce("after-oversized-headers"), 0);
}

TEST_F(HostileClientTest, BadSignatureFloodBarelySlowsValidDeliveries) {
  constexpr int kValid = 200;
  constexpr int kFlooders = 4;
  auto measure = [&](const std::string& prefix) {
    auto conn = HttpConnection::Connect(port());
    EXPECT_TRUE(conn.ok()) << conn.status();
    std::vector<int64_t> micros;
    for (int i = 0; i < kValid && conn.ok(); ++i) {
      const std::string body = EventBody(absl::StrCat(prefix, i));
      const auto start = steady_clock::now();
      auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
      micros.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
                           steady_clock::now() - start)
                           .count());
      EXPECT_TRUE(reply.ok() && reply->status == 200)
          << (reply.ok() ? reply->body : std::string(reply.status().message()));
    }
    std::sort(micros.begin(), micros.end());
    return micros.empty() ? int64_t{0} : micros[micros.size() / 2];
  };

  const int64_t baseline_us = measure("calm-");

  std::atomic<bool> stop{false};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> flood_errors{0};
  std::vector<std::thread> flooders;
  for (int f = 0; f < kFlooders; ++f) {
    flooders.emplace_back([&, f] {
      auto conn = HttpConnection::Connect(port());
      if (!conn.ok()) {
        flood_errors.fetch_add(1);
        return;
      }
      for (int n = 0; !stop.load(); ++n) {
        const std::string body = EventBody(absl::StrCat("forged-", f, "-", n));
        auto reply = conn->Request("POST", "/webhooks", body,
                                   SignedHeaders("not the secret", body));
        if (!reply.ok() || reply->status != 401) {
          flood_errors.fetch_add(1);
          return;
        }
        refused.fetch_add(1);
      }
    });
  }
  // Let the flood get going before measuring under it.
  while (refused.load() < 200 && flood_errors.load() == 0) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  const auto flood_start = steady_clock::now();
  const int64_t flooded_us = measure("flooded-");
  const int64_t flood_window_ms = std::max<int64_t>(MillisSince(flood_start), 1);
  const int64_t refused_during = refused.load();
  stop.store(true);
  for (std::thread& t : flooders) t.join();

  const double ratio =
      static_cast<double>(flooded_us) / static_cast<double>(std::max<int64_t>(baseline_us, 1));
  std::cout << "[hostile] bad-signature flood (" << kFlooders << " threads, "
            << refused.load() << " refused, ~" << refused_during * 1000 / flood_window_ms
            << "/s): valid delivery median " << baseline_us << " us calm, " << flooded_us
            << " us under flood, ratio " << ratio << "\n";
  RecordProperty("bad_signature_slowdown_ratio", std::to_string(ratio));
  EXPECT_EQ(flood_errors.load(), 0);
  EXPECT_EQ(stack_->metrics().deliveries(ingest::DeliveryResult::kUnauthorized),
            static_cast<uint64_t>(refused.load()));
  EXPECT_EQ(CountRows(), 2 * kValid);
  // Machines are noisy, and on a fast disk the calm median is a fraction of a
  // millisecond that CPU contention alone can multiply: the bound is ten
  // times the calm median, taken as at least 2 ms (a typical fsync). It only
  // catches a flood that starves ingest.
  EXPECT_LT(flooded_us, 10 * std::max<int64_t>(baseline_us, 2000)) << "ratio " << ratio;
}

}  // namespace
}  // namespace pdkarchive
