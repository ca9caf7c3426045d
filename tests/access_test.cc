// Issue 15: bearer tokens and the access log, through the real binary on
// both engines: `pdk-archive tokens` keeps only hashes; a serve whose archive
// holds a token refuses missing, wrong and revoked tokens with
// UNAUTHENTICATED (one message for all), accepts a live one, and leaves
// grpc.health.v1 open; a revocation reaches every node of a PostgreSQL
// archive within 5 seconds; `access-log` prints accepted and refused calls.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "store/access_store.h"
#include "store/archive.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

namespace pb = ::pdk::archive::v1;
using testing::CommandResult;
using testing::Engine;
using testing::RunCli;
using testing::ServerProcess;

constexpr char kListMethod[] = "/pdk.archive.v1.EventArchive/ListEvents";

// The token `tokens create` printed: the first line of its stdout.
std::string FirstLine(const std::string& out) { return out.substr(0, out.find('\n')); }

std::unique_ptr<pb::EventArchive::Stub> StubFor(const std::string& address) {
  return pb::EventArchive::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

// ListEvents on `address`, with `authorization` metadata when given.
grpc::Status List(const std::string& address, std::optional<std::string> authorization,
                  int* events = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (authorization) context.AddMetadata("authorization", *authorization);
  pb::ListEventsRequest request;
  request.mutable_filter()->add_topics("door.*");
  pb::ListEventsResponse response;
  grpc::Status status = StubFor(address)->ListEvents(&context, request, &response);
  if (events != nullptr) *events = response.events_size();
  return status;
}

// The status an ExportEvents stream ends with.
grpc::Status Export(const std::string& address, std::optional<std::string> authorization) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (authorization) context.AddMetadata("authorization", *authorization);
  auto stub = StubFor(address);
  auto reader = stub->ExportEvents(&context, pb::ExportEventsRequest());
  pb::ExportEventsResponse chunk;
  while (reader->Read(&chunk)) {
  }
  return reader->Finish();
}

// The status a WatchEvents stream ends with, cancelled after a short while
// when it was admitted.
grpc::Status Watch(const std::string& address, std::optional<std::string> authorization) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(800));
  if (authorization) context.AddMetadata("authorization", *authorization);
  auto stub = StubFor(address);
  auto reader = stub->WatchEvents(&context, pb::WatchEventsRequest());
  pb::Event event;
  while (reader->Read(&event)) {
  }
  return reader->Finish();
}

// grpc.health.v1.Health/Check for the whole server, without metadata: the
// serialized HealthCheckResponse (status SERVING is 08 01), or the error.
grpc::Status HealthCheck(const std::string& address, std::string* response_bytes) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("");  // an empty HealthCheckRequest: service "" (the server)
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status status = done.get_future().get();
  std::vector<grpc::Slice> slices;
  response_bytes->clear();
  if (status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      response_bytes->append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  return status;
}

std::string EventLine(int n) {
  return absl::StrCat(R"({"id":"acc-)", n, R"(","body":{"doorId":)", n + 1,
                      R"(},"metadata":{"occurred":)", int64_t{1767225600000} + n * 1000,
                      R"(},"panelId":"p1","topic":"door.request.allowed"})");
}

// The access log as JSON objects, each parsed by protobuf's JSON parser.
std::vector<google::protobuf::Struct> AccessLog(const std::string& db,
                                                std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"access-log", "--json", "--db", db};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult printed = RunCli(args);
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  std::vector<google::protobuf::Struct> records;
  for (absl::string_view line : absl::StrSplit(printed.out, '\n', absl::SkipEmpty())) {
    google::protobuf::Struct record;
    const auto parsed = google::protobuf::util::JsonStringToMessage(std::string(line), &record);
    EXPECT_TRUE(parsed.ok()) << parsed.message() << ": " << line;
    records.push_back(record);
  }
  return records;
}

std::string Field(const google::protobuf::Struct& record, const std::string& name) {
  auto it = record.fields().find(name);
  if (it == record.fields().end()) return "<missing>";
  if (it->second.has_number_value()) return absl::StrCat(it->second.number_value());
  return it->second.string_value();
}

class AccessTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-access");
    auto archive = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    const std::filesystem::path events = dir_ / "events.jsonl";
    std::ofstream out(events);
    for (int n = 0; n < 3; ++n) out << EventLine(n) << "\n";
    out.close();
    CommandResult imported = RunCli({"import", "--db", db(), events.string()});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }
  void TearDown() override {
    archive_.reset();
    std::filesystem::remove_all(dir_);
  }

  const std::string& db() const { return archive_->db(); }

  // `tokens create NAME`: the token it printed.
  std::string Create(const std::string& name) {
    CommandResult created = RunCli({"tokens", "create", name, "--db", db()});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    return FirstLine(created.out);
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> archive_;
};

TEST_P(AccessTest, TokensAreCreatedListedAndRevokedKeepingOnlyAHash) {
  CommandResult created = RunCli({"tokens", "create", "dashboard", "--db", db()});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string token = FirstLine(created.out);
  // "pdka_" and 32 random bytes in unpadded base64url: 43 characters.
  ASSERT_TRUE(absl::StartsWith(token, "pdka_")) << created.out;
  EXPECT_EQ(token.size(), 5u + 43u) << token;
  EXPECT_EQ(Create("other").size(), token.size());
  EXPECT_NE(Create("third"), token);

  CommandResult again = RunCli({"tokens", "create", "dashboard", "--db", db()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(again.err, "exists")) << again.err;
  EXPECT_EQ(RunCli({"tokens", "create", "bad name", "--db", db()}).exit_code, 2);

  CommandResult listed = RunCli({"tokens", "list", "--db", db()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(absl::StrContains(listed.out, "NAME")) << listed.out;
  EXPECT_TRUE(absl::StrContains(listed.out, "dashboard")) << listed.out;
  EXPECT_FALSE(absl::StrContains(listed.out, token)) << listed.out;

  {
    // The archive holds the token's SHA-256, not the token.
    auto archive = store::OpenArchive(db());
    ASSERT_TRUE(archive.ok()) << archive.status();
    auto live = (*archive)->access().LiveTokens();
    ASSERT_TRUE(live.ok()) << live.status();
    ASSERT_EQ(live->size(), 3u);
    EXPECT_EQ(store::MatchToken(*live, store::HashToken(token)), "dashboard");
    for (const store::LiveToken& t : *live) EXPECT_EQ(t.hash.size(), 32u);
    EXPECT_EQ((*archive)->access().HasLiveToken().value_or(false), true);
  }

  CommandResult revoked = RunCli({"tokens", "revoke", "dashboard", "--db", db()});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  CommandResult twice = RunCli({"tokens", "revoke", "dashboard", "--db", db()});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(twice.err, "no live token")) << twice.err;
  listed = RunCli({"tokens", "list", "--db", db()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::string dashboard_line;
  for (absl::string_view line : absl::StrSplit(listed.out, '\n')) {
    if (absl::StartsWith(line, "dashboard ")) dashboard_line = std::string(line);
  }
  // NAME, CREATED, LAST USED ("-": never), REVOKED (a time).
  std::vector<std::string> columns = absl::StrSplit(dashboard_line, ' ', absl::SkipEmpty());
  ASSERT_EQ(columns.size(), 4u) << listed.out;
  EXPECT_EQ(columns[2], "-");
  EXPECT_NE(columns[3], "-");

  // A revoked name may be used again.
  EXPECT_EQ(Create("dashboard").size(), token.size());
  // With only revoked tokens and nothing live, the archive holds none.
  for (const char* name : {"dashboard", "other", "third"}) {
    ASSERT_EQ(RunCli({"tokens", "revoke", name, "--db", db()}).exit_code, 0);
  }
  auto archive = store::OpenArchive(db());
  ASSERT_TRUE(archive.ok()) << archive.status();
  EXPECT_EQ((*archive)->access().HasLiveToken().value_or(true), false);
}

TEST_P(AccessTest, ServeWithATokenRefusesMissingWrongAndRevokedTokensAndLogsEveryCall) {
  // Without tokens the query API answers as before (and still logs).
  {
    auto open = ServerProcess::Start(db(), {});
    ASSERT_TRUE(open.ok()) << open.status();
    int events = 0;
    grpc::Status status = List(open->grpc_address(), std::nullopt, &events);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(events, 3);
    ASSERT_EQ(open->Stop(SIGTERM).value_or(-1), 0);
  }

  const std::string token = Create("dashboard");
  const std::string spare = Create("spare");
  auto server = ServerProcess::Start(db(), {});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = server->grpc_address();

  grpc::Status missing = List(address, std::nullopt);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status wrong = List(address, "Bearer pdka_" + std::string(43, 'A'));
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), missing.error_message());
  EXPECT_EQ(List(address, token).error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << "a token without the Bearer scheme";
  EXPECT_EQ(Export(address, std::nullopt).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Watch(address, std::nullopt).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  int events = 0;
  grpc::Status valid = List(address, "Bearer " + token, &events);
  EXPECT_TRUE(valid.ok()) << valid.error_message();
  EXPECT_EQ(events, 3);
  EXPECT_TRUE(Export(address, "Bearer " + token).ok());
  EXPECT_EQ(Watch(address, "Bearer " + token).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  std::string health;
  grpc::Status checked = HealthCheck(address, &health);
  EXPECT_TRUE(checked.ok()) << checked.error_message();
  EXPECT_EQ(health, std::string("\x08\x01", 2)) << "SERVING";

  // Revoked: refused within 5 seconds, with the same message.
  CommandResult revoked = RunCli({"tokens", "revoke", "dashboard", "--db", db()});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  const auto revoked_at = std::chrono::steady_clock::now();
  grpc::Status after;
  do {
    after = List(address, "Bearer " + token);
    if (!after.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() - revoked_at < std::chrono::seconds(5));
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(after.error_message(), missing.error_message());
  EXPECT_TRUE(List(address, "Bearer " + spare).ok()) << "the other token still works";

  ASSERT_EQ(server->Stop(SIGTERM).value_or(-1), 0) << server->Stderr();

  std::vector<google::protobuf::Struct> log = AccessLog(db());
  int accepted = 0;
  int refused = 0;
  int health_records = 0;
  std::string previous_time;
  for (const google::protobuf::Struct& r : log) {
    EXPECT_LE(previous_time, Field(r, "time")) << "time-ordered";
    previous_time = Field(r, "time");
    if (absl::StartsWith(Field(r, "method"), "/pdk.archive.v1.EventArchive/")) {
      EXPECT_TRUE(absl::StartsWith(Field(r, "peer"), "ipv4:127.0.0.1:") ||
                  absl::StartsWith(Field(r, "peer"), "ipv6:"))
          << Field(r, "peer");
    }
    if (absl::StrContains(Field(r, "method"), "Health")) ++health_records;
    if (Field(r, "method") != kListMethod) continue;
    if (Field(r, "token") == "dashboard" && Field(r, "status") == "OK") {
      ++accepted;
      EXPECT_EQ(Field(r, "rows"), "3");
      EXPECT_NE(Field(r, "bytes"), "0");
      EXPECT_TRUE(absl::StrContains(Field(r, "filter"), "door.*")) << Field(r, "filter");
    }
    if (Field(r, "status") == "UNAUTHENTICATED") {
      ++refused;
      EXPECT_EQ(Field(r, "token"), "");
      EXPECT_EQ(Field(r, "code"), "16");
      EXPECT_EQ(Field(r, "rows"), "0");
      EXPECT_TRUE(absl::StrContains(Field(r, "filter"), "door.*")) << Field(r, "filter");
    }
  }
  EXPECT_GE(accepted, 1);
  EXPECT_GE(refused, 4);  // missing, wrong, no scheme, revoked
  EXPECT_EQ(health_records, 0);
  // Refused streams are there too, and the call made before any token.
  int refused_streams = 0;
  int anonymous_ok = 0;
  for (const google::protobuf::Struct& r : log) {
    if (Field(r, "status") == "UNAUTHENTICATED" &&
        (absl::EndsWith(Field(r, "method"), "/ExportEvents") ||
         absl::EndsWith(Field(r, "method"), "/WatchEvents"))) {
      ++refused_streams;
    }
    if (Field(r, "method") == kListMethod && Field(r, "token").empty() &&
        Field(r, "status") == "OK") {
      ++anonymous_ok;
    }
  }
  EXPECT_EQ(refused_streams, 2);
  EXPECT_EQ(anonymous_ok, 1);

  // --token selects one token's calls; --from/--to a time range.
  std::vector<google::protobuf::Struct> spare_log = AccessLog(db(), {"--token", "spare"});
  ASSERT_EQ(spare_log.size(), 1u);
  EXPECT_EQ(Field(spare_log[0], "token"), "spare");
  EXPECT_TRUE(AccessLog(db(), {"--to", "2000-01-01T00:00:00Z"}).empty());
  // Each reading of the log is in the log, as are the token changes, made
  // by the local user.
  std::vector<google::protobuf::Struct> later = AccessLog(db(), {"--from", "2000-01-01"});
  EXPECT_EQ(later.size(), log.size() + 3);
  int readings = 0;
  int revocations = 0;
  for (const google::protobuf::Struct& r : later) {
    if (Field(r, "method") == "pdk-archive access-log") ++readings;
    if (Field(r, "method") == "pdk-archive tokens revoke") {
      ++revocations;
      EXPECT_EQ(Field(r, "filter"), R"({"name":"dashboard"})");
      EXPECT_TRUE(absl::StartsWith(Field(r, "peer"), "local:")) << Field(r, "peer");
    }
  }
  EXPECT_EQ(readings, 3);
  EXPECT_EQ(revocations, 1);

  // The table names the token and the method.
  CommandResult table = RunCli({"access-log", "--db", db(), "--token", "dashboard"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, "dashboard")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "ListEvents")) << table.out;
  EXPECT_EQ(RunCli({"access-log", "--db", db(), "--from", "yesterdayish"}).exit_code, 2);

  // Last use is recorded (batched) for the token that was used.
  CommandResult listed = RunCli({"tokens", "list", "--db", db()});
  for (absl::string_view line : absl::StrSplit(listed.out, '\n')) {
    if (!absl::StartsWith(line, "spare ")) continue;
    std::vector<std::string> columns = absl::StrSplit(std::string(line), ' ', absl::SkipEmpty());
    ASSERT_EQ(columns.size(), 4u) << listed.out;
    EXPECT_NE(columns[2], "-") << listed.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, AccessTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

// Two serve nodes on one PostgreSQL archive: a token revoked with the CLI is
// refused by both within 5 seconds; both log to the one access log.
TEST(AccessTwoNodeTest, RevocationReachesEveryNodeWithinFiveSeconds) {
  const std::filesystem::path dir = testing::FreshTestDir("pdkarchive-access-two");
  auto archive = testing::TestArchive::Create(Engine::kPostgres, dir);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const std::string db = (*archive)->db();
  CommandResult created = RunCli({"tokens", "create", "shared", "--db", db});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string bearer = "Bearer " + FirstLine(created.out);

  auto a = ServerProcess::Start(db, {});
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = ServerProcess::Start(db, {});
  ASSERT_TRUE(b.ok()) << b.status();
  for (const ServerProcess* node : {&*a, &*b}) {
    EXPECT_TRUE(List(node->grpc_address(), bearer).ok());
    EXPECT_EQ(List(node->grpc_address(), std::nullopt).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }

  CommandResult revoked = RunCli({"tokens", "revoke", "shared", "--db", db});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  const auto revoked_at = std::chrono::steady_clock::now();
  for (const ServerProcess* node : {&*a, &*b}) {
    grpc::Status status;
    do {
      status = List(node->grpc_address(), bearer);
      if (!status.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() - revoked_at < std::chrono::seconds(5));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << "node on " << node->grpc_address();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at,
            std::chrono::seconds(5) + std::chrono::milliseconds(500));

  // Both nodes' calls reach the one access log, each with its token's name.
  ASSERT_EQ(a->Stop(SIGTERM).value_or(-1), 0);
  ASSERT_EQ(b->Stop(SIGTERM).value_or(-1), 0);
  std::set<std::string> peers_with_token;
  int shared = 0;
  for (const google::protobuf::Struct& r : AccessLog(db)) {
    if (Field(r, "token") == "shared") ++shared;
  }
  EXPECT_GE(shared, 2);
  archive->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pdkarchive
