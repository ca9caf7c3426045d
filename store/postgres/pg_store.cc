#include "store/postgres/pg_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {
namespace {

// One round trip: open the transaction and take the row lock that orders
// every node's appends (see pg_store.h).
constexpr char kBeginAndLock[] =
    "BEGIN; SELECT last_sequence FROM archive_state WHERE id = 1 FOR UPDATE";

// The statements below are assembled from these pieces and numbered
// placeholders only: every value is bound.
constexpr char kSelectKeysHead[] =
    "SELECT dedupe_key, sequence FROM event_keys WHERE dedupe_key IN (";
constexpr char kInsertKeysHead[] = "k AS (INSERT INTO event_keys (dedupe_key, sequence) VALUES ";
constexpr char kInsertEventsHead[] =
    "e AS (INSERT INTO events (sequence, occur_time, receive_time, topic, family, panel_id, "
    "ou_id, door_id, door_name, person_id, actor_user_id, event_id, subscription, raw) VALUES ";
constexpr char kAddDailyHead[] =
    "c AS (INSERT INTO counts_daily (day, topic, family, panel_id, door_id, n) VALUES ";
constexpr char kAddDailyTail[] =
    " ON CONFLICT (day, topic, family, panel_id, door_id) "
    "DO UPDATE SET n = counts_daily.n + excluded.n)";
constexpr char kAddDailyTopicHead[] =
    "t AS (INSERT INTO counts_daily_topic (day, topic, family, n) VALUES ";
constexpr char kAddDailyTopicTail[] =
    " ON CONFLICT (day, topic, family) DO UPDATE SET n = counts_daily_topic.n + excluded.n)";

constexpr int kEventColumns = 14;
// Parameters per row at most: the event, its key, a rollup row of each kind.
constexpr int kParamsPerRow = kEventColumns + 2 + 6 + 4;
// PostgreSQL's protocol allows 65535 parameters per statement.
constexpr size_t kRowsPerStatement = 60000 / kParamsPerRow;
constexpr size_t kKeysPerLookup = 30000;

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// `text` as PostgreSQL text can hold it: ill-formed UTF-8 and NUL bytes
// replaced by U+FFFD.
std::string PgText(std::string_view text) {
  std::string out = IsValidUtf8(text) ? std::string(text) : SanitizeUtf8(text);
  if (out.find('\0') == std::string::npos) return out;
  std::string replaced;
  replaced.reserve(out.size() + 8);
  for (char c : out) {
    if (c == '\0') {
      replaced += kReplacement;
    } else {
      replaced += c;
    }
  }
  return replaced;
}

// Appends "($n, $n+1, ..., $n+count-1)" and advances `next`.
void AppendTuple(std::string& sql, int& next, int count) {
  sql += '(';
  for (int i = 0; i < count; ++i) {
    if (i > 0) sql += ", ";
    absl::StrAppend(&sql, "$", next++);
  }
  sql += ')';
}

// A bytea value in text output format ("\x0a1b...") as bytes.
std::string FromHexBytea(std::string_view text) {
  if (text.starts_with("\\x")) text.remove_prefix(2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i + 1 < text.size(); i += 2) {
    out += static_cast<char>(nibble(text[i]) << 4 | nibble(text[i + 1]));
  }
  return out;
}

// Runs `sql` (several statements) in one round trip; the last one's result.
absl::StatusOr<Result> ExecMulti(Connection& conn, const char* sql) {
  Result result(PQexec(conn.raw(), sql));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  if (result.get() == nullptr || !conn.healthy()) {
    return absl::UnavailableError(
        absl::StrCat("PostgreSQL connection lost: ", PQerrorMessage(conn.raw())));
  }
  return StatusFromResult(result.get(), "PostgreSQL");
}

using DailyKey = std::tuple<int64_t, std::string, std::string, std::string, int64_t>;
using DailyTopicKey = std::tuple<int64_t, std::string, std::string>;

}  // namespace

