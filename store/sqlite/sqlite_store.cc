#include "store/sqlite/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/raw_codec.h"
#include "store/sqlite/checkpointer.h"
#include "store/sqlite/sqlite_util.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store {
namespace {

constexpr char kInsertEvent[] =
    "INSERT INTO events(event_id, topic_id, panel_ref, ou_id, door_id, "
    "door_name_ref, person_id, actor_user_id, occur_time, receive_time, "
    "subscription_ref, dedupe_key, raw, merged, sequence, device_id, holder_id, holder_name, "
    "cloud_node_id, system_id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20)";

// Events with a device id, counted again by it (migrations/0008_v2_ids.sql).
constexpr char kAddDailyDeviceCount[] =
    "INSERT INTO counts_daily_device(day, topic_id, panel_id, door_id, device_id, n) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET n = n + excluded.n";

// The indexed events whose key hashes alike: almost always none, or the
// original of a redelivery. Unmerged events are looked up by sequence.
constexpr char kSelectCandidates[] =
    "SELECT sequence, topic_id, panel_ref, event_id, raw FROM events "
    "WHERE dedupe_key = ?1 AND merged = 1";
constexpr char kSelectCandidate[] =
    "SELECT sequence, topic_id, panel_ref, event_id, raw FROM events "
    "WHERE sequence = ?1";

constexpr char kSelectMergedThrough[] =
    "SELECT value FROM archive_meta WHERE name = 'merged_through'";
constexpr char kSelectUnmerged[] =
    "SELECT sequence, dedupe_key FROM events WHERE sequence > ?1 AND merged = 0 "
    "ORDER BY sequence";
// Merging the unmerged events in (?1, ?2]: count them, index them, move the
// mark. (Events stored merged in between are indexed and counted already.)
constexpr char kMergeEvents[] =
    "UPDATE events SET merged = 1 WHERE sequence > ?1 AND sequence <= ?2 AND merged = 0";
constexpr char kMergeDailyCounts[] =
    "INSERT INTO counts_daily(day, topic_id, panel_id, door_id, n) "
    "SELECT utc_day(occur_time), "
    "topic_id, (SELECT value FROM names WHERE name_id = panel_ref), "
    "COALESCE(door_id, ?3), COUNT(*) "
    "FROM events WHERE sequence > ?1 AND sequence <= ?2 AND merged = 0 GROUP BY 1, 2, 3, 4 "
    "ON CONFLICT DO UPDATE SET n = n + excluded.n";
constexpr char kMergeDailyTopicCounts[] =
    "INSERT INTO counts_daily_topic(day, topic_id, n) "
    "SELECT utc_day(occur_time), "
    "topic_id, COUNT(*) FROM events WHERE sequence > ?1 AND sequence <= ?2 AND merged = 0 "
    "GROUP BY 1, 2 "
    "ON CONFLICT DO UPDATE SET n = n + excluded.n";
constexpr char kMergeDailyDeviceCounts[] =
    "INSERT INTO counts_daily_device(day, topic_id, panel_id, door_id, device_id, n) "
    "SELECT utc_day(occur_time), "
    "topic_id, (SELECT value FROM names WHERE name_id = panel_ref), "
    "COALESCE(door_id, ?3), device_id, COUNT(*) "
    "FROM events WHERE sequence > ?1 AND sequence <= ?2 AND merged = 0 "
    "AND device_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5 "
    "ON CONFLICT DO UPDATE SET n = n + excluded.n";
constexpr char kSetMergedThrough[] =
    "UPDATE archive_meta SET value = ?1 WHERE name = 'merged_through'";
// Rollups of events stored merged, kept in their own transaction.
constexpr char kAddDailyCount[] =
    "INSERT INTO counts_daily(day, topic_id, panel_id, door_id, n) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET n = n + excluded.n";
constexpr char kAddDailyTopicCount[] =
    "INSERT INTO counts_daily_topic(day, topic_id, n) "
    "VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET n = n + excluded.n";

// Changes whenever another connection (another process's writer) commits.
constexpr char kDataVersion[] = "PRAGMA data_version";

constexpr char kSelectNameId[] = "SELECT name_id FROM names WHERE value = ?1";
constexpr char kInsertName[] = "INSERT INTO names(value) VALUES (?1) RETURNING name_id";

constexpr char kSelectTopicId[] =
    "SELECT topic_id FROM topics WHERE name = ?1 AND family = ?2";
constexpr char kInsertTopic[] =
    "INSERT INTO topics(name, family) VALUES (?1, ?2) RETURNING topic_id";

// RESTART, not TRUNCATE: the next commit starts the WAL over from its
// beginning; the ftruncate TRUNCATE adds took 5-11 ms of the pause.
constexpr char kRestartCheckpoint[] = "PRAGMA wal_checkpoint(RESTART)";
// How long Maintain waits for readers on old snapshots before giving up.
constexpr int kMaintainBusyTimeoutMs = 20;

// Records the WAL size after each commit (sqlite3_wal_hook).
int RecordWalFrames(void* frames, sqlite3*, const char*, int count) {
  *static_cast<int64_t*>(frames) = count;
  return SQLITE_OK;
}

void BindText(SQLite::Statement& stmt, int index, const std::string& value) {
  // bindNoCopy: the row outlives the statement's use of it.
  stmt.bindNoCopy(index, value);
}

}  // namespace

