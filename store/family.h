// Family: which kind of PDK subscription carries a topic. A PDK subscription
// carries events of one family; an event whose topic the catalog does not
// know is kept with family kUnknown. Stored and filtered as its name.
#ifndef PDKARCHIVE_STORE_FAMILY_H_
#define PDKARCHIVE_STORE_FAMILY_H_

#include <optional>
#include <string_view>

namespace pdkarchive::store {

enum class Family { kOrg, kPanel, kUnknown };

// "org", "panel" or "unknown": the text rows and filters carry.
constexpr std::string_view FamilyName(Family family) {
  switch (family) {
    case Family::kOrg:
      return "org";
    case Family::kPanel:
      return "panel";
    case Family::kUnknown:
      break;
  }
  return "unknown";
}

// The family named `name`, or nullopt when it names none.
constexpr std::optional<Family> ParseFamily(std::string_view name) {
  for (Family family : {Family::kOrg, Family::kPanel, Family::kUnknown}) {
    if (FamilyName(family) == name) return family;
  }
  return std::nullopt;
}

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_FAMILY_H_
