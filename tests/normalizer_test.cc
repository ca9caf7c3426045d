// Normalizer behaviour: every topic of the PDK spec, field types PDK might
// change, refusals, dedupe keys and ISO 8601 times.
#include "ingest/normalizer.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "tests/test_support/test_data.h"

namespace pdkarchive::ingest {
namespace {

constexpr int64_t kReceiveMs = 1700000000123;
constexpr std::string_view kSubscription = "default";

struct TopicExample {
  std::string topic;
  std::string family;
  std::string body;  // the spec's example payload, as compact JSON
};

void PrintTo(const TopicExample& example, std::ostream* os) {
  *os << example.topic;
}

std::vector<TopicExample> LoadTopicExamples() {
  const std::string json = pdkarchive::testing::ReadTestData("topics.json");
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  std::vector<TopicExample> examples;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("topics")) {
    ADD_FAILURE() << "topics.json is not the expected document";
    return examples;
  }
  for (const auto& entry : doc["topics"].GetArray()) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    entry["example"].Accept(writer);
    examples.push_back({entry["topic"].GetString(), entry["family"].GetString(),
                        std::string(buffer.GetString(), buffer.GetSize())});
  }
  return examples;
}

const std::vector<TopicExample>& TopicExamples() {
  static const auto* const examples =
      new std::vector<TopicExample>(LoadTopicExamples());
  return *examples;
}

const TopicExample& ExampleOf(std::string_view topic) {
  for (const TopicExample& example : TopicExamples()) {
    if (example.topic == topic) return example;
  }
  ADD_FAILURE() << "no example for " << topic;
  static const auto* const none = new TopicExample{};
  return *none;
}

Normalized MustNormalize(std::string_view body) {
  absl::StatusOr<Normalized> normalized =
      Normalize(body, kReceiveMs, kSubscription);
  EXPECT_TRUE(normalized.ok()) << normalized.status() << "\nbody: " << body;
  return normalized.ok() ? *std::move(normalized) : Normalized{};
}

// What DESIGN.md "Normalized event row" says each spec example normalizes
// to, worked out by hand from its rules (occur_time kReceive = receive time).
constexpr std::optional<int64_t> kNone = std::nullopt;
constexpr int64_t kReceive = -1;

struct Expected {
  std::string_view topic;
  std::string_view family;
  std::string_view event_id;
  std::string_view panel_id;
  std::string_view ou_id;
  std::optional<int64_t> door_id;
  std::string_view door_name;
  std::optional<int64_t> person_id;
  std::string_view actor_user_id;
  int64_t occur_time_ms;
  int unreadable_fields;  // only the spec's placeholder timestamp
};

