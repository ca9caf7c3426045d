// Hostile and careless payloads (issue 13, items 2 and 7): text that is not
// UTF-8, JSON keys named twice, times a Timestamp cannot hold. The shared
// UTF-8 repair checked against protobuf's own validator, then the real
// `pdk-archive serve` fed signed deliveries over HTTP, or started over an
// archive file that an older version filled with such rows, and read back
// over gRPC (ListEvents, GetEvent, CountEvents, ExportEvents, WatchEvents).
#include "store/utf8.h"

#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "store/event.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

namespace pb = ::pdk::archive::v1;
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kSecret[] = "utf8-test-secret";
// U+FFFD REPLACEMENT CHARACTER.
const std::string kFffd = "\xEF\xBF\xBD";
// The range of google.protobuf.Timestamp, in seconds.
constexpr int64_t kMinTimestampSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimestampSeconds = 253402300799;  // 9999-12-31T23:59:59Z

bool ProtobufAcceptsUtf8(std::string_view text) {
  return google::protobuf::internal::IsStructurallyValidUTF8(
      text.data(), static_cast<int>(text.size()));
}

std::string Repeat(const std::string& text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  return out;
}

// Checks IsValidUtf8 against protobuf's validator (the check a `string`
// field must pass), and SanitizeUtf8 for well-formed output that equals a
// well-formed input.
void CheckAgainstProtobuf(const std::string& text) {
  const bool valid = ProtobufAcceptsUtf8(text);
  ASSERT_EQ(store::IsValidUtf8(text), valid) << absl::CEscape(text);
  const std::string repaired = store::SanitizeUtf8(text);
  ASSERT_TRUE(ProtobufAcceptsUtf8(repaired)) << absl::CEscape(text);
  if (valid) {
    ASSERT_EQ(repaired, text);
  }
  std::string in_place = text;
  ASSERT_EQ(store::SanitizeUtf8InPlace(&in_place), !valid);
  ASSERT_EQ(in_place, repaired);
}

