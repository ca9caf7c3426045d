// Reading an archive file back in tests, the way the product reads it.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_ARCHIVE_ROWS_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_ARCHIVE_ROWS_H_

#include <string>
#include <vector>

#include "store/event.h"

namespace pdkarchive::testing {

// Every row of the archive at `db_path` in sequence order, read through the
// store's read side (payloads and ids are packed on disk). A read error fails
// the running test (EXPECT) and returns what was read until then.
std::vector<store::EventRow> ReadAllRows(const std::string& db_path);

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_ARCHIVE_ROWS_H_
