// Ingest counters, rendered in Prometheus text format for GET /metrics.
#ifndef PDKARCHIVE_INGEST_METRICS_H_
#define PDKARCHIVE_INGEST_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "store/group_commit_writer.h"
#include "store/subscription_store.h"

namespace pdkarchive::ingest {

// How a delivery ended; one counter each.
enum class DeliveryResult {
  kAccepted,
  kDuplicate,
  kBadRequest,
  kUnauthorized,
  kTooLarge,
  kMethodNotAllowed,
  kNotFound,
  kUnavailable,
  kCount,  // number of results, not a result
};

// Thread-safe: every counter is atomic or under a lock.
class Metrics {
 public:
  void CountDelivery(DeliveryResult result);
  void CountUnknownTopic() { unknown_topics_.fetch_add(1, std::memory_order_relaxed); }
  void CountUnreadableFields(int n);
  // An authentic delivery to subscription `subscription` whose topic is of
  // the other family (it is stored all the same).
  void CountFamilyMismatch(const std::string& subscription);
  uint64_t family_mismatches(const std::string& subscription) const;

  uint64_t deliveries(DeliveryResult result) const;
  uint64_t unknown_topics() const { return unknown_topics_.load(); }
  uint64_t unreadable_fields() const { return unreadable_fields_.load(); }

  // The Prometheus text exposition of these counters and of `writer`'s
  // batch-size and commit-latency histograms, all prefixed `pdkarchive_`,
  // in Prometheus' conventions (base units: the latency is in seconds;
  // counters end in _total), so `promtool check metrics` accepts it.
  std::string Render(const store::WriterStats& writer) const;

 private:
  std::atomic<uint64_t> deliveries_[static_cast<int>(DeliveryResult::kCount)] = {};
  std::atomic<uint64_t> unknown_topics_{0};
  std::atomic<uint64_t> unreadable_fields_{0};
  mutable std::mutex mismatch_mu_;
  std::map<std::string, uint64_t> family_mismatches_;  // by subscription name
};

// The figures of each subscription's last `pdk-archive subscriptions check`
// as Prometheus gauges (pdkarchive_subscription_pdk_events,
// _archived_events, _missing_events, _last_check_timestamp_seconds, each
// labelled subscription="NAME"); "" when no subscription has been checked.
std::string RenderSubscriptionChecks(
    const std::vector<store::Subscription>& subscriptions);

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_METRICS_H_