struct SqliteStore::Statements {
  explicit Statements(SQLite::Database& db)
      : insert(db, kInsertEvent),
        select_candidates(db, kSelectCandidates),
        select_candidate(db, kSelectCandidate),
        select_topic(db, kSelectTopicId),
        insert_topic(db, kInsertTopic),
        select_name(db, kSelectNameId),
        insert_name(db, kInsertName),
        merge_events(db, kMergeEvents),
        merge_daily(db, kMergeDailyCounts),
        merge_daily_topic(db, kMergeDailyTopicCounts),
        set_merged_through(db, kSetMergedThrough),
        add_daily(db, kAddDailyCount),
        add_daily_topic(db, kAddDailyTopicCount),
        merge_daily_device(db, kMergeDailyDeviceCounts),
        add_daily_device(db, kAddDailyDeviceCount),
        data_version(db, kDataVersion) {}
  SQLite::Statement insert;
  SQLite::Statement select_candidates;
  SQLite::Statement select_candidate;
  SQLite::Statement select_topic;
  SQLite::Statement insert_topic;
  SQLite::Statement select_name;
  SQLite::Statement insert_name;
  SQLite::Statement merge_events;
  SQLite::Statement merge_daily;
  SQLite::Statement merge_daily_topic;
  SQLite::Statement set_merged_through;
  SQLite::Statement add_daily;
  SQLite::Statement add_daily_topic;
  SQLite::Statement merge_daily_device;
  SQLite::Statement add_daily_device;
  SQLite::Statement data_version;
};

namespace {

// Key of counts_daily: (day, topic_id, panel_id, door_id).
using DailyKey = std::tuple<int64_t, int64_t, std::string, int64_t>;
// Key of counts_daily_device: counts_daily's and the device id.
using DeviceDailyKey = std::tuple<int64_t, int64_t, std::string, int64_t, std::string>;

void AddDeviceDailyCounts(SQLite::Statement& daily_device,
                          const std::map<DeviceDailyKey, int64_t>& counts) {
  for (const auto& [key, n] : counts) {
    const auto& [day, topic_id, panel_id, door_id, device_id] = key;
    daily_device.reset();
    daily_device.bind(1, day);
    daily_device.bind(2, topic_id);
    daily_device.bind(3, panel_id);
    daily_device.bind(4, door_id);
    daily_device.bind(5, device_id);
    daily_device.bind(6, n);
    daily_device.exec();
  }
  daily_device.reset();
}

// Adds a batch's events stored merged to the daily rollups, one upsert per
// key.
void AddDailyCounts(SQLite::Statement& daily, SQLite::Statement& daily_topic,
                    const std::map<DailyKey, int64_t>& counts) {
  std::map<std::pair<int64_t, int64_t>, int64_t> by_topic;
  for (const auto& [key, n] : counts) {
    const auto& [day, topic_id, panel_id, door_id] = key;
    daily.reset();
    daily.bind(1, day);
    daily.bind(2, topic_id);
    daily.bind(3, panel_id);
    daily.bind(4, door_id);
    daily.bind(5, n);
    daily.exec();
    by_topic[{day, topic_id}] += n;
  }
  for (const auto& [key, n] : by_topic) {
    daily_topic.reset();
    daily_topic.bind(1, key.first);
    daily_topic.bind(2, key.second);
    daily_topic.bind(3, n);
    daily_topic.exec();
  }
}

}  // namespace


absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(
    const std::string& path, const OpenOptions& options) {
  // Taken before the schema is touched, so two serves starting together do
  // not both migrate.
  ArchiveLock serve_lock;
  if (options.serve_lock) {
    absl::StatusOr<ArchiveLock> lock = ArchiveLock::Acquire(path);
    if (!lock.ok()) return lock.status();
    serve_lock = *std::move(lock);
  }
  absl::StatusOr<std::unique_ptr<SQLite::Database>> db = OpenWriteConnection(path, options);
  if (!db.ok()) return db.status();
  absl::StatusOr<std::unique_ptr<RawCompressor>> compressor = RawCompressor::Create();
  if (!compressor.ok()) return compressor.status();
  absl::StatusOr<std::unique_ptr<RawDecompressor>> decompressor = RawDecompressor::Create();
  if (!decompressor.ok()) return decompressor.status();
  try {
    return std::unique_ptr<SqliteStore>(new SqliteStore(
        std::move(serve_lock), *std::move(db), *std::move(compressor), *std::move(decompressor)));
  } catch (const SQLite::Exception& e) {
    return absl::InternalError(absl::StrCat("preparing statements: ", e.what()));
  }
}

SqliteStore::SqliteStore(ArchiveLock serve_lock, std::unique_ptr<SQLite::Database> db,
                         std::unique_ptr<RawCompressor> compressor,
                         std::unique_ptr<RawDecompressor> decompressor)
    : serve_lock_(std::move(serve_lock)),
      db_(std::move(db)),
      statements_(std::make_unique<Statements>(*db_)),
      compressor_(std::move(compressor)),
      decompressor_(std::move(decompressor)) {
  sqlite3_wal_hook(db_->getHandle(), RecordWalFrames, &wal_frames_);
  LoadUnmerged();
  data_version_ = ReadDataVersion();
}

int64_t SqliteStore::ReadDataVersion() {
  SQLite::Statement& version = statements_->data_version;
  version.reset();
  version.executeStep();
  const int64_t value = version.getColumn(0).getInt64();
  version.reset();
  return value;
}

void SqliteStore::SyncWithOtherWriters() {
  const int64_t version = ReadDataVersion();
  if (version == data_version_) return;
  // Another process committed since our last transaction: its unmerged
  // events are in no index and not in our memory, and it may have merged
  // some of ours. Read the whole unmerged tail again (bounded by merging).
  LoadUnmerged();
  data_version_ = version;
}

void SqliteStore::Prepare(EventRow& row) const {
  std::string packed;
  if (!compressor_->Compress(row.raw, &packed)) packed.clear();
  row.packed_raw = std::move(packed);
}

