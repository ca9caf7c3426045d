// Ingest through its real interface: a Pistache server on 127.0.0.1:0 in
// front of the group-commit writer and an archive of each engine (a SQLite
// file in a temp dir, a database on the test PostgreSQL cluster); checks
// read the archive back with a reader of their own.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ingest/http_server.h"
#include "ingest/metrics.h"
#include "ingest/webhook_handler.h"
#include "store/archive.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/ingest_stack.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"
#include "tests/test_support/test_data.h"

namespace pdkarchive {
namespace {

using testing::HttpConnection;
using testing::HttpReply;
using testing::HttpRequest;
using testing::SignedHeaders;

constexpr char kSecret[] = "vvHkDbPeIespEKDprlvzlstDPPhLJnxG";

struct Example {
  std::string topic;
  std::string family;
  std::string body;
};

std::vector<Example> SpecExamples() {
  rapidjson::Document doc;
  std::string text = testing::ReadTestData("topics.json");
  doc.Parse(text.c_str());
  std::vector<Example> out;
  for (const auto& t : doc["topics"].GetArray()) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    t["example"].Accept(writer);
    out.push_back({t["topic"].GetString(), t["family"].GetString(), buffer.GetString()});
  }
  return out;
}

std::filesystem::path TempDbPath(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             absl::StrCat("pdkarchive-", name, "-", ::getpid(), "-",
                          std::chrono::steady_clock::now().time_since_epoch().count());
  std::filesystem::create_directories(dir);
  return dir / "archive.db";
}

int64_t CountRows(const std::filesystem::path& db) {
  SQLite::Database conn(db.string(), SQLite::OPEN_READONLY);
  return conn.execAndGet("SELECT count(*) FROM events").getInt64();
}

// A whole ingest stack over `sink`, on a free loopback port.
ingest::WebhookOptions SignedOptions() {
  ingest::WebhookOptions options;
  options.secret = kSecret;
  return options;
}

// The ingest behaviour suite, run against each storage engine: the archive
// is opened through store::OpenArchive, as serve opens it.
class HttpIngestTest : public ::testing::TestWithParam<testing::Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("ingest");
    auto location = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
    auto archive = store::OpenArchive(location_->db());
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    stack_ = std::make_unique<testing::IngestStack>(archive_->sink(), SignedOptions());
  }
  void TearDown() override {
    stack_.reset();
    archive_.reset();
    location_.reset();
    std::filesystem::remove_all(dir_);
  }

  HttpReply PostSigned(std::string_view body) {
    auto reply = HttpRequest(stack_->port(), "POST", "/webhooks", body,
                             SignedHeaders(kSecret, body));
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *reply : HttpReply{};
  }

  HttpReply Post(std::string_view body,
                 const std::vector<std::pair<std::string, std::string>>& headers,
                 std::string_view method = "POST") {
    auto reply = HttpRequest(stack_->port(), method, "/webhooks", body, headers);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *reply : HttpReply{};
  }

  // Every stored row, in sequence order.
  std::vector<store::EventRow> AllRows() { return testing::ReadAllRows(location_->db()); }
  int64_t CountRows() { return static_cast<int64_t>(AllRows().size()); }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> location_;
  std::unique_ptr<store::Archive> archive_;
  std::unique_ptr<testing::IngestStack> stack_;
};

