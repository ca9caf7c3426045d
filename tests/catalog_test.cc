// The topic catalogs: 1.0 against the spec's 70 topics
// (tests/testdata/topics.json), 2.0 against the 88 candidate topics of
// tests/testdata/pdk-2.0/topics.json.
#include "ingest/catalog.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_support/test_data.h"

namespace pdkarchive::ingest {
namespace {

// topic → family, as a topics.json lists them.
std::map<std::string, std::string> SpecFamilies(
    const std::string& file = "topics.json") {
  const std::string json = pdkarchive::testing::ReadTestData(file);
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  std::map<std::string, std::string> families;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("topics")) {
    ADD_FAILURE() << "topics.json is not the expected document";
    return families;
  }
  for (const auto& entry : doc["topics"].GetArray()) {
    families[entry["topic"].GetString()] = entry["family"].GetString();
  }
  return families;
}

bool HasPath(const std::vector<FieldPath>& paths, const FieldPath& path) {
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

TEST(CatalogTest, KnowsEveryTopicOfTheSpecWithItsFamily) {
  const std::map<std::string, std::string> families = SpecFamilies();
  ASSERT_EQ(families.size(), 70u);
  for (const auto& [topic, family] : families) {
    SCOPED_TRACE(topic);
    EXPECT_TRUE(IsKnownTopic(topic));
    EXPECT_EQ(LookupTopic(topic).topic, topic);
    EXPECT_EQ(store::FamilyName(LookupTopic(topic).family), family);
  }
}

TEST(CatalogTest, HoldsExactlyTheSpecTopicsOnceEach) {
  const std::map<std::string, std::string> families = SpecFamilies();
  std::set<std::string_view> seen;
  for (const TopicSpec& spec : AllTopics()) {
    EXPECT_TRUE(seen.insert(spec.topic).second) << "twice: " << spec.topic;
    EXPECT_TRUE(families.contains(std::string(spec.topic))) << spec.topic;
  }
  EXPECT_EQ(AllTopics().size(), families.size());
}

TEST(CatalogTest, UnknownTopicGetsGenericLocationsAndNoEventId) {
  EXPECT_FALSE(IsKnownTopic("door.teleport.allowed"));
  EXPECT_FALSE(IsKnownTopic(""));
  const TopicSpec& spec = LookupTopic("door.teleport.allowed");
  EXPECT_EQ(spec.family, store::Family::kUnknown);
  EXPECT_TRUE(spec.event_id_paths.empty());
  EXPECT_TRUE(HasPath(spec.panel_id_paths, {"panelId"}));
  EXPECT_TRUE(HasPath(spec.door_id_paths, {"body", "doorId"}));
  EXPECT_TRUE(HasPath(spec.person_id_paths, {"body", "details", "personId"}));
  EXPECT_TRUE(HasPath(spec.time_ms_paths, {"metadata", "occurred"}));
  EXPECT_TRUE(HasPath(spec.time_iso_paths, {"timestamp"}));
}

TEST(CatalogTest, OnlyPanelEventsUseTheirIdAsEventId) {
  for (const TopicSpec& spec : AllTopics()) {
    SCOPED_TRACE(spec.topic);
    if (spec.family == store::Family::kPanel) {
      EXPECT_EQ(spec.event_id_paths, std::vector<FieldPath>{{"id"}});
    } else {
      EXPECT_TRUE(spec.event_id_paths.empty());
    }
  }
}

TEST(CatalogTest, EveryTopicHasTheGenericLocations) {
  for (const TopicSpec& spec : AllTopics()) {
    SCOPED_TRACE(spec.topic);
    EXPECT_TRUE(HasPath(spec.panel_id_paths, {"panelId"}));
    EXPECT_TRUE(HasPath(spec.door_id_paths, {"body", "details", "doorId"}));
    EXPECT_TRUE(HasPath(spec.door_name_paths, {"metadata", "doorName"}));
    EXPECT_TRUE(HasPath(spec.person_id_paths, {"body", "personId"}));
    EXPECT_TRUE(HasPath(spec.actor_user_id_paths, {"user", "id"}));
    EXPECT_TRUE(HasPath(spec.actor_user_id_paths, {"body", "userId"}));
    EXPECT_EQ(spec.time_ms_paths.front(), (FieldPath{"body", "occurred"}));
  }
}

TEST(CatalogTest, TopicSpecificLocationsComeFirst) {
  EXPECT_EQ(LookupTopic("panel.updated").panel_id_paths.front(),
            FieldPath{"id"});
  EXPECT_EQ(LookupTopic("ou.deleted").ou_id_paths.front(), FieldPath{"id"});
  EXPECT_EQ(LookupTopic("permission.created").ou_id_paths.front(),
            FieldPath{"ou"});
  EXPECT_EQ(LookupTopic("notification.person.updated").person_id_paths.front(),
            (FieldPath{"body", "id"}));
  EXPECT_EQ(LookupTopic("notification.device.updated").door_id_paths.front(),
            (FieldPath{"body", "id"}));
  EXPECT_TRUE(LookupTopic("door.request.allowed").ou_id_paths.empty());
}

}  // namespace
}  // namespace pdkarchive::ingest

