#include "store/postgres/pg_partitions.h"

#include <charconv>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/postgres/pg_connection.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {
namespace {

// Serializes partition creation across nodes ("pdkpart" in ASCII; no other
// code uses it). Held by a transaction, released at its end.
constexpr char kLockPartitions[] = "SELECT pg_advisory_xact_lock(112680863146356)";

// The month partitions that exist, by name.
constexpr char kSelectPartitions[] =
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'events'::regclass";

// A reader holding events (an export) must not keep the writer waiting for
// the parent's lock for long: the batch fails (Unavailable) and is retried.
// The NOTICE of CREATE TABLE IF NOT EXISTS for a partition another node made
// first is not worth a line on stderr.
constexpr char kPartitionLockTimeout[] =
    "SET LOCAL lock_timeout = '5s'; SET LOCAL client_min_messages = warning";

constexpr MonthKey kFirstMonth = kFirstPartitionYear * 12;
constexpr MonthKey kLastMonth = kLastPartitionYear * 12 + 11;

// The month key a partition name names, or nullopt for any other table.
std::optional<MonthKey> ParsePartitionName(std::string_view name) {
  // events_yYYYYmMM
  if (name.size() != 15 || !name.starts_with("events_y") || name[12] != 'm') return std::nullopt;
  int64_t year = 0;
  int64_t month = 0;
  if (std::from_chars(name.data() + 8, name.data() + 12, year).ptr != name.data() + 12 ||
      std::from_chars(name.data() + 13, name.data() + 15, month).ptr != name.data() + 15 ||
      month < 1 || month > 12) {
    return std::nullopt;
  }
  return year * 12 + month - 1;
}

}  // namespace

std::optional<MonthKey> PartitionMonthOf(int64_t ms) {
  const timeutil::CivilDate date = timeutil::CivilFromDays(timeutil::DayOf(ms));
  if (date.year < kFirstPartitionYear || date.year > kLastPartitionYear) return std::nullopt;
  return date.year * 12 + date.month - 1;
}

std::string PartitionName(MonthKey month) {
  // Years 1970-2199 have four digits; months are padded to two.
  const int64_t number = month % 12 + 1;
  return absl::StrCat("events_y", month / 12, "m", number < 10 ? "0" : "", number);
}

int64_t MonthStartMs(MonthKey month) {
  return timeutil::DaysFromCivil(month / 12, month % 12 + 1, 1) * timeutil::kDayMs;
}

absl::Status PgPartitions::Load(Connection& conn) {
  absl::StatusOr<Result> found = conn.Query(kSelectPartitions);
  if (!found.ok()) return found.status();
  known_.clear();
  for (int i = 0; i < found->rows(); ++i) {
    if (std::optional<MonthKey> month = ParsePartitionName(found->bytes(i, 0))) {
      known_.insert(*month);
    }
  }
  return absl::OkStatus();
}

absl::Status PgPartitions::Ensure(Connection& conn, std::span<const MonthKey> months) {
  std::vector<MonthKey> missing;
  for (MonthKey month : months) {
    if (month < kFirstMonth || month > kLastMonth || known_.contains(month)) continue;
    missing.push_back(month);
  }
  if (missing.empty()) return absl::OkStatus();
  // DDL takes no parameters: the statement is made of a name and two
  // numbers this function computes, nothing from the rows but their month.
  std::string sql = absl::StrCat("BEGIN; ", kPartitionLockTimeout, "; ", kLockPartitions, ";");
  for (MonthKey month : missing) {
    absl::StrAppend(&sql, " CREATE TABLE IF NOT EXISTS ", PartitionName(month),
                    " PARTITION OF events FOR VALUES FROM (", MonthStartMs(month), ") TO (",
                    MonthStartMs(month + 1), ");");
  }
  absl::StrAppend(&sql, " COMMIT");
  if (absl::Status made = conn.Exec(sql); !made.ok()) {
    (void)conn.Exec("ROLLBACK");
    return made;
  }
  known_.insert(missing.begin(), missing.end());
  return absl::OkStatus();
}

absl::Status PgPartitions::EnsureAround(Connection& conn, int64_t now_ms) {
  const std::optional<MonthKey> now = PartitionMonthOf(now_ms);
  if (!now.has_value()) return absl::OkStatus();
  const MonthKey months[] = {*now - 1, *now, *now + 1, *now + 2};
  return Ensure(conn, months);
}

}  // namespace pdkarchive::store::pg
