// PDK API 2.0 deliveries end to end, on both engines: a subscription added
// with `--api 2` takes the published 2.0 payload over HTTP on a running
// `serve`, the row keeps its UUID text ids, and gRPC and the CLI find it by
// them as they find 1.0 events by their numbers.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_data.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

namespace pb = ::pdk::archive::v1;
using testing::CommandResult;
using testing::Engine;
using testing::HttpReply;
using testing::RunCli;
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kSecret[] = "secret-of-the-2.0-cloud-node-subscription-0123";
constexpr char kDevice[] = "1bf7a641-4b1b-4d6c-9c57-818e7515575d";
constexpr char kHolder[] = "8129a254-dc3d-419f-b7e9-4ad772afd23f";

// A 2.0 device.request.denied at another device, with its own event id.
std::string DeniedAt(const std::string& device, int n) {
  return absl::StrCat(
      R"({"topic":"device.request.denied","id":"denied-)", n,
      R"(","cloudNodeId":"91c2a7b7-28e9-4dec-e1f7-9966b1d3ca55",)"
      R"("cloudNodeSN":"1234ABC","body":{"deviceId":")", device,
      R"("},"metadata":{"occurred":1710201600000,"deviceName":"Side"}})");
}

int Post(int port, const std::string& path, const std::string& body,
         const std::string& secret, HttpReply* out = nullptr) {
  absl::StatusOr<HttpReply> reply = testing::HttpRequest(
      port, "POST", path, body, SignedHeaders(secret, body));
  if (!reply.ok()) {
    ADD_FAILURE() << reply.status();
    return -1;
  }
  if (out != nullptr) *out = *reply;
  return reply->status;
}

class Pdk2DeliveryTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-pdk2");
    auto archive = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
  }
  void TearDown() override {
    archive_.reset();
    std::filesystem::remove_all(dir_);
  }

  const std::string& db() const { return archive_->db(); }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path) << text << "\n";
    return path.string();
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> archive_;
};