absl::StatusOr<std::unique_ptr<PgStore>> PgStore::Open(const ConnectOptions& connect) {
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(connect);
  if (!conn.ok()) return conn.status();
  std::unique_ptr<PgStore> store(new PgStore(connect, *std::move(conn)));
  if (absl::Status loaded = store->partitions_.Load(*store->conn_); !loaded.ok()) return loaded;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  if (absl::Status made = store->partitions_.EnsureAround(*store->conn_, now_ms); !made.ok()) {
    return made;
  }
  return store;
}

PgStore::PgStore(ConnectOptions connect, std::unique_ptr<Connection> conn)
    : connect_(std::move(connect)), conn_(std::move(conn)) {}

PgStore::~PgStore() = default;

std::vector<EngineStat> PgStore::Stats() const {
  return {
      {"postgres_reconnects_total",
       "Times the writer opened a new PostgreSQL connection after losing one.",
       EngineStat::Kind::kCounter, reconnects_},
      {"postgres_month_partitions", "Month partitions of the events table this writer knows of.",
       EngineStat::Kind::kGauge, static_cast<int64_t>(partitions_.size())},
  };
}

absl::Status PgStore::EnsureConnected() {
  if (conn_ != nullptr && conn_->healthy()) return absl::OkStatus();
  conn_.reset();
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(connect_);
  if (!conn.ok()) {
    return absl::UnavailableError(
        absl::StrCat("archive cannot commit: ", conn.status().message()));
  }
  conn_ = *std::move(conn);
  ++reconnects_;
  // Another node may have made partitions meanwhile; the list is cheap.
  if (absl::Status loaded = partitions_.Load(*conn_); !loaded.ok()) return Abort(loaded);
  return absl::OkStatus();
}

absl::Status PgStore::EnsurePartitions(std::span<const EventRow> rows) {
  std::vector<MonthKey> months;
  for (const EventRow& row : rows) {
    const std::optional<MonthKey> month = PartitionMonthOf(row.occur_time_ms);
    if (month.has_value() && !partitions_.Has(*month)) months.push_back(*month);
  }
  if (months.empty()) return absl::OkStatus();
  std::sort(months.begin(), months.end());
  months.erase(std::unique(months.begin(), months.end()), months.end());
  return partitions_.Ensure(*conn_, months);
}

absl::StatusOr<int64_t> PgStore::BeginAndLock() {
  absl::StatusOr<Result> locked = ExecMulti(*conn_, kBeginAndLock);
  if (!locked.ok()) return locked.status();
  if (locked->rows() != 1) return absl::InternalError("archive_state has no row");
  return locked->int64(0, 0);
}

absl::Status PgStore::Abort(absl::Status failure) {
  if (conn_ != nullptr) {
    if (conn_->healthy()) (void)conn_->Exec("ROLLBACK");
    // A broken connection is opened again by the next call.
    if (!conn_->healthy()) conn_.reset();
  }
  if (absl::IsUnavailable(failure)) {
    return absl::UnavailableError(absl::StrCat("archive cannot commit: ", failure.message()));
  }
  return failure;
}

