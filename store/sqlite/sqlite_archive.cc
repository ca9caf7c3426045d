#include "store/sqlite/sqlite_archive.h"

#include <chrono>
#include <utility>

#include "store/sqlite/checkpointer.h"
#include "store/sqlite/sqlite_access_store.h"
#include "store/sqlite/sqlite_subscription_store.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_util.h"

namespace pdkarchive::store {
namespace {

// How often the checkpointer copies the WAL into the database unasked.
constexpr std::chrono::milliseconds kCheckpointInterval{250};

class SqliteArchive final : public Archive {
 public:
  SqliteArchive(std::string path, std::unique_ptr<SqliteStore> store,
                std::unique_ptr<Checkpointer> checkpointer, std::unique_ptr<AccessStore> access,
            std::unique_ptr<SubscriptionStore> subscriptions)
      : path_(std::move(path)),
        checkpointer_(std::move(checkpointer)),
        store_(std::move(store)),
        access_(std::move(access)),
        subscriptions_(std::move(subscriptions)) {
    store_->set_checkpointer(checkpointer_.get());
  }

  BatchSink& sink() override { return *store_; }

  absl::Status CopyIn(std::span<const EventRow> rows) override {
    absl::Status copied = store_->CopyBatch(rows);
    if (copied.ok()) store_->Maintain(BatchSink::Load::kBacklog);
    return copied;
  }

  // One writer per file: the commits to hear are this process's.
  CommitFeed& feed() override { return feed_; }

  AccessStore& access() override { return *access_; }

  SubscriptionStore& subscriptions() override { return *subscriptions_; }

  absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenReader(
      const EventReaderOptions& options) override {
    absl::StatusOr<std::unique_ptr<EventReader>> reader = EventReader::Open(path_, options);
    if (!reader.ok()) return reader.status();
    return std::unique_ptr<ArchiveReader>(*std::move(reader));
  }

 private:
  const std::string path_;
  LocalCommitFeed feed_;
  // The store refers to the checkpointer, so it goes first.
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<AccessStore> access_;
  std::unique_ptr<SubscriptionStore> subscriptions_;
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
  absl::StatusOr<std::unique_ptr<AccessStore>> access = OpenSqliteAccessStore(path);
  if (!access.ok()) return access.status();
  absl::StatusOr<std::unique_ptr<SubscriptionStore>> subscriptions = OpenSqliteSubscriptionStore(path);
  if (!subscriptions.ok()) return subscriptions.status();
  return std::unique_ptr<Archive>(new SqliteArchive(
      path, *std::move(store), *std::move(checkpointer), *std::move(access), *std::move(subscriptions)));
}

}  // namespace pdkarchive::store