// clang-format off
const Expected kExpected[] = {
    // topic, family, event_id, panel_id, ou_id, door_id, door_name,
    // person_id, actor_user_id, occur_time_ms, unreadable_fields
    {"ou.created", "org", "", "", "6231d2e96348ca00019f7474", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"ou.deleted", "org", "", "", "6231d2e96348ca00019f7474", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"ou.updated", "org", "", "", "6231d2e96348ca00019f7474", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"panel.created", "org", "", "1070000", "57e50e4840ce4f00017df412", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"panel.deleted", "org", "", "1070000", "57e50e4840ce4f00017df412", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"panel.updated", "org", "", "1070000", "57e50e4840ce4f00017df412", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"permission.accepted", "org", "", "", "57e50e4840ce4f00017df412", kNone, "", kNone, "6231d7816348ca00019f7476", kReceive, 0},
    {"permission.created", "org", "", "", "57e50e4840ce4f00017df412", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"permission.deleted", "org", "", "", "57e50e4840ce4f00017df412", kNone, "", kNone, "5f92b1682633360001cd3a4f", kReceive, 0},
    {"permission.updated", "org", "", "", "57e50e4840ce4f00017df412", kNone, "", kNone, "6231d7816348ca00019f7476", kReceive, 0},
    {"door.alarm.forced", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.alarm.forced.cleared", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.alarm.propped.alloff", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.alarm.propped.off", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.alarm.propped.on", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.autoopen.off", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.autoopen.on", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.autoopen.override.off", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.autoopen.override.on", "panel", "624af2c6-fc08-403f-94c7-a2d87d0703df", "1070000", "", 1, "Door Name", kNone, "", 1646921051104, 0},
    {"door.forceclose.off", "panel", "5bc4ed65-7755-44e7-9026-9c88931c9717", "1070000", "", 1, "Door Name", kNone, "", 1646914505809, 0},
    {"door.forceclose.on", "panel", "5bc4ed65-7755-44e7-9026-9c88931c9717", "1070000", "", 1, "Door Name", kNone, "", 1646914505809, 0},
    {"door.forceopen.off", "panel", "5bc4ed65-7755-44e7-9026-9c88931c9717", "1070000", "", 1, "Door Name", kNone, "", 1646914505809, 0},
    {"door.forceopen.on", "panel", "5bc4ed65-7755-44e7-9026-9c88931c9717", "1070000", "", 1, "Door Name", kNone, "", 1646914505809, 0},
    {"door.input.dps.closed", "panel", "7fcb31b2-1dac-4754-9e74-ca5bae5023a1", "1070000", "", 1, "Door Name", kNone, "", 1646913163975, 0},
    {"door.input.dps.opened", "panel", "3222d1e4-2bdf-4dab-a21b-7883ddd3156d", "1070000", "", 1, "Door Name", kNone, "", 1646911014614, 0},
    {"door.input.relay.off", "panel", "8f88f40d-eee7-48b4-84ba-03c0010094d6", "1070000", "", 1, "Door Name", kNone, "", 1646913355079, 0},
    {"door.input.relay.on", "panel", "8f88f40d-eee7-48b4-84ba-03c0010094d6", "1070000", "", 1, "Door Name", kNone, "", 1646913355079, 0},
    {"door.input.rex.off", "panel", "8f88f40d-eee7-48b4-84ba-03c0010094d6", "1070000", "", 1, "Door Name", kNone, "", 1646913355079, 0},
    {"door.input.rex.on", "panel", "8f88f40d-eee7-48b4-84ba-03c0010094d6", "1070000", "", 1, "Door Name", kNone, "", 1646913355079, 0},
    {"door.input.virtualread", "panel", "81c55279-f936-446e-b9b5-cba6231b6001", "1070000", "", 1, "", 1, "", kReceive, 0},
    {"door.request.allowed", "panel", "679521e4-c455-423f-8155-d012c98f5dcc", "1070000", "", 1, "Door Name", 1, "", 1646922708300, 0},
    {"door.request.denied", "panel", "679521e4-c455-423f-8155-d012c98f5dcc", "1070000", "", 1, "Door Name", 1, "", 1646922708300, 0},
    {"door.request.duress", "panel", "679521e4-c455-423f-8155-d012c98f5dcc", "1070000", "", 1, "Door Name", 1, "", 1646922708300, 0},
    {"door.request.found", "panel", "679521e4-c455-423f-8155-d012c98f5dcc", "1070000", "", 1, "Door Name", 1, "", 1646922708300, 0},
    {"door.request.multiallowed", "panel", "679521e4-c455-423f-8155-d012c98f5dcc", "1070000", "", 1, "Door Name", 1, "", 1646922708300, 0},
    {"door.request.unknown", "panel", "679521e4-c455-423f-8155-d012c98f5dcc", "1070000", "", 1, "Door Name", kNone, "", 1646922708300, 0},
    {"endpoint.added", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.alarm.comloss.off", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.alarm.comloss.on", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.deleted", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.bh.state", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.lp.off", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.lp.on", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.pb.connected", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.pb.disconnected", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.pb.status", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.pi.off", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.pi.on", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.pi.status", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.po.absent", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.po.present", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"endpoint.input.pp.status", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"entity.added", "panel", "1d3e4c21-b156-4a24-825c-a66977639112", "1070000", "", kNone, "", 1, "5f92b1682633360001cd3a4f", 1647000459313, 0},
    {"entity.modified", "panel", "b9239aaf-049e-482d-b079-1239de0a1e5e", "1070000", "", kNone, "", 1, "5f92b1682633360001cd3a4f", 1647000563481, 0},
    {"entity.removed", "panel", "792a0140-23a2-4448-9b1d-f26dfb249f22", "1070000", "", kNone, "", 1, "5f92b1682633360001cd3a4f", 1647000679962, 0},
    {"error.card.parse", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", kNone, "", kNone, "", 1640785537799, 0},
    {"error.packetized.protocol", "panel", "1adab79b-7926-4289-9efb-72df01ab8447", "1070000", "", 1, "Door Name", kNone, "", 1646993791971, 0},
    {"floorgroup.activated", "panel", "51bda978-3118-4298-8f7d-43c9cc4ababb", "1070000", "", kNone, "", kNone, "", 1648730636236, 0},
    {"notification.client.command", "panel", "d4d372dd-c994-4b84-88a0-a883b44ada10", "1070000", "", 1, "Door Name", 1, "1", 1646914071461, 0},
    {"notification.device.created", "panel", "86fd4698-721e-4955-a76c-2c889b7dafbd", "1070000", "", 1, "Name", kNone, "", 1646998886112, 0},
    {"notification.device.deleted", "panel", "86fd4698-721e-4955-a76c-2c889b7dafbd", "1070000", "", 1, "1111111111111111111111111111111111111", kNone, "", 1646998886112, 0},
    {"notification.device.updated", "panel", "595878a0-4876-4315-a04b-8a80326820d9", "1070000", "", 1, "New Name", kNone, "", 1646999570173, 0},
    {"notification.intercom.created", "panel", "b7162645-de0d-4413-bbe0-1c7c2341493f", "1070000", "", kNone, "", kNone, "", 1646995828007, 0},
    {"notification.intercom.deleted", "panel", "96c26784-2571-437e-8324-3d038255a7ba", "1070000", "", kNone, "", kNone, "", 1646996419371, 0},
    {"notification.intercom.updated", "panel", "96c26784-2571-437e-8324-3d038255a7ba", "1070000", "", kNone, "", kNone, "", 1646996419371, 0},
    {"notification.person.created", "panel", "db642b4f-c3db-448e-8d39-9d7d934047ff", "1070000", "", kNone, "", 1, "", 1646995277820, 0},
    {"notification.person.deleted", "panel", "b7162645-de0d-4413-bbe0-1c7c2341493f", "1070000", "", kNone, "", 1, "", 1646995828007, 0},
    {"notification.person.updated", "panel", "13572d7b-5ef9-4637-b31f-1e3421115620", "1070000", "", kNone, "", 1, "", 1646995531913, 0},
    {"panel.connected", "panel", "", "1070000", "", kNone, "", kNone, "", kReceive, 1},
    {"panel.disconnected", "panel", "", "1070000", "", kNone, "", kNone, "", kReceive, 1},
};
// clang-format on

const Expected* FindExpected(std::string_view topic) {
  for (const Expected& expected : kExpected) {
    if (expected.topic == topic) return &expected;
  }
  return nullptr;
}

TEST(NormalizerTest, ExpectationTableCoversExactlyTheSpecTopics) {
  ASSERT_EQ(TopicExamples().size(), 70u);
  EXPECT_EQ(std::size(kExpected), TopicExamples().size());
  for (const TopicExample& example : TopicExamples()) {
    EXPECT_NE(FindExpected(example.topic), nullptr) << example.topic;
  }
}

class NormalizerTopicTest : public ::testing::TestWithParam<TopicExample> {};

TEST_P(NormalizerTopicTest, SpecExampleNormalizesAsDesigned) {
  const TopicExample& example = GetParam();
  const Expected* expected = FindExpected(example.topic);
  ASSERT_NE(expected, nullptr) << "no expectation for " << example.topic;

  const Normalized normalized = MustNormalize(example.body);
  const store::EventRow& row = normalized.row;
  EXPECT_TRUE(normalized.known_topic);
  EXPECT_EQ(normalized.unreadable_fields, expected->unreadable_fields);
  EXPECT_EQ(row.sequence, 0);
  EXPECT_EQ(row.topic, example.topic);
  EXPECT_EQ(row.family, example.family);
  EXPECT_EQ(row.family, expected->family);
  EXPECT_EQ(row.event_id, expected->event_id);
  EXPECT_EQ(row.panel_id, expected->panel_id);
  EXPECT_EQ(row.ou_id, expected->ou_id);
  EXPECT_EQ(row.door_id, expected->door_id);
  EXPECT_EQ(row.door_name, expected->door_name);
  EXPECT_EQ(row.person_id, expected->person_id);
  EXPECT_EQ(row.actor_user_id, expected->actor_user_id);
  EXPECT_EQ(row.occur_time_ms, expected->occur_time_ms == kReceive
                                   ? kReceiveMs
                                   : expected->occur_time_ms);
  EXPECT_EQ(row.receive_time_ms, kReceiveMs);
  EXPECT_EQ(row.subscription, kSubscription);
  EXPECT_EQ(row.raw, example.body);
  EXPECT_EQ(row.dedupe_key,
            DedupeKey(row.topic, row.panel_id, row.event_id, row.raw));
}

std::string TopicTestName(const ::testing::TestParamInfo<TopicExample>& info) {
  std::string name = info.param.topic;
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(SpecTopics, NormalizerTopicTest,
                         ::testing::ValuesIn(TopicExamples()), TopicTestName);

TEST(NormalizerTest, DoorRequestAllowedNamesDoorPersonPanelAndEvent) {
  const store::EventRow row =
      MustNormalize(ExampleOf("door.request.allowed").body).row;
  EXPECT_EQ(row.family, "panel");
  EXPECT_EQ(row.door_id, 1);
  EXPECT_EQ(row.door_name, "Door Name");
  EXPECT_EQ(row.person_id, 1);
  EXPECT_EQ(row.panel_id, "1070000");
  EXPECT_EQ(row.event_id, "679521e4-c455-423f-8155-d012c98f5dcc");
  EXPECT_EQ(row.occur_time_ms, 1646922708300);
}

TEST(NormalizerTest, BodyOccurredWinsOverMetadataOccurred) {
  const store::EventRow row = MustNormalize(ExampleOf("entity.added").body).row;
  EXPECT_EQ(row.person_id, 1);
  EXPECT_EQ(row.actor_user_id, "5f92b1682633360001cd3a4f");
  EXPECT_EQ(row.occur_time_ms, 1647000459313);
}

TEST(NormalizerTest, ClientCommandReadsDetailsAndNumericUserId) {
  const store::EventRow row =
      MustNormalize(ExampleOf("notification.client.command").body).row;
  EXPECT_EQ(row.door_id, 1);
  EXPECT_EQ(row.door_name, "Door Name");
  EXPECT_EQ(row.person_id, 1);
  EXPECT_EQ(row.actor_user_id, "1");
}

TEST(NormalizerTest, PersonNotificationNamesThePersonByBodyId) {
  const store::EventRow row =
      MustNormalize(ExampleOf("notification.person.created").body).row;
  EXPECT_EQ(row.person_id, 1);
  EXPECT_EQ(row.door_id, std::nullopt);
}

TEST(NormalizerTest, DeviceNotificationNamesTheDoorByBodyId) {
  const store::EventRow created =
      MustNormalize(ExampleOf("notification.device.created").body).row;
  EXPECT_EQ(created.door_id, 1);
  EXPECT_EQ(created.door_name, "Name");
  const store::EventRow updated =
      MustNormalize(ExampleOf("notification.device.updated").body).row;
  EXPECT_EQ(updated.door_id, 1);
  EXPECT_EQ(updated.door_name, "New Name");
}

TEST(NormalizerTest, OrganizationEventIdNamesTheOuNotTheEvent) {
  const store::EventRow row = MustNormalize(ExampleOf("ou.created").body).row;
  EXPECT_EQ(row.family, "org");
  EXPECT_EQ(row.ou_id, "6231d2e96348ca00019f7474");
  EXPECT_EQ(row.event_id, "");
  EXPECT_EQ(row.actor_user_id, "5f92b1682633360001cd3a4f");
  EXPECT_EQ(row.occur_time_ms, kReceiveMs);
}

TEST(NormalizerTest, PanelCreatedNamesPanelAndOu) {
  const store::EventRow row =
      MustNormalize(ExampleOf("panel.created").body).row;
  EXPECT_EQ(row.family, "org");
  EXPECT_EQ(row.panel_id, "1070000");
  EXPECT_EQ(row.ou_id, "57e50e4840ce4f00017df412");
  EXPECT_EQ(row.event_id, "");
}

TEST(NormalizerTest, PermissionEventsNameTheOuAndTheActingUser) {
  for (std::string_view topic : {"permission.accepted", "permission.created",
                                 "permission.deleted", "permission.updated"}) {
    SCOPED_TRACE(topic);
    const store::EventRow row = MustNormalize(ExampleOf(topic).body).row;
    EXPECT_EQ(row.ou_id, "57e50e4840ce4f00017df412");
    EXPECT_EQ(row.event_id, "");
  }
  // The top-level userId is the permission's subject; user.id acted.
  EXPECT_EQ(
      MustNormalize(ExampleOf("permission.updated").body).row.actor_user_id,
      "6231d7816348ca00019f7476");
}

TEST(NormalizerTest, PanelConnectedPlaceholderTimestampFallsThrough) {
  const Normalized normalized =
      MustNormalize(ExampleOf("panel.connected").body);
  EXPECT_EQ(normalized.row.family, "panel");
  EXPECT_EQ(normalized.row.panel_id, "1070000");
  EXPECT_EQ(normalized.row.occur_time_ms, kReceiveMs);
  // The spec's placeholder is an unparseable value, though, and counted.
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, PanelConnectedRealTimestampIsUsed) {
  const Normalized normalized = MustNormalize(
      R"({"ip":"100.64.78.82","online":true,)"
      R"("timestamp":"2022-03-10T14:31:48.300Z","panelId":"1070000",)"
      R"("topic":"panel.connected"})");
  EXPECT_EQ(normalized.row.occur_time_ms, 1646922708300);
  EXPECT_EQ(normalized.unreadable_fields, 0);
}

TEST(NormalizerTest, EventWithoutOccurredUsesReceiveTime) {
  const store::EventRow row =
      MustNormalize(ExampleOf("door.input.virtualread").body).row;
  EXPECT_EQ(row.occur_time_ms, kReceiveMs);
  EXPECT_EQ(row.door_id, 1);
  EXPECT_EQ(row.person_id, 1);
}

TEST(NormalizerTest, RawIsTheBodyByteForByte) {
  const std::string body =
      "{ \"topic\" : \"door.request.allowed\",\n  \"id\": \"e\\u00e9\" }\n";
  EXPECT_EQ(MustNormalize(body).row.raw, body);
}

// A door.request.allowed payload with `body` and `metadata` replaced.
std::string DoorRequest(std::string_view body, std::string_view metadata) {
  return std::string(
             R"({"id":"679521e4-c455-423f-8155-d012c98f5dcc","body":)") +
         std::string(body) + R"(,"metadata":)" + std::string(metadata) +
         R"(,"panelId":"1070000","topic":"door.request.allowed"})";
}

TEST(NormalizerTest, TheNoDoorSentinelAsADoorIdIsUnreadable) {
  // store::kNoDoor stands for "no door" in the daily rollups: a payload
  // must not be able to pose as one of the events without a door.
  for (std::string_view door : {"-9223372036854775808", "\"-9223372036854775808\""}) {
    SCOPED_TRACE(door);
    const Normalized normalized = MustNormalize(
        DoorRequest(R"({"doorId":)" + std::string(door) + "}", R"({"occurred":5})"));
    EXPECT_FALSE(normalized.row.door_id.has_value());
    EXPECT_EQ(normalized.unreadable_fields, 1);
  }
  const Normalized next = MustNormalize(
      DoorRequest(R"({"doorId":-9223372036854775807})", R"({"occurred":5})"));
  EXPECT_EQ(next.row.door_id, -9223372036854775807);
}

TEST(NormalizerTest, NonNumericDoorIdIsLeftEmptyAndCounted) {
  const Normalized normalized = MustNormalize(
      DoorRequest(R"({"doorId":"abc","personId":1})", R"({"occurred":5})"));
  EXPECT_EQ(normalized.row.door_id, std::nullopt);
  EXPECT_EQ(normalized.row.person_id, 1);
  EXPECT_EQ(normalized.row.occur_time_ms, 5);
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, FractionalDoorIdIsUnreadable) {
  const Normalized normalized =
      MustNormalize(DoorRequest(R"({"doorId":1.5})", "{}"));
  EXPECT_EQ(normalized.row.door_id, std::nullopt);
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, ObjectPersonIdIsUnreadable) {
  const Normalized normalized =
      MustNormalize(DoorRequest(R"({"doorId":1,"personId":{}})", "{}"));
  EXPECT_EQ(normalized.row.person_id, std::nullopt);
  EXPECT_EQ(normalized.row.door_id, 1);
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, BooleanAndNegativeTextIdsAreUnreadable) {
  const Normalized normalized =
      MustNormalize(DoorRequest(R"({"doorId":true,"personId":"-3"})", "{}"));
  EXPECT_EQ(normalized.row.door_id, std::nullopt);
  EXPECT_EQ(normalized.row.person_id, std::nullopt);
  EXPECT_EQ(normalized.unreadable_fields, 2);
}

TEST(NormalizerTest, IdsWrittenAsDecimalTextAreRead) {
  const Normalized normalized =
      MustNormalize(DoorRequest(R"({"doorId":"12","personId":"0034"})", "{}"));
  EXPECT_EQ(normalized.row.door_id, 12);
  EXPECT_EQ(normalized.row.person_id, 34);
  EXPECT_EQ(normalized.unreadable_fields, 0);
}

TEST(NormalizerTest, IdBeyondInt64IsUnreadable) {
  const Normalized normalized = MustNormalize(DoorRequest(
      R"({"doorId":9223372036854775808,"personId":"9223372036854775808"})",
      "{}"));
  EXPECT_EQ(normalized.row.door_id, std::nullopt);
  EXPECT_EQ(normalized.row.person_id, std::nullopt);
  EXPECT_EQ(normalized.unreadable_fields, 2);
}

TEST(NormalizerTest, NullEmptyAndAbsentFieldsAreNotUnreadable) {
  const Normalized normalized = MustNormalize(
      DoorRequest(R"({"doorId":null,"personId":""})", R"({"occurred":null})"));
  EXPECT_EQ(normalized.row.door_id, std::nullopt);
  EXPECT_EQ(normalized.row.person_id, std::nullopt);
  EXPECT_EQ(normalized.row.occur_time_ms, kReceiveMs);
  EXPECT_EQ(normalized.unreadable_fields, 0);
}

TEST(NormalizerTest, UnreadableFirstLocationFallsBackToTheNext) {
  const Normalized normalized = MustNormalize(
      DoorRequest(R"({"doorId":"abc","details":{"doorId":2}})", "{}"));
  EXPECT_EQ(normalized.row.door_id, 2);
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, UnparseableOccurredFallsThroughToReceiveTime) {
  const Normalized normalized =
      MustNormalize(DoorRequest(R"({"doorId":1})", R"({"occurred":"x"})"));
  EXPECT_EQ(normalized.row.occur_time_ms, kReceiveMs);
  EXPECT_EQ(normalized.row.door_id, 1);
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, UnreadableBodyOccurredFallsThroughToMetadataOccurred) {
  const Normalized normalized = MustNormalize(
      DoorRequest(R"({"occurred":{}})", R"({"occurred":1646922708300})"));
  EXPECT_EQ(normalized.row.occur_time_ms, 1646922708300);
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, UnreadableOccurredFallsThroughToIsoTimestamp) {
  const Normalized normalized = MustNormalize(
      R"({"topic":"panel.connected","panelId":"1070000",)"
      R"("metadata":{"occurred":"soon"},"timestamp":"2022-03-10T14:31:48.3Z"})");
  EXPECT_EQ(normalized.row.occur_time_ms, 1646922708300);
  EXPECT_EQ(normalized.unreadable_fields, 1);
}

TEST(NormalizerTest, FractionalOrOutOfRangeOccurredIsUnreadable) {
  for (std::string_view occurred : {"1646922708.3", "1e300", "253402300800000",
                                    "-62167219200001", "-62135596800001"}) {
    SCOPED_TRACE(occurred);
    const Normalized normalized = MustNormalize(DoorRequest(
        "{}", std::string(R"({"occurred":)") + std::string(occurred) + "}"));
    EXPECT_EQ(normalized.row.occur_time_ms, kReceiveMs);
    EXPECT_EQ(normalized.unreadable_fields, 1);
  }
}

TEST(NormalizerTest, OccurredAsDecimalTextIsRead) {
  const Normalized normalized =
      MustNormalize(DoorRequest("{}", R"({"occurred":"1646922708300"})"));
  EXPECT_EQ(normalized.row.occur_time_ms, 1646922708300);
}

TEST(NormalizerTest, NumericPanelIdIsReadAsText) {
  const Normalized normalized =
      MustNormalize(R"({"topic":"panel.connected","panelId":1070000})");
  EXPECT_EQ(normalized.row.panel_id, "1070000");
  EXPECT_EQ(normalized.unreadable_fields, 0);
}

TEST(NormalizerTest, NonTextFieldsOfTheWrongTypeAreCounted) {
  const Normalized normalized =
      MustNormalize(R"({"topic":"door.request.allowed","id":42,"panelId":[1],)"
                    R"("user":{"id":false},"metadata":{"doorName":7}})");
  EXPECT_EQ(normalized.row.event_id, "");
  EXPECT_EQ(normalized.row.panel_id, "");
  EXPECT_EQ(normalized.row.actor_user_id, "");
  EXPECT_EQ(normalized.row.door_name, "");
  EXPECT_EQ(normalized.unreadable_fields, 4);
}

TEST(NormalizerTest, PathThroughANonObjectIsAbsent) {
  const Normalized normalized = MustNormalize(
      R"({"topic":"door.request.allowed","body":"x","metadata":[1]})");
  EXPECT_EQ(normalized.row.door_id, std::nullopt);
  EXPECT_EQ(normalized.unreadable_fields, 0);
}

TEST(NormalizerTest, UnknownTopicIsKeptWithGenericFields) {
  const std::string body =
      R"({"id":"0c8a","topic":"door.teleport.allowed","panelId":"1070000",)"
      R"("body":{"doorId":3,"personId":4},"metadata":{"occurred":7}})";
  const Normalized normalized = MustNormalize(body);
  EXPECT_FALSE(normalized.known_topic);
  EXPECT_EQ(normalized.row.family, "unknown");
  EXPECT_EQ(normalized.row.topic, "door.teleport.allowed");
  EXPECT_EQ(normalized.row.panel_id, "1070000");
  EXPECT_EQ(normalized.row.door_id, 3);
  EXPECT_EQ(normalized.row.person_id, 4);
  EXPECT_EQ(normalized.row.occur_time_ms, 7);
  // Without knowing what its id names, an unknown event is keyed by bytes.
  EXPECT_EQ(normalized.row.event_id, "");
  EXPECT_EQ(normalized.row.dedupe_key,
            DedupeKey(normalized.row.topic, "", "", body));
}

TEST(NormalizerTest, RefusesBodiesThatAreNotAnEventObject) {
  struct Case {
    std::string body;
    std::string reason;
  };
  const Case cases[] = {
      {"", "body is not valid JSON: The document is empty at offset 0"},
      {"{", "body is not valid JSON: "},
      {"[1]", "body is not a JSON object"},
      {"\"x\"", "body is not a JSON object"},
      {"null", "body is not a JSON object"},
      {"{}", "missing topic"},
      {R"({"topic":null})", "missing topic"},
      {R"({"topic":""})", "topic must be a non-empty string"},
      {R"({"topic":5})", "topic must be a non-empty string"},
      {R"({"topic":["a"]})", "topic must be a non-empty string"},
      {R"({"topic":"door.request.allowed"} x)",
       "body is not valid JSON: The document root must not be followed by "
       "other values at offset 33"},
      {R"({"topic":"door.request.allowed"}{})", "body is not valid JSON: "},
      {std::string(R"({"topic":"door.request.allowed"})") + '\0' + "x",
       "body is not valid JSON: NUL byte at offset 32"},
      {"{\"topic\":\"door\xff\"}", "body is not valid JSON: "},
      {R"({"topic":"x",})", "body is not valid JSON: "},
      {R"({"topic":NaN})", "body is not valid JSON: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    absl::StatusOr<Normalized> normalized =
        Normalize(c.body, kReceiveMs, kSubscription);
    ASSERT_FALSE(normalized.ok());
    EXPECT_EQ(normalized.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(normalized.status().message()).find(c.reason),
              std::string::npos)
        << normalized.status();
  }
}

TEST(NormalizerTest, AbsurdNestingIsRefusedWithoutCrashing) {
  for (const std::string& body :
       {std::string(100000, '['),
        std::string(100000, '[') + std::string(100000, ']'),
        R"({"topic":"x","a":)" + std::string(100000, '{')}) {
    absl::StatusOr<Normalized> normalized =
        Normalize(body, kReceiveMs, kSubscription);
    ASSERT_FALSE(normalized.ok());
    EXPECT_EQ(normalized.status(),
              absl::InvalidArgumentError("JSON nests deeper than 64 levels"));
  }
}

std::string Nested(int depth) {
  // The event object itself is level 1.
  return R"({"topic":"x","a":)" +
         std::string(static_cast<size_t>(depth - 1), '[') +
         std::string(static_cast<size_t>(depth - 1), ']') + "}";
}

TEST(NormalizerTest, NestingUpToTheLimitIsAccepted) {
  EXPECT_TRUE(Normalize(Nested(kMaxJsonDepth), kReceiveMs, kSubscription).ok());
  EXPECT_FALSE(
      Normalize(Nested(kMaxJsonDepth + 1), kReceiveMs, kSubscription).ok());
}

TEST(NormalizerTest, BracketsInsideStringsDoNotCountAsNesting) {
  const std::string body =
      R"({"topic":"x","a":")" + std::string(1000, '[') + R"(\"{{{{"})";
  EXPECT_TRUE(Normalize(body, kReceiveMs, kSubscription).ok());
}

// U+FFFD REPLACEMENT CHARACTER in UTF-8.
constexpr std::string_view kFffd = "\xEF\xBF\xBD";

TEST(NormalizerTest, LoneSurrogatesReadAsReplacementCharacters) {
  struct Case {
    std::string door_name_json;  // the JSON string's content, escapes and all
    std::string door_name;       // what the row holds
  };
  const std::string fffd(kFffd);
  const Case cases[] = {
      {R"(Door\udc00)", "Door" + fffd},  // a lone low surrogate
      {R"(Door\ud83d)", "Door" + fffd},  // a name cut after a high surrogate
      {R"(Door\uDBFF!)", "Door" + fffd + "!"},
      {R"(\udc00\ud800)", fffd + fffd},
      {R"(\ud83d\ud83d\ude00)", fffd + "\xF0\x9F\x98\x80"},  // then a pair
      {R"(\ud83d\ude00\ude00)", "\xF0\x9F\x98\x80" + fffd},
      {R"(\ud83d\u0041)", fffd + "A"},
      {R"(\\ud800)", R"(\ud800)"},  // an escaped backslash, then text
      {R"(\ufffd)", fffd},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.door_name_json);
    const std::string body = DoorRequest(
        R"({"doorId":1})", R"({"doorName":")" + c.door_name_json + R"("})");
    const Normalized normalized = MustNormalize(body);
    EXPECT_EQ(normalized.row.door_name, c.door_name);
    EXPECT_EQ(normalized.row.raw, body);
    EXPECT_EQ(normalized.unreadable_fields, 0);
  }
}