INSTANTIATE_TEST_SUITE_P(Engines, HttpIngestTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

TEST_P(HttpIngestTest, EverySpecExampleIsStoredOnceInItsFamily) {
  std::vector<Example> examples = SpecExamples();
  ASSERT_EQ(examples.size(), 70u);
  std::map<std::string, int64_t> sequence_by_topic;
  for (const Example& e : examples) {
    HttpReply reply = PostSigned(e.body);
    ASSERT_EQ(reply.status, 200) << e.topic << ": " << reply.body;
    rapidjson::Document doc;
    doc.Parse(reply.body.c_str());
    ASSERT_TRUE(doc.IsObject()) << reply.body;
    EXPECT_FALSE(doc["duplicate"].GetBool()) << e.topic;
    sequence_by_topic[e.topic] = doc["sequence"].GetInt64();
  }
  EXPECT_EQ(CountRows(), 70);

  std::map<std::string, store::EventRow> by_topic;
  for (store::EventRow& row : AllRows()) {
    EXPECT_TRUE(by_topic.emplace(row.topic, row).second) << row.topic << " stored twice";
  }
  for (const Example& e : examples) {
    ASSERT_TRUE(by_topic.count(e.topic)) << e.topic;
    const store::EventRow& row = by_topic[e.topic];
    EXPECT_EQ(row.family, e.family) << e.topic;
    EXPECT_EQ(row.raw, e.body) << e.topic;
    EXPECT_EQ(row.sequence, sequence_by_topic[e.topic]) << e.topic;
  }

  // Redelivering everything adds nothing and names the original sequence.
  for (const Example& e : examples) {
    HttpReply reply = PostSigned(e.body);
    ASSERT_EQ(reply.status, 200) << e.topic;
    EXPECT_EQ(reply.body, absl::StrCat("{\"sequence\":", sequence_by_topic[e.topic],
                                       ",\"duplicate\":true}"));
  }
  EXPECT_EQ(CountRows(), 70);
}

TEST_P(HttpIngestTest, NormalizedFieldsLandInTheirColumns) {
  const std::string body =
      R"({"id":"679521e4-c455-423f-8155-d012c98f5dcc","body":{"doorId":3,"personId":17,)"
      R"("requestFactor":"CARD_OR_PIN"},"metadata":{"occurred":1646922708300,)"
      R"("doorName":"Front Door"},"panelId":"1070000","topic":"door.request.allowed"})";
  ASSERT_EQ(PostSigned(body).status, 200);
  std::vector<store::EventRow> rows = AllRows();
  ASSERT_EQ(rows.size(), 1u);
  const store::EventRow& row = rows[0];
  EXPECT_EQ(row.event_id, "679521e4-c455-423f-8155-d012c98f5dcc");
  EXPECT_EQ(row.topic, "door.request.allowed");
  EXPECT_EQ(row.family, "panel");
  EXPECT_EQ(row.panel_id, "1070000");
  EXPECT_EQ(row.door_id, 3);
  EXPECT_EQ(row.door_name, "Front Door");
  EXPECT_EQ(row.person_id, 17);
  EXPECT_EQ(row.occur_time_ms, 1646922708300);
  EXPECT_EQ(row.subscription, "default");
  EXPECT_EQ(row.raw, body);
}

TEST_P(HttpIngestTest, SameIdUnderAnotherTopicIsAnotherEvent) {
  const std::string allowed =
      R"({"id":"same","body":{"doorId":1},"panelId":"1","topic":"door.request.allowed"})";
  const std::string denied =
      R"({"id":"same","body":{"doorId":1},"panelId":"1","topic":"door.request.denied"})";
  EXPECT_EQ(PostSigned(allowed).status, 200);
  EXPECT_EQ(PostSigned(denied).status, 200);
  EXPECT_EQ(CountRows(), 2);
}

TEST_P(HttpIngestTest, SignatureHeaderSpellingsAndCaseAreAccepted) {
  const std::string body = R"({"topic":"door.request.allowed","id":"a1","panelId":"1"})";
  auto headers = SignedHeaders(kSecret, body);
  std::string hex = headers[1].second;
  std::string upper = absl::AsciiStrToUpper(hex);
  EXPECT_EQ(Post(body, {{"X_PDK_SIGNATURE", hex}}).status, 200);
  EXPECT_EQ(Post(body, {{"x-pdk-signature", upper}}).status, 200);  // a duplicate
  EXPECT_EQ(CountRows(), 1);
}

TEST_P(HttpIngestTest, MissingOrWrongSignatureIs401AndStoresNothing) {
  const std::string body = R"({"topic":"door.request.allowed","id":"a1","panelId":"1"})";
  HttpReply missing = Post(body, {});
  EXPECT_EQ(missing.status, 401);
  EXPECT_TRUE(absl::StrContains(missing.body, "\"error\"")) << missing.body;
  auto headers = SignedHeaders("another secret", body);
  EXPECT_EQ(Post(body, headers).status, 401);
  EXPECT_EQ(Post(body, {{"X-PDK-SIGNATURE", "zz"}}).status, 401);
  // A signature of other bytes: the body was changed in flight.
  auto tampered = SignedHeaders(kSecret, body + " ");
  EXPECT_EQ(Post(body, tampered).status, 401);
  EXPECT_EQ(CountRows(), 0);
  EXPECT_EQ(stack_->metrics().deliveries(ingest::DeliveryResult::kUnauthorized), 4u);
}

TEST_P(HttpIngestTest, MalformedContentIs400WithAReasonAndStoresNothing) {
  const std::vector<std::string> bad = {
      "",
      "{",
      "not json",
      "[1,2]",
      "\"door.request.allowed\"",
      "{}",
      R"({"topic":""})",
      R"({"topic":7})",
      R"({"topic":null})",
      R"({"topic":"door.request.allowed"} trailing)",
      std::string(100000, '[') + std::string(100000, ']'),
      "{\"topic\":\"x\",\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}",
  };
  for (const std::string& body : bad) {
    HttpReply reply = PostSigned(body);
    EXPECT_EQ(reply.status, 400) << body.substr(0, 40);
    rapidjson::Document doc;
    doc.Parse(reply.body.c_str());
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("error")) << reply.body;
    EXPECT_TRUE(doc["error"].IsString());
  }
  EXPECT_EQ(CountRows(), 0);
}