absl::StatusOr<std::vector<AppendResult>> PgStore::AssignSequences(
    std::span<const EventRow> rows, int64_t last_sequence) {
  // The keys stored already: one lookup per kKeysPerLookup distinct keys.
  std::vector<std::string_view> keys;
  for (const EventRow& row : rows) {
    if (!row.dedupe_key.empty()) keys.push_back(row.dedupe_key);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::unordered_map<std::string, int64_t> stored;
  for (size_t start = 0; start < keys.size(); start += kKeysPerLookup) {
    const size_t end = std::min(keys.size(), start + kKeysPerLookup);
    std::string sql = kSelectKeysHead;
    Params params;
    for (size_t i = start; i < end; ++i) {
      absl::StrAppend(&sql, i > start ? ", " : "", "$", params.size() + 1);
      params.Bytes(keys[i]);
    }
    sql += ')';
    absl::StatusOr<Result> found = conn_->Query(sql, params);
    if (!found.ok()) return found.status();
    for (int r = 0; r < found->rows(); ++r) {
      stored.emplace(FromHexBytea(found->bytes(r, 0)), found->int64(r, 1));
    }
  }
  std::vector<AppendResult> results;
  results.reserve(rows.size());
  std::unordered_map<std::string_view, int64_t> in_batch;
  int64_t next = last_sequence;
  for (const EventRow& row : rows) {
    if (row.dedupe_key.empty()) {
      results.push_back({++next, false});
      continue;
    }
    if (auto it = stored.find(row.dedupe_key); it != stored.end()) {
      results.push_back({it->second, true});
    } else if (auto seen = in_batch.find(row.dedupe_key); seen != in_batch.end()) {
      results.push_back({seen->second, true});
    } else {
      results.push_back({++next, false});
      in_batch.emplace(row.dedupe_key, next);
    }
  }
  return results;
}

absl::Status PgStore::WriteRows(std::span<const ToStore> rows, int64_t new_last) {
  for (size_t start = 0; start < rows.size(); start += kRowsPerStatement) {
    const size_t count = std::min(kRowsPerStatement, rows.size() - start);
    const bool last = start + count == rows.size();
    if (absl::Status written = WriteChunk(rows.subspan(start, count), last, new_last);
        !written.ok()) {
      return written;
    }
  }
  return absl::OkStatus();
}

absl::Status PgStore::WriteChunk(std::span<const ToStore> rows, bool last, int64_t new_last) {
  Params params;
  int next = 1;
  std::string keys_sql;
  std::string events_sql;
  std::map<DailyKey, int64_t> daily;
  std::map<DailyTopicKey, int64_t> daily_topic;
  // The events first, then their keys: parameters are numbered in the order
  // they are added, so each part keeps its own numbering.
  for (const ToStore& item : rows) {
    const EventRow& row = *item.row;
    if (!events_sql.empty()) events_sql += ", ";
    AppendTuple(events_sql, next, kEventColumns);
    std::string topic = PgText(row.topic);
    std::string family = PgText(row.family);
    std::string panel = PgText(row.panel_id);
    params.Int(item.sequence)
        .Int(row.occur_time_ms)
        .Int(row.receive_time_ms)
        .Text(topic)
        .Text(family)
        .Text(panel)
        .Text(PgText(row.ou_id))
        .OptionalInt(row.door_id)
        .Text(PgText(row.door_name))
        .OptionalInt(row.person_id)
        .Text(PgText(row.actor_user_id))
        .Text(PgText(row.event_id))
        .Text(PgText(row.subscription))
        .Bytes(row.raw);
    const int64_t day = timeutil::DayOf(row.occur_time_ms);
    daily_topic[{day, topic, family}] += 1;
    daily[{day, std::move(topic), std::move(family), std::move(panel),
           row.door_id.value_or(kNoDoor)}] += 1;
  }
  for (const ToStore& item : rows) {
    if (item.row->dedupe_key.empty()) continue;
    if (!keys_sql.empty()) keys_sql += ", ";
    AppendTuple(keys_sql, next, 2);
    params.Bytes(item.row->dedupe_key).Int(item.sequence);
  }
  std::string daily_sql;
  for (const auto& [key, n] : daily) {
    if (!daily_sql.empty()) daily_sql += ", ";
    AppendTuple(daily_sql, next, 6);
    const auto& [day, topic, family, panel, door] = key;
    params.Int(day).Text(topic).Text(family).Text(panel).Int(door).Int(n);
  }
  std::string daily_topic_sql;
  for (const auto& [key, n] : daily_topic) {
    if (!daily_topic_sql.empty()) daily_topic_sql += ", ";
    AppendTuple(daily_topic_sql, next, 4);
    const auto& [day, topic, family] = key;
    params.Int(day).Text(topic).Text(family).Int(n);
  }
  std::string sql = absl::StrCat("WITH ", kInsertEventsHead, events_sql, "), ", kAddDailyHead,
                                 daily_sql, kAddDailyTail, ", ", kAddDailyTopicHead,
                                 daily_topic_sql, kAddDailyTopicTail);
  if (!keys_sql.empty()) absl::StrAppend(&sql, ", ", kInsertKeysHead, keys_sql, ")");
  if (last) {
    // The new last sequence, as bigint for the row and as text for NOTIFY.
    absl::StrAppend(&sql, ", s AS (UPDATE archive_state SET last_sequence = $", next,
                    " WHERE id = 1) SELECT pg_notify($", next + 1, ", $", next + 2, ")");
    params.Int(new_last).Text(kCommitChannel).Text(absl::StrCat(new_last));
  } else {
    sql += " SELECT 1";
  }
  absl::StatusOr<Result> done = conn_->Query(sql, params);
  return done.status();
}

absl::StatusOr<std::vector<AppendResult>> PgStore::AppendBatch(std::span<const EventRow> rows) {
  if (rows.empty()) return std::vector<AppendResult>();
  // A connection the server closed between batches (a restart) is found
  // broken only when used: then open a new one and try once more, as
  // nothing of this batch was sent yet.
  absl::StatusOr<int64_t> last_sequence = absl::UnavailableError("not connected");
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (absl::Status connected = EnsureConnected(); !connected.ok()) return connected;
    if (absl::Status made = EnsurePartitions(rows); !made.ok()) {
      last_sequence = made;
    } else {
      last_sequence = BeginAndLock();
    }
    if (last_sequence.ok()) break;
    absl::Status failed = Abort(last_sequence.status());
    if (conn_ != nullptr || attempt == 1) return failed;
  }
  absl::StatusOr<std::vector<AppendResult>> results = AssignSequences(rows, *last_sequence);
  if (!results.ok()) return Abort(results.status());
  std::vector<ToStore> to_store;
  to_store.reserve(rows.size());
  int64_t new_last = *last_sequence;
  for (size_t i = 0; i < rows.size(); ++i) {
    const AppendResult& r = (*results)[i];
    if (r.duplicate) continue;
    to_store.push_back({&rows[i], r.sequence});
    new_last = r.sequence;
  }
  if (!to_store.empty()) {
    if (absl::Status written = WriteRows(to_store, new_last); !written.ok()) {
      return Abort(written);
    }
  }
  if (absl::Status committed = conn_->Exec("COMMIT"); !committed.ok()) return Abort(committed);
  return results;
}

