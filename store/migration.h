// One numbered schema migration, embedded into the binary at build time
// (cmake/embed_migrations.cmake) from migrations/ (SQLite) or
// migrations/postgres/ (PostgreSQL). Each engine applies its own list.
#ifndef PDKARCHIVE_STORE_MIGRATION_H_
#define PDKARCHIVE_STORE_MIGRATION_H_

#include <string_view>

namespace pdkarchive::store {

struct Migration {
  int number;              // 1, 2, ... in order, no gaps
  std::string_view name;   // the file name, for error messages
  std::string_view sql;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_MIGRATION_H_