// Every one- and two-byte string, and every three-byte one that starts with
// a lead byte of three or four.
TEST(Utf8Test, AgreesWithProtobufOnEveryShortSequence) {
  std::string text;
  for (int a = 0; a < 256; ++a) {
    text.assign(1, static_cast<char>(a));
    CheckAgainstProtobuf(text);
    for (int b = 0; b < 256; ++b) {
      text.assign({static_cast<char>(a), static_cast<char>(b)});
      CheckAgainstProtobuf(text);
      if (a < 0xE0) continue;  // three bytes after a three- or four-byte lead
      for (int c = 0; c < 256; ++c) {
        text.assign(
            {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
        CheckAgainstProtobuf(text);
      }
    }
  }
}

TEST(Utf8Test, AgreesWithProtobufInsideLongerText) {
  // Four-byte sequences, and every kind of sequence at each offset of text
  // long enough for the eight-bytes-a-step ASCII scan.
  std::mt19937 rng(1313);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> lead(0xF0, 0xF7);
  std::uniform_int_distribution<int> continuation(0x7F, 0xC0);
  for (int i = 0; i < 200000; ++i) {
    std::string sequence = {static_cast<char>(lead(rng))};
    for (int k = 0; k < 3; ++k)
      sequence.push_back(static_cast<char>(continuation(rng)));
    CheckAgainstProtobuf(sequence);
    std::string text(24, 'a');
    const size_t at = static_cast<size_t>(i % 20);
    for (size_t k = 0; k < 4; ++k) {
      text[at + k] = i % 2 == 0 ? sequence[k] : static_cast<char>(byte(rng));
    }
    CheckAgainstProtobuf(text);
  }
}

TEST(Utf8Test, ReplacesEachMaximalSubpartWithOneReplacementCharacter) {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case cases[] = {
      {"", ""},
      {"plain ASCII, quite long enough", "plain ASCII, quite long enough"},
      {"caf\xC3\xA9 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xF0\x9F\x98\x80"},
      // RapidJSON's bytes for "\udc00": a surrogate, three subparts.
      {"Door\xED\xB0\x80", "Door" + Repeat(kFffd, 3)},
      {"\xED\xA0\x80\xED\xB0\x80", Repeat(kFffd, 6)},
      {"\xC0\xAF", Repeat(kFffd, 2)},          // overlong '/'
      {"\xE0\x80\xAF", Repeat(kFffd, 3)},      // overlong '/'
      {"\xF4\x90\x80\x80", Repeat(kFffd, 4)},  // above U+10FFFF
      {"\xE2\x82", kFffd},                     // truncated euro sign
      {"\xE2\x82x", kFffd + "x"},
      {"\xF0\x9F\x98", kFffd},
      {"a\x80\x80z", "a" + Repeat(kFffd, 2) + "z"},
      {"\xFF\xFE", Repeat(kFffd, 2)},
      // Unicode 15 §3.9, Table 3-11's example.
      {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
       "a" + Repeat(kFffd, 3) + "b" + kFffd + "c" + Repeat(kFffd, 2) + "d"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::CEscape(c.in));
    EXPECT_EQ(store::SanitizeUtf8(c.in), c.out);
    EXPECT_EQ(store::IsValidUtf8(c.in), c.in == c.out);
  }
}

int64_t Millis(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1000000;
}

// A running `pdk-archive serve` over `db` and a gRPC stub to it.
class ArchiveClient {
 public:
  explicit ArchiveClient(const ServerProcess& server)
      : stub_(pb::EventArchive::NewStub(grpc::CreateChannel(
            server.grpc_address(), grpc::InsecureChannelCredentials()))) {}

  // Every event, page by page (small pages, so paging passes bad rows too).
  std::vector<pb::Event> ListAll() {
    std::vector<pb::Event> events;
    std::string token;
    for (int page = 0; page < 100; ++page) {
      pb::ListEventsRequest request;
      request.set_page_size(2);
      request.set_page_token(token);
      pb::ListEventsResponse response;
      grpc::ClientContext context;
      SetDeadline(context);
      const grpc::Status status =
          stub_->ListEvents(&context, request, &response);
      EXPECT_TRUE(status.ok())
          << status.error_code() << " " << status.error_message();
      if (!status.ok()) break;
      events.insert(events.end(), response.events().begin(),
                    response.events().end());
      token = response.next_page_token();
      if (token.empty()) break;
    }
    return events;
  }

  grpc::Status Get(int64_t sequence, pb::Event* event) {
    pb::GetEventRequest request;
    request.set_sequence(sequence);
    grpc::ClientContext context;
    SetDeadline(context);
    return stub_->GetEvent(&context, request, event);
  }

  grpc::Status Count(const std::vector<pb::Dimension>& group_by,
                     pb::CountEventsResponse* response) {
    pb::CountEventsRequest request;
    for (pb::Dimension dimension : group_by) request.add_group_by(dimension);
    grpc::ClientContext context;
    SetDeadline(context);
    return stub_->CountEvents(&context, request, response);
  }

  grpc::Status Export(std::string* csv) {
    pb::ExportEventsRequest request;
    request.set_include_raw(true);
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = stub_->ExportEvents(&context, request);
    pb::ExportEventsResponse response;
    while (stream->Read(&response)) csv->append(response.csv_chunk());
    return stream->Finish();
  }

  // The first `count` events a watch from the start of the archive sends.
  std::vector<pb::Event> Watch(size_t count) {
    pb::WatchEventsRequest request;
    request.set_after_sequence(0);
    grpc::ClientContext context;
    SetDeadline(context);
    auto stream = stub_->WatchEvents(&context, request);
    std::vector<pb::Event> events;
    pb::Event event;
    while (events.size() < count && stream->Read(&event))
      events.push_back(event);
    context.TryCancel();
    const grpc::Status status = stream->Finish();
    EXPECT_EQ(events.size(), count)
        << status.error_code() << " " << status.error_message();
    return events;
  }

 private:
  static void SetDeadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
  }

  std::unique_ptr<pb::EventArchive::Stub> stub_;
};

class HostilePayloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-utf8");
    db_ = (dir_ / "archive.db").string();
    auto server = ServerProcess::Start(db_, {"--secret", kSecret});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::make_unique<ServerProcess>(*std::move(server));
    client_ = std::make_unique<ArchiveClient>(*server_);
  }

  void TearDown() override {
    client_.reset();
    if (server_) {
      auto code = server_->Stop(SIGTERM);
      EXPECT_TRUE(code.ok() && *code == 0) << server_->Stderr();
    }
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  testing::HttpReply Post(const std::string& body) {
    auto reply = testing::HttpRequest(server_->http_port(), "POST", "/webhooks",
                                      body, SignedHeaders(kSecret, body));
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *reply : testing::HttpReply{};
  }

  static std::string DoorEvent(
      const std::string& id, const std::string& door_name,
      const std::string& topic = "door.request.allowed") {
    return absl::StrCat(
        R"({"id":")", id, R"(","body":{"doorId":3,"personId":17},)",
        R"("metadata":{"occurred":1646922708300,"doorName":")", door_name,
        R"("},"panelId":"1070000","topic":")", topic, R"("})");
  }

  std::filesystem::path dir_;
  std::string db_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ArchiveClient> client_;
};

