// The topic catalog: for every PDK webhook topic, its family and where in the
// payload each normalized field lives. This table is the one place that knows
// payload layouts; the normalizer only follows it.
#ifndef PDKARCHIVE_INGEST_CATALOG_H_
#define PDKARCHIVE_INGEST_CATALOG_H_

#include <string_view>
#include <vector>

#include "store/family.h"

namespace pdkarchive::ingest {

// A JSON path into the payload, as object member names from the root
// ("body", "details", "doorId"). Empty = not present for this topic.
using FieldPath = std::vector<std::string_view>;

// What the catalog says about one topic. Each `*_paths` list is tried in
// order; the first path whose value can be read wins. Topic-specific paths
// come first, then the generic ones every topic shares.
struct TopicSpec {
  std::string_view topic;   // empty for the unknown-topic spec
  store::Family family = store::Family::kUnknown;
  std::vector<FieldPath> event_id_paths;
  std::vector<FieldPath> panel_id_paths;
  std::vector<FieldPath> ou_id_paths;
  std::vector<FieldPath> door_id_paths;
  std::vector<FieldPath> door_name_paths;
  std::vector<FieldPath> person_id_paths;
  std::vector<FieldPath> actor_user_id_paths;
  // Millisecond-epoch numbers tried before the ISO `time_iso_paths`.
  std::vector<FieldPath> time_ms_paths;
  std::vector<FieldPath> time_iso_paths;
};

// The spec for `topic`, or the spec used for unknown topics (family
// kUnknown, generic field locations) when PDK sends one we do not know.
// Never null; the result lives for the whole program.
const TopicSpec& LookupTopic(std::string_view topic);

// True when `topic` is one of the catalog's known topics.
bool IsKnownTopic(std::string_view topic);

// Every known topic spec, for tests and docs.
const std::vector<TopicSpec>& AllTopics();

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_CATALOG_H_
