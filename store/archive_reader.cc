#include "store/archive_reader.h"

namespace pdkarchive::store {
namespace {

// RowReplyBytes' allowance for the numbers, times, tags and lengths of a row
// (an Event message encodes them in under 160 bytes).
constexpr size_t kRowOverheadBytes = 160;

}  // namespace

size_t RowReplyBytes(const EventRow& row) {
  return kRowOverheadBytes + row.event_id.size() + row.topic.size() + row.family.size() +
         row.panel_id.size() + row.ou_id.size() + row.door_name.size() +
         row.actor_user_id.size() + row.subscription.size() + row.raw.size();
}

}  // namespace pdkarchive::store
