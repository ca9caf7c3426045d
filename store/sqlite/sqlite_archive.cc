#include "store/sqlite/sqlite_archive.h"

#include <chrono>
#include <utility>

#include "store/sqlite/checkpointer.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store {
namespace {

// How often the checkpointer copies the WAL into the database unasked.
constexpr std::chrono::milliseconds kCheckpointInterval{250};

class SqliteArchive final : public Archive {
 public:
  SqliteArchive(std::unique_ptr<SqliteStore> store, std::unique_ptr<Checkpointer> checkpointer)
      : checkpointer_(std::move(checkpointer)), store_(std::move(store)) {
    store_->set_checkpointer(checkpointer_.get());
  }

  BatchSink& sink() override { return *store_; }

 private:
  // The store refers to the checkpointer, so it goes first.
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<SqliteStore> store_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Archive>> OpenSqliteArchive(const std::string& path,
                                                           const ArchiveOptions& options) {
  OpenOptions open_options;
  open_options.serve_lock = options.serve;
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path, open_options);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<Checkpointer>> checkpointer =
      Checkpointer::Start(path, kCheckpointInterval);
  if (!checkpointer.ok()) return checkpointer.status();
  return std::unique_ptr<Archive>(
      new SqliteArchive(*std::move(store), *std::move(checkpointer)));
}

}  // namespace pdkarchive::store
