// pdkapi::PdkClient in process against the PDK API stand-in: what the CLI
// tests cannot see from outside one command (token reuse and refresh, the
// X-RateLimit-Reset wait, PDK's error text, the URL rules).
#include "pdkapi/pdk_client.h"

#include <gtest/gtest.h>

#include <chrono>

#include "absl/strings/match.h"
#include "tests/test_support/pdk_standin.h"

namespace pdkarchive::pdkapi {
namespace {

using testing::PdkStandin;

constexpr char kOrg[] = "57e50e4840ce4f00017df412";
constexpr char kClientId[] = "client-in-process";
constexpr char kClientSecret[] = "in-process-client-secret-42";

class PdkClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto standin = PdkStandin::Start(kOrg, kClientId, kClientSecret);
    ASSERT_TRUE(standin.ok()) << standin.status();
    pdk_ = *std::move(standin);
    PdkAccess access;
    access.api_url = pdk_->url() + "/";
    access.org = kOrg;
    access.client_id = kClientId;
    access.client_secret = kClientSecret;
    auto client = PdkClient::Create(access);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  static PdkSubscription Hook() {
    PdkSubscription s;
    s.name = "in-process";
    s.url = "https://archive.example.com/webhooks/in-process";
    s.scope = "ouRecursive";
    s.events = {"ou.created"};
    s.secret = "a-secret-of-at-least-thirty-two-chars";
    return s;
  }

  std::unique_ptr<PdkStandin> pdk_;
  std::unique_ptr<PdkClient> client_;
};

TEST_F(PdkClientTest, OneTokenIsReusedAndRefreshedAfterA401) {
  absl::StatusOr<std::string> id = client_->CreateSubscription(1, Hook());
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(client_->GetSubscription(1, *id).ok());
  ASSERT_TRUE(client_->ListSubscriptions(1).ok());
  EXPECT_EQ(pdk_->tokens().size(), 1u);
  pdk_->RevokeTokens();
  absl::StatusOr<std::vector<PdkSubscription>> listed =
      client_->ListSubscriptions(1);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, *id);
  EXPECT_EQ((*listed)[0].odometer, 0);
  EXPECT_EQ((*listed)[0].active, true);
  EXPECT_EQ(pdk_->tokens().size(), 2u);
  // 2.0's collection is another one.
  listed = client_->ListSubscriptions(2);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());
}

TEST_F(PdkClientTest, RateLimitResetIsWaitedFor) {
  pdk_->ThrottleUntilReset(1, 2);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(client_->ListSubscriptions(1).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(PdkClientTest, PdkErrorsCarryItsStatusAndMessageButNoSecret) {
  absl::Status missing =
      client_->DeleteSubscription(1, "0123456789abcdef01234567");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.message(), "404")) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), "subscription not found"))
      << missing;
  pdk_->Refuse(1, 400, "plain text refusal " + std::string(1000, 'x'));
  absl::StatusOr<std::string> refused = client_->CreateSubscription(1, Hook());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      absl::StrContains(refused.status().message(), "plain text refusal"));
  EXPECT_LT(refused.status().message().size(), 500u);
  PdkSubscription too_long = Hook();
  too_long.name = std::string(71, 'n');
  refused = client_->CreateSubscription(1, too_long);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "70 characters"))
      << refused.status();
  for (const absl::Status& s : {missing, refused.status()}) {
    EXPECT_FALSE(absl::StrContains(s.message(), kClientSecret));
    EXPECT_FALSE(absl::StrContains(s.message(), Hook().secret));
    for (const std::string& t : pdk_->tokens())
      EXPECT_FALSE(absl::StrContains(s.message(), t));
  }
}

TEST(PdkClientUrlTest, ClearTextOnlyToLoopback) {
  PdkAccess access;
  access.org = kOrg;
  access.client_id = kClientId;
  access.client_secret = kClientSecret;
  for (const char* url : {"http://accounts.pdk.io", "http://10.0.0.1:8080",
                          "ftp://accounts.pdk.io", "accounts.pdk.io"}) {
    access.api_url = url;
    EXPECT_EQ(PdkClient::Create(access).status().code(),
              absl::StatusCode::kInvalidArgument)
        << url;
  }
  for (const char* url : {"https://accounts.pdk.io", "http://127.0.0.1:9",
                          "http://localhost:9", "http://[::1]:9"}) {
    access.api_url = url;
    EXPECT_TRUE(PdkClient::Create(access).ok()) << url;
  }
  access.api_url = "https://accounts.pdk.io";
  access.client_secret.clear();
  EXPECT_FALSE(PdkClient::Create(access).ok());
}

TEST(PdkClientJsonTest, BasicCredentialsOnlyForBasic) {
  PdkSubscription s;
  s.name = "n";
  s.url = "https://x/webhooks/n";
  s.events = {"ou.created"};
  s.auth_user = "u";
  s.auth_password = "p";
  EXPECT_TRUE(absl::StrContains(PdkClient::ToJson(s),
                                R"("authentication":{"type":"None"})"));
  s.auth_type = "Basic";
  const std::string json = PdkClient::ToJson(s);
  EXPECT_TRUE(absl::StrContains(
      json, R"("authentication":{"type":"Basic","user":"u","password":"p"})"));
  absl::StatusOr<PdkSubscription> back = PdkClient::FromJson(
      R"({"id":"644ff46419a2920001769732","name":"n","scope":["1234ABC"],)"
      R"("active":false,"odometer":123,"expiresAt":null,"extra":{}})");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, "644ff46419a2920001769732");
  EXPECT_EQ(back->scope, R"(["1234ABC"])");
  EXPECT_EQ(back->active, false);
  EXPECT_EQ(back->odometer, 123);
  EXPECT_EQ(back->expires_at, "");
  EXPECT_TRUE(
      absl::StrContains(PdkClient::ToJson(*back), R"("scope":["1234ABC"])"))
      << PdkClient::ToJson(*back);
}

}  // namespace
}  // namespace pdkarchive::pdkapi
