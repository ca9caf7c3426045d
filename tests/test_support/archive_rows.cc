#include "tests/test_support/archive_rows.h"

#include <gtest/gtest.h>

#include <utility>

#include "store/sqlite/event_reader.h"

namespace pdkarchive::testing {

std::vector<store::EventRow> ReadAllRows(const std::string& db_path) {
  std::vector<store::EventRow> rows;
  auto reader = store::EventReader::Open(db_path, 1);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return rows;
  auto newest = (*reader)->MaxSequence();
  EXPECT_TRUE(newest.ok()) << newest.status();
  if (!newest.ok()) return rows;
  int64_t after = 0;
  while (after < *newest) {
    auto page = (*reader)->ListAfterSequence(store::EventFilter{}, after, 1000);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok() || page->scanned_through <= after) break;
    for (store::EventRow& row : page->rows) rows.push_back(std::move(row));
    after = page->scanned_through;
  }
  return rows;
}

}  // namespace pdkarchive::testing