TEST_F(HostilePayloadTest, LoneSurrogatesAreStoredAsReplacementCharacters) {
  // As PDK sends a name cut at a UTF-16 boundary: a lone low surrogate, a
  // lone high one (an id too), one in the topic, then an ordinary event.
  const std::vector<std::string> bodies = {
      DoorEvent("s-1", R"(Door\udc00)"),
      DoorEvent(R"(s-2\ud83d)", R"(Gate\ud83d)"),
      DoorEvent("s-3", "Hall", R"(door.request.allowed\udc00)"),
      DoorEvent("s-4", "Lobby"),
  };
  for (size_t i = 0; i < bodies.size(); ++i) {
    const testing::HttpReply reply = Post(bodies[i]);
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.body,
              absl::StrCat(R"({"sequence":)", i + 1, R"(,"duplicate":false})"));
  }
  // A redelivery of the same body is still a duplicate.
  EXPECT_EQ(Post(bodies[0]).body, R"({"sequence":1,"duplicate":true})");
  EXPECT_EQ(Post(bodies[1]).body, R"({"sequence":2,"duplicate":true})");

  struct Want {
    std::string event_id, topic, family, door_name;
  };
  const Want want[] = {
      {"s-1", "door.request.allowed", "panel", "Door" + kFffd},
      {"s-2" + kFffd, "door.request.allowed", "panel", "Gate" + kFffd},
      // An unknown topic: the generic catalog reads no event id.
      {"", "door.request.allowed" + kFffd, "unknown", "Hall"},
      {"s-4", "door.request.allowed", "panel", "Lobby"},
  };
  auto check = [&](const pb::Event& event) {
    ASSERT_GE(event.sequence(), 1);
    ASSERT_LE(event.sequence(), 4);
    const size_t i = static_cast<size_t>(event.sequence() - 1);
    EXPECT_EQ(event.event_id(), want[i].event_id);
    EXPECT_EQ(event.topic(), want[i].topic);
    EXPECT_EQ(event.family(), want[i].family);
    EXPECT_EQ(event.door_name(), want[i].door_name);
    EXPECT_EQ(event.door_id(), 3);
    EXPECT_EQ(event.raw(), bodies[i]);  // the escapes as sent, byte for byte
  };

  const std::vector<pb::Event> listed = client_->ListAll();
  ASSERT_EQ(listed.size(), 4u);
  for (const pb::Event& event : listed) check(event);
  for (int64_t sequence = 1; sequence <= 4; ++sequence) {
    pb::Event event;
    const grpc::Status status = client_->Get(sequence, &event);
    ASSERT_TRUE(status.ok()) << sequence << ": " << status.error_message();
    check(event);
  }
  pb::CountEventsResponse counts;
  const grpc::Status counted = client_->Count({pb::DIMENSION_TOPIC}, &counts);
  ASSERT_TRUE(counted.ok()) << counted.error_message();
  EXPECT_EQ(counts.total(), 4);
  std::map<std::string, int64_t> by_topic;
  for (const pb::Group& group : counts.groups())
    by_topic[group.key(0)] = group.count();
  EXPECT_EQ(by_topic, (std::map<std::string, int64_t>{
                          {"door.request.allowed", 3},
                          {"door.request.allowed" + kFffd, 1}}));
  std::string csv;
  const grpc::Status exported = client_->Export(&csv);
  ASSERT_TRUE(exported.ok()) << exported.error_message();
  EXPECT_TRUE(ProtobufAcceptsUtf8(csv));
  EXPECT_TRUE(absl::StrContains(csv, ",Door" + kFffd + ","));
  EXPECT_TRUE(absl::StrContains(csv, R"(""doorName"":""Door\udc00"")"));
  for (const pb::Event& event : client_->Watch(4)) check(event);

  // On disk: the repaired row, the payload as received.
  const std::vector<store::EventRow> rows = testing::ReadAllRows(db_);
  ASSERT_EQ(rows.size(), 4u);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].door_name, want[i].door_name);
    EXPECT_EQ(rows[i].raw, bodies[i]);
  }
}

