// A thin, owning layer over libpq for the PostgreSQL engine: one connection,
// statements with bound parameters, results that free themselves, and libpq's
// errors turned into absl::Status the way the rest of the archive expects
// (Unavailable when the server cannot be reached or cannot take a write).
//
// libpq's C API rather than libpqxx: Debian's libpqxx is the old 6.4 series
// (C++17, exceptions everywhere), and the engine needs what only the C API
// gives plainly: binary parameters for payload bytes, the socket for
// LISTEN/NOTIFY, and PQcancel from another thread for query deadlines.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_CONNECTION_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_CONNECTION_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct pg_conn;
struct pg_result;
struct pg_cancel;

namespace pdkarchive::store::pg {

// Whether `db` names a PostgreSQL archive: a postgresql:// or postgres:// URI.
bool IsPostgresUri(std::string_view db);

// `uri` with any password replaced by "***", for messages and logs.
std::string RedactUri(std::string_view uri);

// The result of one statement. Movable; frees the PGresult when destroyed.
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* result);
  Result(Result&& other) noexcept;
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result();

  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  // The value's bytes as sent (text format unless the query asked for binary).
  std::string_view bytes(int row, int column) const;
  // A text-format integer column; 0 for NULL.
  int64_t int64(int row, int column) const;
  // A text-format integer column, unset for NULL.
  std::optional<int64_t> optional_int64(int row, int column) const;

  const pg_result* get() const { return result_; }

 private:
  pg_result* result_ = nullptr;
};

// Parameters for one statement, $1 to $n in the order added. Values are
// copied; text unless added as bytes (sent in binary, for bytea).
class Params {
 public:
  Params& Text(std::string_view value);
  Params& Int(int64_t value);
  Params& OptionalInt(std::optional<int64_t> value);
  Params& Null();
  Params& Bytes(std::string_view value);

  int size() const { return static_cast<int>(pointers_.size()); }
  const char* const* values() const { return pointers_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  void Add(std::optional<std::string> value, int format);

  std::deque<std::string> storage_;  // a deque: pointers into it stay valid
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

struct ConnectOptions {
  std::string uri;       // libpq connection URI
  std::string password;  // overrides the URI's (and ~/.pgpass) when not empty
  std::string application_name = "pdk-archive";
};

// One connection. Not thread-safe, except Cancel, which any thread may call.
class Connection {
 public:
  // Connects and sets the session up (UTF-8, UTC, synchronous_commit on).
  // Unavailable when the server cannot be reached; InvalidArgument for a
  // malformed URI; PermissionDenied when it refuses the credentials.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const ConnectOptions& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one or more statements without parameters (the simple protocol).
  absl::Status Exec(std::string_view sql);

  // Runs one statement with `params`; a result with rows or none.
  absl::StatusOr<Result> Query(const std::string& sql, const Params& params = {});

  // Asks the server to cancel the statement running on this connection, if
  // any: it then fails with Cancelled. Thread-safe; harmless when idle.
  void Cancel();

  // Whether the connection is still usable (it may break with the server).
  bool healthy() const;

  pg_conn* raw() { return conn_; }

 private:
  explicit Connection(pg_conn* conn);

  pg_conn* conn_;
  std::mutex cancel_mu_;
  pg_cancel* cancel_ = nullptr;
};

// The status for a failed statement: Unavailable for lost connections,
// shutdowns, a full disk, lock and serialization conflicts; Cancelled for a
// cancelled statement; AlreadyExists for a unique violation; InvalidArgument
// for bad input; Internal otherwise. `what` prefixes the server's message.
absl::Status StatusFromResult(const pg_result* result, std::string_view what);

// The SQLSTATE of a failed result ("" when none).
std::string SqlState(const pg_result* result);

// `value` as a PostgreSQL text literal for the simple protocol: quoted, with
// quotes doubled. Only for values this program makes (names, numbers).
std::string QuoteLiteral(std::string_view value);

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_CONNECTION_H_
