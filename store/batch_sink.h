// BatchSink: where the group-commit writer puts batches of events; each
// storage engine implements it. It knows nothing of how an engine stores
// rows: an engine reports what it wants shown about itself through Stats(),
// which /metrics prints without interpreting.
#ifndef PDKARCHIVE_STORE_BATCH_SINK_H_
#define PDKARCHIVE_STORE_BATCH_SINK_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "store/event.h"

namespace pdkarchive::store {

// One figure an engine reports about itself, printed on /metrics as
// `pdkarchive_<name>` with its help text and type.
struct EngineStat {
  enum class Kind { kGauge, kCounter };
  std::string name;  // lower_snake_case; a counter's ends in "_total"
  std::string help;  // one sentence
  Kind kind = Kind::kGauge;
  int64_t value = 0;
};

// The value of the stat named `name` in `stats`, if there is one.
std::optional<int64_t> FindEngineStat(const std::vector<EngineStat>& stats,
                                      std::string_view name);

// Called by one thread at a time (the group-commit writer's), except Prepare.
class BatchSink {
 public:
  virtual ~BatchSink() = default;

  // Appends `rows` atomically: either every row is durable (or found to be a
  // duplicate) and one result per row comes back in order, or nothing is
  // stored and the status says why (Unavailable when the disk or lock refused).
  virtual absl::StatusOr<std::vector<AppendResult>> AppendBatch(
      std::span<const EventRow> rows) = 0;

  // Work on `row` that needs no database, done on the submitting thread
  // before the row joins a batch, so the single writer does less. Must be
  // thread-safe.
  virtual void Prepare(EventRow& row) const { (void)row; }

  // How busy the writer is when it calls Maintain.
  enum class Load {
    kBacklog,   // more rows are queued behind the batch just committed
    kCaughtUp,  // the queue is empty, but rows have been arriving
    kIdle,      // nothing has arrived for a while, or the writer is stopping
  };

  // Housekeeping between batches, after their callers have been answered.
  virtual void Maintain(Load load) { (void)load; }

  // Whether Maintain(kIdle) has work to do now (work deferred under load),
  // so a writer that starts or falls quiet calls it without new rows.
  virtual bool HasIdleWork() const { return false; }

  // The engine's figures as of now, for /metrics.
  virtual std::vector<EngineStat> Stats() const { return {}; }
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_BATCH_SINK_H_
