// The `pdk-archive` command as a user types it: the real binary, started as
// a child process, driven over HTTP and through its own client commands.
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "timeutil/time_util.h"

namespace pdkarchive {
namespace {

using testing::RunCli;
using testing::ServerProcess;
using testing::SignedHeaders;
using timeutil::kDayMs;
using timeutil::kHourMs;

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
  const int64_t day2 = day1 + kDayMs;
  std::vector<std::string> bodies = {
      Event(1, 3, 17, day1 + kHourMs),  Event(2, 1, 17, day1 + 2 * kHourMs),
      Event(3, 3, 18, day2 + kHourMs),  Event(4, 3, 19, day2 + 2 * kHourMs, "door.alarm.forced"),
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

// ---- export -o FILE, events/count output (issue 13, items 6, 7 and 9) ----

// The names in `dir` that start with `prefix`.
std::vector<std::string> NamesStartingWith(const std::filesystem::path& dir,
                                           const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, prefix)) names.push_back(name);
  }
  return names;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts the pdk-archive binary with `args` and its output going to files,
// without waiting for it.
pid_t SpawnCli(const std::vector<std::string>& args, const std::string& out_path,
               const std::string& err_path) {
  const std::string binary = testing::BinaryPath();
  std::vector<std::string> all = {binary};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : all) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = -1;
  const int error =
      posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(error, 0) << binary;
  return error == 0 ? pid : -1;
}

// Waits up to 20 s for `pid`; returns its wait status (SIGKILLs it and fails
// the test when it does not end).
int WaitForExit(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 2000; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  ADD_FAILURE() << "pid " << pid << " did not exit";
  return status;
}

// RunCli for commands with large output: through files, which RunCli's
// polling of pipes would read slowly.
testing::CommandResult RunCliThroughFiles(const std::vector<std::string>& args,
                                          const std::filesystem::path& dir) {
  const std::string out = (dir / "big-stdout").string();
  const std::string err = (dir / "big-stderr").string();
  testing::CommandResult result;
  const pid_t pid = SpawnCli(args, out, err);
  if (pid < 0) return result;
  const int status = WaitForExit(pid);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  return result;
}