TEST_P(HttpIngestTest, OversizedBodyIs413BeforeAuthentication) {
  std::string body = absl::StrCat(R"({"topic":"door.request.allowed","pad":")",
                                  std::string((1 << 20) + 10, 'x'), "\"}");
  // No signature at all: size is checked first.
  HttpReply reply = Post(body, {});
  EXPECT_EQ(reply.status, 413);
  EXPECT_TRUE(absl::StrContains(reply.body, "\"error\"")) << reply.body;
  EXPECT_EQ(CountRows(), 0);
}

TEST_P(HttpIngestTest, LargeRealisticPayloadIsAccepted) {
  // Far beyond Pistache's 4 KiB default request size.
  std::string name(300000, 'N');
  std::string body = absl::StrCat(
      R"({"id":"big-1","body":{"doorId":2},"metadata":{"occurred":1646922708300,"doorName":")",
      name, R"("},"panelId":"1070000","topic":"door.request.allowed"})");
  EXPECT_EQ(PostSigned(body).status, 200);
  EXPECT_EQ(CountRows(), 1);
}

TEST_P(HttpIngestTest, OtherMethodsAre405EvenWithoutAuth) {
  for (const char* method : {"GET", "PUT", "DELETE", "PATCH"}) {
    HttpReply reply = Post("{", {}, method);
    EXPECT_EQ(reply.status, 405) << method;
    EXPECT_EQ(reply.Header("Allow"), "POST") << method;
    EXPECT_TRUE(absl::StrContains(reply.body, "\"error\"")) << reply.body;
  }
  EXPECT_EQ(CountRows(), 0);
}

TEST_P(HttpIngestTest, UnknownTopicIsStoredAsUnknownAndCounted) {
  const std::string body =
      R"({"id":"u-1","topic":"device.battery.low","panelId":"1070000","body":{"doorId":4}})";
  ASSERT_EQ(PostSigned(body).status, 200);
  std::vector<store::EventRow> rows = AllRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].family, "unknown");
  EXPECT_EQ(rows[0].topic, "device.battery.low");
  EXPECT_EQ(rows[0].door_id, 4);
  auto metrics = HttpRequest(stack_->port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_TRUE(absl::StrContains(metrics->body, "pdkarchive_unknown_topics_total 1"))
      << metrics->body;
}

TEST_P(HttpIngestTest, FieldOfUnexpectedTypeIsKeptEmptyAndCounted) {
  const std::string body =
      R"({"id":"t-1","body":{"doorId":"front","personId":{"x":1}},)"
      R"("metadata":{"occurred":"yesterday"},"panelId":"1070000","topic":"door.request.allowed"})";
  ASSERT_EQ(PostSigned(body).status, 200);
  std::vector<store::EventRow> rows = AllRows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0].door_id.has_value());
  EXPECT_FALSE(rows[0].person_id.has_value());
  EXPECT_EQ(rows[0].raw, body);
  EXPECT_GE(stack_->metrics().unreadable_fields(), 3u);
}

