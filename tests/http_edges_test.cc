// HTTP framing at the edges (RFC 9110/9112), through raw TCP against a real
// server on 127.0.0.1:0: header floods refused before they cost anything,
// Content-Length and Transfer-Encoding validated, Expect: 100-continue,
// pipelining, Connection: close, JSON refusals; and the `serve` flags of the
// HTTP front (--basic-auth-file, header limits, the unsigned-mode warning)
// through the real binary.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
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
#include "tests/test_support/server_process.h"

namespace pdkarchive {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::HttpConnection;
using testing::HttpReply;
using testing::RawSocket;
using testing::SignedHeaders;

constexpr char kSecret[] = "http-edges-secret";
// Generous bounds for "at once": far below what the faults took (seconds to
// minutes), far above what a loaded CI machine needs.
constexpr milliseconds kPrompt{2000};

int64_t MillisSince(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count();
}

std::string EventBody(const std::string& id) {
  return absl::StrCat(R"({"id":")", id,
                      R"(","body":{"doorId":3,"personId":17},"metadata":{"occurred":)"
                      R"(1646922708300,"doorName":"Front"},"panelId":"1070000",)"
                      R"("topic":"door.request.allowed"})");
}

// The head of a signed delivery of `body`, without the blank line.
std::string SignedHead(const std::string& body, const std::string& extra = "") {
  return absl::StrCat("POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-PDK-SIGNATURE: ",
                      SignedHeaders(kSecret, body)[1].second,
                      "\r\nContent-Length: ", body.size(), "\r\n", extra);
}

// The body of the first answer in `bytes` (Content-Length framed).
std::string FirstBody(const std::string& bytes) {
  const size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string::npos) return "";
  return bytes.substr(head_end + 4);
}

class HttpEdgesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("pdkarchive-edges-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = store::SqliteStore::Open((dir_ / "archive.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ingest::WebhookOptions options;
    options.secret = kSecret;
    // The serve defaults: a 1 MiB body, 100 header fields, a 16 KiB head.
    stack_ = std::make_unique<testing::IngestStack>(*store_, options);
    ASSERT_NE(stack_->port(), 0);
  }

  void TearDown() override {
    stack_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  int port() const { return stack_->port(); }

  // One raw request on a fresh connection; everything the server sent back
  // until it closed or went quiet for `wait` (requests that keep the
  // connection open are answered within it; the others end it at once).
  RawSocket::Answer Exchange(const std::string& raw, milliseconds wait = milliseconds(10000)) {
    auto conn = RawSocket::Connect(port());
    EXPECT_NE(conn, nullptr);
    if (conn == nullptr) return {};
    conn->Send(raw);
    return conn->ReadAnswer(wait);
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<testing::IngestStack> stack_;
};

TEST_F(HttpEdgesTest, HeaderFloodIsRefusedWith431AtOnceAndDeliveriesGoOn) {
  // Two connections of 150,000 header fields each (as many as the HTTP
  // threads), well under the old 4 MiB request limit: the whole block was
  // parsed again on every read.
  std::string flood = "POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 150000; ++i) absl::StrAppend(&flood, "X-F", i, ": v\r\n");
  absl::StrAppend(&flood, "Content-Length: 2\r\n\r\n{}");
  std::vector<RawSocket::Answer> answers(2);
  std::vector<int64_t> answer_ms(2, -1);
  std::vector<std::thread> flooders;
  for (size_t f = 0; f < 2; ++f) {
    flooders.emplace_back([&, f] {
      auto conn = RawSocket::Connect(port());
      if (conn == nullptr) return;
      const auto start = steady_clock::now();
      conn->Send(flood);  // the server may stop listening early
      answers[f] = conn->ReadAnswer(milliseconds(1000));
      answer_ms[f] = MillisSince(start);
    });
  }
  std::this_thread::sleep_for(milliseconds(50));  // let the floods start first
  const std::string body = EventBody("beside-the-flood");
  const auto start = steady_clock::now();
  auto reply = testing::HttpRequest(port(), "POST", "/webhooks", body,
                                    SignedHeaders(kSecret, body));
  const int64_t delivery_ms = MillisSince(start);
  for (std::thread& t : flooders) t.join();

  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200) << reply->body;
  EXPECT_LT(delivery_ms, kPrompt.count());
  for (size_t f = 0; f < 2; ++f) {
    EXPECT_TRUE(absl::StartsWith(answers[f].bytes, "HTTP/1.1 431 ")) << answers[f].StatusLine();
    EXPECT_TRUE(absl::StrContains(FirstBody(answers[f].bytes),
                                  R"({"error":"request has more than the limit of 100 header)"))
        << answers[f].bytes;
    EXPECT_TRUE(absl::StrContains(answers[f].bytes, "Connection: close"));
    EXPECT_TRUE(answers[f].closed);
    // Sending 3 MB and hearing back; the old parse took tens of seconds.
    EXPECT_LT(answer_ms[f], 5000);
  }
}

TEST_F(HttpEdgesTest, HeadOverTheByteLimitIs431NamingIt) {
  const std::string raw =
      absl::StrCat("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(20000, 'b'),
                   "\r\n\r\n");
  RawSocket::Answer answer = Exchange(raw);
  EXPECT_TRUE(absl::StartsWith(answer.bytes, "HTTP/1.1 431 ")) << answer.StatusLine();
  EXPECT_EQ(FirstBody(answer.bytes),
            R"({"error":"request head exceeds the limit of 16384 bytes"})");
  EXPECT_TRUE(answer.closed);
  // Just under both limits is fine.
  std::string many = "GET /healthz HTTP/1.1\r\nConnection: close\r\n";
  for (int i = 0; i < 99; ++i) absl::StrAppend(&many, "X-H", i, ": v\r\n");
  absl::StrAppend(&many, "\r\n");
  EXPECT_TRUE(absl::StartsWith(Exchange(many).bytes, "HTTP/1.1 200 "));
}

TEST_F(HttpEdgesTest, MalformedOrConflictingContentLengthIs400AndCloses) {
  const std::string body = EventBody("cl");
  for (const std::string& lengths :
       {std::string("Content-Length: -1\r\n"), std::string("Content-Length: 1e20\r\n"),
        std::string("Content-Length: 12abc\r\n"), std::string("Content-Length: \r\n"),
        absl::StrCat("Content-Length: ", body.size(), "\r\nContent-Length: ", body.size() + 1,
                     "\r\n"),
        absl::StrCat("Content-Length: ", body.size(), ", 3\r\n"),
        absl::StrCat("Content-Length: ", body.size(),
                     "\r\nTransfer-Encoding: chunked\r\n")}) {
    const std::string raw =
        absl::StrCat("POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-PDK-SIGNATURE: ",
                     SignedHeaders(kSecret, body)[1].second, "\r\n", lengths, "\r\n", body);
    RawSocket::Answer answer = Exchange(raw);
    EXPECT_TRUE(absl::StartsWith(answer.bytes, "HTTP/1.1 400 ")) << lengths << answer.StatusLine();
    EXPECT_TRUE(absl::StartsWith(FirstBody(answer.bytes), R"({"error":")")) << answer.bytes;
    EXPECT_TRUE(answer.closed) << lengths;
  }
  // The same length twice is one length (RFC 9110 §8.6).
  RawSocket::Answer same = Exchange(absl::StrCat(
      SignedHead(body, absl::StrCat("Content-Length: ", body.size(), "\r\nConnection: close\r\n")),
      "\r\n", body));
  EXPECT_TRUE(absl::StartsWith(same.bytes, "HTTP/1.1 200 ")) << same.StatusLine();
  // A length too large to hold is a body over the limit, refused unread.
  RawSocket::Answer huge = Exchange(
      "POST /webhooks HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(huge.bytes, "HTTP/1.1 413 ")) << huge.StatusLine();
  EXPECT_TRUE(absl::StartsWith(FirstBody(huge.bytes), R"({"error":"body of )")) << huge.bytes;
}

TEST_F(HttpEdgesTest, ExpectContinueGetsAnInterim100ThenTheAnswer) {
  auto conn = HttpConnection::Connect(port(), milliseconds(1000));
  ASSERT_TRUE(conn.ok()) << conn.status();
  const std::string body = EventBody("expect");
  ASSERT_TRUE(conn->SendRaw(SignedHead(body, "Expect: 100-continue\r\n\r\n")).ok());
  auto interim = conn->ReadReply();  // curl waits a second for this
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(conn->SendRaw(body).ok());
  auto reply = conn->ReadReply();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200) << reply->body;

  // Refused by its size: the final answer comes at once, with no 100, and
  // the connection closes, the body never sent.
  const std::string big = absl::StrCat(
      "POST /webhooks HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ",
      (1 << 20) + 1, "\r\n\r\n");
  RawSocket::Answer answer = Exchange(big);
  EXPECT_TRUE(absl::StartsWith(answer.bytes, "HTTP/1.1 413 ")) << answer.StatusLine();
  EXPECT_TRUE(answer.closed);
  // An expectation other than 100-continue cannot be met.
  RawSocket::Answer other = Exchange(
      "POST /webhooks HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(other.bytes, "HTTP/1.1 417 ")) << other.StatusLine();
}

TEST_F(HttpEdgesTest, PipelinedRequestsAreAllAnsweredInOrder) {
  auto conn = HttpConnection::Connect(port(), milliseconds(5000));
  ASSERT_TRUE(conn.ok()) << conn.status();
  // The deliveries are answered after their commit, /healthz at once: the
  // answers must still come back in request order.
  const std::string first = EventBody("pipelined-1");
  const std::string third = EventBody("pipelined-3");
  ASSERT_TRUE(conn->SendRaw(absl::StrCat(SignedHead(first), "\r\n", first,
                                         "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                         SignedHead(third), "\r\n", third))
                  .ok());
  std::vector<HttpReply> replies;
  for (int i = 0; i < 3; ++i) {
    auto reply = conn->ReadReply();
    ASSERT_TRUE(reply.ok()) << "answer " << i << ": " << reply.status();
    replies.push_back(*reply);
  }
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(replies[0].body, R"({"sequence":1,"duplicate":false})");
  EXPECT_EQ(replies[1].body, R"({"status":"ok"})");
  EXPECT_EQ(replies[2].body, R"({"sequence":2,"duplicate":false})");
}

TEST_F(HttpEdgesTest, ConnectionCloseClosesRightAfterTheAnswer) {
  auto conn = RawSocket::Connect(port());
  ASSERT_NE(conn, nullptr);
  const auto start = steady_clock::now();
  ASSERT_TRUE(conn->Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  RawSocket::Answer answer = conn->ReadAnswer(milliseconds(5000));
  EXPECT_TRUE(absl::StartsWith(answer.bytes, "HTTP/1.1 200 ")) << answer.StatusLine();
  EXPECT_TRUE(absl::StrContains(answer.bytes, "Connection: close\r\n"));
  EXPECT_TRUE(answer.closed);
  EXPECT_LT(MillisSince(start), kPrompt.count());
  // So does an HTTP/1.0 request that does not ask to keep the connection.
  RawSocket::Answer old = Exchange("GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(old.bytes, "HTTP/1.1 200 ")) << old.StatusLine();
  EXPECT_TRUE(old.closed);
}

TEST_F(HttpEdgesTest, BodyFarOverTheLimitGetsAJson413) {
  const std::string body(4608 * 1024, 'x');  // 4.5 MiB
  RawSocket::Answer answer = Exchange(
      absl::StrCat("POST /webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: ", body.size(),
                   "\r\n\r\n", body));
  EXPECT_TRUE(absl::StartsWith(answer.bytes, "HTTP/1.1 413 ")) << answer.StatusLine();
  EXPECT_TRUE(absl::StrContains(answer.bytes, "Content-Type: application/json\r\n"));
  EXPECT_EQ(FirstBody(answer.bytes),
            R"({"error":"body of 4718592 bytes exceeds the limit of 1048576"})");
  EXPECT_EQ(stack_->metrics().deliveries(ingest::DeliveryResult::kTooLarge), 1u);
}

TEST_F(HttpEdgesTest, ChunkedBodiesWithChunkExtensionsAreAcceptedAndOtherCodingsAre501) {
  const std::string body = EventBody("chunked");
  const std::string half = body.substr(0, body.size() / 2);
  const std::string rest = body.substr(body.size() / 2);
  RawSocket::Answer answer = Exchange(absl::StrCat(
      "POST /webhooks HTTP/1.1\r\nHost: x\r\nX-PDK-SIGNATURE: ",
      SignedHeaders(kSecret, body)[1].second,
      "\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
      absl::Hex(half.size()), "\r\n", half, "\r\n", absl::Hex(rest.size()), ";ext=1\r\n", rest,
      "\r\n0\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(answer.bytes, "HTTP/1.1 200 ")) << answer.bytes;
  RawSocket::Answer gzip = Exchange(
      "POST /webhooks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(gzip.bytes, "HTTP/1.1 501 ")) << gzip.StatusLine();
  EXPECT_TRUE(gzip.closed);
}

// The real binary, as a user starts it.
class ServeHttpFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("pdkarchive-serveflags-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "archive.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& name, const std::string& contents) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::filesystem::path dir_;
  std::string db_;
};

TEST_F(ServeHttpFlagsTest, BasicAuthFileKeepsTheCredentialsOffTheCommandLine) {
  const std::string file = WriteFile("basic", "pdk:s3cret\n");
  auto server = testing::ServerProcess::Start(db_, {"--basic-auth-file", file});
  ASSERT_TRUE(server.ok()) << server.status();
  std::ifstream cmdline(absl::StrCat("/proc/", server->pid(), "/cmdline"), std::ios::binary);
  const std::string args((std::istreambuf_iterator<char>(cmdline)),
                         std::istreambuf_iterator<char>());
  EXPECT_FALSE(absl::StrContains(args, "s3cret"));
  const std::string body = EventBody("basic-file");
  auto none = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->status, 401);
  auto right = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body,
                                    {{"Authorization", "Basic cGRrOnMzY3JldA=="}});
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(right->status, 200) << right->body;
  // /metrics is behind the same credentials; /healthz is not.
  auto metrics = testing::HttpRequest(server->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->status, 401);
  EXPECT_TRUE(absl::StartsWith(metrics->Header("WWW-Authenticate"), "Basic"));
  auto health = testing::HttpRequest(server->http_port(), "GET", "/healthz");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

TEST_F(ServeHttpFlagsTest, BasicAuthFileThatIsEmptyOrGivenWithBasicAuthIsRefused) {
  const std::string file = WriteFile("basic", "pdk:s3cret\n");
  auto both = testing::RunCli(
      {"serve", "--db", db_, "--basic-auth", "a:b", "--basic-auth-file", file,
       "--http-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"},
      std::chrono::seconds(20));
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_TRUE(absl::StrContains(both.err, "--basic-auth or --basic-auth-file, not both"))
      << both.err;
  const std::string empty = WriteFile("empty", "\n");
  auto empty_run = testing::RunCli(
      {"serve", "--db", db_, "--basic-auth-file", empty, "--http-listen", "127.0.0.1:0",
       "--grpc-listen", "127.0.0.1:0"},
      std::chrono::seconds(20));
  EXPECT_NE(empty_run.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(empty_run.err, "is empty")) << empty_run.err;
}

TEST_F(ServeHttpFlagsTest, HeaderLimitFlagsAreApplied) {
  auto server = testing::ServerProcess::Start(
      db_, {"--secret", kSecret, "--max-header-count", "5", "--max-header-bytes", "2048"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::pair<std::string, std::string>> six;
  for (int i = 0; i < 6; ++i) six.emplace_back(absl::StrCat("X-H", i), "v");
  auto many = testing::HttpRequest(server->http_port(), "GET", "/healthz", "", six);
  ASSERT_TRUE(many.ok()) << many.status();
  EXPECT_EQ(many->status, 431);
  EXPECT_EQ(many->body, R"({"error":"request has more than the limit of 5 header fields"})");
  auto big = testing::HttpRequest(server->http_port(), "GET", "/healthz", "",
                                  {{"X-Big", std::string(3000, 'b')}});
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->status, 431);
  EXPECT_EQ(big->body, R"({"error":"request head exceeds the limit of 2048 bytes"})");
  auto fine = testing::HttpRequest(server->http_port(), "GET", "/healthz");
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(fine->status, 200);
  ASSERT_TRUE(server->Stop(SIGTERM).ok());
}

TEST_F(ServeHttpFlagsTest, UnsignedModeWarningNamesTheBoundAddress) {
  auto server = testing::ServerProcess::Start(db_, {});
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = server->http_port();
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  const std::string err = server->Stderr();
  EXPECT_TRUE(absl::StrContains(
      err, absl::StrCat("anyone who can reach 127.0.0.1:", port, " can write")))
      << err;
  EXPECT_FALSE(absl::StrContains(err, "127.0.0.1:0 ")) << err;
}

}  // namespace
}  // namespace pdkarchive