void SqliteStore::Maintain(Load load) {
  // An empty queue right after a batch big enough to defer is a lull between
  // bursts, not the writer catching up: closed-loop clients send again only
  // when answered, so they come back together after every pause. Merging
  // in those lulls (256 events at a time, then) halved the events per merge
  // at 64 connections and cost 15% of the throughput (bench/RESULTS.md).
  if (load == Load::kCaughtUp && last_batch_deferred_) load = Load::kBacklog;
  switch (load) {
    case Load::kIdle:
      Merge();
      break;
    case Load::kCaughtUp:
      if (unmerged_rows() >= kMergeCaughtUpRows) Merge(kMergeCaughtUpRows);
      break;
    case Load::kBacklog:
      if (unmerged_rows() >= kMergeRows) Merge();
      break;
  }
  if (checkpointer_ != nullptr) {
    if (wal_frames_ < nudged_at_frames_) nudged_at_frames_ = 0;  // the WAL restarted
    if (wal_frames_ - nudged_at_frames_ >= wal_limit_frames_ / kNudgesPerWalLimit ||
        rows_since_nudge_ >= kRowsPerNudge) {
      checkpointer_->Nudge();
      nudged_at_frames_ = wal_frames_;
      rows_since_nudge_ = 0;
    }
  }
  if (wal_frames_ < wal_limit_frames_) {
    catch_up_requested_ = false;
    return;
  }
  // A restart copies, with the write lock held, whatever the Checkpointer
  // has not: up to a quarter of the limit (~10 ms at 64 MiB) when it came
  // at once. Wait for the Checkpointer to catch up first, unless the WAL
  // has grown far past the limit meanwhile. Once it has done what it can,
  // restart: under a backlog it may not have caught up, and asking again
  // would only let the WAL grow.
  if (checkpointer_ != nullptr && wal_frames_ < kRestartAnywayLimits * wal_limit_frames_) {
    if (!catch_up_requested_) {
      checkpointer_->RequestCatchUp();
      catch_up_requested_ = true;
      return;
    }
    if (!checkpointer_->caught_up_through().has_value()) return;  // still copying
  }
  // The Checkpointer's pass holds SQLite's checkpoint lock; a restart now
  // would fail at once. It starts no new pass until we resume it.
  if (checkpointer_ != nullptr && !checkpointer_->PauseForRestart()) return;
  // The pragma does not throw when it cannot finish: it reports busy=1 in its
  // result row when readers on old snapshots keep it from restarting the WAL.
  // Below four times the limit, do not wait for them at all; above, wait a
  // little so the WAL stays bounded. wal_frames_ is reset only when the WAL
  // really restarts.
  const bool must = wal_frames_ >= 4 * wal_limit_frames_;
  try {
    db_->setBusyTimeout(must ? kMaintainBusyTimeoutMs : 0);
    SQLite::Statement restart(*db_, kRestartCheckpoint);
    if (restart.executeStep() && restart.getColumn(0).getInt() == 0) {
      wal_frames_ = 0;
      catch_up_requested_ = false;
      ++wal_restarts_;
    }
  } catch (const SQLite::Exception&) {
    // An I/O error; nothing is lost, try after the next batch.
  }
  try {
    db_->setBusyTimeout(static_cast<int>(kBusyTimeout.count()));
  } catch (const SQLite::Exception&) {
  }
  if (checkpointer_ != nullptr) checkpointer_->ResumeAfterRestart();
}

namespace {

// The id `select` finds for the values `bind` gives it, else the one
// `insert ... RETURNING` assigns to them. Throws SQLite errors.
template <typename Bind>
int64_t SelectOrInsert(SQLite::Statement& select, SQLite::Statement& insert, Bind bind) {
  select.reset();
  bind(select);
  int64_t id = 0;
  if (select.executeStep()) {
    id = select.getColumn(0).getInt64();
  } else {
    insert.reset();
    bind(insert);
    insert.executeStep();
    id = insert.getColumn(0).getInt64();
    insert.reset();
  }
  select.reset();
  return id;
}

}  // namespace

int64_t SqliteStore::TopicId(const std::string& topic, const std::string& family) {
  auto key = std::make_pair(topic, family);
  if (auto it = topic_ids_.find(key); it != topic_ids_.end()) return it->second;
  const int64_t id = SelectOrInsert(statements_->select_topic, statements_->insert_topic,
                                    [&](SQLite::Statement& s) {
                                      s.bind(1, topic);
                                      s.bind(2, family);
                                    });
  if (topic.size() <= kMaxCachedIdText) {
    BoundIdCaches();
    id_cache_bytes_ += topic.size() + family.size();
    topic_ids_.emplace(std::move(key), id);
  }
  return id;
}

void SqliteStore::BoundIdCaches() {
  if (id_cache_bytes_ < kIdCacheBytes) return;
  topic_ids_.clear();
  name_ids_.clear();
  id_cache_bytes_ = 0;
}

int64_t SqliteStore::NameId(const std::string& value) {
  if (auto it = name_ids_.find(value); it != name_ids_.end()) return it->second;
  const int64_t id = SelectOrInsert(statements_->select_name, statements_->insert_name,
                                    [&](SQLite::Statement& s) { s.bind(1, value); });
  if (value.size() <= kMaxCachedIdText) {
    BoundIdCaches();
    id_cache_bytes_ += value.size();
    name_ids_.emplace(value, id);
  }
  return id;
}

