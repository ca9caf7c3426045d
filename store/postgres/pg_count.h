// How the PostgreSQL reader counts: from the daily rollups when the filter
// and grouping need nothing finer than whole UTC days, else grouped over the
// events; keys formatted here, from grouped numbers. Internal to
// store/postgres/.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_COUNT_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_COUNT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "store/archive_reader.h"
#include "store/event.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_query.h"

namespace pdkarchive::store::pg {

// PDK 2.0 events: a row's door key is its device id when it has one, else
// its door number (its person key its holder id, else its person number).
// counts_daily keeps its key (day, topic, family, panel, door number) and
// counts an event with a device id under its number or "no door" as
// before, so every writer's ON CONFLICT target stays valid while nodes of
// different releases share the database; counts_daily_device
// (migrations/postgres/0005_v2_ids.sql) counts those same events again by
// device id. A count over the rollups grouped or filtered by door reads
// both and moves each such event to its device's group (BuildCount), so a
// 2.0 event is never counted under "no door"; other rollup counts read
// counts_daily alone, as before. Door and person keys are grouped as two
// columns (number, text id) and joined into one text key here. Holder
// filters need the events.
//
// Which table answers a count. counts_daily holds per-day counts by topic,
// family, panel and door, counts_daily_topic per day by topic and family:
// they serve a count whose filter needs no person, org unit or time finer
// than a UTC day, and whose dimensions are among topic, panel, door and day
// (counts_daily_topic when neither panels nor doors are involved).
enum class CountSource { kEvents, kDaily, kDailyTopic };

// The table that answers a count of `filter` grouped by `dimensions`.
CountSource ChooseCountSource(const EventFilter& filter, const std::vector<Dimension>& dimensions);

// The statement counting `filter` by `dimensions` (distinct) from `source`:
// one key column per dimension (raw values: text, or int8 numbers that
// ReadCountGroups formats), then the count (int8); at most `max_rows`
// groups when > 0. With no dimensions, one row holding the total.
Query BuildCount(const EventFilter& filter, const std::vector<Dimension>& dimensions,
                 CountSource source, int64_t max_rows);

// The groups of BuildCount's binary result, keyed as ArchiveReader::Count
// says (door and person as decimal text or "", hour and day keys as
// timeutil formats them or "" outside the years 0000-9999) and sorted
// byte-wise by key, element by element.
std::vector<CountGroup> ReadCountGroups(const Result& result,
                                        const std::vector<Dimension>& dimensions,
                                        CountSource source);

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_COUNT_H_
