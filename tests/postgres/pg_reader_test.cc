// The PostgreSQL engine's reader (store/postgres/pg_reader.h) against a real
// server, checked against the model in pg_reader_fixture.h: lists in both
// directions for every filter shape, lookups, counts from the rollups and
// from the events, export scans and the live feed's reads.
#include "store/postgres/pg_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/archive_reader.h"
#include "store/event.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_count.h"
#include "store/postgres/pg_query.h"
#include "tests/postgres/pg_reader_fixture.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST_F(PgReaderTest, ListPagesEveryFilterShapeBothWays) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  int shapes_with_rows = 0;
  for (const EventFilter& filter : FilterShapes()) {
    if (!ModelList(rows, filter, false).empty()) ++shapes_with_rows;
    for (bool descending : {false, true}) {
      SCOPED_TRACE(absl::StrCat("shape with ", filter.topics.size(), " topics, ",
                                filter.door_ids.size(), " doors, descending ", descending));
      const std::vector<EventRow> want = ModelList(rows, filter, descending);
      EXPECT_EQ(PageThrough(filter, descending, 7), want);
      EXPECT_EQ(PageThrough(filter, descending, 1000), want);
    }
  }
  EXPECT_EQ(shapes_with_rows, static_cast<int>(FilterShapes().size()) - 1);
}

TEST_F(PgReaderTest, ListKeepsPayloadBytesAndLeavesThemOutWhenAsked) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  ListQuery query;
  query.limit = 1000;
  absl::StatusOr<ListPage> page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->rows.size(), rows.size());
  EXPECT_FALSE(page->more);
  const EventRow& first_binary = *std::find_if(page->rows.begin(), page->rows.end(),
                                               [](const EventRow& r) { return r.sequence == 1; });
  EXPECT_EQ(first_binary.raw, rows[0].raw);  // holds NUL and 0xff
  EXPECT_TRUE(first_binary.dedupe_key.empty());
  query.with_raw = false;
  page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  for (const EventRow& r : page->rows) EXPECT_TRUE(r.raw.empty());
  EXPECT_EQ(page->rows.front().event_id, ModelList(rows, {}, false).front().event_id);
}

TEST_F(PgReaderTest, ListStopsAtItsByteBudgetButKeepsTheFirstRow) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  const std::vector<EventRow> all = ModelList(rows, {}, false);
  ListQuery query;
  query.limit = 100;
  query.max_bytes = RowReplyBytes(all[0]) + RowReplyBytes(all[1]) + RowReplyBytes(all[2]);
  absl::StatusOr<ListPage> page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows, std::vector<EventRow>(all.begin(), all.begin() + 3));
  EXPECT_TRUE(page->more);
  query.max_bytes = 1;
  page = reader_->List(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->rows, std::vector<EventRow>(all.begin(), all.begin() + 1));
  EXPECT_TRUE(page->more);
  query.limit = 0;
  EXPECT_EQ(reader_->List(query).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PgReaderTest, GetReadsOneRowOrSaysNotFound) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  for (const EventRow& want : {rows[0], rows[1], rows.back()}) {
    absl::StatusOr<EventRow> got = reader_->Get(want.sequence);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want);
  }
  EXPECT_EQ(reader_->Get(100000).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgReaderTest, MaxSequenceAndPageTokenKey) {
  OpenReader();
  absl::StatusOr<int64_t> newest = reader_->MaxSequence();
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(*newest, 0);
  EXPECT_EQ(reader_->PageTokenKey().status().code(), absl::StatusCode::kFailedPrecondition);
  Insert(SampleRows());
  newest = reader_->MaxSequence();
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(*newest, static_cast<int64_t>(SampleRows().size()));
  const std::string key("k\0\xff-secret", 10);
  Params p;
  p.Bytes(key);
  constexpr char kInsertKey[] =
      "INSERT INTO archive_meta (name, value) VALUES ('page_token_key', $1)";
  ASSERT_TRUE(conn_->Query(kInsertKey, p).ok());
  absl::StatusOr<std::string> got = reader_->PageTokenKey();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, key);
}

std::vector<std::vector<Dimension>> DimensionSets() {
  using D = Dimension;
  return {{},
          {D::kTopic},
          {D::kDay},
          {D::kDoor},
          {D::kPanel},
          {D::kDoor, D::kDay},
          {D::kDay, D::kTopic},
          {D::kTopic, D::kPanel, D::kDoor, D::kDay},
          {D::kPerson},
          {D::kHour},
          {D::kHour, D::kDoor}};
}