TEST_P(HttpIngestTest, HealthAndMetricsAnswer) {
  auto health = HttpRequest(stack_->port(), "GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"status":"ok"})");
  ASSERT_EQ(PostSigned(R"({"topic":"door.request.allowed","id":"m1","panelId":"1"})").status,
            200);
  auto metrics = HttpRequest(stack_->port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_TRUE(absl::StrContains(metrics->body,
                                "pdkarchive_deliveries_total{result=\"accepted\"} 1"))
      << metrics->body;
  EXPECT_TRUE(absl::StrContains(metrics->body, "pdkarchive_commit_batch_size_count 1"));
  // The engine's own figures, printed without /metrics knowing them.
  const std::string engine_stat =
      GetParam() == testing::Engine::kSqlite
          ? "\n# TYPE pdkarchive_unmerged_events gauge\npdkarchive_unmerged_events 0\n"
          : "\n# TYPE pdkarchive_postgres_reconnects_total counter\n"
            "pdkarchive_postgres_reconnects_total 0\n";
  EXPECT_TRUE(absl::StrContains(metrics->body, engine_stat)) << metrics->body;
  auto missing = HttpRequest(stack_->port(), "GET", "/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_P(HttpIngestTest, Http11ConnectionStaysOpenAcrossRequests) {
  auto conn = HttpConnection::Connect(stack_->port());
  ASSERT_TRUE(conn.ok());
  for (int i = 0; i < 5; ++i) {
    std::string body = absl::StrCat(R"({"topic":"door.request.allowed","id":"k)", i,
                                    R"(","panelId":"1"})");
    auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
    ASSERT_TRUE(reply.ok()) << "request " << i << ": " << reply.status();
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(absl::AsciiStrToLower(reply->Header("Connection")), "keep-alive");
  }
  EXPECT_EQ(CountRows(), 5);
}

TEST_P(HttpIngestTest, ConcurrentDeliveriesShareCommits) {
  constexpr int kThreads = 32;
  constexpr int kPerThread = 40;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto conn = HttpConnection::Connect(stack_->port());
      if (!conn.ok()) return;
      for (int i = 0; i < kPerThread; ++i) {
        std::string body = absl::StrCat(R"({"topic":"door.request.allowed","id":"c-)", t,
                                        "-", i, R"(","panelId":"1","body":{"doorId":)", t,
                                        "}}");
        auto reply = conn->Request("POST", "/webhooks", body, SignedHeaders(kSecret, body));
        if (reply.ok() && reply->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(CountRows(), kThreads * kPerThread);
  store::WriterStats stats = stack_->writer().stats();
  EXPECT_EQ(stats.rows, static_cast<uint64_t>(kThreads * kPerThread));
  // Group commit: far fewer transactions than events.
  EXPECT_LT(stats.batches, stats.rows / 2) << "batches " << stats.batches;
}

// A sink whose commits wait until the test opens the gate.
class GatedSink final : public store::BatchSink {
 public:
  absl::StatusOr<std::vector<store::AppendResult>> AppendBatch(
      std::span<const store::EventRow> rows) override {
    std::unique_lock lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    if (!failure_.ok()) return failure_;
    std::vector<store::AppendResult> out;
    for (size_t i = 0; i < rows.size(); ++i) out.push_back({++next_, false});
    return out;
  }
  void WaitEntered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void Open(absl::Status failure = absl::OkStatus()) {
    std::lock_guard lock(mu_);
    open_ = true;
    failure_ = failure;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
  absl::Status failure_;
  int64_t next_ = 0;
};

TEST(HttpIngestAckTest, NoAnswerBeforeTheCommit) {
  GatedSink sink;
  testing::IngestStack stack(sink, SignedOptions());
  const std::string body = R"({"topic":"door.request.allowed","id":"g1","panelId":"1"})";
  auto conn = HttpConnection::Connect(stack.port(), std::chrono::milliseconds(500));
  ASSERT_TRUE(conn.ok());
  std::string raw = absl::StrCat(
      "POST /webhooks HTTP/1.1\r\nHost: x\r\nX-PDK-SIGNATURE: ",
      SignedHeaders(kSecret, body)[1].second, "\r\nContent-Length: ", body.size(),
      "\r\n\r\n", body);
  ASSERT_TRUE(conn->SendRaw(raw).ok());
  sink.WaitEntered();
  // The commit is held: no reply may arrive.
  auto early = conn->ReadReply();
  EXPECT_TRUE(absl::IsDeadlineExceeded(early.status())) << "answered before commit";
  sink.Open();
  auto reply = conn->ReadReply();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, R"({"sequence":1,"duplicate":false})");
}

TEST(HttpIngestAckTest, PipelinedAnswersKeepRequestOrderAndTheirNumberIsBounded) {
  GatedSink sink;
  testing::IngestStack stack(sink, SignedOptions());
  const std::string body = R"({"topic":"door.request.allowed","id":"p1","panelId":"1"})";
  auto conn = HttpConnection::Connect(stack.port(), std::chrono::milliseconds(500));
  ASSERT_TRUE(conn.ok());
  // A delivery held at the commit, then 100 health checks behind it.
  std::string raw = absl::StrCat(
      "POST /webhooks HTTP/1.1\r\nHost: x\r\nX-PDK-SIGNATURE: ",
      SignedHeaders(kSecret, body)[1].second, "\r\nContent-Length: ", body.size(),
      "\r\n\r\n", body);
  for (int i = 0; i < 100; ++i) absl::StrAppend(&raw, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(conn->SendRaw(raw).ok());
  sink.WaitEntered();
  // The health checks are answered at once, but not before the delivery.
  auto early = conn->ReadReply();
  EXPECT_TRUE(absl::IsDeadlineExceeded(early.status())) << "answered out of order";
  sink.Open();
  auto first = conn->ReadReply();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->body, R"({"sequence":1,"duplicate":false})");
  // 64 requests may await their answers; the 65th is refused and the
  // connection closed.
  for (int i = 1; i < 64; ++i) {
    auto health = conn->ReadReply();
    ASSERT_TRUE(health.ok()) << i << ": " << health.status();
    EXPECT_EQ(health->body, R"({"status":"ok"})") << i;
  }
  auto refused = conn->ReadReply();
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 503);
  EXPECT_FALSE(refused->Header("Retry-After").empty());
  EXPECT_EQ(refused->body, R"({"error":"more than 64 pipelined requests awaiting answers"})");
  EXPECT_TRUE(absl::IsUnavailable(conn->ReadReply().status()));
}

