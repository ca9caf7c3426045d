// Reading an archive back in tests, the way the product reads it.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_ARCHIVE_ROWS_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_ARCHIVE_ROWS_H_

#include <string>
#include <vector>

#include "store/archive_reader.h"
#include "store/event.h"

namespace pdkarchive::testing {

// Every row `reader` sees, in sequence order. A read error fails the
// running test (EXPECT) and returns what was read until then.
std::vector<store::EventRow> ReadAllRows(store::ArchiveReader& reader);

// Every row of the archive `db` names (a SQLite file or a PostgreSQL URI),
// read through a reader of its own that writes nothing.
std::vector<store::EventRow> ReadAllRows(const std::string& db);

// "ok" when the archive `db` names is consistent, else what is wrong: for
// SQLite, PRAGMA integrity_check; for PostgreSQL, that every event has its
// dedupe key, the sequences are 1..N without gaps or repeats up to the
// archive's last sequence, and the daily rollups count every event.
std::string ArchiveIntegrity(const std::string& db);

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_ARCHIVE_ROWS_H_