bool SqliteStore::IsOriginal(SQLite::Statement& candidate, const EventRow& row,
                             int64_t topic_id, int64_t panel_ref, std::string_view stored_id,
                             bool id_packed) {
  // The normalizer's key is topic + panel + event id when there is an id,
  // else a hash of the body: compare exactly those.
  const SQLite::Column id = candidate.getColumn(3);
  const std::string_view candidate_id(static_cast<const char*>(id.getBlob()),
                                      static_cast<size_t>(id.getBytes()));
  // A packed UUID is a BLOB, any other id TEXT: the types must match too.
  if (candidate_id != stored_id || (id.getType() == SQLITE_BLOB) != id_packed) return false;
  if (!row.event_id.empty()) {
    return candidate.getColumn(1).getInt64() == topic_id &&
           candidate.getColumn(2).getInt64() == panel_ref;
  }
  const SQLite::Column raw = candidate.getColumn(4);
  const std::string_view stored(static_cast<const char*>(raw.getBlob()),
                                static_cast<size_t>(raw.getBytes()));
  if (raw.getType() != SQLITE_BLOB) return stored == row.raw;
  absl::StatusOr<std::string> payload = decompressor_->Decompress(stored);
  return payload.ok() && *payload == row.raw;
}

int64_t SqliteStore::FindOriginal(const EventRow& row, int64_t dedupe_hash, int64_t topic_id,
                                  int64_t panel_ref, std::string_view stored_id,
                                  bool id_packed) {
  int64_t original = 0;
  // Unmerged events are in no index yet: the store remembers their hashes.
  auto [first, last] = unmerged_.equal_range(dedupe_hash);
  SQLite::Statement& by_sequence = statements_->select_candidate;
  for (auto it = first; original == 0 && it != last; ++it) {
    by_sequence.reset();
    by_sequence.bind(1, it->second);
    if (by_sequence.executeStep() &&
        IsOriginal(by_sequence, row, topic_id, panel_ref, stored_id, id_packed)) {
      original = it->second;
    }
  }
  by_sequence.reset();
  SQLite::Statement& select = statements_->select_candidates;
  select.reset();
  select.bind(1, dedupe_hash);
  while (original == 0 && select.executeStep()) {
    if (IsOriginal(select, row, topic_id, panel_ref, stored_id, id_packed)) {
      original = select.getColumn(0).getInt64();
    }
  }
  select.reset();
  return original;
}

void SqliteStore::LoadUnmerged() {
  merged_through_ = db_->execAndGet(kSelectMergedThrough).getInt64();
  unmerged_.clear();
  unmerged_order_.clear();
  SQLite::Statement select(*db_, kSelectUnmerged);
  select.bind(1, merged_through_);
  while (select.executeStep()) {
    RememberUnmerged(select.getColumn(1).getInt64(), select.getColumn(0).getInt64());
  }
}

void SqliteStore::RememberUnmerged(int64_t hash, int64_t sequence) {
  unmerged_.emplace(hash, sequence);
  unmerged_order_.emplace_back(hash, sequence);
}

namespace {

void EraseEntry(std::unordered_multimap<int64_t, int64_t>& map,
                const std::pair<int64_t, int64_t>& entry) {
  auto [first, last] = map.equal_range(entry.first);
  for (auto it = first; it != last; ++it) {
    if (it->second == entry.second) {
      map.erase(it);
      return;
    }
  }
}

}  // namespace

void SqliteStore::ForgetOldestUnmerged() {
  EraseEntry(unmerged_, unmerged_order_.front());
  unmerged_order_.pop_front();
}

void SqliteStore::ForgetNewestUnmerged() {
  EraseEntry(unmerged_, unmerged_order_.back());
  unmerged_order_.pop_back();
}

