// Subscriptions (issue 16, local half) through the real interfaces: the
// `pdk-archive subscriptions` CLI as typed, and HTTP to a running `serve`
// binary, on both engines; and two serve nodes on one PostgreSQL archive.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "store/archive.h"
#include "store/subscription_store.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

using testing::CommandResult;
using testing::Engine;
using testing::HttpReply;
using testing::RunCli;
using testing::ServerProcess;
using testing::SignedHeaders;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr char kDefaultSecret[] = "default-secret-of-the-default-subscription";
constexpr char kPanelSecret[] = "panel-secret-set-by-hand-at-pdk-0123456789";
constexpr char kPanelBasic[] = "pdk:basic-password-42";

std::string FirstLine(const std::string& out) {
  return out.substr(0, out.find('\n'));
}

// An org-family delivery (ou.created) with its own id.
std::string OrgEvent(int n) {
  return absl::StrCat(R"({"id":"org-event-)", n,
                      R"(","name":"Name","parent":"57e50e4840ce4f00017df412",)"
                      R"("topic":"ou.created","occurred":1646921051104})");
}

// A panel-family delivery (door.alarm.forced) with its own id.
std::string PanelEvent(int n) {
  return absl::StrCat(
      R"({"id":"panel-event-)", n,
      R"(","body":{"doorId":1},"metadata":{"occurred":1646921051104,)"
      R"("doorName":"Door Name"},"panelId":"1070000","topic":"door.alarm.forced"})");
}

Headers WithBasic(Headers headers, const std::string& user_pass) {
  headers.emplace_back("Authorization",
                       "Basic " + absl::Base64Escape(user_pass));
  return headers;
}

int Post(int port, const std::string& path, const std::string& body,
         const Headers& headers, HttpReply* reply_out = nullptr) {
  absl::StatusOr<HttpReply> reply =
      testing::HttpRequest(port, "POST", path, body, headers);
  if (!reply.ok()) {
    ADD_FAILURE() << reply.status();
    return -1;
  }
  if (reply_out != nullptr) *reply_out = *reply;
  return reply->status;
}

