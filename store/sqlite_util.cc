#include "store/sqlite_util.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "store/migrations.h"

namespace pdkarchive::store {
namespace {

// A random key that signs page tokens, made once per archive.
constexpr char kEnsureTokenKey[] =
    "INSERT OR IGNORE INTO archive_meta(name, value) "
    "VALUES ('page_token_key', randomblob(32))";

// FULL: in WAL mode only this survives a power cut, not just a crash.
constexpr char kSynchronousFull[] = "PRAGMA synchronous=FULL";
// For fault-injection tests only (see OpenOptions).
constexpr char kSynchronousNormal[] = "PRAGMA synchronous=NORMAL";

// dedupe_hash(key): DedupeHash over a BLOB or TEXT argument; NULL for NULL.
void DedupeHashFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_result_null(context);
    return;
  }
  const void* bytes = sqlite3_value_blob(argv[0]);
  const int size = sqlite3_value_bytes(argv[0]);
  sqlite3_result_int64(
      context, DedupeHash(std::string_view(static_cast<const char*>(bytes),
                                           static_cast<size_t>(size))));
}

}  // namespace

int64_t DedupeHash(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;  // splitmix64's finalizer
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return static_cast<int64_t>(h);
}

void RegisterArchiveFunctions(SQLite::Database& db) {
  const int rc = sqlite3_create_function_v2(
      db.getHandle(), "dedupe_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
      DedupeHashFunction, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) throw SQLite::Exception(db.getHandle(), rc);
}

absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenWriteConnection(
    const std::string& path, const OpenOptions& options) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX,
        static_cast<int>(kBusyTimeout.count()), options.vfs);
    std::string mode = db->execAndGet("PRAGMA journal_mode=WAL").getString();
    if (mode != "wal") {
      return absl::InternalError(
          absl::StrCat(path, ": cannot switch to WAL (journal_mode is ", mode, ")"));
    }
    db->exec(options.synchronous == OpenOptions::Synchronous::kNormal
                 ? kSynchronousNormal
                 : kSynchronousFull);
    // Checkpoints run on the Checkpointer's connection, not on commit.
    db->exec("PRAGMA wal_autocheckpoint=0");
    // When the WAL is reset, truncate it back to this size (64 MiB).
    db->exec("PRAGMA journal_size_limit=67108864");
    // Big batches touch many index pages: a 64 MiB cache keeps them from
    // spilling mid-transaction, and temporary b-trees stay in memory.
    db->exec("PRAGMA cache_size=-65536");
    db->exec("PRAGMA temp_store=MEMORY");
    RegisterArchiveFunctions(*db);
    if (absl::Status s = ApplyMigrations(*db, EmbeddedMigrations()); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
    }
    db->exec(kEnsureTokenKey);
    return db;
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(absl::StrCat("cannot open archive ", path, ": ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenReadConnection(
    const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no archive at ", path));
  }
  try {
    // Read-write open flags are not needed to read a WAL database, but a
    // read-only connection cannot create the -shm file; the writer has.
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX,
        static_cast<int>(kBusyTimeout.count()));
    db->exec("PRAGMA query_only=ON");
    return db;
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot open archive ", path, " for reading: ", e.what()));
  }
}

}  // namespace pdkarchive::store
