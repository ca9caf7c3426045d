// The types the store speaks: a normalized event row, the filter that selects
// rows, and the results of appending, listing and counting. Plain structs with
// no transport types, so ingest (HTTP) and query (gRPC) translate to and from
// them once, at their own edges.
#ifndef PDKARCHIVE_STORE_EVENT_H_
#define PDKARCHIVE_STORE_EVENT_H_

#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pdkarchive::store {

// The door_id of the daily count rollups for events that name no door.
inline constexpr int64_t kNoDoor = INT64_MIN;

// One archived webhook delivery. Times are milliseconds since the Unix epoch,
// UTC. Text fields the payload does not carry are empty, never null.
struct EventRow {
  int64_t sequence = 0;  // assigned by the store; 0 before appending
  std::string event_id;
  std::string topic;
  std::string family;  // store/family.h: "org", "panel", ... or "unknown"
  std::string panel_id;
  std::string ou_id;
  std::optional<int64_t> door_id;
  std::string door_name;
  std::optional<int64_t> person_id;
  std::string actor_user_id;
  // PDK API 2.0 names things by UUID text, which door_id and person_id (1.0's
  // numbers) cannot hold. A 2.0 row carries its device (door) and holder
  // (person) here; panel_id keeps the cloud node's serial, as in 1.0.
  std::string device_id;      // body.deviceId
  std::string holder_id;      // body.holderId
  std::string holder_name;    // metadata.holderName
  std::string cloud_node_id;  // cloudNodeId (UUID)
  std::string system_id;      // metadata.systemId
  int64_t occur_time_ms = 0;
  int64_t receive_time_ms = 0;
  std::string subscription;
  // The normalizer's dedupe key (opaque bytes): equal keys mean the same
  // event. The archive keeps only a hash of it, so rows read back leave it
  // empty.
  std::string dedupe_key;
  std::string raw;         // the payload exactly as received
  // How the store will keep `raw` (store/raw_codec.h), worked out ahead of
  // the commit by BatchSink::Prepare: unset = not yet, "" = as text, else
  // the packed bytes. Never set when reading.
  std::optional<std::string> packed_raw;

  bool operator==(const EventRow&) const = default;
};

// The outcome of appending one row: its sequence, and whether an event with
// the same dedupe key was already stored (then `sequence` is the original's).
struct AppendResult {
  int64_t sequence = 0;
  bool duplicate = false;
};

// Selects events. Different fields AND together; values within one field OR
// together; an empty field does not constrain.
struct EventFilter {
  std::optional<int64_t> start_ms;  // inclusive, on occur_time
  std::optional<int64_t> end_ms;    // exclusive
  // Exact topics, or "prefix.*" for every topic starting with "prefix.".
  std::vector<std::string> topics;
  std::vector<std::string> panel_ids;
  std::vector<int64_t> door_ids;
  std::vector<int64_t> person_ids;
  std::vector<std::string> ou_ids;
  // PDK API 2.0's text ids, OR-ed with door_ids / person_ids: a row matches
  // the door condition when its door_id is one of door_ids or its device_id
  // one of device_ids (likewise person / holder).
  std::vector<std::string> device_ids;
  std::vector<std::string> holder_ids;
  std::string family;  // "" = any

  bool operator==(const EventFilter&) const = default;
};

// A position in (occur_time, sequence) order; listing resumes after it.
struct Cursor {
  int64_t occur_time_ms = 0;
  int64_t sequence = 0;

  bool operator==(const Cursor&) const = default;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_EVENT_H_