// Posts (a new event each time) until the status is `want` or `limit` has
// passed since `since`; returns the last status.
int PostUntil(int port, const std::string& path, int want,
              const std::string& secret, int* next_event,
              std::chrono::steady_clock::time_point since,
              std::chrono::milliseconds limit) {
  int status = 0;
  do {
    const std::string body = OrgEvent((*next_event)++);
    status = Post(port, path, body, SignedHeaders(secret, body));
    if (status == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() - since < limit);
  return status;
}

std::vector<std::string> Subscriptions(const std::string& db) {
  std::vector<std::string> names;
  for (const store::EventRow& row : testing::ReadAllRows(db))
    names.push_back(row.subscription);
  return names;
}

class SubscriptionsTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-subscriptions");
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

TEST_P(SubscriptionsTest, BadNamesFamiliesApisAndDuplicatesAreRefused) {
  for (const char* name : {"Upper", "_lead", "has space", "a.b", ""}) {
    CommandResult r = RunCli({"subscriptions", "add", name, "--db", db()});
    EXPECT_EQ(r.exit_code, 2) << name;
    EXPECT_TRUE(absl::StrContains(r.err, "not a subscription name")) << r.err;
  }
  EXPECT_EQ(RunCli({"subscriptions", "add", std::string(64, 'a'), "--db", db()})
                .exit_code,
            2);
  CommandResult family =
      RunCli({"subscriptions", "add", "x", "--family", "door", "--db", db()});
  EXPECT_EQ(family.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(family.err, "--family")) << family.err;
  EXPECT_EQ(RunCli({"subscriptions", "add", "x", "--api", "3", "--db", db()})
                .exit_code,
            2);
  for (const std::vector<std::string>& mismatch :
       std::vector<std::vector<std::string>>{{"--family", "panel", "--api", "2"},
                                             {"--family", "cloudnode"},
                                             {"--family", "system", "--api", "1"}}) {
    std::vector<std::string> args = {"subscriptions", "add", "x", "--db", db()};
    args.insert(args.end(), mismatch.begin(), mismatch.end());
    CommandResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(mismatch, " ");
    EXPECT_TRUE(absl::StrContains(r.err, "is not a family of PDK API"))
        << r.err;
  }
  const std::string no_password = WriteFile("basic", "user-only");
  EXPECT_EQ(RunCli({"subscriptions", "add", "x", "--basic-auth-file",
                    no_password, "--db", db()})
                .exit_code,
            2);
  EXPECT_EQ(RunCli({"subscriptions", "frobnicate", "--db", db()}).exit_code, 2);

  CommandResult added =
      RunCli({"subscriptions", "add", std::string(63, 'a'), "--db", db()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  // Generated: 32 CSPRNG bytes in unpadded base64url.
  EXPECT_EQ(FirstLine(added.out).size(), 43u) << added.out;
  CommandResult again =
      RunCli({"subscriptions", "add", std::string(63, 'a'), "--db", db()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(again.err, "exists")) << again.err;
  EXPECT_EQ(again.out, "");
  for (const char* verb : {"show", "rotate", "delete"}) {
    CommandResult missing =
        RunCli({"subscriptions", verb, "nope", "--db", db()});
    EXPECT_EQ(missing.exit_code, 1) << verb;
    EXPECT_TRUE(absl::StrContains(missing.err, "no subscription named nope"))
        << missing.err;
  }
}

TEST_P(SubscriptionsTest,
       EachSubscriptionTakesItsOwnDeliveriesRotatesAndDeletes) {
  CommandResult added = RunCli({"subscriptions", "add", "orgs", "--db", db()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const std::string org_secret = FirstLine(added.out);
  ASSERT_GE(org_secret.size(), 32u);
  const std::string secret_file = WriteFile("panel-secret", kPanelSecret);
  const std::string basic_file = WriteFile("panel-basic", kPanelBasic);
  added = RunCli({"subscriptions", "add", "panels", "--family", "panel",
                  "--api", "1", "--secret-file", secret_file,
                  "--basic-auth-file", basic_file, "--db", db()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "") << "a secret given in a file is not printed";

  auto serve = ServerProcess::Start(
      db(), {"--secret-file", WriteFile("default-secret", kDefaultSecret)});
  ASSERT_TRUE(serve.ok()) << serve.status();
  const int port = serve->http_port();
  int n = 0;

  // Each secret on its own URL; the other's is a 401.
  std::string body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/orgs", body, SignedHeaders(org_secret, body)),
            200);
  body = OrgEvent(n++);
  EXPECT_EQ(
      Post(port, "/webhooks/orgs", body, SignedHeaders(kPanelSecret, body)),
      401);
  body = PanelEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/panels", body,
                 WithBasic(SignedHeaders(kPanelSecret, body), kPanelBasic)),
            200);
  body = PanelEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/panels", body,
                 WithBasic(SignedHeaders(org_secret, body), kPanelBasic)),
            401);
  HttpReply reply;
  body = PanelEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/panels", body,
                 SignedHeaders(kPanelSecret, body), &reply),
            401);
  EXPECT_TRUE(absl::StartsWith(reply.Header("WWW-Authenticate"), "Basic"))
      << reply.body;
  body = PanelEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/panels", body,
                 WithBasic(SignedHeaders(kPanelSecret, body), "pdk:wrong")),
            401);
  // The default subscription stays as it was.
  body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks", body, SignedHeaders(kDefaultSecret, body)),
            200);
  body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks", body, SignedHeaders(org_secret, body)),
            401);
  // An unknown name: 404 with a JSON error, nothing stored.
  body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/nope", body, SignedHeaders(org_secret, body),
                 &reply),
            404);
  EXPECT_TRUE(absl::StartsWith(reply.body, "{\"error\":")) << reply.body;
  // A panel event on the org subscription: stored, and counted.
  body = PanelEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/orgs", body, SignedHeaders(org_secret, body)),
            200);
  absl::StatusOr<HttpReply> metrics =
      testing::HttpRequest(port, "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(
      metrics->body,
      "pdkarchive_family_mismatches_total{subscription=\"orgs\"} 1\n"))
      << metrics->body;
  EXPECT_EQ(Subscriptions(db()),
            (std::vector<std::string>{"orgs", "panels", "default", "orgs"}));

  // Nothing the CLI lists or shows holds a secret.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"list"},
                                             {"list", "--json"},
                                             {"show", "orgs"},
                                             {"show", "orgs", "--json"},
                                             {"show", "panels"},
                                             {"show", "panels", "--json"}}) {
    std::vector<std::string> full = {"subscriptions"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--db", db()});
    CommandResult shown = RunCli(full);
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    for (const std::string& secret : {org_secret, std::string(kPanelSecret),
                                      std::string("basic-password-42")}) {
      EXPECT_FALSE(absl::StrContains(shown.out + shown.err, secret))
          << shown.out;
    }
  }
  CommandResult shown =
      RunCli({"subscriptions", "show", "panels", "--json", "--db", db()});
  EXPECT_TRUE(absl::StrContains(shown.out, "\"family\":\"panel\""))
      << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "\"api\":1")) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "\"basic_auth\":true")) << shown.out;
  EXPECT_TRUE(
      absl::StrContains(shown.out, "\"previous_secret_accepted_until\":null"))
      << shown.out;

  // Rotation: both secrets during the grace period, only the new one after.
  CommandResult rotated = RunCli(
      {"subscriptions", "rotate", "orgs", "--grace", "2s", "--db", db()});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const auto rotated_at = std::chrono::steady_clock::now();
  const std::string new_secret = FirstLine(rotated.out);
  ASSERT_GE(new_secret.size(), 32u);
  ASSERT_NE(new_secret, org_secret);
  EXPECT_EQ(PostUntil(port, "/webhooks/orgs", 200, new_secret, &n, rotated_at,
                      std::chrono::milliseconds(1800)),
            200)
      << "the new secret was not taken within the grace period";
  body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/orgs", body, SignedHeaders(org_secret, body)),
            200)
      << "the old secret was refused during its grace period";
  shown = RunCli({"subscriptions", "show", "orgs", "--db", db()});
  EXPECT_TRUE(absl::StrContains(shown.out, "previous secret:   accepted until"))
      << shown.out;
  EXPECT_FALSE(absl::StrContains(shown.out + shown.err, new_secret));
  std::this_thread::sleep_until(rotated_at + std::chrono::milliseconds(2300));
  body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/orgs", body, SignedHeaders(org_secret, body)),
            401)
      << "the old secret was accepted after its grace period";
  body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/orgs", body, SignedHeaders(new_secret, body)),
            200);
  shown = RunCli({"subscriptions", "show", "orgs", "--db", db()});
  EXPECT_TRUE(absl::StrContains(shown.out, "previous secret:   none accepted"))
      << shown.out;

  // Delete: 404 from then on, nothing more stored, the events stay.
  CommandResult deleted =
      RunCli({"subscriptions", "delete", "orgs", "--db", db()});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  const auto deleted_at = std::chrono::steady_clock::now();
  EXPECT_EQ(PostUntil(port, "/webhooks/orgs", 404, new_secret, &n, deleted_at,
                      std::chrono::seconds(5)),
            404);
  const size_t stored = testing::ReadAllRows(db()).size();
  body = OrgEvent(n++);
  EXPECT_EQ(Post(port, "/webhooks/orgs", body, SignedHeaders(new_secret, body),
                 &reply),
            404);
  EXPECT_TRUE(absl::StartsWith(reply.body, "{\"error\":")) << reply.body;
  const std::vector<store::EventRow> after = testing::ReadAllRows(db());
  EXPECT_EQ(after.size(), stored)
      << "a delivery to a deleted subscription was stored";
  size_t orgs = 0;
  for (const store::EventRow& row : after)
    orgs += row.subscription == "orgs" ? 1u : 0u;
  EXPECT_GE(orgs, 5u);
  CommandResult listed = RunCli({"subscriptions", "list", "--db", db()});
  EXPECT_FALSE(absl::StrContains(listed.out, "orgs")) << listed.out;
  // The name may be used again.
  EXPECT_EQ(RunCli({"subscriptions", "add", "orgs", "--db", db()}).exit_code,
            0);

  ASSERT_EQ(serve->Stop(SIGTERM).value_or(-1), 0);
  const std::string err = serve->Stderr();
  for (const std::string& secret :
       {org_secret, new_secret, std::string(kPanelSecret),
        std::string(kDefaultSecret), std::string("basic-password-42")}) {
    EXPECT_FALSE(absl::StrContains(err, secret)) << err;
  }
  EXPECT_EQ(testing::ArchiveIntegrity(db()), "ok");
}

