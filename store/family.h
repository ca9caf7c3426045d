// Family: which kind of PDK subscription carries a topic. A PDK subscription
// carries events of one family; an event whose topic the catalog does not
// know is kept with family kUnknown. Stored and filtered as its name.
//
// PDK API 1.0 has two families (organization and panel events); 2.0 has
// three (organization, system and cloud node events), its organization
// events keeping the name "org".
#ifndef PDKARCHIVE_STORE_FAMILY_H_
#define PDKARCHIVE_STORE_FAMILY_H_

#include <initializer_list>
#include <optional>
#include <string_view>

namespace pdkarchive::store {

enum class Family { kOrg, kPanel, kSystem, kCloudNode, kUnknown };

// Every family, kUnknown last.
inline constexpr std::initializer_list<Family> kAllFamilies = {
    Family::kOrg, Family::kPanel, Family::kSystem, Family::kCloudNode,
    Family::kUnknown};

// "org", "panel", "system", "cloudnode" or "unknown": the text rows and
// filters carry.
constexpr std::string_view FamilyName(Family family) {
  switch (family) {
    case Family::kOrg:
      return "org";
    case Family::kPanel:
      return "panel";
    case Family::kSystem:
      return "system";
    case Family::kCloudNode:
      return "cloudnode";
    case Family::kUnknown:
      break;
  }
  return "unknown";
}

// The family named `name`, or nullopt when it names none.
constexpr std::optional<Family> ParseFamily(std::string_view name) {
  for (Family family : kAllFamilies) {
    if (FamilyName(family) == name) return family;
  }
  return std::nullopt;
}

// Whether a subscription of PDK API version `api` (1 or 2) can carry
// `family`: org or panel for 1.0; org, system or cloudnode for 2.0.
constexpr bool FamilyOfApi(Family family, int api) {
  switch (family) {
    case Family::kOrg:
      return api == 1 || api == 2;
    case Family::kPanel:
      return api == 1;
    case Family::kSystem:
    case Family::kCloudNode:
      return api == 2;
    case Family::kUnknown:
      break;
  }
  return false;
}

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_FAMILY_H_
