#include "ingest/catalog.h"

#include <initializer_list>
#include <string_view>
#include <unordered_map>
#include <utility>
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

// A PDK API 2.0 topic. The locations are those of the one published 2.0
// payload (device.request.allowed; spec/pdk-2.0/NOTES.md §5-6): the cloud
// node's serial `cloudNodeSN` as panel (1.0's panelId, so a site moving from
// 1.0 keeps its panel keys), else its UUID `cloudNodeId`; body.deviceId with
// metadata.deviceName; body.holderId with metadata.holderName;
// metadata.systemId. 1.0's generic locations follow, in case PDK kept them.
// Only cloud node events take their `id` as event id, as 1.0's panel events
// do and the published one does; org and system payloads are unpublished, so
// they are deduplicated by their raw bytes, which can never merge two events.
TopicSpec Spec2(std::string_view topic, store::Family family) {
  TopicSpec spec = Spec(topic, family,
                        {.panel_id = {{"cloudNodeSN"}, {"cloudNodeId"}},
                         .door_name = {{"metadata", "deviceName"}}});
  if (family == store::Family::kCloudNode) spec.event_id_paths = {{"id"}};
  spec.device_id_paths = {{"body", "deviceId"}};
  spec.holder_id_paths = {{"body", "holderId"}};
  spec.holder_name_paths = {{"metadata", "holderName"}};
  spec.cloud_node_id_paths = {{"cloudNodeId"}};
  spec.system_id_paths = {{"metadata", "systemId"}};
  return spec;
}

std::vector<TopicSpec>* BuildCatalogV2() {
  using store::Family;
  std::vector<TopicSpec>* catalog = new std::vector<TopicSpec>;
  auto add = [catalog](Family family, std::initializer_list<std::string_view> topics) {
    for (std::string_view topic : topics) catalog->push_back(Spec2(topic, family));
  };
  add(Family::kCloudNode,
      {"device.alarm.circuitbreaker.off", "device.alarm.circuitbreaker.on",
       "device.alarm.forced", "device.alarm.forced.cleared",
       "device.alarm.propped.alloff", "device.alarm.propped.off",
       "device.alarm.propped.on", "device.autoopen.off", "device.autoopen.on",
       "device.autoopen.override.off", "device.autoopen.override.on",
       "device.forceclose.off", "device.forceclose.on", "device.forceopen.off",
       "device.forceopen.on", "device.input.dps.closed",
       "device.input.dps.opened", "device.input.relay.off",
       "device.input.relay.on", "device.input.rex.off", "device.input.rex.on",
       "device.input.virtualread", "device.request.allowed",
       "device.request.denied", "device.request.duress",
       "device.request.ecard.allowed", "device.request.ecard.denied",
       "device.request.filtered", "device.request.found",
       "device.request.multiallowed", "device.request.unknown",
       "cloudnode.connected", "cloudnode.disconnected",
       "controller.alarm.comloss.on", "controller.alarm.comloss.off",
       "controller.input.lp.on", "controller.input.lp.off",
       "controller.input.pb.connected", "controller.input.pb.disconnected",
       "controller.input.pb.status", "controller.input.pi.on",
       "controller.input.pi.off", "controller.input.pi.status",
       "controller.input.po.present", "controller.input.po.absent",
       "controller.input.time.unknown.enter",
       "controller.input.time.unknown.exit"});
  add(Family::kSystem,
      {"holder.created", "holder.updated", "holder.deleted",
       "credential.created", "credential.updated", "credential.deleted",
       "group.created", "group.updated", "group.deleted", "rule.created",
       "rule.updated", "rule.deleted", "rule.antipassback.violation",
       "device.created", "device.updated", "device.deleted",
       "connection.created", "connection.updated", "connection.deleted",
       "cloudnode.created", "cloudnode.updated", "cloudnode.deleted",
       "partition.created", "partition.updated", "partition.deleted",
       "floorgroup.created", "floorgroup.updated", "floorgroup.deleted",
       "floorgroup.activated", "cardformat.created", "cardformat.deleted"});
  add(Family::kOrg,
      {"organization.created", "organization.updated", "organization.deleted",
       "permission.created", "permission.updated", "permission.deleted",
       "permission.accepted", "subscription.created", "subscription.updated",
       "subscription.deleted"});
  return catalog;
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

// One API version's topics, indexed. Unknown topics get the version's generic
// locations and no event id: without knowing whether their `id` names the
// event or the thing it is about, keying on it could merge distinct events,
// while raw-body dedupe only risks a duplicate.
struct Catalog {
  std::vector<TopicSpec> topics;
  std::unordered_map<std::string_view, const TopicSpec*> by_topic;
  TopicSpec unknown;
};

Catalog* Index(std::vector<TopicSpec>* topics, TopicSpec unknown) {
  auto* catalog = new Catalog{std::move(*topics), {}, std::move(unknown)};
  delete topics;
  for (const TopicSpec& spec : catalog->topics) {
    catalog->by_topic.emplace(spec.topic, &spec);
  }
  return catalog;
}

// Built once, never destroyed (no static destructors run at exit).
const Catalog& CatalogOf(int api) {
  static const Catalog* const v1 =
      Index(BuildCatalog(), Spec("", store::Family::kUnknown, {}));
  static const Catalog* const v2 = [] {
    TopicSpec unknown = Spec2("", store::Family::kUnknown);
    unknown.event_id_paths.clear();
    return Index(BuildCatalogV2(), std::move(unknown));
  }();
  return api == kApi2 ? *v2 : *v1;
}

}  // namespace

const TopicSpec& LookupTopic(std::string_view topic, int api) {
  const Catalog& catalog = CatalogOf(api);
  auto it = catalog.by_topic.find(topic);
  return it == catalog.by_topic.end() ? catalog.unknown : *it->second;
}

bool IsKnownTopic(std::string_view topic, int api) {
  return CatalogOf(api).by_topic.contains(topic);
}

const std::vector<TopicSpec>& AllTopics(int api) {
  return CatalogOf(api).topics;
}

}  // namespace pdkarchive::ingest
