// Subscriptions managed at PDK (issue 16, PDK API half) through the real
// interfaces: the `pdk-archive subscriptions` CLI as a user types it against
// a PDK API stand-in on loopback (tests/test_support/pdk_standin.h), and
// HTTP to a running `serve`, on both engines.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "store/archive.h"
#include "store/subscription_store.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/pdk_standin.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"
#include "timeutil/time_util.h"

namespace pdkarchive {
namespace {

using testing::CommandResult;
using testing::Engine;
using testing::HttpReply;
using testing::PdkStandin;
using testing::RunCli;
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kOrg[] = "57e50e4840ce4f00017df412";
constexpr char kClientId[] = "archive-client-7";
constexpr char kClientSecret[] = "client-secret-never-printed-0123456789";
constexpr char kPublicUrl[] = "https://archive.example.com";

std::string OrgEvent(int n) {
  return absl::StrCat(R"({"id":"org-event-)", n,
                      R"(","name":"Name","parent":"57e50e4840ce4f00017df412",)"
                      R"("topic":"ou.created","occurred":1646921051104})");
}

int Post(int port, const std::string& path, const std::string& secret, int n) {
  const std::string body = OrgEvent(n);
  absl::StatusOr<HttpReply> reply = testing::HttpRequest(
      port, "POST", path, body, SignedHeaders(secret, body));
  if (!reply.ok()) {
    ADD_FAILURE() << reply.status();
    return -1;
  }
  return reply->status;
}

