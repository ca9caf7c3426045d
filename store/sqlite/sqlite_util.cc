#include "store/sqlite/sqlite_util.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/sqlite/migrations.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store {
namespace {

// A random key that signs page tokens, made once per archive.
constexpr char kEnsureTokenKey[] =
    "INSERT OR IGNORE INTO archive_meta(name, value) "
    "VALUES ('page_token_key', randomblob(32))";

// What tells an archive from another application's SQLite database before
// anything is written to it: our migrations always create archive_meta.
constexpr char kCountSchemaObjects[] = "SELECT count(*) FROM sqlite_schema";
constexpr char kHasArchiveMeta[] =
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'archive_meta'";

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

// utc_day(ms): the UTC day of epoch milliseconds (timeutil::DayOf); NULL
// for NULL.
void UtcDayFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_result_null(context);
    return;
  }
  sqlite3_result_int64(context, timeutil::DayOf(sqlite3_value_int64(argv[0])));
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
  using Function = void (*)(sqlite3_context*, int, sqlite3_value**);
  const std::pair<const char*, Function> functions[] = {{"dedupe_hash", DedupeHashFunction},
                                                        {"utc_day", UtcDayFunction}};
  for (const auto& [name, function] : functions) {
    const int rc = sqlite3_create_function_v2(db.getHandle(), name, 1,
                                              SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                              function, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) throw SQLite::Exception(db.getHandle(), rc);
  }
}

absl::StatusOr<ArchiveLock> ArchiveLock::Acquire(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    const std::string reason = std::strerror(error);
    if (error == EACCES || error == EROFS || error == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat("cannot open archive ", path, ": ", reason));
    }
    return absl::InternalError(absl::StrCat("cannot open archive ", path, ": ", reason));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "archive ", path, " is already served by another pdk-archive serve; one serve "
          "per SQLite archive (pdk-archive import may run beside it)"));
    }
    return absl::InternalError(
        absl::StrCat("cannot lock archive ", path, ": ", std::strerror(error)));
  }
  return ArchiveLock(fd);
}

ArchiveLock::ArchiveLock(ArchiveLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

ArchiveLock& ArchiveLock::operator=(ArchiveLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

ArchiveLock::~ArchiveLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

namespace {

// FailedPrecondition when `db` must not be written: a read-only file, or a
// SQLite database that is not (yet) an archive. Reads only.
absl::Status CheckWritableArchive(SQLite::Database& db, const std::string& path) {
  if (sqlite3_db_readonly(db.getHandle(), "main") == 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "archive ", path, " is read-only here; pdk-archive needs to write it and to "
        "create ", path, "-wal and ", path, "-shm beside it"));
  }
  const int64_t objects = db.execAndGet(kCountSchemaObjects).getInt64();
  if (objects > 0 && db.execAndGet(kHasArchiveMeta).getInt64() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is a SQLite database of another application (it has ", objects,
        " schema objects and no pdk-archive schema); it was left untouched"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SQLite::Database>> OpenWriteConnection(
    const std::string& path, const OpenOptions& options) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX,
        static_cast<int>(kBusyTimeout.count()), options.vfs);
    if (absl::Status s = CheckWritableArchive(*db, path); !s.ok()) return s;
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