TEST(HttpIngestAckTest, StoreThatCannotCommitAnswers503WithRetryAfter) {
  GatedSink sink;
  sink.Open(absl::UnavailableError("database or disk is full"));
  testing::IngestStack stack(sink, SignedOptions());
  const std::string body = R"({"topic":"door.request.allowed","id":"f1","panelId":"1"})";
  auto reply = HttpRequest(stack.port(), "POST", "/webhooks", body,
                           SignedHeaders(kSecret, body));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 503);
  EXPECT_FALSE(reply->Header("Retry-After").empty());
  EXPECT_TRUE(absl::StrContains(reply->body, "disk is full")) << reply->body;
  auto health = HttpRequest(stack.port(), "GET", "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 503);
  EXPECT_TRUE(absl::StrContains(health->body, "disk is full")) << health->body;
}

// The value of the metric line `name` in a /metrics body, or -1.
int64_t MetricValue(const std::string& body, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    int64_t value = 0;
    if (absl::ConsumePrefix(&line, name + " ") && absl::SimpleAtoi(line, &value)) return value;
  }
  return -1;
}

TEST(HttpIngestWalTest, MetricsShowTheWalKeptBounded) {
  auto path = TempDbPath("wal");
  auto store = store::SqliteStore::Open(path.string());
  ASSERT_TRUE(store.ok());
  // A limit a few commits reach (each writes about ten pages); with no
  // checkpointer, the writer empties the WAL itself once past it.
  constexpr int64_t kLimit = 25;
  (*store)->set_wal_limit_frames(kLimit);
  int posted = 0;
  {
    testing::IngestStack stack(**store, SignedOptions());
    auto post = [&] {
      const std::string body = absl::StrCat(R"({"topic":"door.request.allowed","id":"w)",
                                            posted++, R"(","panelId":"1"})");
      auto reply = HttpRequest(stack.port(), "POST", "/webhooks", body,
                               SignedHeaders(kSecret, body));
      ASSERT_TRUE(reply.ok());
      ASSERT_EQ(reply->status, 200) << reply->body;
    };
    // The writer records the WAL after the Maintain that follows each
    // commit: poll until `done` holds of /metrics.
    auto poll = [&](auto done) {
      std::string body;
      for (int i = 0; i < 100; ++i) {
        auto metrics = HttpRequest(stack.port(), "GET", "/metrics");
        EXPECT_TRUE(metrics.ok());
        if (!metrics.ok()) break;
        body = metrics->body;
        if (done(body)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return body;
    };
    std::string body;
    while (posted < 50 && MetricValue(body, "pdkarchive_wal_restarts_total") < 1) {
      post();
      body = poll([](const std::string& b) {
        return MetricValue(b, "pdkarchive_wal_restarts_total") >= 1;
      });
    }
    EXPECT_TRUE(absl::StrContains(body, "\n# TYPE pdkarchive_wal_restarts_total counter\n"))
        << body;
    EXPECT_GE(MetricValue(body, "pdkarchive_wal_restarts_total"), 1) << body;
    // One commit after the restart: its pages are in the WAL, under the limit.
    post();
    body = poll([](const std::string& b) { return MetricValue(b, "pdkarchive_wal_frames") > 0; });
    EXPECT_TRUE(absl::StrContains(body, "\n# TYPE pdkarchive_wal_frames gauge\n")) << body;
    const int64_t frames = MetricValue(body, "pdkarchive_wal_frames");
    EXPECT_GT(frames, 0) << body;
    EXPECT_LT(frames, kLimit) << body;
  }
  EXPECT_EQ(CountRows(path), posted);
  store->reset();
  std::filesystem::remove_all(path.parent_path());
}