TEST_P(Pdk2DeliveryTest, ThePublishedPayloadIsStoredAndFoundByItsDevice) {
  const std::string example = testing::PdkV2ExamplePayload();
  ASSERT_FALSE(example.empty());
  CommandResult added = RunCli(
      {"subscriptions", "add", "nodes", "--api", "2", "--family", "cloudnode",
       "--secret-file", WriteFile("secret", kSecret), "--db", db()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto serve = ServerProcess::Start(db(), {});
  ASSERT_TRUE(serve.ok()) << serve.status();
  const int port = serve->http_port();

  HttpReply reply;
  ASSERT_EQ(Post(port, "/webhooks/nodes", example, kSecret, &reply), 200)
      << reply.body;
  EXPECT_EQ(reply.body, R"({"sequence":1,"duplicate":false})");
  ASSERT_EQ(Post(port, "/webhooks/nodes", example, kSecret, &reply), 200);
  EXPECT_EQ(reply.body, R"({"sequence":1,"duplicate":true})");
  ASSERT_EQ(Post(port, "/webhooks/nodes", DeniedAt("d-side", 1), kSecret), 200);
  // A 1.0 door event at door 3 beside them, on the default subscription.
  const std::string door3 =
      R"({"id":"v1-1","topic":"door.request.allowed","panelId":"1070000",)"
      R"("body":{"doorId":3,"personId":17},"metadata":{"occurred":1710201700000}})";
  ASSERT_EQ(Post(port, "/webhooks", door3, ""), 200);

  auto stub = pb::EventArchive::NewStub(grpc::CreateChannel(
      serve->grpc_address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    pb::GetEventRequest request;
    request.set_sequence(1);
    pb::Event event;
    ASSERT_TRUE(stub->GetEvent(&context, request, &event).ok());
    EXPECT_EQ(event.topic(), "device.request.allowed");
    EXPECT_EQ(event.family(), "cloudnode");
    EXPECT_EQ(event.subscription(), "nodes");
    EXPECT_EQ(event.panel_id(), "1234ABC");
    EXPECT_EQ(event.device_id(), kDevice);
    EXPECT_EQ(event.door_name(), "Test Device");
    EXPECT_EQ(event.holder_id(), kHolder);
    EXPECT_EQ(event.holder_name(), "John Wiegand");
    EXPECT_EQ(event.cloud_node_id(), "91c2a7b7-28e9-4dec-e1f7-9966b1d3ca55");
    EXPECT_EQ(event.system_id(), "2b6c14b2-ce6d-4109-ab4e-b95a65b048d3");
    EXPECT_FALSE(event.has_door_id());
    EXPECT_EQ(event.raw(), example);
  }
  {
    // The device's UUID or door 3's number: either finds its own.
    grpc::ClientContext context;
    pb::ListEventsRequest request;
    request.mutable_filter()->add_device_ids(kDevice);
    request.mutable_filter()->add_door_ids(3);
    pb::ListEventsResponse response;
    ASSERT_TRUE(stub->ListEvents(&context, request, &response).ok());
    ASSERT_EQ(response.events_size(), 2);
    EXPECT_EQ(response.events(0).sequence(), 1);
    EXPECT_EQ(response.events(1).sequence(), 3);
  }
  {
    grpc::ClientContext context;
    pb::CountEventsRequest request;
    request.add_group_by(pb::DIMENSION_DOOR);
    pb::CountEventsResponse response;
    ASSERT_TRUE(stub->CountEvents(&context, request, &response).ok());
    EXPECT_EQ(response.total(), 3);
    std::vector<std::string> keys;
    for (const pb::Group& group : response.groups()) {
      ASSERT_EQ(group.key_size(), 1);
      EXPECT_EQ(group.count(), 1) << group.key(0);
      keys.push_back(group.key(0));
    }
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{kDevice, "3", "d-side"}));
  }
  // The CLI as a user types it: --door and --person take a UUID too.
  CommandResult by_door = RunCli({"events", "--server", serve->grpc_address(),
                                  "--door", kDevice, "--json"});
  ASSERT_EQ(by_door.exit_code, 0) << by_door.err;
  EXPECT_TRUE(absl::StrContains(by_door.out, "John Wiegand")) << by_door.out;
  EXPECT_FALSE(absl::StrContains(by_door.out, "d-side")) << by_door.out;
  CommandResult by_person = RunCli({"events", "--server",
                                    serve->grpc_address(), "--person", kHolder});
  ASSERT_EQ(by_person.exit_code, 0) << by_person.err;
  EXPECT_TRUE(absl::StrContains(by_person.out, "device.request.allowed"))
      << by_person.out;
  EXPECT_FALSE(absl::StrContains(by_person.out, "door.request.allowed"))
      << by_person.out;
}

TEST_P(Pdk2DeliveryTest, OtherFamiliesAndUnknownShapesAreKeptAndCounted) {
  CommandResult added = RunCli(
      {"subscriptions", "add", "nodes", "--api", "2", "--family", "cloudnode",
       "--secret-file", WriteFile("secret", kSecret), "--db", db()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto serve = ServerProcess::Start(db(), {});
  ASSERT_TRUE(serve.ok()) << serve.status();
  const int port = serve->http_port();
  // A system event on the cloud node subscription, and a topic no catalog
  // knows: both stored; the first counts as a family mismatch.
  const std::string holder =
      R"({"topic":"holder.created","body":{"holderId":"h-1"},)"
      R"("metadata":{"systemId":"s-1","holderName":"Ann"}})";
  EXPECT_EQ(Post(port, "/webhooks/nodes", holder, kSecret), 200);
  EXPECT_EQ(Post(port, "/webhooks/nodes",
                 R"({"topic":"device.teleport.allowed","body":[1,2]})", kSecret),
            200);
  absl::StatusOr<HttpReply> metrics =
      testing::HttpRequest(port, "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(
      metrics->body,
      "pdkarchive_family_mismatches_total{subscription=\"nodes\"} 1\n"))
      << metrics->body;
  auto stub = pb::EventArchive::NewStub(grpc::CreateChannel(
      serve->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  pb::ListEventsRequest request;
  request.mutable_filter()->add_holder_ids("h-1");
  pb::ListEventsResponse response;
  ASSERT_TRUE(stub->ListEvents(&context, request, &response).ok());
  ASSERT_EQ(response.events_size(), 1);
  EXPECT_EQ(response.events(0).family(), "system");
  EXPECT_EQ(response.events(0).holder_name(), "Ann");
  EXPECT_EQ(response.events(0).system_id(), "s-1");
  grpc::ClientContext context2;
  pb::ListEventsRequest unknown;
  unknown.mutable_filter()->set_family("unknown");
  ASSERT_TRUE(stub->ListEvents(&context2, unknown, &response).ok());
  ASSERT_EQ(response.events_size(), 1);
  EXPECT_EQ(response.events(0).topic(), "device.teleport.allowed");
}

INSTANTIATE_TEST_SUITE_P(Engines, Pdk2DeliveryTest,
                         ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

}  // namespace
}  // namespace pdkarchive
