#include "store/sqlite/read_statement.h"

#include <sqlite3.h>

#include <utility>

namespace pdkarchive::store::sqlite {
namespace {

constexpr char kBegin[] = "BEGIN";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";

}  // namespace

absl::Status SqliteError(sqlite3* db, int code, std::string_view what) {
  std::string message = std::string(what) + ": " + sqlite3_errmsg(db);
  const int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

void Statement::Finalize::operator()(sqlite3_stmt* statement) const {
  sqlite3_finalize(statement);
}

Statement::Statement(sqlite3* db, std::string_view sql, const std::vector<Value>& values,
                     std::string_view what)
    : db_(db), what_(what) {
  sqlite3_stmt* prepared = nullptr;
  const int code =
      sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &prepared, nullptr);
  statement_.reset(prepared);
  if (code != SQLITE_OK) {
    status_ = SqliteError(db_, code, what_);
    return;
  }
  int index = 1;
  for (const Value& value : values) {
    int bound;
    if (const int64_t* number = std::get_if<int64_t>(&value)) {
      bound = sqlite3_bind_int64(prepared, index, *number);
    } else {
      const std::string& text = std::get<std::string>(value);
      bound = sqlite3_bind_text64(prepared, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                  SQLITE_UTF8);
    }
    if (bound != SQLITE_OK) {
      status_ = SqliteError(db_, bound, what_);
      return;
    }
    ++index;
  }
}

Statement::~Statement() = default;
Statement::Statement(Statement&&) noexcept = default;
Statement& Statement::operator=(Statement&&) noexcept = default;

bool Statement::Next() {
  if (!status_.ok()) return false;
  const int code = sqlite3_step(statement_.get());
  if (code == SQLITE_ROW) return true;
  if (code != SQLITE_DONE) status_ = SqliteError(db_, code, what_);
  return false;
}

int64_t Statement::Int(int column) const {
  return sqlite3_column_int64(statement_.get(), column);
}

std::optional<int64_t> Statement::OptionalInt(int column) const {
  if (sqlite3_column_type(statement_.get(), column) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(statement_.get(), column);
}

std::string_view Statement::Bytes(int column) const {
  const void* data = sqlite3_column_blob(statement_.get(), column);
  const int size = sqlite3_column_bytes(statement_.get(), column);
  if (data == nullptr || size <= 0) return {};
  return std::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
}

bool Statement::IsBlob(int column) const {
  return sqlite3_column_type(statement_.get(), column) == SQLITE_BLOB;
}

ReadTransaction::ReadTransaction(sqlite3* db, std::string_view what) : db_(db), what_(what) {
  const int code = sqlite3_exec(db_, kBegin, nullptr, nullptr, nullptr);
  if (code != SQLITE_OK) {
    status_ = SqliteError(db_, code, what_);
    return;
  }
  open_ = true;
}

ReadTransaction::~ReadTransaction() {
  if (open_) sqlite3_exec(db_, kRollback, nullptr, nullptr, nullptr);
}

absl::Status ReadTransaction::Commit() {
  if (!open_) return status_;
  const int code = sqlite3_exec(db_, kCommit, nullptr, nullptr, nullptr);
  if (code != SQLITE_OK) return SqliteError(db_, code, what_);
  open_ = false;
  return absl::OkStatus();
}

}  // namespace pdkarchive::store::sqlite