// Rotating or deleting one made at PDK tells PDK (tests/subscriptions_pdk_test.cc);
// without PDK access that is refused unless --local-only.
TEST_P(SubscriptionsTest, OnesMadeAtPdkNeedPdkAccessOrLocalOnly) {
  {
    auto archive = store::OpenArchive(db());
    ASSERT_TRUE(archive.ok()) << archive.status();
    store::Subscription made;
    made.name = "site-org";
    made.family = "org";
    made.pdk_id = "6231d2e96348ca00019f7474";
    made.secret = "secret-made-at-pdk-0123456789abcdef";
    made.odometer_baseline = 41;
    made.created_ms = 1;
    ASSERT_TRUE((*archive)->subscriptions().AddSubscription(made).ok());
  }
  CommandResult shown =
      RunCli({"subscriptions", "show", "site-org", "--json", "--db", db()});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(
      absl::StrContains(shown.out, "\"pdk_id\":\"6231d2e96348ca00019f7474\""));
  EXPECT_TRUE(absl::StrContains(shown.out, "\"odometer_baseline\":41"))
      << shown.out;
  EXPECT_FALSE(absl::StrContains(shown.out, "secret-made-at-pdk")) << shown.out;

  CommandResult rotated =
      RunCli({"subscriptions", "rotate", "site-org", "--db", db()});
  EXPECT_EQ(rotated.exit_code, 2) << rotated.err;
  EXPECT_TRUE(absl::StrContains(rotated.err, "needs PDK access")) << rotated.err;
  rotated = RunCli(
      {"subscriptions", "rotate", "site-org", "--local-only", "--db", db()});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  CommandResult refused =
      RunCli({"subscriptions", "delete", "site-org", "--db", db()});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(refused.err, "--local-only")) << refused.err;
  EXPECT_TRUE(absl::StrContains(
      RunCli({"subscriptions", "list", "--db", db()}).out, "site-org"));
  CommandResult deleted = RunCli(
      {"subscriptions", "delete", "site-org", "--local-only", "--db", db()});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_FALSE(absl::StrContains(
      RunCli({"subscriptions", "list", "--db", db()}).out, "site-org"));
}

