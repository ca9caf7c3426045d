// Archive: an archive opened for writing, whatever its engine. OpenArchive
// reads the --db value, picks the engine (PostgreSQL for a URI, SQLite for a
// file path) and
// returns it with everything the engine runs beside its writer already
// wired (for SQLite, the WAL checkpointer). Callers append through sink(),
// read through readers from OpenReader, and never see an engine's types;
// store/archive.cc is the only engine-neutral code that knows which engines
// exist.
#ifndef PDKARCHIVE_STORE_ARCHIVE_H_
#define PDKARCHIVE_STORE_ARCHIVE_H_

#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "store/access_store.h"
#include "store/archive_reader.h"
#include "store/batch_sink.h"
#include "store/commit_feed.h"
#include "store/subscription_store.h"

namespace pdkarchive::store {

struct ArchiveOptions {
  // The archive is opened by `serve`: with SQLite, which allows one serve per
  // file, a second one is refused (FailedPrecondition). `import` leaves it
  // false and may write beside a running serve.
  bool serve = false;
  // The PostgreSQL password, when it is neither in the URI nor in ~/.pgpass
  // (read by the CLI from --db-password-file). Ignored by SQLite.
  std::string password;
};

class Archive {
 public:
  virtual ~Archive() = default;

  // Where the group-commit writer appends. Owned by the archive; one thread
  // at a time (see BatchSink).
  virtual BatchSink& sink() = 0;

  // Where this archive's commits are published (by the group-commit writer)
  // and heard (by live watchers). Owned by the archive; thread-safe.
  virtual CommitFeed& feed() = 0;

  // The archive's bearer tokens and access log, on a connection of their
  // own. Owned by the archive; thread-safe.
  virtual AccessStore& access() = 0;

  // The archive's subscriptions, on a connection of their own. Owned by the
  // archive; thread-safe.
  virtual SubscriptionStore& subscriptions() = 0;

  // A reader of this archive with its own connections. It may outlive
  // nothing: destroy it before the archive.
  virtual absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenReader(
      const EventReaderOptions& options) = 0;

  // Stores rows read from another archive exactly as they were (for
  // `pdk-archive copy`): each row has its sequence, times and payload, and
  // its dedupe_key set (ingest::DedupeKey of the row). `rows` come in
  // ascending sequence order, each above every sequence the archive holds;
  // the call is atomic and durable, keeps the archive's rollups and dedupe
  // current, and later appends get higher sequences. Not thread-safe with
  // the sink. InvalidArgument when a row breaks those rules; Unimplemented
  // where an engine cannot take copies.
  virtual absl::Status CopyIn(std::span<const EventRow> rows) {
    (void)rows;
    return absl::UnimplementedError("this archive engine cannot be copied into");
  }
};

// Opens (creating and migrating if needed) the archive `db` names: a
// PostgreSQL connection URI (postgresql://... or postgres://...) or else a
// SQLite file path. InvalidArgument for an empty `db`; otherwise the engine's
// errors (FailedPrecondition for a file or database that is not an archive,
// is read-only or is served already; Unavailable for a server that cannot be
// reached; PermissionDenied for refused credentials; Internal for I/O
// errors).
absl::StatusOr<std::unique_ptr<Archive>> OpenArchive(const std::string& db,
                                                     const ArchiveOptions& options = {});

// `db` fit for a message or a log line: a URI's password replaced by "***".
std::string DisplayDb(const std::string& db);

// Opens only a reader of the archive `db` names, writing nothing to it (no
// migration, no writer): for reading an archive another process serves, or
// one that is being copied. NotFound when a SQLite file does not exist;
// otherwise as OpenArchive.
absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenArchiveReader(
    const std::string& db, const EventReaderOptions& reader_options,
    const ArchiveOptions& options = {});

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_ARCHIVE_H_