namespace pdkarchive::ingest {
namespace {

TEST(FamilyTest, NamesParseBackAndNothingElseParses) {
  for (store::Family family : store::kAllFamilies) {
    EXPECT_EQ(store::ParseFamily(store::FamilyName(family)), family);
  }
  EXPECT_EQ(store::FamilyName(store::Family::kPanel), "panel");
  EXPECT_EQ(store::FamilyName(store::Family::kCloudNode), "cloudnode");
  EXPECT_EQ(store::ParseFamily(""), std::nullopt);
  EXPECT_EQ(store::ParseFamily("Panel"), std::nullopt);
  EXPECT_EQ(store::ParseFamily("door"), std::nullopt);
}

TEST(FamilyTest, EachApiVersionCarriesItsOwnFamilies) {
  using store::Family;
  EXPECT_TRUE(store::FamilyOfApi(Family::kOrg, 1));
  EXPECT_TRUE(store::FamilyOfApi(Family::kPanel, 1));
  EXPECT_FALSE(store::FamilyOfApi(Family::kSystem, 1));
  EXPECT_FALSE(store::FamilyOfApi(Family::kCloudNode, 1));
  EXPECT_TRUE(store::FamilyOfApi(Family::kOrg, 2));
  EXPECT_FALSE(store::FamilyOfApi(Family::kPanel, 2));
  EXPECT_TRUE(store::FamilyOfApi(Family::kSystem, 2));
  EXPECT_TRUE(store::FamilyOfApi(Family::kCloudNode, 2));
  EXPECT_FALSE(store::FamilyOfApi(Family::kUnknown, 1));
  EXPECT_FALSE(store::FamilyOfApi(Family::kOrg, 3));
}

constexpr char kV2Topics[] = "pdk-2.0/topics.json";

TEST(CatalogV2Test, KnowsEveryCandidateTopicWithItsFamily) {
  const std::map<std::string, std::string> families = SpecFamilies(kV2Topics);
  ASSERT_EQ(families.size(), 88u);
  for (const auto& [topic, family] : families) {
    SCOPED_TRACE(topic);
    EXPECT_TRUE(IsKnownTopic(topic, kApi2));
    EXPECT_EQ(LookupTopic(topic, kApi2).topic, topic);
    EXPECT_EQ(store::FamilyName(LookupTopic(topic, kApi2).family), family);
  }
  std::set<std::string_view> seen;
  for (const TopicSpec& spec : AllTopics(kApi2)) {
    EXPECT_TRUE(seen.insert(spec.topic).second) << "twice: " << spec.topic;
    EXPECT_TRUE(families.contains(std::string(spec.topic))) << spec.topic;
  }
  EXPECT_EQ(AllTopics(kApi2).size(), families.size());
}

TEST(CatalogV2Test, VersionsKeepTheirOwnFamiliesForSharedNames) {
  EXPECT_EQ(LookupTopic("floorgroup.activated", kApi1).family,
            store::Family::kPanel);
  EXPECT_EQ(LookupTopic("floorgroup.activated", kApi2).family,
            store::Family::kSystem);
  EXPECT_FALSE(IsKnownTopic("device.request.allowed", kApi1));
  EXPECT_FALSE(IsKnownTopic("door.request.allowed", kApi2));
  // The default is 1.0, and versions without a catalog read as 1.0.
  EXPECT_EQ(&LookupTopic("door.request.allowed"),
            &LookupTopic("door.request.allowed", 7));
}

TEST(CatalogV2Test, LocatesThePublishedFieldsAndOnlyCloudNodeEventsHaveIds) {
  for (const TopicSpec& spec : AllTopics(kApi2)) {
    SCOPED_TRACE(spec.topic);
    EXPECT_EQ(spec.panel_id_paths.front(), FieldPath{"cloudNodeSN"});
    EXPECT_TRUE(HasPath(spec.panel_id_paths, {"cloudNodeId"}));
    EXPECT_EQ(spec.cloud_node_id_paths, std::vector<FieldPath>{{"cloudNodeId"}});
    EXPECT_EQ(spec.device_id_paths,
              (std::vector<FieldPath>{{"body", "deviceId"}}));
    EXPECT_EQ(spec.holder_id_paths,
              (std::vector<FieldPath>{{"body", "holderId"}}));
    EXPECT_EQ(spec.holder_name_paths,
              (std::vector<FieldPath>{{"metadata", "holderName"}}));
    EXPECT_EQ(spec.system_id_paths,
              (std::vector<FieldPath>{{"metadata", "systemId"}}));
    EXPECT_EQ(spec.door_name_paths.front(),
              (FieldPath{"metadata", "deviceName"}));
    EXPECT_TRUE(HasPath(spec.time_ms_paths, {"metadata", "occurred"}));
    if (spec.family == store::Family::kCloudNode) {
      EXPECT_EQ(spec.event_id_paths, std::vector<FieldPath>{{"id"}});
    } else {
      EXPECT_TRUE(spec.event_id_paths.empty());
    }
  }
  const TopicSpec& unknown = LookupTopic("device.teleport.allowed", kApi2);
  EXPECT_EQ(unknown.family, store::Family::kUnknown);
  EXPECT_TRUE(unknown.event_id_paths.empty());
  EXPECT_TRUE(HasPath(unknown.device_id_paths, {"body", "deviceId"}));
  // The 1.0 catalog reads no 2.0 ids.
  EXPECT_TRUE(LookupTopic("door.request.allowed").device_id_paths.empty());
}

}  // namespace
}  // namespace pdkarchive::ingest