TEST_F(PgReaderTest, CountsMatchTheModelFromRollupsAndFromEvents) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  std::vector<EventFilter> filters = FilterShapes();
  // Whole days (the rollups answer these unless a dimension or field needs
  // the events).
  EventFilter days;
  days.start_ms = kJan1 + 2 * kDay;
  days.end_ms = kJan1 + 31 * kDay;
  filters.push_back(days);
  days.topics = {"door.*"};
  days.door_ids = {1, 3};
  filters.push_back(days);
  days = {};
  days.end_ms = kJan1;  // only the far past
  filters.push_back(days);
  // kNoDoor is the rollups' "no door": as a filter value it is a door id.
  days = {};
  days.door_ids = {kNoDoor, 1};
  filters.push_back(days);
  int rollup_counts = 0;
  int event_counts = 0;
  for (const EventFilter& filter : filters) {
    for (const std::vector<Dimension>& dims : DimensionSets()) {
      const bool rollup = ChooseCountSource(filter, dims) != CountSource::kEvents;
      (rollup ? rollup_counts : event_counts)++;
      SCOPED_TRACE(absl::StrCat(dims.size(), " dimensions, rollup ", rollup));
      absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, dims);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, ModelCount(rows, filter, dims));
    }
  }
  EXPECT_GT(rollup_counts, 20);
  EXPECT_GT(event_counts, 20);
}

TEST_F(PgReaderTest, CountTakesTheRollupsWhenTheyAnswer) {
  Insert(SampleRows());
  OpenReader();
  // A rollup row with no events behind it shows which table answered.
  ASSERT_TRUE(conn_
                  ->Exec("INSERT INTO counts_daily_topic VALUES (20454, 'x.y', 'org', 5); "
                         "INSERT INTO counts_daily VALUES (20454, 'x.y', 'org', 'p9', "
                         "-9223372036854775808, 7)")
                  .ok());
  EventFilter filter;
  filter.topics = {"x.*"};
  absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, {Dimension::kDay});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<CountGroup>{{{"2026-01-01"}, 5}}));
  got = reader_->Count(filter, {Dimension::kDoor, Dimension::kPanel});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<CountGroup>{{{"", "p9"}, 7}}));
  // Hours need the events, which hold no such topic.
  got = reader_->Count(filter, {Dimension::kHour});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
  // Not a whole day: the events.
  filter.start_ms = 1;
  got = reader_->Count(filter, {});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<CountGroup>{{{}, 0}}));
}

TEST_F(PgReaderTest, CountWithoutDimensionsIsOneGroupEvenWhenEmpty) {
  OpenReader();
  for (const EventFilter& filter : FilterShapes()) {
    absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, {});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, (std::vector<CountGroup>{{{}, 0}}));
  }
  EXPECT_EQ(reader_->Count({}, {Dimension::kDay, Dimension::kDay}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PgReaderTest, CountStopsPastMaxGroups) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  for (const std::vector<Dimension>& dims : DimensionSets()) {
    if (dims.empty()) continue;
    for (EventFilter filter : {EventFilter{}, FilterShapes()[1]}) {
      const int64_t groups = static_cast<int64_t>(ModelCount(rows, filter, dims).size());
      absl::StatusOr<std::vector<CountGroup>> got = reader_->Count(filter, dims, groups);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(static_cast<int64_t>(got->size()), groups);
      EXPECT_EQ(reader_->Count(filter, dims, groups - 1).status().code(),
                absl::StatusCode::kResourceExhausted);
    }
  }
}

TEST_F(PgReaderTest, ScanEachResumesAfterItsLastRow) {
  const std::vector<EventRow> rows = SampleRows();
  Insert(rows);
  OpenReader();
  for (const EventFilter& filter : FilterShapes()) {
    const std::vector<EventRow> want = ModelList(rows, filter, false);
    std::vector<EventRow> got;
    std::optional<Cursor> after;
    for (int calls = 0; calls < 1000; ++calls) {
      absl::StatusOr<ScanProgress> progress =
          reader_->ScanEach(filter, after, 50, /*with_raw=*/true, [&](const EventView& v) {
            EventRow& r = got.emplace_back();
            r.sequence = v.sequence;
            r.event_id = v.event_id;
            r.topic = v.topic;
            r.family = v.family;
            r.panel_id = v.panel_id;
            r.ou_id = v.ou_id;
            r.door_id = v.door_id;
            r.door_name = v.door_name;
            r.person_id = v.person_id;
            r.actor_user_id = v.actor_user_id;
            r.occur_time_ms = v.occur_time_ms;
            r.receive_time_ms = v.receive_time_ms;
            r.subscription = v.subscription;
            r.raw = v.raw;
            return true;
          });
      ASSERT_TRUE(progress.ok()) << progress.status();
      if (progress->rows > 0) after = progress->last;
      if (progress->exhausted) break;
      EXPECT_EQ(progress->rows, 50);
    }
    EXPECT_EQ(got, want);
  }
}

