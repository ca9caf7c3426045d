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

// A batch goes to the server as columns: each parameter below is an array
// (in PostgreSQL's binary format, see ArrayParam) holding one field of every
// row, so the statement has a fixed text and a few parameters whatever the
// batch's size, and costs little to plan. Rows whose key is NULL (rows
// without a dedupe key) get no event_keys row. The rollups come aggregated.
constexpr char kSelectStoredKeys[] =
    "SELECT dedupe_key, sequence FROM event_keys WHERE dedupe_key = ANY($1::bytea[])";
// PDK 2.0's text ids ($29-$33) come as arrays too, but empty when no row of
// the chunk has any: unnest pads the shorter arrays with NULLs, so a 1.0
// batch sends nothing more. counts_daily_device's rows ($34-$40) are empty
// arrays then, and insert nothing.
constexpr char kInsertBatch[] =
    "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], "
    "$5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::bigint[], $11::text[], "
    "$12::text[], $13::text[], $14::bytea[], $15::bytea[], $29::text[], $30::text[], "
    "$31::text[], $32::text[], $33::text[]) AS r(sequence, occur_time, "
    "receive_time, topic, family, panel_id, ou_id, door_id, door_name, person_id, "
    "actor_user_id, event_id, subscription, raw, dedupe_key, device_id, holder_id, "
    "holder_name, cloud_node_id, system_id)), "
    "e AS (INSERT INTO events (sequence, occur_time, receive_time, topic, family, panel_id, "
    "ou_id, door_id, door_name, person_id, actor_user_id, event_id, subscription, raw, "
    "device_id, holder_id, holder_name, cloud_node_id, system_id) "
    "SELECT sequence, occur_time, receive_time, topic, family, panel_id, ou_id, door_id, "
    "door_name, person_id, actor_user_id, event_id, subscription, raw, device_id, holder_id, "
    "holder_name, cloud_node_id, system_id FROM r), "
    "k AS (INSERT INTO event_keys (dedupe_key, sequence) "
    "SELECT dedupe_key, sequence FROM r WHERE dedupe_key IS NOT NULL), "
    "c AS (INSERT INTO counts_daily (day, topic, family, panel_id, door_id, n) "
    "SELECT * FROM unnest($16::bigint[], $17::text[], $18::text[], $19::text[], "
    "$20::bigint[], $21::bigint[]) "
    "ON CONFLICT (day, topic, family, panel_id, door_id) "
    "DO UPDATE SET n = counts_daily.n + excluded.n), "
    "v AS (INSERT INTO counts_daily_device (day, topic, family, panel_id, door_id, device_id, "
    "n) SELECT * FROM unnest($34::bigint[], $35::text[], $36::text[], $37::text[], "
    "$38::bigint[], $39::text[], $40::bigint[]) "
    "ON CONFLICT (day, topic, family, panel_id, door_id, device_id) "
    "DO UPDATE SET n = counts_daily_device.n + excluded.n), "
    "t AS (INSERT INTO counts_daily_topic (day, topic, family, n) "
    "SELECT * FROM unnest($22::bigint[], $23::text[], $24::text[], $25::bigint[]) "
    "ON CONFLICT (day, topic, family) DO UPDATE SET n = counts_daily_topic.n + excluded.n), "
    "s AS (UPDATE archive_state SET last_sequence = $26 WHERE id = 1) "
    "SELECT pg_notify($27, $28::text) WHERE $28::text IS NOT NULL";

// A statement carries at most about this many bytes of payload: PostgreSQL
// takes no value over 1 GB, and a batch of 1024 webhooks of 1 MiB would be.
// A bigger batch is written by several statements in its one transaction.
constexpr size_t kChunkBytes = size_t{64} << 20;

// Element types of ArrayParam (pg_type OIDs).
constexpr uint32_t kByteaOid = 17;
constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kTextOid = 25;

void AppendBigEndian32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