bool SqliteStore::Merge(int64_t max_rows) {
  if (unmerged_order_.empty() || max_rows <= 0) return true;
  Statements& s = *statements_;
  size_t count = 0;
  int64_t through = 0;
  try {
    SQLite::Transaction txn(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SyncWithOtherWriters();
    count = std::min(unmerged_order_.size(), static_cast<size_t>(max_rows));
    if (count == 0) return true;  // another writer merged them; nothing to commit
    // Events stored merged in between are indexed and counted already: the
    // statements touch only merged = 0 rows up to `through`.
    through = unmerged_order_[count - 1].second;
    for (SQLite::Statement* step :
         {&s.merge_daily, &s.merge_daily_topic, &s.merge_daily_device, &s.merge_events}) {
      step->reset();
      step->bind(1, merged_through_);
      step->bind(2, through);
      if (step == &s.merge_daily || step == &s.merge_daily_device) step->bind(3, kNoDoor);
      step->exec();
    }
    s.set_merged_through.reset();
    s.set_merged_through.bind(1, through);
    s.set_merged_through.exec();
    txn.commit();
  } catch (const SQLite::Exception&) {
    for (SQLite::Statement* step : {&s.merge_events, &s.merge_daily, &s.merge_daily_topic,
                                    &s.merge_daily_device, &s.set_merged_through,
                                    &s.data_version}) {
      step->tryReset();
    }
    return false;
  }
  merged_through_ = through;
  if (count == unmerged_order_.size()) {
    unmerged_.clear();
    unmerged_order_.clear();
  } else {
    for (size_t i = 0; i < count; ++i) ForgetOldestUnmerged();
  }
  return true;
}

SqliteStore::~SqliteStore() = default;

std::vector<EngineStat> SqliteStore::Stats() const {
  return {
      {"unmerged_events",
       "Stored events the writer has not yet added to the indexes and rollups "
       "(queries see them all the same).",
       EngineStat::Kind::kGauge, unmerged_rows()},
      {"wal_frames",
       "Pages in the write-ahead log after the last commit; the writer empties it "
       "once past its limit (64 MiB by default).",
       EngineStat::Kind::kGauge, wal_frames_},
      {"wal_restarts_total", "Times the writer emptied the write-ahead log.",
       EngineStat::Kind::kCounter, wal_restarts_},
  };
}

absl::StatusOr<std::vector<AppendResult>> SqliteStore::AppendBatch(
    std::span<const EventRow> rows) {
  return AppendRows(rows, /*keep_sequences=*/false);
}

absl::Status SqliteStore::CopyBatch(std::span<const EventRow> rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].sequence <= 0 || (i > 0 && rows[i].sequence <= rows[i - 1].sequence)) {
      return absl::InvalidArgumentError("copied rows must come in ascending sequence order");
    }
  }
  absl::StatusOr<std::vector<AppendResult>> results = AppendRows(rows, /*keep_sequences=*/true);
  return results.status();
}

