#include "store/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <charconv>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pdkarchive::store::pg {
namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

bool IsPostgresUri(std::string_view db) {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

std::string RedactUri(std::string_view uri) {
  // scheme://[user[:password]@]host...: the password is between the first
  // ':' after the scheme and the '@' that ends the user part.
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return std::string(uri);
  const size_t start = scheme_end + 3;
  const size_t at = uri.find('@', start);
  const size_t slash = uri.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return std::string(uri);
  }
  const size_t colon = uri.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(uri);
  return absl::StrCat(std::string(uri.substr(0, colon + 1)), "***", std::string(uri.substr(at)));
}

Result::Result(pg_result* result) : result_(result) {}
Result::Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}
Result::~Result() {
  if (result_ != nullptr) PQclear(result_);
}

int Result::rows() const { return result_ == nullptr ? 0 : PQntuples(result_); }
int Result::columns() const { return result_ == nullptr ? 0 : PQnfields(result_); }
bool Result::is_null(int row, int column) const {
  return PQgetisnull(result_, row, column) != 0;
}
std::string_view Result::bytes(int row, int column) const {
  return std::string_view(PQgetvalue(result_, row, column),
                          static_cast<size_t>(PQgetlength(result_, row, column)));
}
int64_t Result::int64(int row, int column) const {
  return optional_int64(row, column).value_or(0);
}
std::optional<int64_t> Result::optional_int64(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  const std::string_view text = bytes(row, column);
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

void Params::Add(std::optional<std::string> value, int format) {
  if (!value.has_value()) {
    pointers_.push_back(nullptr);
    lengths_.push_back(0);
  } else {
    storage_.push_back(*std::move(value));
    pointers_.push_back(storage_.back().data());
    lengths_.push_back(static_cast<int>(storage_.back().size()));
  }
  formats_.push_back(format);
}
Params& Params::Text(std::string_view value) {
  Add(std::string(value), 0);
  return *this;
}
Params& Params::Int(int64_t value) {
  Add(absl::StrCat(value), 0);
  return *this;
}
Params& Params::OptionalInt(std::optional<int64_t> value) {
  if (value.has_value()) return Int(*value);
  return Null();
}
Params& Params::Null() {
  Add(std::nullopt, 0);
  return *this;
}
Params& Params::Bytes(std::string_view value) {
  Add(std::string(value), 1);
  return *this;
}

std::string SqlState(const pg_result* result) {
  if (result == nullptr) return "";
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  return state == nullptr ? "" : state;
}

absl::Status StatusFromResult(const pg_result* result, std::string_view what) {
  std::string message = result == nullptr ? "no result from the server"
                                          : PQresultErrorMessage(result);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  const std::string state = SqlState(result);
  std::string text = absl::StrCat(std::string(what), ": ", message);
  // SQLSTATE classes: https://www.postgresql.org/docs/15/errcodes-appendix.html
  if (state.empty() || state.starts_with("08") || state.starts_with("53") ||
      state.starts_with("57P") || state.starts_with("40") ||
      state == "55P03" || state == "25006" || state == "58030") {
    if (state == "57014") return absl::CancelledError(text);
    return absl::UnavailableError(text);
  }
  if (state == "57014") return absl::CancelledError(text);
  if (state == "23505") return absl::AlreadyExistsError(text);
  if (state.starts_with("22")) return absl::InvalidArgumentError(text);
  if (state.starts_with("28")) return absl::PermissionDeniedError(text);
  return absl::InternalError(text);
}

std::string QuoteLiteral(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectOptions& options) {
  const char* keys[] = {"dbname", "password", "application_name", "client_encoding",
                        "connect_timeout", nullptr};
  const char* values[] = {options.uri.c_str(),
                          options.password.empty() ? nullptr : options.password.c_str(),
                          options.application_name.c_str(), "UTF8", "10", nullptr};
  // expand_dbname=1: the "dbname" value is the URI; later keys override it.
  // A null value means "not given", so a password file still applies.
  pg_conn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    const std::string text =
        absl::StrCat("cannot connect to ", RedactUri(options.uri), ": ", message);
    if (contains(message, "password authentication failed") ||
        contains(message, "no password supplied")) {
      return absl::PermissionDeniedError(text);
    }
    if (contains(message, "invalid") || contains(message, "missing")) {
      return absl::InvalidArgumentError(text);
    }
    return absl::UnavailableError(text);
  }
  // Notices ("relation already exists, skipping") are not for our users.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  std::unique_ptr<Connection> connection(new Connection(conn));
  absl::Status set_up = connection->Exec(
      "SET TIME ZONE 'UTC'; SET synchronous_commit = on; "
      "SET standard_conforming_strings = on");
  if (!set_up.ok()) return set_up;
  return connection;
}

Connection::Connection(pg_conn* conn) : conn_(conn), cancel_(PQgetCancel(conn)) {}

Connection::~Connection() {
  {
    std::lock_guard<std::mutex> lock(cancel_mu_);
    if (cancel_ != nullptr) PQfreeCancel(cancel_);
    cancel_ = nullptr;
  }
  PQfinish(conn_);
}

absl::Status Connection::Exec(std::string_view sql) {
  const std::string text(sql);
  // PQexec stops at the first failing statement and returns its result.
  Result result(PQexec(conn_, text.c_str()));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return absl::OkStatus();
  return StatusFromResult(result.get(), "PostgreSQL");
}

absl::StatusOr<Result> Connection::Query(const std::string& sql, const Params& params) {
  Result result(PQexecParams(conn_, sql.c_str(), params.size(), nullptr, params.values(),
                             params.lengths(), params.formats(), 0));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  if (result.get() == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("PostgreSQL connection lost: ", PQerrorMessage(conn_)));
  }
  return StatusFromResult(result.get(), "PostgreSQL");
}

void Connection::Cancel() {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  if (cancel_ == nullptr) return;
  char error[256];
  PQcancel(cancel_, error, sizeof(error));
}

bool Connection::healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

}  // namespace pdkarchive::store::pg
