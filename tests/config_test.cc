// `--config FILE` (DESIGN.md "Configuration") through the real binary: a TOML
// file whose keys are the long flag names sets them for any command; the
// command line wins; unknown keys, wrong types and secrets are refused with
// the key named.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

using testing::RunCli;
using testing::ServerProcess;

constexpr char kSecret[] = "config-test-secret";

std::string Event(int i, int door) {
  return absl::StrCat(R"({"id":"cfg-)", i, R"(","body":{"doorId":)", door,
                      R"(,"personId":7},"metadata":{"occurred":1646870400000},)"
                      R"("panelId":"1070000","topic":"door.request.allowed"})");
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshTestDir("pdkarchive-config"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `toml` to DIR/`name` and returns its path.
  std::string WriteConfig(const std::string& name, const std::string& toml) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << toml;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, ServeTakesDbListenersAndSecretFileFromTheConfig) {
  const std::string db = (dir_ / "from-config.db").string();
  const std::string secret_file = (dir_ / "secret").string();
  std::ofstream(secret_file) << kSecret << "\n";
  const std::string config = WriteConfig(
      "serve.toml", absl::StrCat("# pdk-archive serve\n", "db = \"", db, "\"\n",
                                 "http-listen = \"127.0.0.1:0\"\n",
                                 "grpc-listen = \"127.0.0.1:0\"\n", "secret-file = \"",
                                 secret_file, "\"\n", "max-body-bytes = 4096\n"));
  auto server = ServerProcess::StartWithArgs({"serve", "--config", config});
  ASSERT_TRUE(server.ok()) << server.status();
  // The defaults would have been 0.0.0.0:8080 and 127.0.0.1:50051.
  EXPECT_NE(server->http_port(), 8080);
  EXPECT_NE(server->grpc_port(), 50051);

  for (int i = 1; i <= 2; ++i) {
    const std::string body = Event(i, i == 1 ? 1 : 3);
    auto reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body,
                                      testing::SignedHeaders(kSecret, body));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->status, 200) << reply->body;
  }
  // The secret file named in the config is in force, and so is the body limit.
  auto unsigned_reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks",
                                             Event(9, 1));
  ASSERT_TRUE(unsigned_reply.ok());
  EXPECT_EQ(unsigned_reply->status, 401);
  const std::string big = Event(10, 1) + std::string(5000, ' ');
  auto too_big = testing::HttpRequest(server->http_port(), "POST", "/webhooks", big,
                                      testing::SignedHeaders(kSecret, big));
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ(too_big->status, 413);

  // A client command takes its flags from a config too: a string (server),
  // a list (door) and a boolean (json).
  const std::string client = WriteConfig(
      "client.toml", absl::StrCat("server = \"", server->grpc_address(), "\"\n",
                                  "door = [\"3\"]\njson = true\n"));
  auto events = RunCli({"events", "--config", client});
  EXPECT_EQ(events.exit_code, 0) << events.err;
  std::vector<std::string> lines =
      absl::StrSplit(events.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << events.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "{")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "\"cfg-2\"")) << lines[0];

  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << server->Stderr();
  EXPECT_TRUE(std::filesystem::exists(db)) << "the archive is where the config said";
}

TEST_F(ConfigTest, TheCommandLineWins) {
  const std::string config_db = (dir_ / "config.db").string();
  const std::string flag_db = (dir_ / "flag.db").string();
  // An http-listen that could not be served: if the config won, serve fails.
  const std::string config = WriteConfig(
      "serve.toml", absl::StrCat("db = \"", config_db, "\"\n",
                                 "http-listen = \"no-such-host.invalid:1\"\n",
                                 "grpc-listen = \"127.0.0.1:0\"\n"));
  auto server = ServerProcess::StartWithArgs(
      {"serve", "--config", config, "--db", flag_db, "--http-listen=127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string body = Event(1, 1);
  auto reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 200) << reply->body;
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << server->Stderr();
  EXPECT_TRUE(std::filesystem::exists(flag_db));
  EXPECT_FALSE(std::filesystem::exists(config_db));
}

TEST_F(ConfigTest, AnUnknownKeyIsRefusedByName) {
  const std::string config =
      WriteConfig("bad.toml", "db = \"x.db\"\nhttp-listne = \"127.0.0.1:0\"\n");
  auto r = RunCli({"serve", "--config", config});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "\"http-listne\" is unknown")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, config)) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.db"));

  // A table is not a flag either, and every command checks its own flags.
  const std::string table = WriteConfig("table.toml", "[serve]\ndb = \"x.db\"\n");
  auto t = RunCli({"serve", "--config", table});
  EXPECT_EQ(t.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(t.err, "\"serve\" is unknown")) << t.err;
  const std::string serve_only = WriteConfig("serve-only.toml", "http-listen = \"a:1\"\n");
  auto i = RunCli({"import", "--config", serve_only, "-"});
  EXPECT_EQ(i.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(i.err, "\"http-listen\" is unknown")) << i.err;
}

TEST_F(ConfigTest, AWrongTypeIsRefusedByName) {
  struct Case {
    std::string toml;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"http-listen = 8080\n", "key \"http-listen\" wants a string, got integer"},
      {"max-body-bytes = \"1MiB\"\n", "key \"max-body-bytes\" wants an integer, got string"},
      {"max-body-bytes = 1.5\n", "key \"max-body-bytes\" wants an integer"},
      {"db = [\"a.db\"]\n", "key \"db\" wants a string, got array"},
  };
  for (const Case& c : cases) {
    const std::string config = WriteConfig("typed.toml", c.toml);
    auto r = RunCli({"serve", "--config", config});
    EXPECT_EQ(r.exit_code, 2) << c.toml;
    EXPECT_TRUE(absl::StrContains(r.err, c.expected)) << c.toml << r.err;
  }
  const std::string list_config = WriteConfig("list.toml", "door = [3]\n");
  auto l = RunCli({"events", "--config", list_config});
  EXPECT_EQ(l.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(l.err, "key \"door\" wants a string or an array of strings"))
      << l.err;
  const std::string bool_config = WriteConfig("bool.toml", "json = \"yes\"\n");
  auto b = RunCli({"count", "--config", bool_config});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(b.err, "key \"json\" wants true or false")) << b.err;
}

TEST_F(ConfigTest, SecretsStayOutOfTheConfigFile) {
  const std::string config = WriteConfig("secret.toml", "secret = \"hunter2\"\n");
  auto r = RunCli({"serve", "--config", config});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "key \"secret\"")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "\"secret-file\"")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "hunter2")) << r.err;
  const std::string basic = WriteConfig("basic.toml", "basic-auth = \"u:p\"\n");
  auto b = RunCli({"serve", "--config", basic});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(b.err, "\"basic-auth-file\"")) << b.err;
}

TEST_F(ConfigTest, AnUnreadableOrMalformedFileIsNamed) {
  const std::string missing = (dir_ / "missing.toml").string();
  auto m = RunCli({"serve", "--config", missing});
  EXPECT_EQ(m.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(m.err, missing)) << m.err;

  const std::string broken = WriteConfig("broken.toml", "db = \"a.db\"\nhttp-listen = \n");
  auto b = RunCli({"serve", "--config", broken});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(b.err, broken + ":2:")) << b.err;

  auto twice = RunCli({"serve", "--config", broken, "--config", missing});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(twice.err, "--config given twice")) << twice.err;

  auto help = RunCli({"serve", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "--config FILE")) << help.out;
}

}  // namespace
}  // namespace pdkarchive
