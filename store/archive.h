// Archive: an archive opened for writing, whatever its engine. OpenArchive
// reads the --db value, picks the engine (today SQLite, for a file path) and
// returns it with everything the engine runs beside its writer already
// wired (for SQLite, the WAL checkpointer). Callers append through sink(),
// read through readers from OpenReader, and never see an engine's types;
// store/archive.cc is the only engine-neutral code that knows which engines
// exist.
#ifndef PDKARCHIVE_STORE_ARCHIVE_H_
#define PDKARCHIVE_STORE_ARCHIVE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/archive_reader.h"
#include "store/batch_sink.h"
#include "store/commit_feed.h"

namespace pdkarchive::store {

struct ArchiveOptions {
  // The archive is opened by `serve`: with SQLite, which allows one serve per
  // file, a second one is refused (FailedPrecondition). `import` leaves it
  // false and may write beside a running serve.
  bool serve = false;
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

  // A reader of this archive with its own connections. It may outlive
  // nothing: destroy it before the archive.
  virtual absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenReader(
      const EventReaderOptions& options) = 0;
};

// Opens (creating and migrating if needed) the archive `db` names: a SQLite
// file path. InvalidArgument for an empty `db`; otherwise the engine's
// errors (FailedPrecondition for a file that is not an archive, is
// read-only or is served already; Internal for I/O errors).
absl::StatusOr<std::unique_ptr<Archive>> OpenArchive(const std::string& db,
                                                     const ArchiveOptions& options = {});

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_ARCHIVE_H_