INSTANTIATE_TEST_SUITE_P(Engines, SubscriptionsTest,
                         ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

// Two serve nodes on one PostgreSQL archive: a subscription added, rotated
// and deleted with the CLI reaches both within 5 seconds.
TEST(SubscriptionsTwoNodeTest, ChangesReachEveryNodeWithinFiveSeconds) {
  const std::filesystem::path dir =
      testing::FreshTestDir("pdkarchive-subscriptions-two");
  auto archive = testing::TestArchive::Create(Engine::kPostgres, dir);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const std::string db = (*archive)->db();
  auto a = ServerProcess::Start(db, {});
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = ServerProcess::Start(db, {});
  ASSERT_TRUE(b.ok()) << b.status();
  int n = 0;

  CommandResult added = RunCli({"subscriptions", "add", "shared", "--db", db});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto changed_at = std::chrono::steady_clock::now();
  const std::string secret = FirstLine(added.out);
  for (const ServerProcess* node : {&*a, &*b}) {
    EXPECT_EQ(PostUntil(node->http_port(), "/webhooks/shared", 200, secret, &n,
                        changed_at, std::chrono::seconds(5)),
              200)
        << "node on " << node->http_port();
  }

  CommandResult rotated = RunCli(
      {"subscriptions", "rotate", "shared", "--grace", "1s", "--db", db});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  changed_at = std::chrono::steady_clock::now();
  const std::string rotated_secret = FirstLine(rotated.out);
  for (const ServerProcess* node : {&*a, &*b}) {
    EXPECT_EQ(
        PostUntil(node->http_port(), "/webhooks/shared", 200, rotated_secret,
                  &n, changed_at, std::chrono::seconds(5)),
        200)
        << "node on " << node->http_port();
  }

  CommandResult deleted =
      RunCli({"subscriptions", "delete", "shared", "--db", db});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  changed_at = std::chrono::steady_clock::now();
  for (const ServerProcess* node : {&*a, &*b}) {
    EXPECT_EQ(
        PostUntil(node->http_port(), "/webhooks/shared", 404, rotated_secret,
                  &n, changed_at, std::chrono::seconds(5)),
        404)
        << "node on " << node->http_port();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - changed_at,
            std::chrono::seconds(5) + std::chrono::milliseconds(500));

  ASSERT_EQ(a->Stop(SIGTERM).value_or(-1), 0);
  ASSERT_EQ(b->Stop(SIGTERM).value_or(-1), 0);
  archive->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pdkarchive
