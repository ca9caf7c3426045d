// Who may write an archive file, through the real binary: an `import` beside
// a live `serve` (the normal way to backfill) stores every event once; a
// second `serve` on the same file refuses to start; another application's
// SQLite file and a read-only archive are refused and left exactly as they
// were.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

using testing::CommandResult;
using testing::HttpConnection;
using testing::RunCli;
using testing::RunProgram;
using testing::ServerProcess;
using testing::SignedHeaders;

constexpr char kSecret[] = "sharing-test-secret";

std::string EventBody(int n) {
  return absl::StrCat(R"({"id":"evt-)", n, R"(","body":{"doorId":)", n % 5 + 1,
                      R"(,"personId":)", n % 11 + 1, R"(},"metadata":{"occurred":)",
                      int64_t{1700000000000} + n,
                      R"(},"panelId":"1070000","topic":"door.request.allowed"})");
}


std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

class ArchiveSharingTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshTestDir("pdkarchive-sharing"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(ArchiveSharingTest, ImportBesideALiveServeStoresEachEventOnce) {
  // The same events reach the archive twice at once: posted to the running
  // server by several clients, and imported by a second process, in small
  // batches so that both writers hold unmerged events most of the time.
  constexpr int kEvents = 6000;
  constexpr int kClients = 8;
  const std::string db = Path("live.db");
  const std::string history = Path("history.jsonl");
  {
    std::ofstream out(history);
    for (int n = 0; n < kEvents; ++n) out << EventBody(n) << "\n";
  }
  absl::StatusOr<ServerProcess> server = ServerProcess::Start(db, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();

  std::mutex mu;
  std::map<int, int64_t> acked;  // event number -> sequence answered
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      absl::StatusOr<HttpConnection> conn = HttpConnection::Connect(server->http_port());
      if (!conn.ok()) {
        ++failures;
        return;
      }
      for (int n = c; n < kEvents; n += kClients) {
        const std::string body = EventBody(n);
        absl::StatusOr<testing::HttpReply> reply = conn->Request(
            "POST", "/webhooks", body, SignedHeaders(kSecret, body));
        if (!reply.ok() || reply->status != 200) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        acked[n] = testing::SequenceInReply(reply->body);
      }
    });
  }
  const CommandResult import =
      RunCli({"import", "--db", db, "--batch", "100", history}, std::chrono::seconds(120));
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(import.exit_code, 0) << import.err;
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(server->Stop(SIGTERM).ok());

  SQLite::Database file(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(file.execAndGet("SELECT count(*) FROM events").getInt64(), kEvents)
      << "an event reached the archive twice";
  EXPECT_EQ(file.execAndGet("PRAGMA integrity_check").getString(), "ok");
  // Every acknowledged sequence is the one row of its event.
  SQLite::Statement sequences(file, "SELECT sequence FROM events");
  std::set<int64_t> stored;
  while (sequences.executeStep()) stored.insert(sequences.getColumn(0).getInt64());
  ASSERT_EQ(acked.size(), static_cast<size_t>(kEvents));
  std::set<int64_t> answered;
  for (const auto& [n, sequence] : acked) {
    EXPECT_TRUE(stored.count(sequence)) << "event " << n << " was answered " << sequence;
    answered.insert(sequence);
  }
  EXPECT_EQ(answered.size(), acked.size()) << "two events were answered one sequence";
}

