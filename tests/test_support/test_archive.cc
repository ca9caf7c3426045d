#include "tests/test_support/test_archive.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::testing {

std::vector<Engine> AllEngines() { return {Engine::kSqlite, Engine::kPostgres}; }

std::string EngineName(Engine engine) {
  return engine == Engine::kSqlite ? "Sqlite" : "Postgres";
}

std::ostream& operator<<(std::ostream& out, Engine engine) { return out << EngineName(engine); }

absl::StatusOr<std::string> TestPostgresUri() {
  const char* uri = std::getenv("PDKARCHIVE_TEST_POSTGRES");
  if (uri == nullptr || *uri == '\0') {
    return absl::FailedPreconditionError(
        "PDKARCHIVE_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts a "
        "PostgreSQL cluster (scripts/pg_cluster.sh) and sets it");
  }
  return std::string(uri);
}

std::string WithDatabase(const std::string& uri, const std::string& database) {
  // postgresql://user@host:port/dbname?params
  const size_t scheme_end = uri.find("://");
  const size_t path = uri.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  const size_t query = uri.find('?');
  std::string out = path == std::string::npos ? uri.substr(0, query) : uri.substr(0, path);
  out += "/" + database;
  if (query != std::string::npos) out += uri.substr(query);
  return out;
}

namespace {

store::pg::ConnectOptions AdminOptions(const std::string& uri) {
  store::pg::ConnectOptions options;
  options.uri = uri;
  options.application_name = "pdk-archive tests";
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestArchive>> TestArchive::Create(
    Engine engine, const std::filesystem::path& dir) {
  if (engine == Engine::kSqlite) {
    return std::unique_ptr<TestArchive>(
        new TestArchive(engine, (dir / "archive.db").string(), ""));
  }
  absl::StatusOr<std::string> uri = TestPostgresUri();
  if (!uri.ok()) return uri.status();
  static std::atomic<int> counter{0};
  const std::string database = absl::StrCat("pdk_test_", getpid(), "_", counter++);
  absl::StatusOr<std::unique_ptr<store::pg::Connection>> admin =
      store::pg::Connection::Open(AdminOptions(*uri));
  if (!admin.ok()) return admin.status();
  if (absl::Status dropped =
          (*admin)->Exec(absl::StrCat("DROP DATABASE IF EXISTS ", database, " WITH (FORCE)"));
      !dropped.ok()) {
    return dropped;
  }
  if (absl::Status created = (*admin)->Exec(absl::StrCat("CREATE DATABASE ", database));
      !created.ok()) {
    return created;
  }
  return std::unique_ptr<TestArchive>(
      new TestArchive(engine, WithDatabase(*uri, database), database));
}

TestArchive::~TestArchive() {
  if (database_.empty()) return;
  absl::StatusOr<std::string> uri = TestPostgresUri();
  if (!uri.ok()) return;
  absl::StatusOr<std::unique_ptr<store::pg::Connection>> admin =
      store::pg::Connection::Open(AdminOptions(*uri));
  if (!admin.ok()) return;
  (void)(*admin)->Exec(absl::StrCat("DROP DATABASE IF EXISTS ", database_, " WITH (FORCE)"));
}

}  // namespace pdkarchive::testing