TEST(NormalizerTest, EveryTextFieldIsRepairedAndTheKeyIsStable) {
  const std::string body =
      R"({"id":"e\udc00","panelId":"p\ud800","topic":"door.request.allowed",)"
      R"("user":{"id":"u\udfff"},"body":{"doorId":1},)"
      R"("metadata":{"doorName":"d\udc00","occurred":5}})";
  const Normalized normalized = MustNormalize(body);
  const store::EventRow& row = normalized.row;
  const std::string fffd(kFffd);
  EXPECT_EQ(row.event_id, "e" + fffd);
  EXPECT_EQ(row.panel_id, "p" + fffd);
  EXPECT_EQ(row.actor_user_id, "u" + fffd);
  EXPECT_EQ(row.door_name, "d" + fffd);
  EXPECT_EQ(row.door_id, 1);
  EXPECT_EQ(row.occur_time_ms, 5);
  EXPECT_EQ(row.raw, body);
  // Keyed by the row's values, so a redelivery is a duplicate.
  EXPECT_EQ(row.dedupe_key,
            DedupeKey(row.topic, row.panel_id, row.event_id, ""));
  EXPECT_EQ(MustNormalize(body).row.dedupe_key, row.dedupe_key);
}

TEST(NormalizerTest, ALoneSurrogateInTheTopicMakesAnUnknownTopic) {
  const Normalized normalized =
      MustNormalize(R"({"topic":"door.request.allowed\udc00","panelId":"1"})");
  EXPECT_EQ(normalized.row.topic, "door.request.allowed" + std::string(kFffd));
  EXPECT_FALSE(normalized.known_topic);
  EXPECT_EQ(normalized.row.family, "unknown");
  EXPECT_EQ(normalized.row.panel_id, "1");
}