TEST_F(PgReaderTest, ScanEachStopsWhenTheVisitorSaysSo) {
  Insert(SampleRows());
  OpenReader();
  int seen = 0;
  absl::StatusOr<ScanProgress> progress =
      reader_->ScanEach({}, std::nullopt, 100, false, [&](const EventView& v) {
        EXPECT_TRUE(v.raw.empty());
        return ++seen < 3;
      });
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rows, 3);
  EXPECT_FALSE(progress->exhausted);
  const std::vector<EventRow> all = ModelList(SampleRows(), {}, false);
  EXPECT_EQ(progress->last, (Cursor{all[2].occur_time_ms, all[2].sequence}));
}

TEST_F(PgReaderTest, LargeScansReadInChunksFromOneSnapshot) {
  InsertMany(1, 10000);
  OpenReader();
  int64_t expected = 1;
  bool in_order = true;
  absl::StatusOr<ScanProgress> progress =
      reader_->ScanEach({}, std::nullopt, 9000, true, [&](const EventView& v) {
        in_order = in_order && v.sequence == expected++;
        if (v.sequence == 10) {
          // A commit during the scan is not seen by it.
          EXPECT_TRUE(conn_->Exec("DELETE FROM events WHERE sequence > 9990").ok());
        }
        return true;
      });
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(progress->rows, 9000);
  EXPECT_FALSE(progress->exhausted);
  progress = reader_->ScanEach({}, progress->last, 9000, true, [&](const EventView& v) {
    in_order = in_order && v.sequence == expected++;
    return true;
  });
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(progress->rows, 990);
  EXPECT_TRUE(progress->exhausted);
}

TEST_F(PgReaderTest, ListAfterSequenceReadsTheFeedInSequenceOrder) {
  const std::vector<EventRow> rows = SampleRows();
  OpenReader();
  absl::StatusOr<SequencePage> page = reader_->ListAfterSequence({}, 0, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->newest, 0);
  EXPECT_EQ(page->scanned_through, 0);
  Insert(rows);
  const int64_t n = static_cast<int64_t>(rows.size());
  // A filter: every matching row in (after, scanned_through], in order.
  EventFilter filter;
  filter.topics = {"door.*"};
  std::vector<EventRow> got;
  int64_t after = 0;
  for (int calls = 0; calls < 100 && after < n; ++calls) {
    page = reader_->ListAfterSequence(filter, after, 9);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->newest, n);
    EXPECT_GT(page->scanned_through, after);
    for (const EventRow& r : page->rows) EXPECT_LE(r.sequence, page->scanned_through);
    got.insert(got.end(), page->rows.begin(), page->rows.end());
    after = page->scanned_through;
  }
  std::vector<EventRow> want;
  for (const EventRow& r : rows) {
    if (Matches(filter, r)) want.push_back(r);
  }
  EXPECT_EQ(got, want);
  // A byte budget cuts the page but keeps its first row.
  page = reader_->ListAfterSequence({}, 0, 100, 1);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->rows.size(), 1u);
  EXPECT_EQ(page->rows[0], rows[0]);
  EXPECT_EQ(page->scanned_through, 1);
  // Nothing new.
  page = reader_->ListAfterSequence({}, n, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->scanned_through, n);
  EXPECT_EQ(page->newest, n);
}

TEST_F(PgReaderTest, ListAfterSequenceLooksAtABoundedWindow) {
  InsertMany(1, 20000);
  OpenReader();
  EventFilter none;
  none.topics = {"no.such"};
  absl::StatusOr<SequencePage> page = reader_->ListAfterSequence(none, 100, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->rows.empty());
  EXPECT_EQ(page->newest, 20000);
  EXPECT_EQ(page->scanned_through, 100 + 8192);
  page = reader_->ListAfterSequence({}, 100, 5);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->rows.size(), 5u);
  EXPECT_EQ(page->rows.front().sequence, 101);
  EXPECT_EQ(page->scanned_through, 105);
}
}  // namespace
}  // namespace pdkarchive::store::pg
