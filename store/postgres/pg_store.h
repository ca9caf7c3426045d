// PgStore: the write side of the PostgreSQL archive. Appends batches of
// events in one transaction each, on one connection of its own, from one
// thread (the node's group-commit writer); any number of nodes' PgStores may
// append to the same database at once.
//
// Sequences rise in commit order across nodes, with no gaps. nextval() alone
// would not do: it is taken at insert time and never rolled back, so a
// transaction that took 7 may commit after one that took 8, and a watcher or
// a page that has shown 8 would never show 7; aborted transactions leave
// holes. Instead every append transaction first locks the single row of
// archive_state (SELECT ... FOR UPDATE) and holds it until it commits: the
// appends of all nodes commit one after another, each numbers its new rows
// from the last_sequence it found, and since PostgreSQL releases a
// transaction's locks only once its commit is visible, a reader that sees
// sequence N committed sees every smaller one too. The cost is that commits
// of different nodes do not overlap; each is one fsync of a whole batch.
//
// Dedupe is a unique key: event_keys holds every stored event's 16-byte
// dedupe key and its sequence, so a redelivery to any node answers the
// original sequence. Rows with an empty dedupe_key are never deduplicated.
//
// PostgreSQL text cannot hold a NUL byte, nor ill-formed UTF-8: in text
// columns each NUL becomes U+FFFD, as does each ill-formed sequence (the
// normalizer already hands over well-formed text). The payload (raw, bytea)
// is kept byte for byte.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_STORE_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_STORE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/batch_sink.h"
#include "store/event.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_partitions.h"

namespace pdkarchive::store::pg {

// The channel every append NOTIFYs, with the newest sequence as payload.
inline constexpr char kCommitChannel[] = "pdkarchive_commits";

// Not thread-safe: one thread (the group-commit writer) calls it.
class PgStore final : public BatchSink {
 public:
  // Connects to the archive `connect` names, whose schema is already
  // migrated, loads the list of month partitions and makes those around
  // now. Unavailable when the server cannot be reached.
  static absl::StatusOr<std::unique_ptr<PgStore>> Open(const ConnectOptions& connect);

  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // Atomic and durable (synchronous_commit on): after a failure nothing of
  // the batch is stored. A redelivery answers the original's sequence with
  // duplicate = true; within one batch the first row of a key is stored and
  // later ones answer its sequence. Unavailable when the server is down or
  // unreachable, the connection broke, or the disk is full: the connection
  // is then dropped and the next call opens a new one.
  absl::StatusOr<std::vector<AppendResult>> AppendBatch(std::span<const EventRow> rows) override;

  // Archive::CopyIn: stores rows that carry their sequence, in ascending
  // order, each above the archive's last_sequence, with their dedupe keys;
  // raises last_sequence to the last row's. InvalidArgument when a row has
  // no key or sequence, the sequences do not ascend, the first is not above
  // last_sequence, or a key is stored already; otherwise as AppendBatch.
  absl::Status CopyIn(std::span<const EventRow> rows);

  // postgres_reconnects_total and postgres_month_partitions.
  std::vector<EngineStat> Stats() const override;

 private:
  // A row to store with the sequence it gets.
  struct ToStore {
    const EventRow* row;
    int64_t sequence;
  };

  PgStore(ConnectOptions connect, std::unique_ptr<Connection> conn);

  // Opens a connection when there is none or it broke, and reloads the
  // partition list.
  absl::Status EnsureConnected();
  // Makes the month partitions `rows` need (outside any transaction).
  absl::Status EnsurePartitions(std::span<const EventRow> rows);
  // BEGIN and lock archive_state: the last sequence handed out.
  absl::StatusOr<int64_t> BeginAndLock();
  // Finds which of `rows`' keys are stored already, and the sequence each
  // row gets or answers. In the transaction.
  absl::StatusOr<std::vector<AppendResult>> AssignSequences(std::span<const EventRow> rows,
                                                            int64_t last_sequence);
  // Inserts `rows` (events, keys, rollups; ascending sequences), sets
  // last_sequence to the last one's and notifies it: one statement per
  // kChunkBytes of payload. In the transaction.
  absl::Status WriteRows(std::span<const ToStore> rows);
  // One statement of WriteRows; `last` notifies.
  absl::Status WriteChunk(std::span<const ToStore> rows, bool last);
  // Rolls back after `failure`, drops a broken connection, and returns
  // `failure`.
  absl::Status Abort(absl::Status failure);

  const ConnectOptions connect_;
  std::unique_ptr<Connection> conn_;  // null after a broken connection
  PgPartitions partitions_;
  int64_t reconnects_ = 0;
};

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_STORE_H_
