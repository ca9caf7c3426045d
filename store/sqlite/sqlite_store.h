// SqliteStore: the write side of the archive. It owns the single write
// connection and appends batches of events in one transaction each.
#ifndef PDKARCHIVE_STORE_SQLITE_STORE_H_
#define PDKARCHIVE_STORE_SQLITE_STORE_H_

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/batch_sink.h"
#include "store/sqlite/checkpointer.h"
#include "store/event.h"
#include "store/sqlite/sqlite_util.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace pdkarchive::store {

class RawCompressor;
class RawDecompressor;

// Not thread-safe: one thread (the group-commit writer) calls it.
//
// Other processes may write the same file (an `import` beside a running
// `serve`): every write transaction first checks, with the write lock held,
// whether another connection has committed since this store's last
// transaction, and if so reads the unmerged events (and merged_through)
// again, so dedupe sees the other writer's events and no event is stored
// twice. Only one store per file may hold the serve lock (OpenOptions).
class SqliteStore final : public BatchSink {
 public:
  // Opens or creates the archive at `path` and migrates it to the newest schema.
  // Production passes no `options`; see OpenOptions (fault-injection tests).
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(
      const std::string& path, const OpenOptions& options = {});

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  absl::StatusOr<std::vector<AppendResult>> AppendBatch(
      std::span<const EventRow> rows) override;

  // Archive::CopyIn: stores `rows` with their own sequences (ascending,
  // above every stored one), like AppendBatch otherwise. InvalidArgument,
  // storing nothing, when a row is out of order or already archived.
  absl::Status CopyBatch(std::span<const EventRow> rows);

  // Compresses the payload (fills EventRow::packed_raw). Thread-safe.
  void Prepare(EventRow& row) const override;

  // Indexes unmerged events (see Merge) when the writer's `load` allows:
  //  - kBacklog: all of them once there are kMergeRows, where big merges
  //    cost the least per event;
  //  - kCaughtUp, and the last batch was small enough to index directly:
  //    the oldest kMergeCaughtUpRows, once there are that many. A slice
  //    that small pauses the requests that arrive meanwhile for a few
  //    milliseconds, and costs per event what indexing them directly
  //    would have. (An empty queue after a deferred batch is only a lull
  //    between bursts: kBacklog.)
  //  - kIdle: all of them.
  //
  // Then nudges the Checkpointer every kRowsPerNudge rows appended and
  // each time the WAL has grown by a quarter of `wal_limit_frames`, and
  // empties the WAL (a RESTART checkpoint) once it holds more than that:
  // under steady writes PASSIVE checkpoints never find the WAL at rest, so
  // without a restart it would grow without end (bench/RESULTS.md). With a
  // Checkpointer, the restart waits until it has caught up
  // (Checkpointer::RequestCatchUp), so the restart itself copies little; at
  // kRestartAnywayLimits times the limit it restarts without waiting. It
  // never waits for a running pass (see Checkpointer::PauseForRestart) nor,
  // below four times the limit, for readers on old snapshots: it tries
  // again after the next batch.
  void Maintain(Load load) override;

  // The Checkpointer running on this archive, if any; Maintain coordinates
  // its restarts with it. Must outlive the store's use of Maintain.
  void set_checkpointer(Checkpointer* checkpointer) { checkpointer_ = checkpointer; }

  // Default for Maintain: 64 MiB of 4 KiB pages, the WAL's size limit
  // (journal_size_limit); why not less: bench/RESULTS.md.
  static constexpr int64_t kDefaultWalLimitFrames = 16384;
  // How often, in parts of the limit, Maintain nudges the Checkpointer.
  static constexpr int64_t kNudgesPerWalLimit = 4;
  static constexpr int64_t kRowsPerNudge = 1024;
  void set_wal_limit_frames(int64_t frames) { wal_limit_frames_ = frames; }
  static constexpr int64_t kRestartAnywayLimits = 2;
  // Frames in the WAL after the last commit, and the restarts Maintain made.
  int64_t wal_frames() const { return wal_frames_; }
  int64_t wal_restarts() const { return wal_restarts_; }

  // Unmerged events, the WAL's frames and its restarts: /metrics'
  // pdkarchive_unmerged_events, pdkarchive_wal_frames and
  // pdkarchive_wal_restarts_total.
  std::vector<EngineStat> Stats() const override;
  // True while events are stored unmerged.
  bool HasIdleWork() const override { return !unmerged_order_.empty(); }

