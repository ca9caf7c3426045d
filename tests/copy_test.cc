// `pdk-archive copy` as a user runs it, between every pair of engines: the
// copy holds the same events with the same sequences, times and payloads; a
// second run resumes; a redelivery to `serve` on the copy answers the
// original sequence; a destination holding other events is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

using testing::Engine;
using testing::RunCli;

constexpr char kSecret[] = "copy-test-secret";

// A delivery: its own event id, a door, a person, a time in 2025 or 2026.
std::string EventBody(int n) {
  return absl::StrCat(R"({"id":"copy-)", n, R"(","body":{"doorId":)", n % 7, R"(,"personId":)",
                      n % 11, R"(},"metadata":{"occurred":)",
                      1735689600000 + static_cast<int64_t>(n) * 3600000,
                      R"(},"panelId":"p)", n % 3, R"(","topic":"door.request.allowed"})");
}

// Writes deliveries [first, first + count) as JSON lines; returns the path.
std::string WriteEvents(const std::filesystem::path& dir, int first, int count) {
  const std::string path = (dir / absl::StrCat("events-", first, ".jsonl")).string();
  std::ofstream out(path);
  for (int n = first; n < first + count; ++n) out << EventBody(n) << "\n";
  // An event without an id: deduped by a hash of its body.
  out << R"({"topic":"panel.connected","panelId":"p9","timestamp":"2026-02-03T04:05:06Z","n":)"
      << first << "}\n";
  return path;
}

class CopyTest : public ::testing::TestWithParam<std::tuple<Engine, Engine>> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-copy");
    std::filesystem::create_directories(dir_ / "from");
    std::filesystem::create_directories(dir_ / "to");
    auto from = testing::TestArchive::Create(std::get<0>(GetParam()), dir_ / "from");
    ASSERT_TRUE(from.ok()) << from.status();
    from_ = *std::move(from);
    auto to = testing::TestArchive::Create(std::get<1>(GetParam()), dir_ / "to");
    ASSERT_TRUE(to.ok()) << to.status();
    to_ = *std::move(to);
  }
  void TearDown() override {
    from_.reset();
    to_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Import(const std::string& db, int first, int count) {
    testing::CommandResult imported = RunCli({"import", "--db", db, WriteEvents(dir_, first, count)});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }

  testing::CommandResult Copy() {
    return RunCli({"copy", "--from", from_->db(), "--to", to_->db(), "--batch", "70"});
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestArchive> from_;
  std::unique_ptr<testing::TestArchive> to_;
};

TEST_P(CopyTest, TheCopyHoldsTheSameEventsResumesAndKeepsDedupe) {
  Import(from_->db(), 0, 500);
  testing::CommandResult copied = Copy();
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_NE(copied.out.find("copied 501 events (sequences 1 to 501)"), std::string::npos)
      << copied.out;
  const std::vector<store::EventRow> source = testing::ReadAllRows(from_->db());
  ASSERT_EQ(source.size(), 501u);
  EXPECT_EQ(testing::ReadAllRows(to_->db()), source);
  EXPECT_EQ(testing::ArchiveIntegrity(to_->db()), "ok");

  // Again: nothing to do.
  copied = Copy();
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_NE(copied.out.find("nothing to copy"), std::string::npos) << copied.out;

  // The source grows; the next run copies just what is new.
  Import(from_->db(), 500, 100);
  copied = Copy();
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_NE(copied.out.find("copied 101 events (sequences 502 to 602)"), std::string::npos)
      << copied.out;
  const std::vector<store::EventRow> grown = testing::ReadAllRows(from_->db());
  EXPECT_EQ(testing::ReadAllRows(to_->db()), grown);

  // Served from the copy, a redelivery answers the original sequence, and a
  // new event gets the next one.
  auto server = testing::ServerProcess::Start(to_->db(), {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string old_body = EventBody(42);
  auto again = testing::HttpRequest(server->http_port(), "POST", "/webhooks", old_body,
                                    testing::SignedHeaders(kSecret, old_body));
  ASSERT_TRUE(again.ok()) << again.status();
  int64_t original = 0;
  for (const store::EventRow& row : grown) {
    if (row.event_id == "copy-42") original = row.sequence;
  }
  EXPECT_EQ(again->body, absl::StrCat("{\"sequence\":", original, ",\"duplicate\":true}"));
  const std::string new_body = EventBody(9999);
  auto fresh = testing::HttpRequest(server->http_port(), "POST", "/webhooks", new_body,
                                    testing::SignedHeaders(kSecret, new_body));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->body, "{\"sequence\":603,\"duplicate\":false}");
  EXPECT_EQ(server->Stop(SIGTERM).value_or(-1), 0);

  // The copy now holds an event the source does not: copying into it again
  // is refused, and changes nothing.
  Import(from_->db(), 700, 5);
  copied = Copy();
  EXPECT_EQ(copied.exit_code, 1);
  EXPECT_NE(copied.err.find("not a copy of --from"), std::string::npos) << copied.err;
  EXPECT_EQ(testing::ReadAllRows(to_->db()).size(), 603u);
}

TEST(CopyFlagsTest, MissingOrSameArchivesAreRefused) {
  EXPECT_EQ(RunCli({"copy", "--from", "a.db"}).exit_code, 2);
  EXPECT_EQ(RunCli({"copy", "--from", "a.db", "--to", "a.db"}).exit_code, 2);
  testing::CommandResult missing = RunCli({"copy", "--from", "/nonexistent/a.db", "--to", "b.db"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("--from"), std::string::npos) << missing.err;
}

std::string PairName(const ::testing::TestParamInfo<std::tuple<Engine, Engine>>& info) {
  return absl::StrCat(testing::EngineName(std::get<0>(info.param)), "To",
                      testing::EngineName(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(
    EnginePairs, CopyTest,
    ::testing::Values(std::make_tuple(Engine::kSqlite, Engine::kPostgres),
                      std::make_tuple(Engine::kPostgres, Engine::kSqlite),
                      std::make_tuple(Engine::kSqlite, Engine::kSqlite)),
    PairName);

}  // namespace
}  // namespace pdkarchive
