// The `pdk-archive` command as a user types it: the real binary, started as
// a child process, driven over HTTP and through its own client commands.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"

namespace pdkarchive {
namespace {

using testing::RunCli;
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kSecret[] = "cli-test-secret";

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("pdkarchive-cli-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "archive.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string Event(int i, int door, int person, int64_t occurred,
                           const std::string& topic = "door.request.allowed") {
    return absl::StrCat(R"({"id":"cli-)", i, R"(","body":{"doorId":)", door,
                        R"(,"personId":)", person, R"(},"metadata":{"occurred":)", occurred,
                        R"(,"doorName":"Door )", door, R"("},"panelId":"1070000","topic":")",
                        topic, R"("})");
  }

  std::filesystem::path dir_;
  std::string db_;
};

TEST_F(CliTest, HelpNamesEveryCommandAndFlag) {
  auto top = RunCli({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* command : {"serve", "events", "count", "export"}) {
    EXPECT_TRUE(absl::StrContains(top.out, command)) << command;
  }
  auto serve = RunCli({"serve", "--help"});
  EXPECT_EQ(serve.exit_code, 0);
  for (const char* flag : {"--db", "--http-listen", "--grpc-listen", "--secret",
                           "--secret-file", "--basic-auth"}) {
    EXPECT_TRUE(absl::StrContains(serve.out, flag)) << flag;
  }
  for (const char* command : {"events", "count", "export"}) {
    auto help = RunCli({command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_TRUE(absl::StrContains(help.out, "--server")) << command;
    EXPECT_TRUE(absl::StrContains(help.out, "--from")) << command;
  }
}

TEST_F(CliTest, BadUsageExitsTwoWithAReason) {
  auto unknown = RunCli({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  auto flag = RunCli({"serve", "--no-such-flag"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(flag.err, "--no-such-flag")) << flag.err;
  auto both = RunCli({"serve", "--secret", "a", "--secret-file", "/x"});
  EXPECT_EQ(both.exit_code, 2);
  auto date = RunCli({"events", "--from", "last tuesday"});
  EXPECT_EQ(date.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(date.err, "--from")) << date.err;
  auto dim = RunCli({"count", "--by", "weekday"});
  EXPECT_EQ(dim.exit_code, 2);
}

TEST_F(CliTest, ServeWithoutSecretWarns) {
  auto server = ServerProcess::Start(db_, {});
  ASSERT_TRUE(server.ok()) << server.status();
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(absl::StrContains(server->Stderr(), "WARNING")) << server->Stderr();
}

TEST_F(CliTest, ServeIngestsQueriesExportsAndStopsCleanly) {
  std::string secret_file = (dir_ / "secret").string();
  std::ofstream(secret_file) << kSecret << "\n";
  auto server = ServerProcess::Start(db_, {"--secret-file", secret_file});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_FALSE(absl::StrContains(server->Stderr(), "WARNING"));

  // 2022-03-10 and 2022-03-11, doors 1 and 3.
  const int64_t day1 = 1646870400000;  // 2022-03-10T00:00:00Z
  const int64_t day2 = day1 + 86400000;
  std::vector<std::string> bodies = {
      Event(1, 3, 17, day1 + 3600000),  Event(2, 1, 17, day1 + 7200000),
      Event(3, 3, 18, day2 + 3600000),  Event(4, 3, 19, day2 + 7200000, "door.alarm.forced"),
  };
  for (const std::string& body : bodies) {
    auto reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body,
                                      SignedHeaders(kSecret, body));
    ASSERT_TRUE(reply.ok());
    ASSERT_EQ(reply->status, 200) << reply->body;
  }
  auto unsigned_reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks",
                                             bodies[0]);
  ASSERT_TRUE(unsigned_reply.ok());
  EXPECT_EQ(unsigned_reply->status, 401);

  const std::string addr = server->grpc_address();
  auto door3 = RunCli({"events", "--server", addr, "--door", "3", "--json"});
  ASSERT_EQ(door3.exit_code, 0) << door3.err;
  std::vector<std::string> lines = absl::StrSplit(door3.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << door3.out;
  EXPECT_TRUE(absl::StrContains(lines[0], "\"event_id\":\"cli-1\"")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[2], "\"event_id\":\"cli-4\"")) << lines[2];

  auto day = RunCli({"events", "--server", addr, "--from", "2022-03-11", "--to", "2022-03-11",
                     "--topic", "door.request.*", "--json"});
  ASSERT_EQ(day.exit_code, 0) << day.err;
  lines = absl::StrSplit(day.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << day.out;
  EXPECT_TRUE(absl::StrContains(lines[0], "\"event_id\":\"cli-3\""));

  auto table = RunCli({"events", "--server", addr, "--person", "17"});
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(table.out, "SEQUENCE")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "2022-03-10T01:00:00.000Z")) << table.out;

  auto count = RunCli({"count", "--server", addr, "--by", "door,day", "--json"});
  ASSERT_EQ(count.exit_code, 0) << count.err;
  EXPECT_TRUE(absl::StrContains(count.out, R"({"key":["1","2022-03-10"],"count":"1"})"))
      << count.out;
  EXPECT_TRUE(absl::StrContains(count.out, R"({"key":["3","2022-03-11"],"count":"2"})"))
      << count.out;

  std::string csv_path = (dir_ / "march.csv").string();
  auto exported = RunCli({"export", "--server", addr, "-o", csv_path});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::ifstream in(csv_path, std::ios::binary);
  std::stringstream csv;
  csv << in.rdbuf();
  std::vector<std::string> rows = absl::StrSplit(csv.str(), "\r\n", absl::SkipEmpty());
  ASSERT_EQ(rows.size(), 5u) << csv.str();
  EXPECT_TRUE(absl::StartsWith(rows[0], "sequence,occur_time,receive_time,topic"));
  EXPECT_FALSE(std::filesystem::exists(csv_path + ".partial"));

  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << server->Stderr();

  SQLite::Database db(db_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), 4);
}

// The names `top -H`, `ps -L` and perf show for serve's threads.
std::set<std::string> ThreadNames(pid_t pid) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

TEST_F(CliTest, ServeNamesItsThreads) {
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  // The HTTP threads take their name on their first request.
  for (int i = 0; i < 2; ++i) {
    const std::string body = Event(i, 3, 17, 1646870400000);
    auto reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body,
                                      SignedHeaders(kSecret, body));
    ASSERT_TRUE(reply.ok());
    ASSERT_EQ(reply->status, 200) << reply->body;
  }
  const std::vector<std::string> expected = {"pdk-writer", "pdk-answers", "pdk-checkpoint",
                                             "pdk-watch", "pdk-http"};
  auto all_named = [&](const std::set<std::string>& names) {
    return std::all_of(expected.begin(), expected.end(),
                       [&](const std::string& name) { return names.count(name) > 0; });
  };
  // Each thread names itself when it starts running: give them a moment.
  std::set<std::string> names = ThreadNames(server->pid());
  for (int i = 0; i < 100 && !all_named(names); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    names = ThreadNames(server->pid());
  }
  for (const std::string& name : expected) {
    EXPECT_TRUE(names.count(name)) << name << " missing among "
                                   << absl::StrJoin(names, ", ");
  }
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << server->Stderr();
}

TEST_F(CliTest, SigintAlsoStopsCleanlyAndTheArchiveReopens) {
  {
    auto server = ServerProcess::Start(db_, {"--secret", kSecret});
    ASSERT_TRUE(server.ok()) << server.status();
    std::string body = Event(1, 1, 1, 1646870400000);
    auto reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body,
                                      SignedHeaders(kSecret, body));
    ASSERT_TRUE(reply.ok());
    EXPECT_EQ(reply->status, 200);
    auto code = server->Stop(SIGINT);
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0);
  }
  auto again = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(again.ok()) << again.status();
  std::string body = Event(1, 1, 1, 1646870400000);
  auto reply = testing::HttpRequest(again->http_port(), "POST", "/webhooks", body,
                                    SignedHeaders(kSecret, body));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->body, R"({"sequence":1,"duplicate":true})");
  auto code = again->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST_F(CliTest, ImportLoadsJsonLinesWithDedupeAndReportsBadLines) {
  const std::string path = (dir_ / "backfill.jsonl").string();
  {
    std::ofstream out(path);
    out << Event(1, 1, 10, 1646870400000) << "\n"
        << Event(2, 2, 11, 1646870500000) << "\n"
        << "\n"
        << "{not json\n"
        << Event(1, 1, 10, 1646870400000) << "\n"  // the same event again
        << Event(3, 3, 12, 1646870600000) << "\n";
  }
  auto first = RunCli({"import", "--db", db_, path});
  EXPECT_EQ(first.exit_code, 1) << "a refused line makes the exit status 1";
  EXPECT_TRUE(absl::StrContains(first.err, "line 4")) << first.err;
  EXPECT_TRUE(absl::StrContains(first.out, "imported 3 events, 1 already archived, 1 lines"))
      << first.out;
  {
    SQLite::Database db(db_, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), 3);
    EXPECT_EQ(db.execAndGet("SELECT subscription FROM events_with_names LIMIT 1").getString(), "import");
    EXPECT_EQ(db.execAndGet("SELECT door_id FROM events WHERE event_id = 'cli-3'").getInt(), 3);
  }
  // Importing a clean file twice: the second run stores nothing new.
  const std::string clean = (dir_ / "clean.jsonl").string();
  std::ofstream(clean) << Event(4, 4, 13, 1646870700000) << "\n";
  EXPECT_EQ(RunCli({"import", "--db", db_, clean}).exit_code, 0);
  auto again = RunCli({"import", "--db", db_, clean});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(again.out, "imported 0 events, 1 already archived")) << again.out;
  SQLite::Database db(db_, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt(), 4);
  EXPECT_EQ(RunCli({"import", "--db", db_, (dir_ / "missing.jsonl").string()}).exit_code, 1);
  EXPECT_EQ(RunCli({"import", "--db", db_}).exit_code, 2);
}

TEST_F(CliTest, ClientReportsAnUnreachableServer) {
  auto r = RunCli({"events", "--server", "127.0.0.1:1"}, std::chrono::seconds(90));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(r.err.empty());
}

TEST_F(CliTest, ServeRefusesAnAddressInUse) {
  auto first = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(first.ok());
  auto second = RunCli({"serve", "--db", (dir_ / "b.db").string(), "--http-listen",
                        absl::StrCat("127.0.0.1:", first->http_port()), "--grpc-listen",
                        "127.0.0.1:0", "--secret", kSecret},
                       std::chrono::seconds(20));
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_FALSE(second.err.empty());
}

}  // namespace
}  // namespace pdkarchive