  // Indexes the oldest `max_rows` unmerged events (all by default) now, in
  // one transaction: adds them to the daily rollups, sets their merged flag
  // (which adds them to every secondary index, all partial on it) and moves
  // archive_meta.merged_through past them
  // (migrations/0004_deferred_indexes.sql). False when the disk refused:
  // nothing changed, the events stay readable unmerged, and the next call
  // tries again.
  bool Merge(int64_t max_rows = std::numeric_limits<int64_t>::max());
  // AppendBatch stores the events of a batch this big or bigger unmerged,
  // so its commit writes a few table pages rather than a random leaf of
  // each index and rollup per event; a smaller batch means the writer keeps
  // up, and its events are indexed and counted in their own transaction.
  static constexpr int64_t kDeferFromBatch = 8;
  static constexpr int64_t kMergeRows = 2048;
  static constexpr int64_t kMergeCaughtUpRows = 32;
  // Events stored but not merged yet.
  int64_t unmerged_rows() const { return static_cast<int64_t>(unmerged_.size()); }

 private:
  struct Statements;
  // AppendBatch, or CopyBatch when `keep_sequences`.
  absl::StatusOr<std::vector<AppendResult>> AppendRows(std::span<const EventRow> rows,
                                                       bool keep_sequences);
  SqliteStore(ArchiveLock serve_lock, std::unique_ptr<SQLite::Database> db,
              std::unique_ptr<RawCompressor> compressor,
              std::unique_ptr<RawDecompressor> decompressor);
  // The topics row of (topic, family), inserted if new. Throws SQLite errors.
  int64_t TopicId(const std::string& topic, const std::string& family);
  // The names row of `value` (a panel id, door name or subscription),
  // inserted if new. Throws SQLite errors.
  int64_t NameId(const std::string& value);
  // The sequence of a stored event that `row` (whose key hashes to
  // `dedupe_hash`) is a redelivery of, or 0.
  // `stored_id` is event_id as bound for the insert: `id_packed` when it is
  // a UUID's 16 bytes (a BLOB), else the text.
  // Throws SQLite errors.
  int64_t FindOriginal(const EventRow& row, int64_t dedupe_hash, int64_t topic_id,
                       int64_t panel_ref, std::string_view stored_id, bool id_packed);
  // Whether the current row of `candidate` (sequence, topic_id, panel_ref,
  // event_id, raw) is the event `row` redelivers.
  bool IsOriginal(SQLite::Statement& candidate, const EventRow& row, int64_t topic_id,
                  int64_t panel_ref, std::string_view stored_id, bool id_packed);
  void LoadUnmerged();
  // PRAGMA data_version: changes when another connection commits.
  int64_t ReadDataVersion();
  // In a write transaction: reloads the unmerged events if another
  // connection committed since the last one. Throws SQLite errors.
  void SyncWithOtherWriters();
  // Forgets the name and topic ids cached so far once they hold more than
  // kIdCacheBytes of text. Ids never change, so this costs lookups only.
  void BoundIdCaches();
  // Adds an unmerged event to unmerged_ and unmerged_order_, or drops one
  // (the oldest or the newest) from both.
  void RememberUnmerged(int64_t hash, int64_t sequence);
  void ForgetOldestUnmerged();
  void ForgetNewestUnmerged();

  // Held for the store's lifetime when opened with OpenOptions::serve_lock.
  ArchiveLock serve_lock_;
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<Statements> statements_;
  std::unique_ptr<RawCompressor> compressor_;
  std::unique_ptr<RawDecompressor> decompressor_;
  // Frames in the WAL after the last commit (from sqlite3_wal_hook).
  int64_t wal_frames_ = 0;
  int64_t wal_limit_frames_ = kDefaultWalLimitFrames;
  // wal_frames_ when Maintain last nudged the Checkpointer.
  int64_t nudged_at_frames_ = 0;
  // Rows appended since Maintain last nudged the Checkpointer for them.
  int64_t rows_since_nudge_ = 0;
  // Whether Maintain has asked the Checkpointer to catch up for a restart.
  bool catch_up_requested_ = false;
  int64_t wal_restarts_ = 0;
  Checkpointer* checkpointer_ = nullptr;
  // Whether the last AppendBatch stored its events unmerged (see Maintain).
  bool last_batch_deferred_ = false;
  // Events after merged_through_ are in no secondary index yet: their
  // dedupe hashes, to sequences, and the same pairs oldest first.
  int64_t merged_through_ = 0;
  std::unordered_multimap<int64_t, int64_t> unmerged_;
  std::deque<std::pair<int64_t, int64_t>> unmerged_order_;  // (hash, sequence)
  // data_version after this store's last transaction (SyncWithOtherWriters).
  int64_t data_version_ = 0;
  // Cache of TopicId; cleared when a transaction rolls back.
  std::map<std::pair<std::string, std::string>, int64_t> topic_ids_;
  // Cache of NameId; cleared when a transaction rolls back.
  std::unordered_map<std::string, int64_t> name_ids_;
  // Text held by the two caches, and the bound BoundIdCaches keeps. Values
  // longer than kMaxCachedIdText are looked up every time, never cached.
  size_t id_cache_bytes_ = 0;
  static constexpr size_t kIdCacheBytes = 4 << 20;
  static constexpr size_t kMaxCachedIdText = 1024;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_SQLITE_STORE_H_