TEST(NormalizerTest, RepairKeepsTheParseErrorOffsets) {
  // The repaired copy is as long as the body, so offsets name the body.
  absl::StatusOr<Normalized> normalized =
      Normalize(R"({"topic":"a\ud800", x})", kReceiveMs, kSubscription);
  ASSERT_FALSE(normalized.ok());
  EXPECT_NE(std::string(normalized.status().message()).find("at offset 20"),
            std::string::npos)
      << normalized.status();
}

TEST(NormalizerTest, BytesThatAreNotUtf8AreStillRefused) {
  // RFC 8259 JSON text is UTF-8; these are not JSON, so not a PDK delivery.
  for (std::string_view door : {"Door\xED\xB0\x80", "Door\xC0\xAF", "Door\xFF",
                                "Door\xE2\x82", "Door\x80"}) {
    const std::string body = DoorRequest(
        R"({"doorId":1})", R"({"doorName":")" + std::string(door) + R"("})");
    absl::StatusOr<Normalized> normalized =
        Normalize(body, kReceiveMs, kSubscription);
    ASSERT_FALSE(normalized.ok()) << body;
    EXPECT_EQ(normalized.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(NormalizerTest, ADuplicatedKeyReadsItsLastValue) {
  // As JSON.parse reads it: the last of the duplicates, at every level.
  const Normalized topic = MustNormalize(
      R"({"topic":"a.b","id":"e1","panelId":"1","topic":"door.request.allowed"})");
  EXPECT_EQ(topic.row.topic, "door.request.allowed");
  EXPECT_EQ(topic.row.family, "panel");
  EXPECT_TRUE(topic.known_topic);

  const Normalized nested = MustNormalize(
      R"({"topic":"door.request.allowed","id":"e1","id":"e2",)"
      R"("panelId":"1","panelId":"2",)"
      R"("body":{"doorId":1,"personId":7,"doorId":2},)"
      R"("metadata":{"doorName":"First","occurred":5,"doorName":"Last"},)"
      R"("user":{"id":"u1"},"user":{"id":"u2"}})");
  EXPECT_EQ(nested.row.event_id, "e2");
  EXPECT_EQ(nested.row.panel_id, "2");
  EXPECT_EQ(nested.row.door_id, 2);
  EXPECT_EQ(nested.row.person_id, 7);
  EXPECT_EQ(nested.row.door_name, "Last");
  EXPECT_EQ(nested.row.occur_time_ms, 5);
  EXPECT_EQ(nested.row.actor_user_id, "u2");
  EXPECT_EQ(nested.row.dedupe_key,
            DedupeKey("door.request.allowed", "2", "e2", ""));

  // A whole object named twice: the last one, not a merge of both.
  const Normalized object = MustNormalize(
      R"({"topic":"door.request.allowed","body":{"doorId":1,"personId":7},)"
      R"("body":{"doorId":3}})");
  EXPECT_EQ(object.row.door_id, 3);
  EXPECT_EQ(object.row.person_id, std::nullopt);

  // The last value decides even when it is null or unreadable.
  const Normalized last_null = MustNormalize(
      R"({"topic":"door.request.allowed","body":{"doorId":1,"doorId":null}})");
  EXPECT_EQ(last_null.row.door_id, std::nullopt);
  EXPECT_EQ(last_null.unreadable_fields, 0);
  absl::StatusOr<Normalized> no_topic =
      Normalize(R"({"topic":"door.request.allowed","topic":null})", kReceiveMs,
                kSubscription);
  ASSERT_FALSE(no_topic.ok());
  EXPECT_EQ(no_topic.status().message(), "missing topic");
}

TEST(NormalizerTest, AnOccurredTimeInYearZeroIsUnreadableAndFallsThrough) {
  // 0000-01-01T00:00:00Z and 0000-12-31T23:59:59.999Z: RFC 3339 writes them
  // but a protobuf Timestamp cannot hold them.
  for (std::string_view occurred : {"-62167219200000", "-62135596800001"}) {
    SCOPED_TRACE(occurred);
    const Normalized normalized = MustNormalize(DoorRequest(
        std::string(R"({"occurred":)") + std::string(occurred) + "}",
        R"({"occurred":1646922708300})"));
    EXPECT_EQ(normalized.row.occur_time_ms, 1646922708300);
    EXPECT_EQ(normalized.unreadable_fields, 1);
  }
  const Normalized iso =
      MustNormalize(R"({"topic":"panel.connected","panelId":"1070000",)"
                    R"("timestamp":"0000-06-01T00:00:00Z"})");
  EXPECT_EQ(iso.row.occur_time_ms, kReceiveMs);
  EXPECT_EQ(iso.unreadable_fields, 1);
  // The first instant a Timestamp holds is read.
  const Normalized first =
      MustNormalize(DoorRequest(R"({"occurred":-62135596800000})", "{}"));
  EXPECT_EQ(first.row.occur_time_ms, -62135596800000);
  EXPECT_EQ(first.unreadable_fields, 0);
}

TEST(DedupeKeyTest, IsSixteenBytes) {
  EXPECT_EQ(DedupeKey("t", "p", "e", "").size(), 16u);
  EXPECT_EQ(DedupeKey("t", "", "", "raw").size(), 16u);
}

TEST(DedupeKeyTest, SameEventIdUnderDifferentTopicsGivesDifferentKeys) {
  // The spec's examples reuse one id across these topics.
  const store::EventRow forced =
      MustNormalize(ExampleOf("door.alarm.forced").body).row;
  const store::EventRow cleared =
      MustNormalize(ExampleOf("door.alarm.forced.cleared").body).row;
  ASSERT_EQ(forced.event_id, cleared.event_id);
  EXPECT_NE(forced.dedupe_key, cleared.dedupe_key);
}

TEST(DedupeKeyTest, RedeliveryHasTheSameKeyEvenIfTheBytesDiffer) {
  const std::string reformatted = DoorRequest(
      R"({ "personId": 1, "doorId": 1 })", R"({"doorName":"Door Name"})");
  const store::EventRow original =
      MustNormalize(ExampleOf("door.request.allowed").body).row;
  const store::EventRow redelivered = MustNormalize(reformatted).row;
  ASSERT_NE(original.raw, redelivered.raw);
  EXPECT_EQ(original.dedupe_key, redelivered.dedupe_key);
}

TEST(DedupeKeyTest, SameEventIdOnAnotherPanelGivesADifferentKey) {
  EXPECT_NE(DedupeKey("door.request.allowed", "1070000", "e", "a"),
            DedupeKey("door.request.allowed", "1070001", "e", "a"));
}

TEST(DedupeKeyTest, EventWithoutIdIsKeyedByItsRawBytes) {
  const std::string body = ExampleOf("ou.created").body;
  EXPECT_EQ(MustNormalize(body).row.dedupe_key,
            MustNormalize(body).row.dedupe_key);
  EXPECT_NE(MustNormalize(body).row.dedupe_key,
            MustNormalize(body + " ").row.dedupe_key);
  EXPECT_EQ(DedupeKey("a", "b", "", "raw"), DedupeKey("c", "d", "", "raw"));
}

TEST(DedupeKeyTest, FieldBoundariesAreUnambiguous) {
  EXPECT_NE(DedupeKey("ab", "c", "e", ""), DedupeKey("a", "bc", "e", ""));
  EXPECT_NE(DedupeKey("a", "b", "c", ""),
            DedupeKey(std::string_view("a\0b", 3), "", "c", ""));
}

}  // namespace
}  // namespace pdkarchive::ingest

namespace pdkarchive::ingest {
namespace {

std::string V2Example() { return pdkarchive::testing::PdkV2ExamplePayload(); }

Normalized MustNormalizeV2(std::string_view body) {
  absl::StatusOr<Normalized> normalized =
      Normalize(body, kReceiveMs, "site-v2", kApi2);
  EXPECT_TRUE(normalized.ok()) << normalized.status() << "\nbody: " << body;
  return normalized.ok() ? *std::move(normalized) : Normalized{};
}

TEST(NormalizerV2Test, ThePublishedDeviceRequestFillsTheTextIds) {
  const std::string body = V2Example();
  const Normalized normalized = MustNormalizeV2(body);
  const store::EventRow& row = normalized.row;
  EXPECT_TRUE(normalized.known_topic);
  EXPECT_EQ(normalized.unreadable_fields, 0);
  EXPECT_EQ(row.topic, "device.request.allowed");
  EXPECT_EQ(row.family, "cloudnode");
  EXPECT_EQ(row.event_id, "90163e3c-a31f-4bc5-9f6f-88eea9fc5b6c");
  EXPECT_EQ(row.panel_id, "1234ABC");  // the serial, as 1.0's panelId
  EXPECT_EQ(row.cloud_node_id, "91c2a7b7-28e9-4dec-e1f7-9966b1d3ca55");
  EXPECT_EQ(row.device_id, "1bf7a641-4b1b-4d6c-9c57-818e7515575d");
  EXPECT_EQ(row.door_name, "Test Device");
  EXPECT_EQ(row.holder_id, "8129a254-dc3d-419f-b7e9-4ad772afd23f");
  EXPECT_EQ(row.holder_name, "John Wiegand");
  EXPECT_EQ(row.system_id, "2b6c14b2-ce6d-4109-ab4e-b95a65b048d3");
  EXPECT_EQ(row.door_id, std::nullopt);
  EXPECT_EQ(row.person_id, std::nullopt);
  EXPECT_EQ(row.ou_id, "");
  EXPECT_EQ(row.occur_time_ms, 1710201553630);  // not shifted by `offset`
  EXPECT_EQ(row.subscription, "site-v2");
  EXPECT_EQ(row.raw, body);
  EXPECT_EQ(row.dedupe_key,
            DedupeKey(row.topic, row.panel_id, row.event_id, "unused"));
}

TEST(NormalizerV2Test, ReadAsOneDotZeroTheSameBodyIsKeptAsUnknown) {
  absl::StatusOr<Normalized> normalized =
      Normalize(V2Example(), kReceiveMs, "default");
  ASSERT_TRUE(normalized.ok()) << normalized.status();
  EXPECT_FALSE(normalized->known_topic);
  EXPECT_EQ(normalized->row.family, "unknown");
  EXPECT_EQ(normalized->row.device_id, "");
  EXPECT_EQ(normalized->row.occur_time_ms, 1710201553630);
}

TEST(NormalizerV2Test, WithoutASerialThePanelIsTheCloudNodeUuid) {
  const Normalized normalized = MustNormalizeV2(
      R"({"topic":"device.request.denied","id":"e1","cloudNodeId":"cn-1",)"
      R"("body":{"deviceId":42,"holderId":"h-1"},"metadata":{}})");
  EXPECT_EQ(normalized.row.panel_id, "cn-1");
  EXPECT_EQ(normalized.row.cloud_node_id, "cn-1");
  EXPECT_EQ(normalized.row.device_id, "42");  // a number reads as its text
  EXPECT_EQ(normalized.row.holder_id, "h-1");
  EXPECT_EQ(normalized.row.occur_time_ms, kReceiveMs);
}

TEST(NormalizerV2Test, UnpublishedShapesAreKeptWholeAndCountedWhenOdd) {
  // A system event whose shape no one has seen: kept, labelled, deduplicated
  // by its bytes (no event id), an unreadable holder id counted.
  const std::string body =
      R"({"topic":"holder.created","id":"h-9","body":{"holderId":{"x":1}},)"
      R"("metadata":{"systemId":"s-1","holderName":"Ann"}})";
  const Normalized normalized = MustNormalizeV2(body);
  EXPECT_TRUE(normalized.known_topic);
  EXPECT_EQ(normalized.row.family, "system");
  EXPECT_EQ(normalized.row.event_id, "");
  EXPECT_EQ(normalized.row.holder_id, "");
  EXPECT_EQ(normalized.row.holder_name, "Ann");
  EXPECT_EQ(normalized.row.system_id, "s-1");
  EXPECT_EQ(normalized.unreadable_fields, 1);
  EXPECT_EQ(normalized.row.dedupe_key, DedupeKey("", "", "", body));
  // An unknown 2.0 topic still gets the 2.0 locations.
  const Normalized unknown = MustNormalizeV2(
      R"({"topic":"device.teleport.allowed","body":{"deviceId":"d-7"}})");
  EXPECT_FALSE(unknown.known_topic);
  EXPECT_EQ(unknown.row.family, "unknown");
  EXPECT_EQ(unknown.row.device_id, "d-7");
}

}  // namespace
}  // namespace pdkarchive::ingest
