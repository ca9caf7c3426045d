#include "store/batch_sink.h"

namespace pdkarchive::store {

std::optional<int64_t> FindEngineStat(const std::vector<EngineStat>& stats,
                                      std::string_view name) {
  for (const EngineStat& stat : stats) {
    if (stat.name == name) return stat.value;
  }
  return std::nullopt;
}

}  // namespace pdkarchive::store
