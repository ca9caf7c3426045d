// The topic catalog against the spec's 70 topics (tests/testdata/topics.json).
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

// topic → family, as the spec's topics.json lists them.
std::map<std::string, std::string> SpecFamilies() {
  const std::string json = pdkarchive::testing::ReadTestData("topics.json");
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
  for (store::Family family :
       {store::Family::kOrg, store::Family::kPanel, store::Family::kUnknown}) {
    EXPECT_EQ(store::ParseFamily(store::FamilyName(family)), family);
  }
  EXPECT_EQ(store::FamilyName(store::Family::kPanel), "panel");
  EXPECT_EQ(store::ParseFamily(""), std::nullopt);
  EXPECT_EQ(store::ParseFamily("Panel"), std::nullopt);
  EXPECT_EQ(store::ParseFamily("door"), std::nullopt);
}

}  // namespace
}  // namespace pdkarchive::ingest
