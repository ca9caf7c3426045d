#include "store/postgres/pg_migrations.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::store::pg {
namespace {

// The advisory lock key that serializes schema changes across nodes
// ("pdkmigr" in ASCII; any constant no other code uses).
constexpr char kLockMigrations[] = "SELECT pg_advisory_lock(112680863131506)";
constexpr char kUnlockMigrations[] = "SELECT pg_advisory_unlock(112680863131506)";

absl::Status ApplyLocked(Connection& conn, const std::vector<Migration>& migrations) {
  absl::StatusOr<Result> found = conn.Query(
      "SELECT to_regclass('pdkarchive_schema') IS NOT NULL, "
      "(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())");
  if (!found.ok()) return found.status();
  const bool ours = found->bytes(0, 0) == "t";
  if (!ours && found->int64(0, 1) > 0) {
    return absl::FailedPreconditionError(
        "the database holds tables but no pdk-archive schema (pdkarchive_schema); "
        "give pdk-archive a database of its own");
  }
  if (absl::Status created = conn.Exec(
          "CREATE TABLE IF NOT EXISTS pdkarchive_schema ("
          "version integer PRIMARY KEY, name text NOT NULL, "
          "applied_at timestamptz NOT NULL DEFAULT now())");
      !created.ok()) {
    return created;
  }
  absl::StatusOr<Result> version =
      conn.Query("SELECT COALESCE(max(version), 0) FROM pdkarchive_schema");
  if (!version.ok()) return version.status();
  const int64_t current = version->int64(0, 0);
  const int newest = migrations.empty() ? 0 : migrations.back().number;
  if (current > newest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "archive schema version ", current, " is newer than this program knows (", newest,
        "); upgrade pdk-archive"));
  }
  for (const Migration& m : migrations) {
    if (m.number <= current) continue;
    absl::Status applied = conn.Exec("BEGIN");
    if (applied.ok()) applied = conn.Exec(m.sql);
    if (applied.ok()) {
      absl::StatusOr<Result> recorded =
          conn.Query("INSERT INTO pdkarchive_schema (version, name) VALUES ($1, $2)",
                     Params().Int(m.number).Text(m.name));
      applied = recorded.status();
    }
    if (applied.ok()) applied = conn.Exec("COMMIT");
    if (!applied.ok()) {
      (void)conn.Exec("ROLLBACK");
      if (absl::IsUnavailable(applied)) return applied;
      return absl::InternalError(
          absl::StrCat("migration ", std::string(m.name), " failed: ", applied.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyPostgresMigrations(Connection& conn, const std::vector<Migration>& migrations) {
  if (absl::Status locked = conn.Exec(kLockMigrations); !locked.ok()) return locked;
  absl::Status applied = ApplyLocked(conn, migrations);
  (void)conn.Exec(kUnlockMigrations);
  return applied;
}

}  // namespace pdkarchive::store::pg
