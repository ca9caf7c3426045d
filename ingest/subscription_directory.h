// SubscriptionDirectory: serve's in-memory copy of the archive's
// subscriptions, which POST /webhooks/NAME checks deliveries against. A
// thread of its own reloads it from the archive every `interval`, so a
// change made by `pdk-archive subscriptions` on any node reaches this one
// within interval plus one read. Secrets stay in memory and are never logged.
#ifndef PDKARCHIVE_INGEST_SUBSCRIPTION_DIRECTORY_H_
#define PDKARCHIVE_INGEST_SUBSCRIPTION_DIRECTORY_H_

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/subscription_store.h"

namespace pdkarchive::ingest {

// Thread-safe.
class SubscriptionDirectory {
 public:
  // Loads the subscriptions once (failing with the store's error) and starts
  // reloading them every `interval`. `store` must outlive the directory. A
  // failed reload keeps the last good copy and is reported on stderr (once
  // per run of failures).
  static absl::StatusOr<std::unique_ptr<SubscriptionDirectory>> Start(
      store::SubscriptionStore& store, std::chrono::milliseconds interval);

  // A directory with a fixed content and no thread (for tests).
  explicit SubscriptionDirectory(
      const std::vector<store::Subscription>& subscriptions);

  ~SubscriptionDirectory();
  SubscriptionDirectory(const SubscriptionDirectory&) = delete;
  SubscriptionDirectory& operator=(const SubscriptionDirectory&) = delete;

  // The live subscription named `name`, or nullopt.
  std::optional<store::Subscription> Find(const std::string& name) const;

  // Every live subscription, by name (for /metrics).
  std::vector<store::Subscription> All() const;

 private:
  SubscriptionDirectory(store::SubscriptionStore* store,
                        std::chrono::milliseconds interval);
  absl::Status Reload();
  void Run();

  store::SubscriptionStore* const store_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::shared_ptr<const std::map<std::string, store::Subscription>> by_name_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_SUBSCRIPTION_DIRECTORY_H_
