// Translation between the query API's protobuf messages and the store's
// plain types, with the argument checks the API promises. The one place the
// query layer converts: services call these and nothing else touches both.
#ifndef PDKARCHIVE_QUERY_CONVERT_H_
#define PDKARCHIVE_QUERY_CONVERT_H_

#include <google/protobuf/repeated_field.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pdk/archive/v1/event_archive.pb.h"
#include "store/archive_reader.h"
#include "store/event.h"

namespace pdkarchive::query {

// Most values accepted in one repeated filter field.
inline constexpr int kMaxFilterValues = 1000;

// Checks and converts a filter. InvalidArgument naming the field (for
// example "filter.topics[2] ...") when a timestamp is invalid, start_time is
// not before end_time, a topic is empty or uses '*' other than as a trailing
// ".*", the family is unknown, or a field has too many values.
absl::StatusOr<store::EventFilter> FilterFromProto(
    const pdk::archive::v1::EventFilter& proto);

// Checks and converts CountEvents' group_by: InvalidArgument for
// DIMENSION_UNSPECIFIED, an unknown value, or a repeated dimension.
absl::StatusOr<std::vector<store::Dimension>> DimensionsFromProto(
    const google::protobuf::RepeatedField<int>& group_by);

// Fills `out` from `row`; door_id/person_id stay absent when null. Text that
// is not well-formed UTF-8 (a row stored before ingest repaired it) goes out
// with U+FFFD in place of the bad bytes, and times are clamped as by
// MillisToTimestamp, so no stored row makes a message protobuf refuses.
void EventToProto(const store::EventRow& row, pdk::archive::v1::Event* out);

// Fills `out` from `group`, moving its keys; keys that are not well-formed
// UTF-8 go out with U+FFFD in place of the bad bytes, as in EventToProto.
void GroupToProto(store::CountGroup&& group, pdk::archive::v1::Group* out);

// Milliseconds since the epoch as a Timestamp (floored for negative times),
// clamped to the range a Timestamp may hold, 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999Z (ingest stores nothing outside it).
void MillisToTimestamp(int64_t ms, google::protobuf::Timestamp* out);

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_CONVERT_H_
