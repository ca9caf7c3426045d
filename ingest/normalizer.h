// Normalization: a raw PDK webhook body becomes an archive row. The catalog
// (ingest/catalog.h) says where each field lives; this follows it.
#ifndef PDKARCHIVE_INGEST_NORMALIZER_H_
#define PDKARCHIVE_INGEST_NORMALIZER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "ingest/catalog.h"
#include "store/event.h"

namespace pdkarchive::ingest {

// Deeper JSON than this is refused as malformed (no recursion blows the stack).
inline constexpr int kMaxJsonDepth = 64;

struct Normalized {
  store::EventRow row;
  bool known_topic = true;
  // Fields the catalog pointed at that were present but of the wrong type or
  // unparseable (left empty in the row; the event is still kept).
  int unreadable_fields = 0;
};

// Parses `body` and fills every row field but `sequence`: family and field
// locations from PDK API version `api`'s catalog (ingest/catalog.h; the
// version is the receiving subscription's), occur time by precedence body.occurred (ms) →
// metadata.occurred (ms) → timestamp (ISO 8601) → `receive_time_ms` (a time
// outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999Z is unreadable), and
// the dedupe key. Of a member named twice in one object the last counts, as
// in JSON.parse. Text fields are well-formed UTF-8: an escaped lone UTF-16
// surrogate ("Door\udc00") reads as U+FFFD; `raw` is `body` unchanged.
// InvalidArgument, with a reason fit for the client, when the body is not
// JSON (bytes that are not UTF-8 included), nests deeper than kMaxJsonDepth,
// is not an object, or lacks a non-empty string `topic`.
absl::StatusOr<Normalized> Normalize(std::string_view body,
                                     int64_t receive_time_ms,
                                     std::string_view subscription,
                                     int api = kApi1);

// The dedupe key: 16 bytes of SHA-256 over (topic, panel_id, event_id) when
// the event has an event id, else over the raw body bytes. Normalize passes
// the row's values (after U+FFFD repair), so a redelivered body matches.
std::string DedupeKey(std::string_view topic, std::string_view panel_id,
                      std::string_view event_id, std::string_view raw_body);

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_NORMALIZER_H_
