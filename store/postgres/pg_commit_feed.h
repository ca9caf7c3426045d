// PgCommitFeed: the commits of every node writing one PostgreSQL archive.
// This node's writer publishes its own commits at once (as LocalCommitFeed
// does); a thread of the feed, on a connection of its own, LISTENs on the
// channel every append NOTIFYs (pg_store.h) and, every kCatchUpInterval,
// reads archive_state.last_sequence, so a notification lost with a broken
// connection is made up within about a second once the server answers again.
#ifndef PDKARCHIVE_STORE_POSTGRES_PG_COMMIT_FEED_H_
#define PDKARCHIVE_STORE_POSTGRES_PG_COMMIT_FEED_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "store/commit_feed.h"
#include "store/postgres/pg_connection.h"

namespace pdkarchive::store::pg {

// Thread-safe. Listeners run on the publishing thread (this node's writer,
// or the feed's own thread) one call at a time, always with a sequence
// larger than any they were given before; a sequence known already calls
// nobody.
class PgCommitFeed final : public CommitFeed {
 public:
  static constexpr std::chrono::milliseconds kCatchUpInterval{1000};
  // How long the thread waits before connecting again after a failure.
  static constexpr std::chrono::milliseconds kReconnectDelay{250};

  // Starts the listening thread, which connects with `connect` (and keeps
  // reconnecting while the server is away). last_sequence() starts at the
  // archive's last_sequence when it can be read now, else 0. Fails only when
  // the thread cannot be started (Internal).
  static absl::StatusOr<std::unique_ptr<PgCommitFeed>> Start(const ConnectOptions& connect);

  // Stops the thread: at once when it waits, after the statement or the
  // connection attempt in progress otherwise (a statement is cancelled).
  ~PgCommitFeed() override;
  PgCommitFeed(const PgCommitFeed&) = delete;
  PgCommitFeed& operator=(const PgCommitFeed&) = delete;

  int Subscribe(Listener listener) override;
  void Unsubscribe(int id) override;
  void Publish(int64_t last_sequence) override;
  int64_t last_sequence() const override;

  // Times the listening connection was (re)opened.
  int64_t connections() const { return connections_.load(); }

 private:
  PgCommitFeed(ConnectOptions connect, int wake_fd);
  void Run();
  // Connects and LISTENs; false when the server cannot be reached.
  bool Connect();
  // Reads archive_state.last_sequence and delivers it; false when the
  // connection failed.
  bool CatchUp();
  // Delivers every pending notification; false when the connection failed.
  bool DrainNotifications();
  // Waits up to `timeout` for the stop signal (or, with a connection, for
  // its socket); true when stopping.
  bool Wait(std::chrono::milliseconds timeout, int socket);
  // Records `sequence` and calls the listeners when it is new.
  void Deliver(int64_t sequence);

  const ConnectOptions connect_;
  const int wake_fd_;  // an eventfd the destructor signals
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> connections_{0};

  // Guards conn_ for Cancel from the destructor; the thread owns its use.
  std::mutex conn_mu_;
  std::unique_ptr<Connection> conn_;

  mutable std::mutex mu_;
  // Held while listeners run: calls are one at a time, in rising order, and
  // Unsubscribe waits out a running call.
  std::mutex publish_mu_;
  std::map<int, Listener> listeners_;
  int next_id_ = 1;
  int64_t last_sequence_ = 0;

  std::thread thread_;
};

}  // namespace pdkarchive::store::pg

#endif  // PDKARCHIVE_STORE_POSTGRES_PG_COMMIT_FEED_H_