absl::StatusOr<std::vector<AppendResult>> SqliteStore::AppendRows(
    std::span<const EventRow> rows, bool keep_sequences) {
  std::vector<AppendResult> results;
  results.reserve(rows.size());
  SQLite::Statement& insert = statements_->insert;
  std::string packed_id;
  std::string packed_raw;
  size_t added = 0;  // events remembered as unmerged, forgotten on a rollback
  // A small batch means the writer keeps up: index its events now, as a
  // merge of so few would cost more. A bigger one is stored unmerged.
  const bool defer = rows.size() >= static_cast<size_t>(kDeferFromBatch);
  last_batch_deferred_ = defer;
  std::map<DailyKey, int64_t> daily_counts;
  std::map<DeviceDailyKey, int64_t> device_counts;  // see migrations/0008_v2_ids.sql
  try {
    SQLite::Transaction txn(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    // With the write lock held, nobody else can commit until we do.
    SyncWithOtherWriters();
    if (keep_sequences && !rows.empty()) {
      // A copy goes on after everything the archive holds, or sequences
      // would no longer follow commit order.
      SQLite::Statement newest(*db_, "SELECT COALESCE(max(sequence), 0) FROM events");
      newest.executeStep();
      if (rows.front().sequence <= newest.getColumn(0).getInt64()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "copied event ", rows.front().sequence, " is not above the archive's newest, ",
            newest.getColumn(0).getInt64()));
      }
    }
    for (const EventRow& row : rows) {
      const int64_t topic_id = TopicId(row.topic, row.family);
      const int64_t panel_ref = NameId(row.panel_id);
      const int64_t dedupe_hash = DedupeHash(row.dedupe_key);
      packed_id = PackUuid(row.event_id);
      const std::string_view stored_id =
          packed_id.empty() ? std::string_view(row.event_id) : std::string_view(packed_id);
      if (const int64_t original =
              FindOriginal(row, dedupe_hash, topic_id, panel_ref, stored_id, !packed_id.empty());
          original != 0) {
        if (keep_sequences) {
          // A copy holds each event once; the rollback below undoes the
          // batch (the transaction's destructor) and this store's memory.
          for (; added > 0; --added) ForgetNewestUnmerged();
          topic_ids_.clear();
          name_ids_.clear();
          id_cache_bytes_ = 0;
          insert.tryReset();
          return absl::InvalidArgumentError(absl::StrCat(
              "copied event ", row.sequence, " is already archived as event ", original));
        }
        results.push_back({original, true});
        continue;
      }
      insert.reset();
      insert.clearBindings();
      if (packed_id.empty()) {
        BindText(insert, 1, row.event_id);
      } else {
        insert.bindNoCopy(1, packed_id.data(), static_cast<int>(packed_id.size()));
      }
      insert.bind(2, topic_id);
      insert.bind(3, panel_ref);
      BindText(insert, 4, row.ou_id);
      if (row.door_id) insert.bind(5, *row.door_id);
      insert.bind(6, NameId(row.door_name));
      if (row.person_id) insert.bind(7, *row.person_id);
      BindText(insert, 8, row.actor_user_id);
      insert.bind(9, row.occur_time_ms);
      insert.bind(10, row.receive_time_ms);
      insert.bind(11, NameId(row.subscription));
      insert.bind(12, dedupe_hash);
      insert.bind(14, defer ? 0 : 1);
      if (keep_sequences) insert.bind(15, row.sequence);
      // 2.0's text ids; a 1.0 row leaves them NULL.
      int column = 16;
      for (const std::string* text : {&row.device_id, &row.holder_id, &row.holder_name,
                                      &row.cloud_node_id, &row.system_id}) {
        if (!text->empty()) BindText(insert, column, *text);
        ++column;
      }
      const std::string* packed = &packed_raw;
      if (row.packed_raw) {
        packed = &*row.packed_raw;
      } else if (!compressor_->Compress(row.raw, &packed_raw)) {
        packed_raw.clear();
      }
      if (!packed->empty()) {
        insert.bindNoCopy(13, packed->data(), static_cast<int>(packed->size()));
      } else {
        BindText(insert, 13, row.raw);
      }
      insert.exec();
      const int64_t sequence = db_->getLastInsertRowid();
      results.push_back({sequence, false});
      if (defer) {
        RememberUnmerged(dedupe_hash, sequence);
        ++added;
      } else {
        daily_counts[DailyKey(timeutil::DayOf(row.occur_time_ms), topic_id, row.panel_id,
                              row.door_id.value_or(kNoDoor))] += 1;
        if (!row.device_id.empty()) {
          device_counts[DeviceDailyKey(timeutil::DayOf(row.occur_time_ms), topic_id,
                                       row.panel_id, row.door_id.value_or(kNoDoor),
                                       row.device_id)] += 1;
        }
      }
    }
    insert.reset();
    AddDailyCounts(statements_->add_daily, statements_->add_daily_topic, daily_counts);
    AddDeviceDailyCounts(statements_->add_daily_device, device_counts);
    txn.commit();
    rows_since_nudge_ += static_cast<int64_t>(rows.size());
  } catch (const SQLite::Exception& e) {
    // tryReset, not reset: after a failed step sqlite3_reset returns that
    // step's error again, and reset() would throw it out of this handler
    // (std::terminate on the writer thread).
    Statements& s = *statements_;
    for (SQLite::Statement* stmt : {&s.insert, &s.select_candidates, &s.select_candidate, &s.select_topic,
                                    &s.insert_topic, &s.select_name, &s.insert_name,
                                    &s.merge_events, &s.merge_daily, &s.merge_daily_topic,
                                    &s.set_merged_through, &s.add_daily, &s.add_daily_topic,
                                    &s.merge_daily_device, &s.add_daily_device,
                                    &s.data_version}) {
      stmt->tryReset();
    }
    // The rolled-back transaction's events, topics and names are gone again.
    for (; added > 0; --added) ForgetNewestUnmerged();
    topic_ids_.clear();
    name_ids_.clear();
    id_cache_bytes_ = 0;
    // Disk full, I/O error, a lock held too long: the caller may retry.
    return absl::UnavailableError(absl::StrCat("archive cannot commit: ", e.what()));
  }
  return results;
}

}  // namespace pdkarchive::store
