#include "store/postgres/pg_commit_feed.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <charconv>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/postgres/pg_store.h"

namespace pdkarchive::store::pg {
namespace {

constexpr char kSelectLastSequence[] = "SELECT last_sequence FROM archive_state WHERE id = 1";

}  // namespace

absl::StatusOr<std::unique_ptr<PgCommitFeed>> PgCommitFeed::Start(const ConnectOptions& connect) {
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return absl::InternalError(
        absl::StrCat("commit feed: eventfd: ", std::system_category().message(errno)));
  }
  std::unique_ptr<PgCommitFeed> feed(new PgCommitFeed(connect, wake_fd));
  // Connecting here gives last_sequence() its value before anyone asks; when
  // it fails the thread keeps trying.
  if (feed->Connect()) {
    if (!feed->CatchUp()) {
      std::lock_guard lock(feed->conn_mu_);
      feed->conn_.reset();
    }
  }
  try {
    feed->thread_ = std::thread([f = feed.get()] { f->Run(); });
  } catch (const std::system_error& e) {
    return absl::InternalError(absl::StrCat("commit feed: cannot start its thread: ", e.what()));
  }
  return feed;
}

PgCommitFeed::PgCommitFeed(ConnectOptions connect, int wake_fd)
    : connect_(std::move(connect)), wake_fd_(wake_fd) {}

PgCommitFeed::~PgCommitFeed() {
  stop_.store(true);
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  {
    std::lock_guard lock(conn_mu_);
    if (conn_ != nullptr) conn_->Cancel();
  }
  if (thread_.joinable()) thread_.join();
  close(wake_fd_);
}

int PgCommitFeed::Subscribe(Listener listener) {
  std::lock_guard lock(mu_);
  const int id = next_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void PgCommitFeed::Unsubscribe(int id) {
  std::lock_guard publishing(publish_mu_);
  std::lock_guard lock(mu_);
  listeners_.erase(id);
}

void PgCommitFeed::Publish(int64_t last_sequence) { Deliver(last_sequence); }

int64_t PgCommitFeed::last_sequence() const {
  std::lock_guard lock(mu_);
  return last_sequence_;
}

void PgCommitFeed::Deliver(int64_t sequence) {
  std::lock_guard publishing(publish_mu_);
  std::vector<Listener*> to_call;
  {
    std::lock_guard lock(mu_);
    if (sequence <= last_sequence_) return;
    last_sequence_ = sequence;
    to_call.reserve(listeners_.size());
    for (auto& [id, listener] : listeners_) to_call.push_back(&listener);
  }
  // Listeners are erased only under publish_mu_: the pointers stay valid.
  for (Listener* listener : to_call) (*listener)(sequence);
}

bool PgCommitFeed::Connect() {
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(connect_);
  if (!conn.ok()) return false;
  if (!(*conn)->Exec(absl::StrCat("LISTEN ", kCommitChannel)).ok()) return false;
  std::lock_guard lock(conn_mu_);
  conn_ = *std::move(conn);
  connections_.fetch_add(1);
  return true;
}

bool PgCommitFeed::CatchUp() {
  absl::StatusOr<Result> last = conn_->Query(kSelectLastSequence);
  if (!last.ok() || last->rows() != 1) return false;
  Deliver(last->int64(0, 0));
  return DrainNotifications();
}

bool PgCommitFeed::DrainNotifications() {
  pg_conn* raw = conn_->raw();
  if (PQconsumeInput(raw) == 0) return false;
  int64_t newest = 0;
  while (PGnotify* notify = PQnotifies(raw)) {
    const std::string_view payload(notify->extra);
    int64_t sequence = 0;
    const auto [end, error] =
        std::from_chars(payload.data(), payload.data() + payload.size(), sequence);
    if (error == std::errc() && end == payload.data() + payload.size() && sequence > newest) {
      newest = sequence;
    }
    PQfreemem(notify);
  }
  if (newest > 0) Deliver(newest);
  return conn_->healthy();
}

bool PgCommitFeed::Wait(std::chrono::milliseconds timeout, int socket) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {socket, POLLIN, 0}};
  const nfds_t count = socket >= 0 ? 2 : 1;
  const int ms = static_cast<int>(std::max<int64_t>(0, timeout.count()));
  (void)poll(fds, count, ms);
  return stop_.load();
}

void PgCommitFeed::Run() {
  using Clock = std::chrono::steady_clock;
  auto next_catch_up = Clock::now() + kCatchUpInterval;
  auto drop = [this] {
    std::lock_guard lock(conn_mu_);
    conn_.reset();
  };
  while (!stop_.load()) {
    if (conn_ == nullptr) {
      if (!Connect()) {
        if (Wait(kReconnectDelay, -1)) return;
        continue;
      }
      next_catch_up = Clock::now();  // what was missed while away
    }
    if (Clock::now() >= next_catch_up) {
      if (!CatchUp()) {
        drop();
        continue;
      }
      next_catch_up = Clock::now() + kCatchUpInterval;
    }
    if (!DrainNotifications()) {
      drop();
      continue;
    }
    const auto timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_catch_up - Clock::now()) +
        std::chrono::milliseconds(1);
    if (Wait(timeout, PQsocket(conn_->raw()))) return;
  }
}

}  // namespace pdkarchive::store::pg