TEST(HttpIngestAuthTest, BasicAuthIsRequiredWhenConfigured) {
  auto path = TempDbPath("basic");
  auto store = store::SqliteStore::Open(path.string());
  ASSERT_TRUE(store.ok());
  ingest::WebhookOptions options;
  options.basic_auth = "pdk:s3cret";
  {
    testing::IngestStack stack(**store, options);
    const std::string body = R"({"topic":"door.request.allowed","id":"b1","panelId":"1"})";
    auto none = HttpRequest(stack.port(), "POST", "/webhooks", body);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->status, 401);
    EXPECT_TRUE(absl::StartsWith(none->Header("WWW-Authenticate"), "Basic"));
    auto wrong = HttpRequest(stack.port(), "POST", "/webhooks", body,
                             {{"Authorization", "Basic cGRrOndyb25n"}});  // pdk:wrong
    ASSERT_TRUE(wrong.ok());
    EXPECT_EQ(wrong->status, 401);
    EXPECT_EQ(CountRows(path), 0);
    auto right = HttpRequest(stack.port(), "POST", "/webhooks", body,
                             {{"Authorization", "Basic cGRrOnMzY3JldA=="}});  // pdk:s3cret
    ASSERT_TRUE(right.ok());
    EXPECT_EQ(right->status, 200) << right->body;
  }
  EXPECT_EQ(CountRows(path), 1);
  store->reset();
  std::filesystem::remove_all(path.parent_path());
}

TEST(HttpIngestAuthTest, MetricsNeedTheBasicCredentialsAndHealthDoesNot) {
  auto path = TempDbPath("basic-metrics");
  auto store = store::SqliteStore::Open(path.string());
  ASSERT_TRUE(store.ok());
  ingest::WebhookOptions options;
  options.basic_auth = "pdk:s3cret";
  {
    testing::IngestStack stack(**store, options);
    auto none = HttpRequest(stack.port(), "GET", "/metrics");
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->status, 401);
    EXPECT_TRUE(absl::StartsWith(none->Header("WWW-Authenticate"), "Basic"));
    auto wrong = HttpRequest(stack.port(), "GET", "/metrics", "",
                             {{"Authorization", "Basic cGRrOndyb25n"}});  // pdk:wrong
    ASSERT_TRUE(wrong.ok());
    EXPECT_EQ(wrong->status, 401);
    EXPECT_TRUE(absl::StrContains(wrong->body, "\"error\"")) << wrong->body;
    auto right = HttpRequest(stack.port(), "GET", "/metrics", "",
                             {{"Authorization", "Basic cGRrOnMzY3JldA=="}});  // pdk:s3cret
    ASSERT_TRUE(right.ok());
    EXPECT_EQ(right->status, 200);
    EXPECT_TRUE(absl::StrContains(right->body, "pdkarchive_")) << right->body;
    auto health = HttpRequest(stack.port(), "GET", "/healthz");
    ASSERT_TRUE(health.ok());
    EXPECT_EQ(health->status, 200);
  }
  store->reset();
  std::filesystem::remove_all(path.parent_path());
}

}  // namespace
}  // namespace pdkarchive
