// Where a test keeps its archive, for either engine: a file in the test's
// directory for SQLite, a database of its own on the test PostgreSQL cluster
// for PostgreSQL. The behaviour suites are parameterized over Engine and
// hand TestArchive::db() to OpenArchive or to `pdk-archive --db`, so they
// run unchanged against both.
//
// The PostgreSQL cluster is the one test.sh starts (scripts/pg_cluster.sh)
// and names in PDKARCHIVE_TEST_POSTGRES. Without it, creating a PostgreSQL
// TestArchive fails with a message saying so: a test that needs the server
// fails, never skips.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_ARCHIVE_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_ARCHIVE_H_

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pdkarchive::testing {

enum class Engine { kSqlite, kPostgres };

// Both engines, for INSTANTIATE_TEST_SUITE_P.
std::vector<Engine> AllEngines();

// "Sqlite" or "Postgres", for test names (testing::PrintToStringParamName).
std::string EngineName(Engine engine);
std::ostream& operator<<(std::ostream& out, Engine engine);

// The test cluster's URI (its `postgres` database, superuser), from
// PDKARCHIVE_TEST_POSTGRES; FailedPrecondition naming the variable when
// it is unset.
absl::StatusOr<std::string> TestPostgresUri();

// `uri` with its database name replaced by `database`.
std::string WithDatabase(const std::string& uri, const std::string& database);

class TestArchive {
 public:
  // A new, empty archive location: `dir`/archive.db for SQLite (the file
  // does not exist yet); a new database pdk_test_<pid>_<n> for PostgreSQL.
  static absl::StatusOr<std::unique_ptr<TestArchive>> Create(Engine engine,
                                                            const std::filesystem::path& dir);

  TestArchive(const TestArchive&) = delete;
  TestArchive& operator=(const TestArchive&) = delete;
  // Drops the PostgreSQL database (closing its connections); leaves a SQLite
  // file to the test's directory cleanup.
  ~TestArchive();

  Engine engine() const { return engine_; }
  // The --db value: a file path or a postgresql:// URI.
  const std::string& db() const { return db_; }

 private:
  TestArchive(Engine engine, std::string db, std::string database)
      : engine_(engine), db_(std::move(db)), database_(std::move(database)) {}

  Engine engine_;
  std::string db_;
  std::string database_;  // PostgreSQL only
};

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_ARCHIVE_H_
