#include "store/commit_feed.h"

#include <utility>
#include <vector>

namespace pdkarchive::store {

int LocalCommitFeed::Subscribe(Listener listener) {
  std::lock_guard lock(mu_);
  int id = next_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void LocalCommitFeed::Unsubscribe(int id) {
  // Taking publish_mu_ waits out a Publish that may be calling this listener.
  std::lock_guard publishing(publish_mu_);
  std::lock_guard lock(mu_);
  listeners_.erase(id);
}

void LocalCommitFeed::Publish(int64_t last_sequence) {
  std::lock_guard publishing(publish_mu_);
  std::vector<Listener*> to_call;
  {
    std::lock_guard lock(mu_);
    if (last_sequence > last_sequence_) last_sequence_ = last_sequence;
    to_call.reserve(listeners_.size());
    for (auto& [id, listener] : listeners_) to_call.push_back(&listener);
  }
  // Listeners are only erased under publish_mu_, so the pointers stay valid.
  for (Listener* listener : to_call) (*listener)(last_sequence);
}

int64_t LocalCommitFeed::last_sequence() const {
  std::lock_guard lock(mu_);
  return last_sequence_;
}

}  // namespace pdkarchive::store