// Waits up to 10 s until `dir` holds a name starting with `prefix`.
bool WaitForName(const std::filesystem::path& dir, const std::string& prefix) {
  for (int i = 0; i < 10000; ++i) {
    if (!NamesStartingWith(dir, prefix).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

class CliOutputTest : public CliTest {
 protected:
  // Starts a server on `db` holding `count` events (doors 1.., person 17).
  absl::StatusOr<ServerProcess> StartWithEvents(const std::string& db, int count) {
    auto server = ServerProcess::Start(db, {"--secret", kSecret});
    if (!server.ok()) return server.status();
    for (int i = 0; i < count; ++i) {
      const std::string body = Event(i, i + 1, 17, 1646870400000 + i * 1000);
      auto reply = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body,
                                        SignedHeaders(kSecret, body));
      if (!reply.ok()) return reply.status();
      if (reply->status != 200) return absl::InternalError(reply->body);
    }
    return server;
  }

  // What `export` writes to standard output from `server`.
  static std::string ExportToStdout(const ServerProcess& server) {
    auto r = RunCli({"export", "--server", server.grpc_address()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
};

TEST_F(CliOutputTest, ExportNeverFollowsAPlantedPartialSymlink) {
  auto server = StartWithEvents(db_, 3);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string victim = (dir_ / "victim.txt").string();
  std::ofstream(victim) << "not yours\n";
  const std::string csv = (dir_ / "out.csv").string();
  std::filesystem::create_symlink(victim, csv + ".partial");

  auto r = RunCli({"export", "--server", server->grpc_address(), "-o", csv});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(victim), "not yours\n");
  EXPECT_FALSE(std::filesystem::is_symlink(csv));
  EXPECT_EQ(ReadFile(csv), ExportToStdout(*server));
  EXPECT_TRUE(std::filesystem::is_symlink(csv + ".partial")) << "not ours to remove";
}

TEST_F(CliOutputTest, ExportKeepsAnExistingFilesModeAndCreatesNewFilesPrivate) {
  auto server = StartWithEvents(db_, 2);
  ASSERT_TRUE(server.ok()) << server.status();
  const mode_t old_umask = ::umask(022);
  const std::string existing = (dir_ / "existing.csv").string();
  std::ofstream(existing) << "old contents\n";
  ASSERT_EQ(::chmod(existing.c_str(), 0640), 0);
  auto r = RunCli({"export", "--server", server->grpc_address(), "-o", existing});
  const std::string fresh = (dir_ / "fresh.csv").string();
  auto r2 = RunCli({"export", "--server", server->grpc_address(), "-o", fresh});
  ::umask(old_umask);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  struct stat st {};
  ASSERT_EQ(::stat(existing.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(ReadFile(existing), ExportToStdout(*server));
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "an export is personal data";
  EXPECT_TRUE(NamesStartingWith(dir_, "existing.csv.").empty());
  EXPECT_TRUE(NamesStartingWith(dir_, "fresh.csv.").empty());
}

TEST_F(CliOutputTest, ExportWritesStraightToAFifoAndRefusesADirectory) {
  auto server = StartWithEvents(db_, 2);
  ASSERT_TRUE(server.ok()) << server.status();
  // A named pipe stands for /dev/null and /dev/stdout, which a test run as
  // root must not risk replacing.
  const std::string fifo = (dir_ / "pipe").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  std::atomic<bool> done{false};
  testing::CommandResult result;
  std::thread exporter([&] {
    result = RunCli({"export", "--server", server->grpc_address(), "-o", fifo});
    done = true;
  });
  std::string received;
  char buffer[4096];
  while (true) {
    const bool finished = done;
    const ssize_t n = ::read(reader, buffer, sizeof buffer);
    if (n > 0) {
      received.append(buffer, static_cast<size_t>(n));
    } else if (finished) {
      break;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  exporter.join();
  ::close(reader);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
  EXPECT_EQ(received, ExportToStdout(*server));
  EXPECT_TRUE(NamesStartingWith(dir_, "pipe.").empty());

  const std::filesystem::path folder = dir_ / "folder";
  std::filesystem::create_directories(folder);
  auto r = RunCli({"export", "--server", server->grpc_address(), "-o", folder.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "directory")) << r.err;
  EXPECT_TRUE(std::filesystem::is_directory(folder));
  EXPECT_TRUE(NamesStartingWith(dir_, "folder.").empty());
}

TEST_F(CliOutputTest, ExportLeavesNothingBehindWhenStoppedOrWhenTheServerGoes) {
  auto server = StartWithEvents(db_, 2);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string out = (dir_ / "stdout").string();
  const std::string err = (dir_ / "stderr").string();
  // A stopped server holds the export mid-call, its partial file created.
  ASSERT_EQ(::kill(server->pid(), SIGSTOP), 0);
  const std::string csv = (dir_ / "stopped.csv").string();
  pid_t exporter = SpawnCli({"export", "--server", server->grpc_address(), "-o", csv}, out, err);
  ASSERT_GT(exporter, 0);
  ASSERT_TRUE(WaitForName(dir_, "stopped.csv.partial")) << ReadFile(err);
  ASSERT_EQ(::kill(exporter, SIGTERM), 0);
  int status = WaitForExit(exporter);
  EXPECT_TRUE(WIFSIGNALED(status) || WEXITSTATUS(status) != 0);
  EXPECT_TRUE(NamesStartingWith(dir_, "stopped.csv").empty())
      << absl::StrJoin(NamesStartingWith(dir_, "stopped.csv"), ", ");

  // The server dies while the export waits for it.
  const std::string gone = (dir_ / "gone.csv").string();
  exporter = SpawnCli({"export", "--server", server->grpc_address(), "-o", gone}, out, err);
  ASSERT_GT(exporter, 0);
  ASSERT_TRUE(WaitForName(dir_, "gone.csv.partial")) << ReadFile(err);
  auto code = server->Stop(SIGKILL);
  ASSERT_TRUE(code.ok()) << code.status();
  status = WaitForExit(exporter);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_FALSE(ReadFile(err).empty());
  EXPECT_TRUE(NamesStartingWith(dir_, "gone.csv").empty())
      << absl::StrJoin(NamesStartingWith(dir_, "gone.csv"), ", ");
}

TEST_F(CliOutputTest, ExportUnderNohupKeepsIgnoringSighup) {
  auto server = StartWithEvents(db_, 2);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string expected = ExportToStdout(*server);
  const std::string out = (dir_ / "stdout").string();
  const std::string err = (dir_ / "stderr").string();
  const std::string csv = (dir_ / "nohup.csv").string();
  ASSERT_EQ(::kill(server->pid(), SIGSTOP), 0);
  // As `nohup` starts it: SIGHUP ignored, which an exec keeps.
  struct sigaction ignore {};
  struct sigaction before {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGHUP, &ignore, &before), 0);
  pid_t exporter = SpawnCli({"export", "--server", server->grpc_address(), "-o", csv}, out, err);
  ::sigaction(SIGHUP, &before, nullptr);
  ASSERT_GT(exporter, 0);
  ASSERT_TRUE(WaitForName(dir_, "nohup.csv.partial")) << ReadFile(err);
  ASSERT_EQ(::kill(exporter, SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int status = 0;
  EXPECT_EQ(::waitpid(exporter, &status, WNOHANG), 0) << "SIGHUP ended a nohup export";
  ASSERT_EQ(::kill(server->pid(), SIGCONT), 0);
  status = WaitForExit(exporter);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(err);
  EXPECT_EQ(ReadFile(csv), expected);
}

TEST_F(CliOutputTest, TwoExportsToOneFileNeverReportAClobberedFile) {
  auto first = StartWithEvents(db_, 4);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = StartWithEvents((dir_ / "other.db").string(), 1);
  ASSERT_TRUE(second.ok()) << second.status();
  const std::string first_csv = ExportToStdout(*first);
  const std::string second_csv = ExportToStdout(*second);
  ASSERT_NE(first_csv, second_csv);

  // The first export waits on its stopped server while the second one runs
  // to completion into the same file; then the first one goes on. Once into
  // a new file, once over an existing one.
  for (bool file_exists : {false, true}) {
    SCOPED_TRACE(file_exists ? "over an existing file" : "into a new file");
    const std::string csv = (dir_ / "shared.csv").string();
    const std::string out = (dir_ / "stdout").string();
    const std::string err = (dir_ / "stderr").string();
    std::filesystem::remove(csv);
    if (file_exists) std::ofstream(csv) << "yesterday's export\n";
    ASSERT_EQ(::kill(first->pid(), SIGSTOP), 0);
    pid_t exporter =
        SpawnCli({"export", "--server", first->grpc_address(), "-o", csv}, out, err);
    ASSERT_GT(exporter, 0);
    ASSERT_TRUE(WaitForName(dir_, "shared.csv.partial")) << ReadFile(err);
    auto later = RunCli({"export", "--server", second->grpc_address(), "-o", csv});
    ASSERT_EQ(::kill(first->pid(), SIGCONT), 0);
    const int status = WaitForExit(exporter);
    const bool first_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const bool second_ok = later.exit_code == 0;

    EXPECT_TRUE(first_ok || second_ok) << ReadFile(err) << later.err;
    const std::string written = ReadFile(csv);
    EXPECT_TRUE((first_ok && written == first_csv) || (second_ok && written == second_csv))
        << "first " << (first_ok ? "succeeded" : "failed") << ", second "
        << (second_ok ? "succeeded" : "failed") << ", and the file holds:\n" << written;
    if (!first_ok) {
      EXPECT_TRUE(absl::StrContains(ReadFile(err), "changed")) << ReadFile(err);
    }
    EXPECT_EQ(NamesStartingWith(dir_, "shared.csv"), std::vector<std::string>{"shared.csv"});
  }
}

// Every line of `out` is a JSON object (valid UTF-8); returns them parsed.
std::vector<rapidjson::Document> ParseJsonLines(const std::string& out) {
  std::vector<rapidjson::Document> docs;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(line.data(), line.size());
    EXPECT_FALSE(doc.HasParseError()) << "not JSON: " << line;
    EXPECT_TRUE(!doc.HasParseError() && doc.IsObject()) << line;
    if (!doc.HasParseError() && doc.IsObject()) docs.push_back(std::move(doc));
  }
  return docs;
}

// YYYY-MM-DDTHH:MM:SS, then 3, 6 or 9 fraction digits or none, then Z.
// (Not std::regex: GCC 12 under the sanitizers warns inside <regex>.)
bool IsRfc3339(const std::string& text) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < kShape.size() + 1 || text.back() != 'Z') return false;
  for (size_t i = 0; i < kShape.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (kShape[i] == 'd' ? !digit : text[i] != kShape[i]) return false;
  }
  const std::string_view fraction(text.data() + kShape.size(), text.size() - kShape.size() - 1);
  if (fraction.empty()) return true;
  if (fraction[0] != '.') return false;
  const size_t digits = fraction.size() - 1;
  if (digits != 3 && digits != 6 && digits != 9) return false;
  return fraction.find_first_not_of("0123456789", 1) == std::string_view::npos;
}

// Events as an old archive may hold them: times RFC 3339 cannot write (years
// 0000, below 0 and above 9999), and a door name that needs escaping. Either a
// row prints as valid JSON with an RFC 3339 time, or it is named on stderr
// and the exit status is 1.
TEST_F(CliOutputTest, EventsPrintsValidJsonForAnyStoredTime) {
  const std::string jsonl = (dir_ / "events.jsonl").string();
  const std::string awkward_name = "Door \\\"7\\\"\\\\ \\u0001\\n\\u2028 caf\\u00e9 \\ud83d\\udeaa";
  {
    std::ofstream lines(jsonl);
    for (int i = 1; i <= 4; ++i) lines << Event(i, i, 17, 1646870400000 + i) << "\n";
    lines << R"({"id":"cli-5","body":{"doorId":5},"metadata":{"occurred":1646870400005,)"
          << R"("doorName":")" << awkward_name << R"("},"panelId":"1070000",)"
          << R"("topic":"door.request.allowed"})" << "\n";
  }
  ASSERT_EQ(RunCli({"import", "--db", db_, jsonl}).exit_code, 0);
  {
    SQLite::Database db(db_, SQLite::OPEN_READWRITE);
    const int64_t year0 = -62167219200000 + 1234;       // 0000-01-01T00:00:01.234Z
    const int64_t year_minus1 = -62167219200000 - 1000;  // -0001-12-31T23:59:59Z
    const int64_t year10000 = 253402300800000 + 5;       // 10000-01-01T00:00:00.005Z
    db.exec(absl::StrCat("UPDATE events SET occur_time = ", year0, " WHERE sequence = 1"));
    db.exec(absl::StrCat("UPDATE events SET occur_time = ", year_minus1, " WHERE sequence = 2"));
    db.exec(absl::StrCat("UPDATE events SET occur_time = ", year10000, " WHERE sequence = 3"));
  }
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();

  for (bool json : {true, false}) {
    std::vector<std::string> args = {"events", "--server", server->grpc_address()};
    if (json) args.push_back("--json");
    auto r = RunCli(args);
    std::set<int64_t> printed;
    if (json) {
      for (const rapidjson::Document& doc : ParseJsonLines(r.out)) {
        ASSERT_TRUE(doc.HasMember("sequence") && doc["sequence"].IsString());
        printed.insert(std::stoll(doc["sequence"].GetString()));
        ASSERT_TRUE(doc.HasMember("occur_time") && doc["occur_time"].IsString());
        EXPECT_TRUE(IsRfc3339(doc["occur_time"].GetString())) << doc["occur_time"].GetString();
        if (doc["sequence"] == "5") {
          EXPECT_EQ(std::string(doc["door_name"].GetString()),
                    "Door \"7\"\\ \x01\n\xE2\x80\xA8 caf\xC3\xA9 \xF0\x9F\x9A\xAA");
        }
      }
    } else {
      std::vector<std::string> rows = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
      for (size_t i = 1; i < rows.size(); ++i) {
        int64_t sequence = 0;
        if (!absl::SimpleAtoi(rows[i].substr(0, rows[i].find(' ')), &sequence)) continue;
        printed.insert(sequence);
        EXPECT_TRUE(IsRfc3339(rows[i].substr(10, 24))) << rows[i];
      }
    }
    for (int64_t sequence = 1; sequence <= 5; ++sequence) {
      EXPECT_TRUE(printed.count(sequence) > 0 ||
                  absl::StrContains(r.err, absl::StrCat("event ", sequence, " ")))
          << "event " << sequence << " neither printed nor reported: " << r.err;
    }
    EXPECT_EQ(r.exit_code, printed.size() == 5 ? 0 : 1) << r.err;
    EXPECT_GE(printed.size(), 2u) << r.err;  // events 4 and 5 are ordinary
  }
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
}

// An old archive's door name that is not UTF-8: whatever the server does with
// it, the CLI prints valid UTF-8 JSON or fails with exit status 1.
TEST_F(CliOutputTest, EventsJsonStaysValidOverANameThatIsNotUtf8) {
  const std::string jsonl = (dir_ / "events.jsonl").string();
  {
    std::ofstream lines(jsonl);
    for (int i = 1; i <= 3; ++i) lines << Event(i, i, 17, 1646870400000 + i) << "\n";
  }
  ASSERT_EQ(RunCli({"import", "--db", db_, jsonl}).exit_code, 0);
  {
    SQLite::Database db(db_, SQLite::OPEN_READWRITE);
    db.exec("UPDATE names SET value = CAST(X'446F6F7220EDB080' AS TEXT) WHERE value = 'Door 2'");
  }
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  auto r = RunCli({"events", "--server", server->grpc_address(), "--json"});
  const std::vector<rapidjson::Document> docs = ParseJsonLines(r.out);
  if (r.exit_code == 0) {
    EXPECT_EQ(docs.size(), 3u) << r.out;
  } else {
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_FALSE(r.err.empty());
  }
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
}

// Five events whose panel ids are 900 KB each: a count by panel is a reply of
// over 4 MiB, gRPC's default limit.
TEST_F(CliOutputTest, CountTakesRepliesOverFourMebibytesAndExplainsTooBigOnes) {
  const std::string jsonl = (dir_ / "big.jsonl").string();
  {
    std::ofstream lines(jsonl);
    for (int i = 0; i < 5; ++i) {
      lines << R"({"id":"big-)" << i << R"(","body":{"doorId":1},"panelId":")"
            << std::string(900 * 1000, static_cast<char>('a' + i))
            << R"(","topic":"door.request.allowed"})" << "\n";
    }
  }
  auto imported = RunCli({"import", "--db", db_, jsonl});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string addr = server->grpc_address();

  auto count = RunCliThroughFiles({"count", "--server", addr, "--by", "panel", "--json"}, dir_);
  ASSERT_EQ(count.exit_code, 0) << count.err;
  EXPECT_GT(count.out.size(), 4u << 20);
  const std::vector<rapidjson::Document> groups = ParseJsonLines(count.out);
  ASSERT_EQ(groups.size(), 5u);
  for (const rapidjson::Document& group : groups) {
    EXPECT_EQ(group["key"][0].GetStringLength(), 900u * 1000);
    EXPECT_EQ(std::string(group["count"].GetString()), "1");
  }

  auto too_big = RunCli({"count", "--server", addr, "--by", "panel", "--max-reply-mib", "1"});
  EXPECT_EQ(too_big.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(too_big.err, "--max-reply-mib 1")) << too_big.err;
  EXPECT_TRUE(absl::StrContains(too_big.err, "narrow the filter")) << too_big.err;
  EXPECT_EQ(RunCli({"count", "--server", addr, "--max-reply-mib", "0"}).exit_code, 2);

  // events shrinks its pages to fit: each event is ~1.8 MB (panel id and raw).
  auto events =
      RunCliThroughFiles({"events", "--server", addr, "--json", "--max-reply-mib", "3"}, dir_);
  EXPECT_EQ(events.exit_code, 0) << events.err;
  EXPECT_EQ(ParseJsonLines(events.out).size(), 5u);
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
}

}  // namespace
}  // namespace pdkarchive