TEST_F(ArchiveSharingTest, ASecondServeOnTheSameArchiveRefusesToStart) {
  const std::string db = Path("served.db");
  absl::StatusOr<ServerProcess> first = ServerProcess::Start(db, {"--secret", kSecret});
  ASSERT_TRUE(first.ok()) << first.status();

  const CommandResult second =
      RunCli({"serve", "--db", db, "--secret", kSecret, "--http-listen", "127.0.0.1:0",
              "--grpc-listen", "127.0.0.1:0"},
             std::chrono::seconds(20));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(second.err, "already served")) << second.err;
  EXPECT_FALSE(absl::StrContains(second.out, "listening on")) << second.out;

  // The first one is unharmed, and once it stops the archive can be served.
  const std::string body = EventBody(1);
  absl::StatusOr<testing::HttpReply> reply = testing::HttpRequest(
      first->http_port(), "POST", "/webhooks", body, SignedHeaders(kSecret, body));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  ASSERT_TRUE(first->Stop(SIGTERM).ok());
  absl::StatusOr<ServerProcess> third = ServerProcess::Start(db, {"--secret", kSecret});
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST_F(ArchiveSharingTest, AnotherApplicationsSqliteFileIsRefusedAndLeftUntouched) {
  const std::string db = Path("crm.db");
  {
    SQLite::Database other(db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    other.exec("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)");
    other.exec("INSERT INTO customers(name) VALUES ('Ada')");
  }
  const std::string before = ReadFileBytes(db);
  const std::string history = Path("one.jsonl");
  std::ofstream(history) << EventBody(1) << "\n";

  const CommandResult import = RunCli({"import", "--db", db, history});
  EXPECT_EQ(import.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(import.err, "another application")) << import.err;
  const CommandResult serve = RunCli({"serve", "--db", db, "--secret", kSecret,
                                      "--http-listen", "127.0.0.1:0", "--grpc-listen",
                                      "127.0.0.1:0"},
                                     std::chrono::seconds(20));
  EXPECT_EQ(serve.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(serve.err, "another application")) << serve.err;

  EXPECT_TRUE(ReadFileBytes(db) == before) << "the foreign file was changed";
  EXPECT_FALSE(std::filesystem::exists(db + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(db + "-shm"));
  SQLite::Database other(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(other.execAndGet("PRAGMA journal_mode").getString(), "delete");
}

TEST_F(ArchiveSharingTest, AReadOnlyArchiveIsRefusedWithoutLeavingFilesBehind) {
  const std::string db = Path("archive.db");
  const std::string history = Path("one.jsonl");
  std::ofstream(history) << EventBody(1) << "\n" << EventBody(2) << "\n";
  ASSERT_EQ(RunCli({"import", "--db", db, history}).exit_code, 0);
  ASSERT_FALSE(std::filesystem::exists(db + "-wal"));
  ASSERT_FALSE(std::filesystem::exists(db + "-shm"));
  const std::string before = ReadFileBytes(db);

  // Read-only for the user who runs the command. Root may write any file, so
  // as root the command runs as nobody, who may read the archive but not
  // write it or its directory.
  std::filesystem::permissions(db, std::filesystem::perms::owner_read |
                                       std::filesystem::perms::group_read |
                                       std::filesystem::perms::others_read);
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all |
                                         std::filesystem::perms::group_read |
                                         std::filesystem::perms::group_exec |
                                         std::filesystem::perms::others_read |
                                         std::filesystem::perms::others_exec);
  std::vector<std::string> prefix;
  if (::geteuid() == 0) {
    prefix = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  }
  for (std::vector<std::string> args :
       {std::vector<std::string>{"import", "--db", db, history},
        std::vector<std::string>{"serve", "--db", db, "--secret", kSecret, "--http-listen",
                                 "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"}}) {
    std::vector<std::string> argv = prefix;
    argv.push_back(testing::BinaryPath());
    argv.insert(argv.end(), args.begin(), args.end());
    const CommandResult result = RunProgram(argv, std::chrono::seconds(20));
    EXPECT_EQ(result.exit_code, 1) << args[0] << ": " << result.err;
    EXPECT_TRUE(absl::StrContains(result.err, "read-only")) << args[0] << ": " << result.err;
    EXPECT_FALSE(std::filesystem::exists(db + "-wal")) << args[0];
    EXPECT_FALSE(std::filesystem::exists(db + "-shm")) << args[0];
  }
  EXPECT_TRUE(ReadFileBytes(db) == before) << "the read-only archive was changed";
}

}  // namespace
}  // namespace pdkarchive
