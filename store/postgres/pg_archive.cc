#include "store/postgres/pg_archive.h"

#include <openssl/rand.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/postgres/pg_access_store.h"
#include "store/postgres/pg_subscription_store.h"
#include "store/postgres/pg_commit_feed.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_migrations.h"
#include "store/postgres/pg_reader.h"
#include "store/postgres/pg_store.h"

namespace pdkarchive::store {
namespace {

// The key that signs page tokens, made once per archive: whichever node
// opens it first writes it, the others keep theirs out.
constexpr char kInsertPageTokenKey[] =
    "INSERT INTO archive_meta (name, value) VALUES ('page_token_key', $1) "
    "ON CONFLICT (name) DO NOTHING";
constexpr size_t kPageTokenKeyBytes = 32;

class PgArchive final : public Archive {
 public:
  PgArchive(pg::ConnectOptions connect, std::unique_ptr<pg::PgStore> store,
            std::unique_ptr<pg::PgCommitFeed> feed, std::unique_ptr<AccessStore> access,
            std::unique_ptr<SubscriptionStore> subscriptions)
      : connect_(std::move(connect)),
        store_(std::move(store)),
        feed_(std::move(feed)),
        access_(std::move(access)),
        subscriptions_(std::move(subscriptions)) {}

  BatchSink& sink() override { return *store_; }

  // Every node's commits: this node's at once, the others' by NOTIFY.
  CommitFeed& feed() override { return *feed_; }

  AccessStore& access() override { return *access_; }

  SubscriptionStore& subscriptions() override { return *subscriptions_; }

  absl::StatusOr<std::unique_ptr<ArchiveReader>> OpenReader(
      const EventReaderOptions& options) override {
    return pg::OpenReader(connect_, options);
  }

  absl::Status CopyIn(std::span<const EventRow> rows) override { return store_->CopyIn(rows); }

 private:
  const pg::ConnectOptions connect_;
  std::unique_ptr<pg::PgStore> store_;
  std::unique_ptr<pg::PgCommitFeed> feed_;
  std::unique_ptr<AccessStore> access_;
  std::unique_ptr<SubscriptionStore> subscriptions_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Archive>> OpenPostgresArchive(const std::string& uri,
                                                             const ArchiveOptions& options) {
  pg::ConnectOptions connect;
  connect.uri = uri;
  connect.password = options.password;
  {
    absl::StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(connect);
    if (!conn.ok()) return conn.status();
    if (absl::Status migrated =
            pg::ApplyPostgresMigrations(**conn, pg::EmbeddedPostgresMigrations());
        !migrated.ok()) {
      return migrated;
    }
    std::string key(kPageTokenKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()),
                   static_cast<int>(key.size())) != 1) {
      return absl::InternalError("cannot draw the page token key: RAND_bytes failed");
    }
    absl::StatusOr<pg::Result> stored =
        (*conn)->Query(kInsertPageTokenKey, pg::Params().Bytes(key));
    if (!stored.ok()) return stored.status();
  }
  // PgStore::Open makes the month partitions around now.
  absl::StatusOr<std::unique_ptr<pg::PgStore>> store = pg::PgStore::Open(connect);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<pg::PgCommitFeed>> feed = pg::PgCommitFeed::Start(connect);
  if (!feed.ok()) return feed.status();
  absl::StatusOr<std::unique_ptr<AccessStore>> access = pg::OpenAccessStore(connect);
  if (!access.ok()) return access.status();
  absl::StatusOr<std::unique_ptr<SubscriptionStore>> subscriptions = pg::OpenSubscriptionStore(connect);
  if (!subscriptions.ok()) return subscriptions.status();
  return std::unique_ptr<Archive>(new PgArchive(std::move(connect), *std::move(store),
                                                *std::move(feed), *std::move(access), *std::move(subscriptions)));
}

}  // namespace pdkarchive::store
