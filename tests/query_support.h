// Shared by the gRPC query suites (tests/query_test.cc and the SQLite
// engine's own query tests): rows to store, the filter semantics written out
// independently of the server, CSV parsing, and appending through the writer.
#ifndef PDKARCHIVE_TESTS_QUERY_SUPPORT_H_
#define PDKARCHIVE_TESTS_QUERY_SUPPORT_H_

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pdk/archive/v1/event_archive.pb.h"
#include "store/event.h"
#include "store/group_commit_writer.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {

namespace pb = ::pdk::archive::v1;
using store::EventRow;

// 2026-01-01T00:00:00Z.
inline constexpr int64_t kBaseMs = 1767225600000;
using timeutil::kDayMs;
using timeutil::kHourMs;
inline constexpr int kRowCount = 3000;

// The topics MakeRows draws from: real ones, prefix look-alikes and odd ones.
const std::vector<std::string>& Topics();
// The family the tests store each of Topics() under.
std::string FamilyOf(const std::string& topic);
// A 16-byte dedupe key unique per `n`.
std::string DedupeKey(int64_t n);
// `count` rows drawn from `seed` around `base_ms` (a few days), dedupe keys
// from `first_key` on; sequences unset.
std::vector<EventRow> MakeRows(int count, int64_t first_key, uint32_t seed,
                               int64_t base_ms = kBaseMs);

int64_t TimestampMs(const google::protobuf::Timestamp& t);
void SetMs(google::protobuf::Timestamp* t, int64_t ms);

// The filter semantics, written out independently of the server.
bool Matches(const EventRow& row, const pb::EventFilter& f);
// (occur_time, sequence) order.
bool ListOrderLess(const EventRow& a, const EventRow& b);
// The sequences of `rows` matching `filter`, in list order.
std::vector<int64_t> ExpectedSequences(const std::vector<EventRow>& rows,
                                       const pb::EventFilter& filter, bool descending);

// `ms` formatted with strftime's `format` in UTC.
std::string FormatUtc(int64_t ms, const char* format);
// "2026-01-01T00:00:00.000Z".
std::string Rfc3339Millis(int64_t ms);
// RFC 4180 records; fails the test on a malformed text.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text);

// Appends `rows` through `writer` and returns them with their sequences,
// once committed.
std::vector<EventRow> AppendThrough(store::GroupCommitWriter& writer, std::vector<EventRow> rows);

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_TESTS_QUERY_SUPPORT_H_
