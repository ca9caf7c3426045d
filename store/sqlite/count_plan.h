// How EventReader::Count answers: from the daily rollups when the filter and
// grouping need nothing finer than whole UTC days, else from the events;
// plus, always, the unmerged tail (IndexedPlusTail). Internal to
// store/sqlite/.
#ifndef PDKARCHIVE_STORE_SQLITE_COUNT_PLAN_H_
#define PDKARCHIVE_STORE_SQLITE_COUNT_PLAN_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "store/event.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/read_statement.h"

struct sqlite3;

namespace pdkarchive::store::sqlite {

// Which table answers a count's indexed part. The rollups hold per-day
// counts by topic, panel and door, so they serve any count whose filter and
// grouping need nothing finer: no person or org, no hours, time bounds on
// day boundaries.
enum class CountSource { kEvents, kDaily, kDailyTopic };

// PDK 2.0 events (store/event.h's device_id, holder_id): a row's door key
// is its device id when it has one, else its door number (its person key
// its holder id, else its person number). counts_daily keys doors by 1.0's
// number only and counts an event with a device id under its number or "no
// door", as before; counts_daily_device (migrations/0008_v2_ids.sql) counts
// those same events again by device id. A count grouped by door from the
// rollups reads both and moves each such event from its number's group to
// its device's, so the 1.0 rollup paths stay as they were and a 2.0 event is
// never counted under "no door". Device and holder filters need the events.
//
// The table that answers a count of `filter` grouped by `dimensions`.
CountSource ChooseCountSource(const EventFilter& filter, const std::vector<Dimension>& dimensions);

// The groups of a count of `filter` (its topics and family resolved to
// `topic_ids`, as ResolveTopicIds gives them) by `dimensions` (distinct),
// read through `db` inside `snapshot`; sorted by key as EventReader::Count
// promises. A day key is timeutil::FormatDayKey's and an hour key
// FormatHourKey's; an event outside the years 0000-9999 has the day and hour
// key "" (one group however many days apart), from the rollups and the
// events alike. ResourceExhausted past `max_groups` (> 0); SqliteError's codes.
absl::StatusOr<std::vector<CountGroup>> CountGroups(
    const ReadTransaction& snapshot, sqlite3* db, const EventFilter& filter,
    const std::optional<std::vector<int64_t>>& topic_ids,
    const std::vector<Dimension>& dimensions, int64_t max_groups);

}  // namespace pdkarchive::store::sqlite

#endif  // PDKARCHIVE_STORE_SQLITE_COUNT_PLAN_H_