void AppendBigEndian64(std::string& out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

// A one-dimensional array parameter in PostgreSQL's binary format (what
// array_recv reads): a header (dimensions, a has-nulls flag, the element
// type, then the length and lower bound of the one dimension) and each
// element as a 32-bit length (-1 for NULL) and its bytes, all big-endian.
class ArrayParam {
 public:
  explicit ArrayParam(uint32_t element_type) : element_type_(element_type) {}

  // An element's bytes in its type's binary format: a text's or a bytea's
  // bytes as they are.
  void Add(std::string_view value) {
    AppendBigEndian32(data_, static_cast<uint32_t>(value.size()));
    data_.append(value);
    ++count_;
  }
  void AddInt(int64_t value) {
    AppendBigEndian32(data_, 8);
    AppendBigEndian64(data_, static_cast<uint64_t>(value));
    ++count_;
  }
  void AddNull() {
    AppendBigEndian32(data_, 0xffffffffu);
    has_null_ = true;
    ++count_;
  }
  void AddOptionalInt(std::optional<int64_t> value) {
    if (value.has_value()) {
      AddInt(*value);
    } else {
      AddNull();
    }
  }

  // Adds the array to `params` (as binary) and empties it.
  void AddTo(Params& params) {
    std::string out;
    out.reserve(20 + data_.size());
    AppendBigEndian32(out, count_ > 0 ? 1 : 0);
    AppendBigEndian32(out, has_null_ ? 1 : 0);
    AppendBigEndian32(out, element_type_);
    if (count_ > 0) {
      AppendBigEndian32(out, count_);
      AppendBigEndian32(out, 1);
    }
    out.append(data_);
    params.Bytes(out);
    data_.clear();
    count_ = 0;
    has_null_ = false;
  }

 private:
  const uint32_t element_type_;
  std::string data_;
  uint32_t count_ = 0;
  bool has_null_ = false;
};

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
// counts_daily_device's: counts_daily's and the device id.
using DeviceDailyKey =
    std::tuple<int64_t, std::string, std::string, std::string, int64_t, std::string>;
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
  // The keys stored already, in one lookup.
  ArrayParam keys(kByteaOid);
  bool any_key = false;
  for (const EventRow& row : rows) {
    if (row.dedupe_key.empty()) continue;
    keys.Add(row.dedupe_key);
    any_key = true;
  }
  std::unordered_map<std::string, int64_t> stored;
  if (any_key) {
    Params params;
    keys.AddTo(params);
    absl::StatusOr<Result> found = conn_->Query(kSelectStoredKeys, params);
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

absl::Status PgStore::WriteRows(std::span<const ToStore> rows) {
  size_t start = 0;
  while (start < rows.size()) {
    size_t end = start;
    size_t bytes = 0;
    do {
      bytes += rows[end].row->raw.size() + rows[end].row->event_id.size() + 256;
      ++end;
    } while (end < rows.size() && bytes + rows[end].row->raw.size() <= kChunkBytes);
    if (absl::Status written = WriteChunk(rows.subspan(start, end - start), end == rows.size());
        !written.ok()) {
      return written;
    }
    start = end;
  }
  return absl::OkStatus();
}

absl::Status PgStore::WriteChunk(std::span<const ToStore> rows, bool last) {
  ArrayParam sequence(kInt8Oid), occur_time(kInt8Oid), receive_time(kInt8Oid);
  ArrayParam topic(kTextOid), family(kTextOid), panel_id(kTextOid), ou_id(kTextOid);
  ArrayParam door_id(kInt8Oid), door_name(kTextOid), person_id(kInt8Oid);
  ArrayParam actor_user_id(kTextOid), event_id(kTextOid), subscription(kTextOid);
  ArrayParam raw(kByteaOid), dedupe_key(kByteaOid);
  // 2.0's text ids: sent only when some row of the chunk has one.
  ArrayParam device_id(kTextOid), holder_id(kTextOid), holder_name(kTextOid);
  ArrayParam cloud_node_id(kTextOid), system_id(kTextOid);
  const bool any_v2 = std::any_of(rows.begin(), rows.end(), [](const ToStore& item) {
    const EventRow& r = *item.row;
    return !r.device_id.empty() || !r.holder_id.empty() || !r.holder_name.empty() ||
           !r.cloud_node_id.empty() || !r.system_id.empty();
  });
  std::map<DailyKey, int64_t> daily;
  std::map<DeviceDailyKey, int64_t> daily_device;
  std::map<DailyTopicKey, int64_t> daily_topic;
  for (const ToStore& item : rows) {
    const EventRow& row = *item.row;
    std::string row_topic = PgText(row.topic);
    std::string row_family = PgText(row.family);
    std::string row_panel = PgText(row.panel_id);
    sequence.AddInt(item.sequence);
    occur_time.AddInt(row.occur_time_ms);
    receive_time.AddInt(row.receive_time_ms);
    topic.Add(row_topic);
    family.Add(row_family);
    panel_id.Add(row_panel);
    ou_id.Add(PgText(row.ou_id));
    door_id.AddOptionalInt(row.door_id);
    door_name.Add(PgText(row.door_name));
    person_id.AddOptionalInt(row.person_id);
    actor_user_id.Add(PgText(row.actor_user_id));
    event_id.Add(PgText(row.event_id));
    subscription.Add(PgText(row.subscription));
    raw.Add(row.raw);
    if (row.dedupe_key.empty()) {
      dedupe_key.AddNull();
    } else {
      dedupe_key.Add(row.dedupe_key);
    }
    std::string row_device;
    if (any_v2) {
      row_device = PgText(row.device_id);
      const std::string* device_text = &row_device;
      for (auto [column, text] : {std::pair{&device_id, device_text},
                                  std::pair{&holder_id, &row.holder_id},
                                  std::pair{&holder_name, &row.holder_name},
                                  std::pair{&cloud_node_id, &row.cloud_node_id},
                                  std::pair{&system_id, &row.system_id}}) {
        if (text->empty()) {
          column->AddNull();
        } else if (column == &device_id) {
          column->Add(*text);
        } else {
          column->Add(PgText(*text));
        }
      }
    }
    const int64_t day = timeutil::DayOf(row.occur_time_ms);
    daily_topic[{day, row_topic, row_family}] += 1;
    if (!row_device.empty()) {
      daily_device[{day, row_topic, row_family, row_panel, row.door_id.value_or(kNoDoor),
                    std::move(row_device)}] += 1;
    }
    daily[{day, std::move(row_topic), std::move(row_family), std::move(row_panel),
           row.door_id.value_or(kNoDoor)}] += 1;
  }
  Params params;
  for (ArrayParam* column : {&sequence, &occur_time, &receive_time, &topic, &family, &panel_id,
                             &ou_id, &door_id, &door_name, &person_id, &actor_user_id, &event_id,
                             &subscription, &raw, &dedupe_key}) {
    column->AddTo(params);
  }
  ArrayParam day(kInt8Oid), n(kInt8Oid), door(kInt8Oid), device(kTextOid);
  for (const auto& [key, count] : daily) {
    day.AddInt(std::get<0>(key));
    topic.Add(std::get<1>(key));
    family.Add(std::get<2>(key));
    panel_id.Add(std::get<3>(key));
    door.AddInt(std::get<4>(key));
    n.AddInt(count);
  }
  for (ArrayParam* column : {&day, &topic, &family, &panel_id, &door, &n}) column->AddTo(params);
  for (const auto& [key, count] : daily_topic) {
    day.AddInt(std::get<0>(key));
    topic.Add(std::get<1>(key));
    family.Add(std::get<2>(key));
    n.AddInt(count);
  }
  for (ArrayParam* column : {&day, &topic, &family, &n}) column->AddTo(params);
  // The new last sequence, for the row and, with the last chunk, as the
  // NOTIFY payload.
  const int64_t new_last = rows.back().sequence;
  params.Int(new_last).Text(kCommitChannel);
  if (last) {
    params.Text(absl::StrCat(new_last));
  } else {
    params.Null();
  }
  for (ArrayParam* column : {&device_id, &holder_id, &holder_name, &cloud_node_id, &system_id}) {
    column->AddTo(params);
  }
  for (const auto& [key, count] : daily_device) {
    day.AddInt(std::get<0>(key));
    topic.Add(std::get<1>(key));
    family.Add(std::get<2>(key));
    panel_id.Add(std::get<3>(key));
    door.AddInt(std::get<4>(key));
    device.Add(std::get<5>(key));
    n.AddInt(count);
  }
  for (ArrayParam* column : {&day, &topic, &family, &panel_id, &door, &device, &n}) {
    column->AddTo(params);
  }
  return conn_->Query(kInsertBatch, params).status();
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
  for (size_t i = 0; i < rows.size(); ++i) {
    const AppendResult& r = (*results)[i];
    if (!r.duplicate) to_store.push_back({&rows[i], r.sequence});
  }
  if (!to_store.empty()) {
    if (absl::Status written = WriteRows(to_store); !written.ok()) {
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
  if (absl::Status written = WriteRows(to_store); !written.ok()) {
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
