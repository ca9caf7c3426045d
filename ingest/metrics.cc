#include "ingest/metrics.h"

#include <functional>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pdkarchive::ingest {
namespace {

constexpr const char* kResultLabels[] = {
    "accepted",  "duplicate", "bad_request", "unauthorized",
    "too_large", "method_not_allowed", "not_found", "unavailable"};
static_assert(std::size(kResultLabels) == static_cast<size_t>(DeliveryResult::kCount));

// Appends a cumulative Prometheus histogram from per-bucket counts;
// `le(bounds[i])` is bucket i's upper bound as printed in its le label.
template <typename Bound, size_t N, typename Le>
void AppendHistogram(std::string& out, const char* name, const char* help,
                     const Bound (&bounds)[N], const uint64_t (&buckets)[N + 1],
                     const std::string& sum, Le le) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < N; ++i) {
    cumulative += buckets[i];
    absl::StrAppend(&out, name, "_bucket{le=\"", le(bounds[i]), "\"} ", cumulative, "\n");
  }
  cumulative += buckets[N];
  absl::StrAppend(&out, name, "_bucket{le=\"+Inf\"} ", cumulative, "\n", name, "_sum ",
                  sum, "\n", name, "_count ", cumulative, "\n");
}

}  // namespace

void Metrics::CountDelivery(DeliveryResult result) {
  deliveries_[static_cast<int>(result)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::CountUnreadableFields(int n) {
  if (n > 0) unreadable_fields_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}

void Metrics::CountFamilyMismatch(const std::string& subscription) {
  std::lock_guard<std::mutex> lock(mismatch_mu_);
  ++family_mismatches_[subscription];
}

uint64_t Metrics::family_mismatches(const std::string& subscription) const {
  std::lock_guard<std::mutex> lock(mismatch_mu_);
  auto it = family_mismatches_.find(subscription);
  return it == family_mismatches_.end() ? 0 : it->second;
}

uint64_t Metrics::deliveries(DeliveryResult result) const {
  return deliveries_[static_cast<int>(result)].load();
}

std::string Metrics::Render(const store::WriterStats& writer) const {
  std::string out;
  out +=
      "# HELP pdkarchive_deliveries_total Webhook deliveries by result.\n"
      "# TYPE pdkarchive_deliveries_total counter\n";
  for (size_t i = 0; i < std::size(kResultLabels); ++i) {
    absl::StrAppend(&out, "pdkarchive_deliveries_total{result=\"", kResultLabels[i],
                    "\"} ", deliveries_[i].load(), "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP pdkarchive_unknown_topics_total Stored deliveries whose topic the "
      "catalog does not know.\n# TYPE pdkarchive_unknown_topics_total counter\n"
      "pdkarchive_unknown_topics_total ",
      unknown_topics_.load(), "\n",
      "# HELP pdkarchive_unreadable_fields_total Payload fields left empty because "
      "of an unexpected type or value.\n"
      "# TYPE pdkarchive_unreadable_fields_total counter\n"
      "pdkarchive_unreadable_fields_total ",
      unreadable_fields_.load(), "\n",
      "# HELP pdkarchive_commit_failures_total Batches the store could not commit.\n"
      "# TYPE pdkarchive_commit_failures_total counter\n"
      "pdkarchive_commit_failures_total ",
      writer.failed_batches, "\n");
  {
    // Subscription names are [a-z0-9_-]: nothing to escape in the label.
    std::lock_guard<std::mutex> lock(mismatch_mu_);
    if (!family_mismatches_.empty()) {
      out +=
          "# HELP pdkarchive_family_mismatches_total Stored deliveries whose topic is of "
          "another family than their subscription.\n"
          "# TYPE pdkarchive_family_mismatches_total counter\n";
      for (const auto& [name, count] : family_mismatches_) {
        absl::StrAppend(&out, "pdkarchive_family_mismatches_total{subscription=\"", name, "\"} ",
                        count, "\n");
      }
    }
  }
  for (const store::EngineStat& stat : writer.engine) {
    const std::string name = absl::StrCat("pdkarchive_", stat.name);
    absl::StrAppend(&out, "# HELP ", name, " ", stat.help, "\n# TYPE ", name,
                    stat.kind == store::EngineStat::Kind::kCounter ? " counter\n" : " gauge\n",
                    name, " ", stat.value, "\n");
  }
  AppendHistogram(out, "pdkarchive_commit_batch_size", "Events per committed transaction.",
                  store::kBatchSizeBounds, writer.batch_size_buckets,
                  absl::StrCat(writer.rows), [](size_t bound) { return absl::StrCat(bound); });
  // Seconds, Prometheus' base unit: the bounds are whole milliseconds.
  AppendHistogram(out, "pdkarchive_commit_latency_seconds",
                  "Time to write and make durable one batch.", store::kCommitMsBounds,
                  writer.commit_ms_buckets,
                  // Exact to the microsecond (a double would round past 1e6 s).
                  absl::StrFormat("%d.%06d", writer.commit_micros / 1000000,
                                  writer.commit_micros % 1000000),
                  [](uint64_t ms) { return absl::StrCat(static_cast<double>(ms) / 1000); });
  return out;
}

std::string RenderSubscriptionChecks(
    const std::vector<store::Subscription>& subscriptions) {
  struct Gauge {
    const char* name;
    const char* help;
    std::function<std::string(const store::Subscription::Check&)> value;
  };
  const Gauge gauges[] = {
      {"pdkarchive_subscription_pdk_events",
       "Events PDK sent since registration (odometer), at the last check.",
       [](const store::Subscription::Check& c) { return absl::StrCat(c.pdk_events); }},
      {"pdkarchive_subscription_archived_events",
       "Distinct events archived since registration, at the last check.",
       [](const store::Subscription::Check& c) { return absl::StrCat(c.archived_events); }},
      {"pdkarchive_subscription_missing_events",
       "Events PDK sent that the archive lacked, at the last check.",
       [](const store::Subscription::Check& c) { return absl::StrCat(c.missing_events); }},
      {"pdkarchive_subscription_last_check_timestamp_seconds",
       "When the last `subscriptions check` ran (Unix seconds).",
       [](const store::Subscription::Check& c) {
         return absl::StrFormat("%d.%03d", c.checked_ms / 1000, c.checked_ms % 1000);
       }},
  };
  std::string out;
  bool any = false;
  for (const store::Subscription& s : subscriptions) any = any || s.last_check.has_value();
  if (!any) return out;
  for (const Gauge& g : gauges) {
    absl::StrAppend(&out, "# HELP ", g.name, " ", g.help, "\n# TYPE ", g.name, " gauge\n");
    // Subscription names are [a-z0-9_-]: nothing to escape in the label.
    for (const store::Subscription& s : subscriptions) {
      if (!s.last_check) continue;
      absl::StrAppend(&out, g.name, "{subscription=\"", s.name, "\"} ", g.value(*s.last_check),
                      "\n");
    }
  }
  return out;
}

}  // namespace pdkarchive::ingest