TEST_F(HostilePayloadTest, BytesThatAreNotUtf8AreRefusedAndNothingIsStored) {
  ASSERT_EQ(Post(DoorEvent("ok", "Door")).status, 200);
  for (const std::string& bad :
       {std::string("Door\xFF"), std::string("Door\xED\xB0\x80"),
        std::string("Door\xC0\xAF")}) {
    const testing::HttpReply reply = Post(DoorEvent("bad", bad));
    EXPECT_EQ(reply.status, 400) << reply.body;
    EXPECT_TRUE(
        absl::StartsWith(reply.body, R"({"error":"body is not valid JSON)"))
        << reply.body;
  }
  EXPECT_EQ(client_->ListAll().size(), 1u);
}

TEST_F(HostilePayloadTest, ADuplicatedKeyIsStoredWithItsLastValue) {
  const std::string body =
      R"({"topic":"a.b","topic":"door.request.allowed","id":"d-1",)"
      R"("panelId":"1070000","body":{"doorId":1,"personId":5,"doorId":2},)"
      R"("metadata":{"doorName":"First","occurred":1646922708300,"doorName":"Last"}})";
  ASSERT_EQ(Post(body).status, 200);
  pb::Event event;
  const grpc::Status status = client_->Get(1, &event);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(event.topic(), "door.request.allowed");
  EXPECT_EQ(event.family(), "panel");
  EXPECT_EQ(event.door_id(), 2);
  EXPECT_EQ(event.person_id(), 5);
  EXPECT_EQ(event.door_name(), "Last");
  EXPECT_EQ(event.raw(), body);
  pb::CountEventsResponse counts;
  ASSERT_TRUE(
      client_->Count({pb::DIMENSION_TOPIC, pb::DIMENSION_DOOR}, &counts).ok());
  ASSERT_EQ(counts.groups_size(), 1);
  EXPECT_EQ(counts.groups(0).key(0), "door.request.allowed");
  EXPECT_EQ(counts.groups(0).key(1), "2");
}

TEST_F(HostilePayloadTest,
       AnOccurredTimeInYearZeroFallsThroughToTheNextSource) {
  // body.occurred in year 0000 → metadata.occurred.
  const std::string door =
      R"({"id":"y-1","body":{"doorId":1,"occurred":-62167219200000},)"
      R"("metadata":{"occurred":1646922708300},"panelId":"1070000",)"
      R"("topic":"door.request.allowed"})";
  // timestamp in year 0000 → the receive time.
  const std::string panel =
      R"({"panelId":"1070000","timestamp":"0000-06-01T00:00:00Z",)"
      R"("topic":"panel.connected"})";
  ASSERT_EQ(Post(door).status, 200);
  ASSERT_EQ(Post(panel).status, 200);

  pb::Event first;
  ASSERT_TRUE(client_->Get(1, &first).ok());
  EXPECT_EQ(Millis(first.occur_time()), 1646922708300);
  pb::Event second;
  ASSERT_TRUE(client_->Get(2, &second).ok());
  EXPECT_EQ(Millis(second.occur_time()), Millis(second.receive_time()));
  EXPECT_GT(second.occur_time().seconds(), 1700000000);  // now, not year 0

  // Counted with the other fields that could not be read.
  auto metrics = testing::HttpRequest(server_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(metrics->body,
                                "\npdkarchive_unreadable_fields_total 2\n"))
      << metrics->body;
}

// An archive an older version wrote: rows whose text is not UTF-8 and whose
// times a Timestamp cannot hold, stored as the normalizer used to store them.
class OldArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-utf8-old");
    db_ = (dir_ / "archive.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::string db_;
};

store::EventRow Row(const std::string& id, int64_t occur_ms) {
  store::EventRow row;
  row.event_id = id;
  row.topic = "door.request.allowed";
  row.family = "panel";
  row.panel_id = "1070000";
  row.ou_id = "ou";
  row.door_id = 3;
  row.door_name = "Door";
  row.person_id = 17;
  row.actor_user_id = "user";
  row.occur_time_ms = occur_ms;
  row.receive_time_ms = 1646922708300;
  row.subscription = "default";
  row.dedupe_key = "key-" + id + std::string(16, '.');
  row.dedupe_key.resize(16);
  row.raw = R"({"topic":"door.request.allowed"})";
  return row;
}

TEST_F(OldArchiveTest, RowsWithInvalidUtf8OrTimesOutOfRangeNeverStopAReader) {
  std::vector<store::EventRow> rows = {
      Row("a", 1646922708300), Row("b", 1646922708301),
      Row("c", 253402300800000), Row("d", 1646922708302)};
  store::EventRow& bad = rows[1];
  bad.topic = "door.request.allowed\xED\xB0\x80";
  bad.family = "panel\xFF";
  bad.panel_id = "p\xFF";
  bad.ou_id = "ou\xE2\x82";
  bad.door_name = "Door\xED\xB0\x80";
  bad.event_id = "b\xC0\xAF";
  bad.actor_user_id = "u\xF0\x9F\x98";
  bad.subscription = "sub\x80";
  bad.holder_name = "Ann\xC3";
  bad.raw = "{\"topic\":\"x\xFF\"}";
  bad.occur_time_ms = -62167219200000;  // 0000-01-01T00:00:00Z
  {
    auto sqlite = store::SqliteStore::Open(db_);
    ASSERT_TRUE(sqlite.ok()) << sqlite.status();
    for (store::EventRow& row : rows) (*sqlite)->Prepare(row);
    auto stored = (*sqlite)->AppendBatch(rows);
    ASSERT_TRUE(stored.ok()) << stored.status();
  }
  ASSERT_EQ(testing::ReadAllRows(db_)[1].door_name, "Door\xED\xB0\x80");

  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client_holder = std::make_unique<ArchiveClient>(*server);
  ArchiveClient& client = *client_holder;

  const std::string fffd3 = Repeat(kFffd, 3);
  auto check = [&](const pb::Event& event) {
    const std::string id(1, static_cast<char>('a' + event.sequence() - 1));
    if (event.sequence() != 2) {
      EXPECT_EQ(event.event_id(), id);
      EXPECT_EQ(event.door_name(), "Door");
    } else {
      EXPECT_EQ(event.topic(), "door.request.allowed" + fffd3);
      EXPECT_EQ(event.family(), "panel" + kFffd);
      EXPECT_EQ(event.panel_id(), "p" + kFffd);
      EXPECT_EQ(event.ou_id(), "ou" + kFffd);
      EXPECT_EQ(event.door_name(), "Door" + fffd3);
      EXPECT_EQ(event.event_id(), "b" + Repeat(kFffd, 2));
      EXPECT_EQ(event.actor_user_id(), "u" + kFffd);
      EXPECT_EQ(event.subscription(), "sub" + kFffd);
      EXPECT_EQ(event.holder_name(), "Ann" + kFffd);
      EXPECT_EQ(event.raw(), "{\"topic\":\"x" + kFffd + "\"}");
    }
    // Clamped into the range a Timestamp holds.
    EXPECT_GE(event.occur_time().seconds(), kMinTimestampSeconds);
    EXPECT_LE(event.occur_time().seconds(), kMaxTimestampSeconds);
    EXPECT_GE(event.occur_time().nanos(), 0);
    EXPECT_LE(event.occur_time().nanos(), 999999999);
    if (event.sequence() == 2) {
      EXPECT_EQ(event.occur_time().seconds(), kMinTimestampSeconds);
      EXPECT_EQ(event.occur_time().nanos(), 0);
    }
    if (event.sequence() == 3) {
      EXPECT_EQ(event.occur_time().seconds(), kMaxTimestampSeconds);
      EXPECT_EQ(event.occur_time().nanos(), 999000000);
    }
  };

  const std::vector<pb::Event> listed = client.ListAll();
  ASSERT_EQ(listed.size(), 4u);
  for (const pb::Event& event : listed) check(event);
  for (int64_t sequence = 1; sequence <= 4; ++sequence) {
    pb::Event event;
    const grpc::Status status = client.Get(sequence, &event);
    ASSERT_TRUE(status.ok()) << sequence << ": " << status.error_message();
    check(event);
  }
  for (const std::vector<pb::Dimension>& group_by :
       {std::vector<pb::Dimension>{pb::DIMENSION_TOPIC},
        std::vector<pb::Dimension>{pb::DIMENSION_PANEL, pb::DIMENSION_DAY}}) {
    pb::CountEventsResponse counts;
    const grpc::Status status = client.Count(group_by, &counts);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(counts.total(), 4);
    bool saw_bad = false;
    for (const pb::Group& group : counts.groups()) {
      saw_bad = saw_bad || group.key(0) == "door.request.allowed" + fffd3 ||
                group.key(0) == "p" + kFffd;
    }
    EXPECT_TRUE(saw_bad);
  }
  std::string csv;
  const grpc::Status exported = client.Export(&csv);
  ASSERT_TRUE(exported.ok()) << exported.error_message();
  EXPECT_TRUE(ProtobufAcceptsUtf8(csv));
  EXPECT_TRUE(absl::StrContains(csv, ",Door" + fffd3 + ","));
  EXPECT_TRUE(absl::StrContains(
      csv, ",\"{\"\"topic\"\":\"\"x" + kFffd + "\"\"}\",,,Ann" + kFffd + ",,\r\n"));
  const std::vector<pb::Event> watched = client.Watch(4);
  for (size_t i = 0; i < watched.size(); ++i) {
    EXPECT_EQ(watched[i].sequence(), static_cast<int64_t>(i + 1));
    check(watched[i]);
  }

  client_holder.reset();  // done with the channel, as HostilePayloadTest is
  auto code = server->Stop(SIGTERM);
  EXPECT_TRUE(code.ok() && *code == 0) << server->Stderr();
}

}  // namespace
}  // namespace pdkarchive
