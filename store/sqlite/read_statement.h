// The reader's one way to run a statement: SQLite's C API, every value
// bound (never concatenated), cells read in place, errors as absl::Status.
// Internal to store/sqlite/.
#ifndef PDKARCHIVE_STORE_SQLITE_READ_STATEMENT_H_
#define PDKARCHIVE_STORE_SQLITE_READ_STATEMENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace pdkarchive::store::sqlite {

// A value bound to a statement's next "?".
using Value = std::variant<int64_t, std::string>;

// A statement's text (built from named constants only) and its values, in
// the order of its placeholders.
struct Query {
  std::string sql;
  std::vector<Value> values;
};

// The status of a failed SQLite call on `db` that returned `code`:
// Unavailable when the file was busy or locked, Internal otherwise; the
// message is "`what`: " and SQLite's message.
absl::Status SqliteError(sqlite3* db, int code, std::string_view what);

// One prepared statement over a connection the caller keeps open for the
// statement's life. Cells are read in place: SQLiteCpp's Column copies a
// shared_ptr per cell, a measurable share of an export's time. Not
// thread-safe; movable.
class Statement {
 public:
  // Prepares `sql` on `db` and binds `values` to its placeholders, in order.
  // Check status() before stepping; errors are SqliteError(..., `what`).
  Statement(sqlite3* db, std::string_view sql, const std::vector<Value>& values,
            std::string_view what);
  Statement(sqlite3* db, std::string_view sql, std::string_view what)
      : Statement(db, sql, {}, what) {}
  ~Statement();
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;

  // Steps to the next row: true when there is one; false when the rows are
  // done or the step failed (then status() says why).
  bool Next();
  // OK unless preparing, binding or a step failed.
  const absl::Status& status() const { return status_; }

  // The current row's cells (columns from 0). Bytes reads a cell as
  // SQLiteCpp's getString does (NULL is ""); its view is valid until the
  // next step.
  int64_t Int(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;
  std::string_view Bytes(int column) const;
  bool IsBlob(int column) const;

  sqlite3* db() const { return db_; }

 private:
  struct Finalize {
    void operator()(sqlite3_stmt* statement) const;
  };
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalize> statement_;
  std::string what_;
  absl::Status status_;
};

// A read transaction: every statement run while it is open reads one
// snapshot of the file. Rolled back when destroyed uncommitted.
class ReadTransaction {
 public:
  // Begins it on `db`; check status().
  explicit ReadTransaction(sqlite3* db, std::string_view what);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

  const absl::Status& status() const { return status_; }
  // Ends it; statements prepared in it should be done or destroyed first.
  absl::Status Commit();

 private:
  sqlite3* db_;
  std::string what_;
  absl::Status status_;
  bool open_ = false;
};

}  // namespace pdkarchive::store::sqlite

#endif  // PDKARCHIVE_STORE_SQLITE_READ_STATEMENT_H_