absl::Status PgStore::CopyIn(std::span<const EventRow> rows) {
  if (rows.empty()) return absl::OkStatus();
  int64_t previous = 0;
  for (const EventRow& row : rows) {
    if (row.dedupe_key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("copied row ", row.sequence, " has no dedupe key"));
    }
    if (row.sequence <= previous) {
      return absl::InvalidArgumentError(absl::StrCat(
          "copied rows must come in ascending sequence order above 0; ", row.sequence,
          " follows ", previous));
    }
    previous = row.sequence;
  }
  if (absl::Status connected = EnsureConnected(); !connected.ok()) return connected;
  if (absl::Status made = EnsurePartitions(rows); !made.ok()) return Abort(made);
  absl::StatusOr<int64_t> last_sequence = BeginAndLock();
  if (!last_sequence.ok()) return Abort(last_sequence.status());
  if (rows.front().sequence <= *last_sequence) {
    return Abort(absl::InvalidArgumentError(
        absl::StrCat("copied row ", rows.front().sequence,
                     " is not above the archive's last sequence ", *last_sequence)));
  }
  std::vector<ToStore> to_store;
  to_store.reserve(rows.size());
  for (const EventRow& row : rows) to_store.push_back({&row, row.sequence});
  if (absl::Status written = WriteRows(to_store, rows.back().sequence); !written.ok()) {
    if (absl::IsAlreadyExists(written)) {
      written = absl::InvalidArgumentError(
          absl::StrCat("a copied row's dedupe key is stored already: ", written.message()));
    }
    return Abort(written);
  }
  if (absl::Status committed = conn_->Exec("COMMIT"); !committed.ok()) return Abort(committed);
  return absl::OkStatus();
}

}  // namespace pdkarchive::store::pg
