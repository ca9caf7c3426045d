#include "ingest/catalog.h"

#include <string_view>
#include <unordered_map>
#include <vector>

namespace pdkarchive::ingest {
namespace {

using Paths = std::vector<FieldPath>;

// Topic-specific locations. They are tried before the generic ones, which
// every topic gets as a fallback because PDK adds fields over time.
struct Specific {
  Paths panel_id = {};
  Paths ou_id = {};
  Paths door_id = {};
  Paths door_name = {};
  Paths person_id = {};
};

Paths Then(Paths first, const Paths& then) {
  first.insert(first.end(), then.begin(), then.end());
  return first;
}

// The generic locations of DESIGN.md "Normalized event row", plus `extra`.
// No event id: only panel events have one (see Panel()).
TopicSpec Spec(std::string_view topic, store::Family family,
               const Specific& extra) {
  TopicSpec spec;
  spec.topic = topic;
  spec.family = family;
  spec.panel_id_paths = Then(extra.panel_id, {{"panelId"}});
  spec.ou_id_paths = extra.ou_id;
  spec.door_id_paths =
      Then(extra.door_id, {{"body", "doorId"}, {"body", "details", "doorId"}});
  spec.door_name_paths =
      Then(extra.door_name,
           {{"metadata", "doorName"}, {"body", "details", "doorName"}});
  spec.person_id_paths = Then(
      extra.person_id, {{"body", "personId"}, {"body", "details", "personId"}});
  spec.actor_user_id_paths = {{"user", "id"}, {"body", "userId"}};
  spec.time_ms_paths = {{"body", "occurred"}, {"metadata", "occurred"}};
  spec.time_iso_paths = {{"timestamp"}};
  return spec;
}

// A panel event: its top-level `id` (when a string) identifies the event.
TopicSpec Panel(std::string_view topic, const Specific& extra = {}) {
  TopicSpec spec = Spec(topic, store::Family::kPanel, extra);
  spec.event_id_paths = {{"id"}};
  return spec;
}

// An organization event: its `id`, if any, names the organization or panel it
// is about, so it has no event id and is deduplicated by its raw bytes.
TopicSpec Org(std::string_view topic, const Specific& extra) {
  return Spec(topic, store::Family::kOrg, extra);
}

std::vector<TopicSpec>* BuildCatalog() {
  const Paths id = {{"id"}};
  const Paths ou = {{"ou"}};
  // PDK's "device" is a door (the spec itself says "a device is opened" for
  // door.input.relay.on), so notification.device.* name their door by
  // body.id, and its name by body.name or, on update, body.newState.name.
  const Specific device = {
      .door_id = {{"body", "id"}},
      .door_name = {{"body", "name"}, {"body", "newState", "name"}}};
  // notification.person.* carry the person record itself as the body.
  const Specific person = {.person_id = {{"body", "id"}}};

  return new std::vector<TopicSpec>{
      Org("ou.created", {.ou_id = id}),
      Org("ou.deleted", {.ou_id = id}),
      Org("ou.updated", {.ou_id = id}),
      Org("panel.created", {.panel_id = id, .ou_id = ou}),
      Org("panel.deleted", {.panel_id = id, .ou_id = ou}),
      Org("panel.updated", {.panel_id = id, .ou_id = ou}),
      Org("permission.accepted", {.ou_id = ou}),
      Org("permission.created", {.ou_id = ou}),
      Org("permission.deleted", {.ou_id = ou}),
      Org("permission.updated", {.ou_id = ou}),
      Panel("door.alarm.forced"),
      Panel("door.alarm.forced.cleared"),
      Panel("door.alarm.propped.alloff"),
      Panel("door.alarm.propped.off"),
      Panel("door.alarm.propped.on"),
      Panel("door.autoopen.off"),
      Panel("door.autoopen.on"),
      Panel("door.autoopen.override.off"),
      Panel("door.autoopen.override.on"),
      Panel("door.forceclose.off"),
      Panel("door.forceclose.on"),
      Panel("door.forceopen.off"),
      Panel("door.forceopen.on"),
      Panel("door.input.dps.closed"),
      Panel("door.input.dps.opened"),
      Panel("door.input.relay.off"),
      Panel("door.input.relay.on"),
      Panel("door.input.rex.off"),
      Panel("door.input.rex.on"),
      Panel("door.input.virtualread"),
      Panel("door.request.allowed"),
      Panel("door.request.denied"),
      Panel("door.request.duress"),
      Panel("door.request.found"),
      Panel("door.request.multiallowed"),
      Panel("door.request.unknown"),
      Panel("endpoint.added"),
      Panel("endpoint.alarm.comloss.off"),
      Panel("endpoint.alarm.comloss.on"),
      Panel("endpoint.deleted"),
      Panel("endpoint.input.bh.state"),
      Panel("endpoint.input.lp.off"),
      Panel("endpoint.input.lp.on"),
      Panel("endpoint.input.pb.connected"),
      Panel("endpoint.input.pb.disconnected"),
      Panel("endpoint.input.pb.status"),
      Panel("endpoint.input.pi.off"),
      Panel("endpoint.input.pi.on"),
      Panel("endpoint.input.pi.status"),
      Panel("endpoint.input.po.absent"),
      Panel("endpoint.input.po.present"),
      Panel("endpoint.input.pp.status"),
      Panel("entity.added"),
      Panel("entity.modified"),
      Panel("entity.removed"),
      Panel("error.card.parse"),
      Panel("error.packetized.protocol"),
      Panel("floorgroup.activated"),
      Panel("notification.client.command"),
      Panel("notification.device.created", device),
      Panel("notification.device.deleted", device),
      Panel("notification.device.updated", device),
      Panel("notification.intercom.created"),
      Panel("notification.intercom.deleted"),
      Panel("notification.intercom.updated"),
      Panel("notification.person.created", person),
      Panel("notification.person.deleted", person),
      Panel("notification.person.updated", person),
      Panel("panel.connected"),
      Panel("panel.disconnected"),
  };
}

// Built once, never destroyed (no static destructors run at exit).
const std::vector<TopicSpec>& Catalog() {
  static const std::vector<TopicSpec>* const catalog = BuildCatalog();
  return *catalog;
}

const std::unordered_map<std::string_view, const TopicSpec*>& Index() {
  static const auto* const index = [] {
    auto* by_topic = new std::unordered_map<std::string_view, const TopicSpec*>;
    for (const TopicSpec& spec : Catalog())
      by_topic->emplace(spec.topic, &spec);
    return by_topic;
  }();
  return *index;
}

// Unknown topics get the generic locations and no event id: without knowing
// whether their `id` names the event or the thing it is about, keying on it
// could merge distinct events, while raw-body dedupe only risks a duplicate.
const TopicSpec& UnknownTopic() {
  static const TopicSpec* const unknown =
      new TopicSpec(Spec("", store::Family::kUnknown, {}));
  return *unknown;
}

}  // namespace

const TopicSpec& LookupTopic(std::string_view topic) {
  const auto& index = Index();
  auto it = index.find(topic);
  return it == index.end() ? UnknownTopic() : *it->second;
}

bool IsKnownTopic(std::string_view topic) { return Index().contains(topic); }

const std::vector<TopicSpec>& AllTopics() { return Catalog(); }

}  // namespace pdkarchive::ingest
