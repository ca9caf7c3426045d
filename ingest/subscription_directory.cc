#include "ingest/subscription_directory.h"

#include <iostream>
#include <utility>

namespace pdkarchive::ingest {

absl::StatusOr<std::unique_ptr<SubscriptionDirectory>>
SubscriptionDirectory::Start(store::SubscriptionStore& store,
                             std::chrono::milliseconds interval) {
  std::unique_ptr<SubscriptionDirectory> directory(
      new SubscriptionDirectory(&store, interval));
  if (absl::Status s = directory->Reload(); !s.ok()) return s;
  directory->thread_ = std::thread([d = directory.get()] { d->Run(); });
  return directory;
}

SubscriptionDirectory::SubscriptionDirectory(store::SubscriptionStore* store,
                                             std::chrono::milliseconds interval)
    : store_(store),
      interval_(interval),
      by_name_(std::make_shared<
               const std::map<std::string, store::Subscription>>()) {}

SubscriptionDirectory::SubscriptionDirectory(
    const std::vector<store::Subscription>& subscriptions)
    : store_(nullptr), interval_(0) {
  auto by_name = std::make_shared<std::map<std::string, store::Subscription>>();
  for (const store::Subscription& s : subscriptions) (*by_name)[s.name] = s;
  by_name_ = std::move(by_name);
}

SubscriptionDirectory::~SubscriptionDirectory() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<store::Subscription> SubscriptionDirectory::Find(
    const std::string& name) const {
  std::shared_ptr<const std::map<std::string, store::Subscription>> by_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_name = by_name_;
  }
  auto it = by_name->find(name);
  if (it == by_name->end()) return std::nullopt;
  return it->second;
}

std::vector<store::Subscription> SubscriptionDirectory::All() const {
  std::shared_ptr<const std::map<std::string, store::Subscription>> by_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_name = by_name_;
  }
  std::vector<store::Subscription> all;
  all.reserve(by_name->size());
  for (const auto& [name, s] : *by_name) all.push_back(s);
  return all;
}

absl::Status SubscriptionDirectory::Reload() {
  absl::StatusOr<std::vector<store::Subscription>> subscriptions =
      store_->ListSubscriptions();
  if (!subscriptions.ok()) return subscriptions.status();
  auto by_name = std::make_shared<std::map<std::string, store::Subscription>>();
  for (store::Subscription& s : *subscriptions) {
    std::string name = s.name;
    (*by_name)[std::move(name)] = std::move(s);
  }
  std::lock_guard<std::mutex> lock(mu_);
  by_name_ = std::move(by_name);
  return absl::OkStatus();
}

void SubscriptionDirectory::Run() {
  bool failing = false;
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, interval_, [this] { return stop_; })) {
    lock.unlock();
    absl::Status s = Reload();
    if (!s.ok() && !failing) {
      std::cerr << "pdk-archive serve: cannot reload subscriptions (keeping "
                   "the last ones): "
                << s.message() << "\n";
    } else if (s.ok() && failing) {
      std::cerr << "pdk-archive serve: subscriptions reloaded again\n";
    }
    failing = !s.ok();
    lock.lock();
  }
}

}  // namespace pdkarchive::ingest