// Posts new events signed with `secret` until the status is `want` or
// `limit` has passed; returns the last status.
int PostUntil(int port, const std::string& path, const std::string& secret,
              int want, int* n, std::chrono::milliseconds limit) {
  const auto since = std::chrono::steady_clock::now();
  int status = 0;
  do {
    status = Post(port, path, secret, (*n)++);
    if (status == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() - since < limit);
  return status;
}

class SubscriptionsPdkTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-subscriptions-pdk");
    auto archive = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    auto standin = PdkStandin::Start(kOrg, kClientId, kClientSecret);
    ASSERT_TRUE(standin.ok()) << standin.status();
    pdk_ = *std::move(standin);
    client_secret_file_ = WriteFile("client-secret", kClientSecret);
  }
  void TearDown() override {
    ExpectNoSecretPrinted();
    pdk_.reset();
    archive_.reset();
    std::filesystem::remove_all(dir_);
  }

  const std::string& db() const { return archive_->db(); }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path) << text << "\n";
    return path.string();
  }

  // `pdk-archive subscriptions ARGS` with the archive and PDK access flags;
  // keeps its output for ExpectNoSecretPrinted.
  CommandResult Cli(std::vector<std::string> args, bool with_pdk = true) {
    args.insert(args.begin(), "subscriptions");
    args.insert(args.end(), {"--db", db()});
    if (with_pdk) {
      args.insert(args.end(),
                  {"--pdk-api", pdk_->url(), "--pdk-org", kOrg,
                   "--pdk-client-id", kClientId, "--pdk-client-secret-file",
                   client_secret_file_, "--public-url", kPublicUrl});
    }
    CommandResult r = RunCli(args);
    outputs_.push_back(r.out);
    outputs_.push_back(r.err);
    return r;
  }

  // The live subscription `name` as the archive keeps it.
  std::optional<store::Subscription> Local(const std::string& name) {
    auto archive = store::OpenArchive(db());
    if (!archive.ok()) {
      ADD_FAILURE() << archive.status();
      return std::nullopt;
    }
    auto all = (*archive)->subscriptions().ListSubscriptions();
    if (!all.ok()) {
      ADD_FAILURE() << all.status();
      return std::nullopt;
    }
    for (store::Subscription& s : *all) {
      if (s.name == name) {
        secrets_.push_back(s.secret);
        if (!s.previous_secret.empty()) secrets_.push_back(s.previous_secret);
        return s;
      }
    }
    return std::nullopt;
  }

  size_t LocalCount() {
    auto archive = store::OpenArchive(db());
    if (!archive.ok()) return 999;
    auto all = (*archive)->subscriptions().ListSubscriptions();
    return all.ok() ? all->size() : 999;
  }

  // Creates org subscription `name` (API 1) and returns its PDK id.
  std::string CreateOrg(const std::string& name) {
    CommandResult r =
        Cli({"create", name, "--events", "ou.created,ou.updated"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  // No subscription secret, client secret, Basic password or id_token in
  // any line any command printed.
  void ExpectNoSecretPrinted() {
    std::vector<std::string> secrets = secrets_;
    secrets.push_back(kClientSecret);
    secrets.push_back("basic-password-42");
    for (const std::string& t : pdk_->tokens()) secrets.push_back(t);
    for (const std::string& out : outputs_) {
      for (const std::string& secret : secrets) {
        if (secret.empty()) continue;
        EXPECT_FALSE(absl::StrContains(out, secret))
            << "a secret was printed: " << out;
      }
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> archive_;
  std::unique_ptr<PdkStandin> pdk_;
  std::string client_secret_file_;
  std::vector<std::string> outputs_;
  std::vector<std::string> secrets_;
};

TEST_P(SubscriptionsPdkTest, CreateOnApi1AndApi2SendsTheStoredSecret) {
  const std::string id = CreateOrg("orgs");
  ASSERT_EQ(id.size(), 24u) << id;
  std::vector<PdkStandin::Request> requests = pdk_->requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/oauth2/token");
  EXPECT_EQ(requests[1].method, "POST");
  EXPECT_EQ(requests[1].path, absl::StrCat("/api/ous/", kOrg, "/hooks"));
  // One token for the whole command, sent as the Bearer of every call.
  ASSERT_EQ(pdk_->tokens().size(), 1u);
  for (size_t i = 1; i < requests.size(); ++i)
    EXPECT_EQ(requests[i].authorization, "Bearer " + pdk_->tokens()[0]);
  std::optional<store::Subscription> local = Local("orgs");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->pdk_id, id);
  EXPECT_EQ(local->family, "org");
  EXPECT_EQ(local->api, 1);
  EXPECT_GE(local->secret.size(), 32u);
  EXPECT_EQ(local->odometer_baseline, 0);
  EXPECT_TRUE(local->baseline_sequence.has_value());
  EXPECT_EQ(local->public_url, kPublicUrl);
  EXPECT_EQ(local->events, R"(["ou.created","ou.updated"])");
  std::optional<std::string> at_pdk = pdk_->Object(id);
  ASSERT_TRUE(at_pdk.has_value());
  EXPECT_TRUE(absl::StrContains(
      *at_pdk, absl::StrCat("\"secret\":\"", local->secret, "\"")))
      << "PDK holds another secret";
  EXPECT_TRUE(absl::StrContains(
      *at_pdk, R"("url":"https://archive.example.com/webhooks/orgs")"))
      << *at_pdk;
  EXPECT_TRUE(absl::StrContains(*at_pdk, R"("scope":"ouRecursive")"));
  EXPECT_TRUE(
      absl::StrContains(*at_pdk, R"("authentication":{"type":"None"})"));

  // API 2, system events, with Basic credentials.
  pdk_->ClearRequests();
  const std::string basic = WriteFile("basic", "pdk:basic-password-42");
  CommandResult r = Cli({"create", "holders", "--api", "2", "--events",
                         "holder.created,holder.updated", "--basic-auth-file",
                         basic, "--secrecy-level", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id2 = r.out.substr(0, r.out.find('\n'));
  requests = pdk_->requests();
  ASSERT_FALSE(requests.empty());
  bool posted = false;
  for (const auto& q : requests) {
    if (q.method == "POST" &&
        q.path == absl::StrCat("/api/organizations/", kOrg, "/subscriptions"))
      posted = true;
  }
  EXPECT_TRUE(posted);
  EXPECT_EQ(pdk_->ApiOf(id2), 2);
  local = Local("holders");
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->family, "system");
  EXPECT_EQ(local->api, 2);
  EXPECT_EQ(local->basic_auth, "pdk:basic-password-42");
  at_pdk = pdk_->Object(id2);
  ASSERT_TRUE(at_pdk.has_value());
  EXPECT_TRUE(absl::StrContains(*at_pdk, R"("scope":"recursive")"));
  EXPECT_TRUE(absl::StrContains(
      *at_pdk,
      R"("authentication":{"type":"Basic","user":"pdk","password":"basic-password-42"})"))
      << "Basic credentials not sent";
  EXPECT_TRUE(absl::StrContains(*at_pdk, R"("secrecyLevel":2)"));
}

TEST_P(SubscriptionsPdkTest, PdkRulesAreCheckedBeforeAnyCall) {
  const std::string no_password = WriteFile("basic-no-password", "pdk:");
  const std::vector<std::vector<std::string>> refused = {
      {"create", "mixed", "--events", "ou.created,door.alarm.forced"},
      {"create", std::string(71, 'a'), "--events", "ou.created"},
      {"create", "unknown", "--events", "no.such.topic"},
      {"create", "v2mixed", "--api", "2", "--events",
       "holder.created,organization.created"},
      {"create", "past", "--events", "ou.created", "--expires-at",
       "2020-01-01T00:00:00Z"},
      {"create", "basic", "--events", "ou.created", "--basic-auth"},
      {"create", "basic", "--events", "ou.created", "--basic-auth-file",
       no_password},
      {"create", "noevents"},
  };
  for (const auto& args : refused) {
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  // An http public URL and a loopback one.
  for (const char* url :
       {"http://archive.example.com", "https://localhost:8443"}) {
    CommandResult r =
        RunCli({"subscriptions", "create", "plain", "--events", "ou.created",
                "--db", db(), "--pdk-api", pdk_->url(), "--pdk-org", kOrg,
                "--pdk-client-id", kClientId, "--pdk-client-secret-file",
                client_secret_file_, "--public-url", url});
    EXPECT_EQ(r.exit_code, 2) << url << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "--public-url")) << r.err;
    outputs_.push_back(r.err);
  }
  CommandResult mixed =
      Cli({"create", "mixed", "--events", "ou.created,door.alarm.forced"});
  EXPECT_TRUE(absl::StrContains(mixed.err, "mixes families")) << mixed.err;
  CommandResult long_name =
      Cli({"create", std::string(71, 'a'), "--events", "ou.created"});
  EXPECT_TRUE(absl::StrContains(long_name.err, "70")) << long_name.err;
  CommandResult past = Cli({"create", "past", "--events", "ou.created",
                            "--expires-at", "2020-01-01T00:00:00Z"});
  EXPECT_TRUE(absl::StrContains(past.err, "future")) << past.err;
  CommandResult basic =
      Cli({"create", "basic", "--events", "ou.created", "--basic-auth"});
  EXPECT_TRUE(absl::StrContains(basic.err, "password")) << basic.err;
  // An http PDK API other than loopback is refused too.
  CommandResult clear =
      RunCli({"subscriptions", "create", "x", "--events", "ou.created", "--db",
              db(), "--pdk-api", "http://accounts.pdk.io", "--pdk-org", kOrg,
              "--pdk-client-id", kClientId, "--pdk-client-secret-file",
              client_secret_file_, "--public-url", kPublicUrl});
  EXPECT_EQ(clear.exit_code, 2) << clear.err;
  EXPECT_TRUE(absl::StrContains(clear.err, "in clear")) << clear.err;

  EXPECT_TRUE(pdk_->requests().empty())
      << pdk_->requests().size() << " requests reached PDK";
  EXPECT_EQ(LocalCount(), 0u);
}

TEST_P(SubscriptionsPdkTest, PdkRefusalIsShownAndLeavesNothingLocal) {
  pdk_->Refuse(1, 400, R"({"message":"url host does not resolve"})");
  CommandResult r = Cli({"create", "orgs", "--events", "ou.created"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "400")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "url host does not resolve")) << r.err;
  EXPECT_EQ(LocalCount(), 0u);
  EXPECT_TRUE(pdk_->Ids().empty());
  // Wrong client credentials: PDK's 401 on the token, shown as PDK said it.
  const std::string wrong = WriteFile("wrong", "not-the-client-secret");
  CommandResult denied =
      RunCli({"subscriptions", "create", "orgs", "--events", "ou.created",
              "--db", db(), "--pdk-api", pdk_->url(), "--pdk-org", kOrg,
              "--pdk-client-id", kClientId, "--pdk-client-secret-file", wrong,
              "--public-url", kPublicUrl});
  outputs_.push_back(denied.err);
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(denied.err, "401")) << denied.err;
  EXPECT_TRUE(absl::StrContains(denied.err, "invalid client credentials"))
      << denied.err;
  EXPECT_FALSE(absl::StrContains(denied.err, "not-the-client-secret"));
  EXPECT_EQ(LocalCount(), 0u);
}

TEST_P(SubscriptionsPdkTest, TooManyRequestsIsWaitedOut) {
  pdk_->Throttle(2, 1);
  const auto start = std::chrono::steady_clock::now();
  const std::string id = CreateOrg("orgs");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(pdk_->Object(id).has_value());
  EXPECT_TRUE(Local("orgs").has_value());
  // Throttled past the retries: a clear failure, nothing local.
  pdk_->Throttle(50, 0);
  CommandResult r = Cli({"create", "more", "--events", "ou.created"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "429")) << r.err;
  EXPECT_FALSE(Local("more").has_value());
  pdk_->Throttle(0, 0);
}

TEST_P(SubscriptionsPdkTest, ListShowAndUpdateCarryPdkState) {
  const std::string id = CreateOrg("orgs");
  ASSERT_TRUE(pdk_->SetOdometer(id, 7));
  CommandResult listed = Cli({"list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(absl::StrContains(listed.out, R"("odometer":7)")) << listed.out;
  EXPECT_TRUE(absl::StrContains(listed.out, R"("active":true)")) << listed.out;
  CommandResult table = Cli({"list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, "ODOMETER")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, id)) << table.out;
  // Without PDK access: local state only.
  CommandResult local_only = Cli({"list", "--json"}, /*with_pdk=*/false);
  ASSERT_EQ(local_only.exit_code, 0) << local_only.err;
  EXPECT_FALSE(absl::StrContains(local_only.out, R"("odometer":7)"));

  CommandResult updated =
      Cli({"update", "orgs", "--active", "false", "--secrecy-level", "2",
           "--expires-at", "2099-01-01T00:00:00Z"});
  ASSERT_EQ(updated.exit_code, 0) << updated.err;
  std::optional<std::string> at_pdk = pdk_->Object(id);
  ASSERT_TRUE(at_pdk.has_value());
  EXPECT_TRUE(absl::StrContains(*at_pdk, R"("active":false)")) << *at_pdk;
  EXPECT_TRUE(absl::StrContains(*at_pdk, R"("secrecyLevel":2)")) << *at_pdk;
  EXPECT_TRUE(
      absl::StrContains(*at_pdk, R"("expiresAt":"2099-01-01T00:00:00Z")"));
  std::optional<store::Subscription> local = Local("orgs");
  ASSERT_TRUE(local.has_value());
  EXPECT_TRUE(absl::StrContains(
      *at_pdk, absl::StrCat("\"secret\":\"", local->secret, "\"")))
      << "update lost the secret at PDK";
  EXPECT_EQ(local->secrecy_level, 2);
  EXPECT_EQ(local->pdk_active, false);
  CommandResult shown = Cli({"show", "orgs"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(absl::StrContains(shown.out, "active false")) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "odometer 7")) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "secret:            set"));
  // Events of another family are refused before any call.
  pdk_->ClearRequests();
  CommandResult other =
      Cli({"update", "orgs", "--events", "door.alarm.forced"});
  EXPECT_EQ(other.exit_code, 2) << other.err;
  EXPECT_TRUE(pdk_->requests().empty());
}

TEST_P(SubscriptionsPdkTest, RotateGoesToPdkAndServeAcceptsBothDuringGrace) {
  const std::string id = CreateOrg("orgs");
  std::optional<store::Subscription> before = Local("orgs");
  ASSERT_TRUE(before.has_value());
  const std::string old_secret = before->secret;
  auto serve = ServerProcess::Start(db(), {});
  ASSERT_TRUE(serve.ok()) << serve.status();
  const int port = serve->http_port();
  int n = 0;
  EXPECT_EQ(PostUntil(port, "/webhooks/orgs", old_secret, 200, &n,
                      std::chrono::seconds(5)),
            200);

  CommandResult rotated = Cli({"rotate", "orgs", "--grace", "3s"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const auto rotated_at = std::chrono::steady_clock::now();
  std::optional<store::Subscription> after = Local("orgs");
  ASSERT_TRUE(after.has_value());
  const std::string new_secret = after->secret;
  EXPECT_NE(new_secret, old_secret);
  EXPECT_EQ(after->previous_secret, old_secret);
  std::optional<std::string> at_pdk = pdk_->Object(id);
  ASSERT_TRUE(at_pdk.has_value());
  EXPECT_TRUE(absl::StrContains(
      *at_pdk, absl::StrCat("\"secret\":\"", new_secret, "\"")))
      << "PDK does not have the new secret";
  // Both accepted during the grace period.
  EXPECT_EQ(PostUntil(port, "/webhooks/orgs", new_secret, 200, &n,
                      std::chrono::seconds(5)),
            200);
  if (std::chrono::steady_clock::now() - rotated_at < std::chrono::seconds(2)) {
    EXPECT_EQ(Post(port, "/webhooks/orgs", old_secret, n++), 200);
  }
  // Only the new one after it.
  EXPECT_EQ(PostUntil(port, "/webhooks/orgs", old_secret, 401, &n,
                      std::chrono::seconds(10)),
            401);
  EXPECT_EQ(Post(port, "/webhooks/orgs", new_secret, n++), 200);

  // A PDK refusal leaves the secret as it was, here and at PDK.
  pdk_->Refuse(1, 500, R"({"error":"internal error"})");
  CommandResult failed = Cli({"rotate", "orgs"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(failed.err, "500")) << failed.err;
  EXPECT_EQ(Local("orgs")->secret, new_secret);

  // Delete: gone at PDK, 404 here, its events stay.
  CommandResult deleted = Cli({"delete", "orgs"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_FALSE(pdk_->Object(id).has_value());
  EXPECT_FALSE(Local("orgs").has_value());
  EXPECT_EQ(PostUntil(port, "/webhooks/orgs", new_secret, 404, &n,
                      std::chrono::seconds(5)),
            404);
  ASSERT_EQ(serve->Stop(SIGTERM).value_or(-1), 0);
  outputs_.push_back(serve->Stderr());
  secrets_.push_back(old_secret);
  secrets_.push_back(new_secret);
}

TEST_P(SubscriptionsPdkTest, CheckFindsTheGapAndMetricsCarryIt) {
  const std::string id = CreateOrg("orgs");
  const std::string secret = Local("orgs")->secret;
  auto serve = ServerProcess::Start(db(), {});
  ASSERT_TRUE(serve.ok()) << serve.status();
  const int port = serve->http_port();
  for (int n = 0; n < 3; ++n)
    EXPECT_EQ(Post(port, "/webhooks/orgs", secret, n), 200);
  // A redelivery is not a new event.
  EXPECT_EQ(Post(port, "/webhooks/orgs", secret, 0), 200);

  ASSERT_TRUE(pdk_->SetOdometer(id, 5));
  CommandResult gap = Cli({"check"});
  EXPECT_EQ(gap.exit_code, 1) << gap.err;
  EXPECT_TRUE(absl::StrContains(gap.out, "2 events missing")) << gap.out;
  CommandResult json = Cli({"check", "orgs", "--json"});
  EXPECT_EQ(json.exit_code, 1) << json.err;
  EXPECT_TRUE(absl::StrContains(json.out, R"("pdk_events":5)")) << json.out;
  EXPECT_TRUE(absl::StrContains(json.out, R"("archived_events":3)"))
      << json.out;
  EXPECT_TRUE(absl::StrContains(json.out, R"("missing_events":2)")) << json.out;
  std::optional<store::Subscription> local = Local("orgs");
  ASSERT_TRUE(local.has_value() && local->last_check.has_value());
  EXPECT_EQ(local->last_check->missing_events, 2);

  auto metric_shows = [&](const std::string& line) {
    const auto since = std::chrono::steady_clock::now();
    std::string body;
    while (std::chrono::steady_clock::now() - since < std::chrono::seconds(5)) {
      absl::StatusOr<HttpReply> metrics =
          testing::HttpRequest(port, "GET", "/metrics");
      if (metrics.ok()) body = metrics->body;
      if (absl::StrContains(body, line)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no " << line << " in:\n" << body;
    return false;
  };
  metric_shows(
      "pdkarchive_subscription_missing_events{subscription=\"orgs\"} 2\n");
  metric_shows("pdkarchive_subscription_pdk_events{subscription=\"orgs\"} 5\n");
  metric_shows(
      "pdkarchive_subscription_archived_events{subscription=\"orgs\"} 3\n");
  metric_shows(
      "pdkarchive_subscription_last_check_timestamp_seconds{"
      "subscription=\"orgs\"} ");

  // The exposition with the gauges is still valid: promtool's own check.
  absl::StatusOr<HttpReply> metrics =
      testing::HttpRequest(port, "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::string metrics_file = WriteFile("metrics.txt", "");
  std::ofstream(metrics_file, std::ios::trunc) << metrics->body;
  CommandResult promtool = testing::RunProgram(
      {"/bin/sh", "-c",
       absl::StrCat("/usr/bin/promtool check metrics < ", metrics_file)});
  EXPECT_EQ(promtool.exit_code, 0) << promtool.out << promtool.err;
  EXPECT_EQ(promtool.out + promtool.err, "") << metrics->body;

  ASSERT_TRUE(pdk_->SetOdometer(id, 3));
  CommandResult whole = Cli({"check"});
  EXPECT_EQ(whole.exit_code, 0) << whole.err << whole.out;
  EXPECT_FALSE(absl::StrContains(whole.out, "missing:")) << whole.out;
  metric_shows(
      "pdkarchive_subscription_missing_events{subscription=\"orgs\"} 0\n");

  // Inactive and expiring soon: warned about.
  CommandResult updated = Cli({"update", "orgs", "--active", "false"});
  ASSERT_EQ(updated.exit_code, 0) << updated.err;
  CommandResult warned = Cli({"check", "orgs"});
  EXPECT_EQ(warned.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(warned.err, "inactive")) << warned.err;
  const std::string soon =
      timeutil::FormatRfc3339Millis(timeutil::NowMs() + 2 * timeutil::kDayMs)
          .value();
  updated = Cli({"update", "orgs", "--active", "true", "--expires-at", soon});
  ASSERT_EQ(updated.exit_code, 0) << updated.err;
  warned = Cli({"check", "orgs"});
  EXPECT_EQ(warned.exit_code, 0);
  EXPECT_FALSE(absl::StrContains(warned.err, "inactive")) << warned.err;
  EXPECT_TRUE(absl::StrContains(warned.err, "expires at " + soon))
      << warned.err;
  ASSERT_EQ(serve->Stop(SIGTERM).value_or(-1), 0);
  outputs_.push_back(serve->Stderr());
}

// When the archive refuses the registration after PDK made the
// subscription, it is deleted at PDK again. The archive is made to refuse by
// a trigger, through each engine's own command-line client.
TEST_P(SubscriptionsPdkTest, LocalFailureAfterPdkCreatedDeletesItAtPdk) {
  ASSERT_EQ(Cli({"list"}).exit_code, 0);  // creates and migrates the archive
  CommandResult trigger =
      GetParam() == Engine::kSqlite
          ? testing::RunProgram(
                {"/usr/bin/sqlite3", db(),
                 "CREATE TRIGGER refuse BEFORE INSERT ON subscriptions BEGIN "
                 "SELECT RAISE(ABORT, 'refused by the test'); END;"})
          : testing::RunProgram(
                {"/usr/bin/psql", "-v", "ON_ERROR_STOP=1", db(), "-c",
                 "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql "
                 "AS $$BEGIN RAISE EXCEPTION 'refused by the test'; END$$; "
                 "CREATE TRIGGER refuse BEFORE INSERT ON subscriptions FOR "
                 "EACH ROW EXECUTE FUNCTION refuse();"});
  ASSERT_EQ(trigger.exit_code, 0) << trigger.err;
  CommandResult r = Cli({"create", "orgs", "--events", "ou.created"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "refused by the test")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "deleted it at PDK again")) << r.err;
  EXPECT_TRUE(pdk_->Ids().empty());
  bool deleted = false;
  for (const auto& q : pdk_->requests())
    deleted = deleted || q.method == "DELETE";
  EXPECT_TRUE(deleted);
  EXPECT_EQ(LocalCount(), 0u);
}

TEST_P(SubscriptionsPdkTest, ConfigFileCarriesPdkAccess) {
  const std::string config =
      WriteFile("pdk-archive.toml",
                absl::StrCat("db = \"", db(), "\"\npdk-api = \"", pdk_->url(),
                             "\"\npdk-org = \"", kOrg, "\"\npdk-client-id = \"",
                             kClientId, "\"\npdk-client-secret-file = \"",
                             client_secret_file_, "\"\npublic-url = \"",
                             kPublicUrl, "\"\nsecrecy-level = 0\n"));
  CommandResult r = RunCli({"subscriptions", "create", "orgs", "--events",
                            "ou.created", "--config", config});
  outputs_.push_back(r.out);
  outputs_.push_back(r.err);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  std::optional<std::string> at_pdk = pdk_->Object(id);
  ASSERT_TRUE(at_pdk.has_value());
  EXPECT_TRUE(absl::StrContains(*at_pdk, R"("secrecyLevel":0)")) << *at_pdk;
  ASSERT_TRUE(Local("orgs").has_value());
  // An unknown key is an error naming it, before any call.
  pdk_->ClearRequests();
  const std::string bad = WriteFile(
      "bad.toml", absl::StrCat("db = \"", db(), "\"\npdk-orgg = \"x\"\n"));
  CommandResult refused = RunCli({"subscriptions", "list", "--config", bad});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(refused.err, "pdk-orgg")) << refused.err;
  EXPECT_TRUE(pdk_->requests().empty());
}

INSTANTIATE_TEST_SUITE_P(Engines, SubscriptionsPdkTest,
                         ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

}  // namespace
}  // namespace pdkarchive
