// The commands as a user runs them against PostgreSQL: the password from
// --db-password-file or ~/.pgpass-style PGPASSFILE, never needed on the
// command line and never echoed; clear errors for a server that is down, a
// refused password and a database that belongs to something else.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "store/postgres/pg_connection.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

using testing::RunCli;

// The role scripts/pg_cluster.sh makes for password tests.
constexpr char kRole[] = "pdk_password";
constexpr char kPassword[] = "pdk-secret";

class PgCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-pg-cli");
    auto location = testing::TestArchive::Create(testing::Engine::kPostgres, dir_);
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
    // The same database, as the role that must give its password.
    const std::string& uri = location_->db();
    const size_t at = uri.find('@');
    ASSERT_NE(at, std::string::npos) << uri;
    role_uri_ = absl::StrCat("postgresql://", kRole, uri.substr(at));
    events_ = (dir_ / "events.jsonl").string();
    std::ofstream(events_) << R"({"topic":"door.request.allowed","id":"e1","panelId":"1"})"
                           << "\n";
  }
  void TearDown() override {
    unsetenv("PGPASSFILE");
    location_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
    return path;
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> location_;
  std::string role_uri_;
  std::string events_;
};

TEST_F(PgCliTest, APasswordFileOpensTheArchiveAndNoPasswordIsRefusedClearly) {
  testing::CommandResult refused = RunCli({"import", "--db", role_uri_, events_});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("password"), std::string::npos) << refused.err;

  const std::string password_file = WriteFile("db-password", absl::StrCat(kPassword, "\n"));
  testing::CommandResult imported =
      RunCli({"import", "--db", role_uri_, "--db-password-file", password_file, events_});
  EXPECT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("imported 1 events"), std::string::npos) << imported.out;

  // serve too, and its output never shows the password.
  auto server = testing::ServerProcess::Start(role_uri_, {"--db-password-file", password_file});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(server->Stop(SIGTERM).value_or(-1), 0);
  EXPECT_EQ(server->Stderr().find(kPassword), std::string::npos) << server->Stderr();
}

TEST_F(PgCliTest, APgpassFileIsEnough) {
  const std::string pgpass = WriteFile("pgpass", absl::StrCat("*:*:*:", kRole, ":", kPassword, "\n"));
  setenv("PGPASSFILE", pgpass.c_str(), 1);
  testing::CommandResult imported = RunCli({"import", "--db", role_uri_, events_});
  EXPECT_EQ(imported.exit_code, 0) << imported.err;
}

TEST_F(PgCliTest, APasswordInTheUriIsNeverEchoed) {
  // A database that does not exist, so the command fails and says why.
  const size_t slash = role_uri_.rfind('/');
  const std::string missing = absl::StrCat(
      "postgresql://", kRole, ":", kPassword, role_uri_.substr(role_uri_.find('@'),
                                                              slash - role_uri_.find('@')),
      "/no_such_database");
  testing::CommandResult failed = RunCli({"import", "--db", missing, events_});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_NE(failed.err.find("no_such_database"), std::string::npos) << failed.err;
  EXPECT_EQ(failed.err.find(kPassword), std::string::npos) << failed.err;
  EXPECT_EQ(failed.out.find(kPassword), std::string::npos) << failed.out;
}

TEST_F(PgCliTest, AServerThatIsDownIsAClearErrorNotAHang) {
  // A port nothing listens on.
  testing::CommandResult failed =
      RunCli({"import", "--db", "postgresql://postgres@127.0.0.1:1/postgres", events_},
             std::chrono::seconds(30));
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_NE(failed.err.find("cannot connect"), std::string::npos) << failed.err;
}

TEST_F(PgCliTest, ADatabaseOfSomethingElseIsRefusedUntouched) {
  store::pg::ConnectOptions connect;
  connect.uri = location_->db();
  auto conn = store::pg::Connection::Open(connect);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)").ok());
  testing::CommandResult refused = RunCli({"import", "--db", location_->db(), events_});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("a database of its own"), std::string::npos) << refused.err;
  auto tables = (*conn)->Query(
      "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
      "WHERE schemaname = 'public'");
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_EQ(tables->bytes(0, 0), "invoices");
}

}  // namespace
}  // namespace pdkarchive
