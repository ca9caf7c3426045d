// The topic catalogs: for every PDK webhook topic, its family and where in the
// payload each normalized field lives. These tables are the one place that
// knows payload layouts; the normalizer only follows them.
//
// There is one catalog per PDK API version, because the versions share topic
// names with different families (floorgroup.activated: a 1.0 panel event, a
// 2.0 system event) and different payloads. The 1.0 catalog is PDK's
// documentation (tests/testdata/topics.json); the 2.0 one follows
// tests/testdata/pdk-2.0/topics.json, whose names and families are partly
// unconfirmed (spec/pdk-2.0/NOTES.md): it is data that only labels and
// locates, so a wrong entry never loses an event.
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
  // PDK API 2.0's UUID text ids (store/event.h); empty in the 1.0 catalog.
  std::vector<FieldPath> device_id_paths;
  std::vector<FieldPath> holder_id_paths;
  std::vector<FieldPath> holder_name_paths;
  std::vector<FieldPath> cloud_node_id_paths;
  std::vector<FieldPath> system_id_paths;
  // Millisecond-epoch numbers tried before the ISO `time_iso_paths`.
  std::vector<FieldPath> time_ms_paths;
  std::vector<FieldPath> time_iso_paths;
};

// The PDK API versions with a catalog: 1 and 2. Other values read as 1.
inline constexpr int kApi1 = 1;
inline constexpr int kApi2 = 2;

// The spec for `topic` in API version `api`'s catalog, or that version's
// spec for unknown topics (family kUnknown, generic field locations) when
// PDK sends one we do not know. The result lives for the whole program.
const TopicSpec& LookupTopic(std::string_view topic, int api = kApi1);

// True when `topic` is one of API version `api`'s known topics.
bool IsKnownTopic(std::string_view topic, int api = kApi1);

// Every known topic spec of API version `api`, for tests and docs.
const std::vector<TopicSpec>& AllTopics(int api = kApi1);

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_CATALOG_H_
