#include "cli/get_watch_commands.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/client_channel.h"
#include "cli/client_flags.h"
#include "cli/event_format.h"
#include "cli/flags.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"

namespace pdkarchive::cli {
namespace {

namespace v1 = ::pdk::archive::v1;

// The event as "name value" lines, then its raw payload under "raw:".
absl::StatusOr<std::string> EventText(const v1::Event& e) {
  absl::StatusOr<std::string> occurred = TableTime(e.occur_time());
  if (!occurred.ok()) return occurred.status();
  absl::StatusOr<std::string> received = TableTime(e.receive_time());
  if (!received.ok()) return received.status();
  std::string out;
  auto line = [&out](const char* name, const std::string& value) {
    absl::StrAppend(&out, TableCell(name, 15),
                    value.empty() ? "-" : PrintableText(value), "\n");
  };
  line("sequence", absl::StrCat(e.sequence()));
  line("event_id", e.event_id());
  line("topic", e.topic());
  line("family", e.family());
  line("occur_time", *occurred);
  line("receive_time", *received);
  line("panel_id", e.panel_id());
  line("door_id", e.has_door_id() ? absl::StrCat(e.door_id()) : "");
  line("door_name", e.door_name());
  line("person_id", e.has_person_id() ? absl::StrCat(e.person_id()) : "");
  // PDK 2.0's ids, shown only when the event has them.
  for (auto [name, value] : {std::pair{"device_id", &e.device_id()},
                             std::pair{"holder_id", &e.holder_id()},
                             std::pair{"holder_name", &e.holder_name()},
                             std::pair{"cloud_node_id", &e.cloud_node_id()},
                             std::pair{"system_id", &e.system_id()}}) {
    if (!value->empty()) line(name, *value);
  }
  line("ou_id", e.ou_id());
  line("actor_user_id", e.actor_user_id());
  line("subscription", e.subscription());
  absl::StrAppend(&out, "raw:\n", e.raw(),
                  e.raw().empty() || e.raw().back() != '\n' ? "\n" : "");
  return out;
}

// Holds SIGINT and SIGTERM back from every thread started after it (gRPC's
// included) and, once Start has run, takes them on its own thread: the
// current call (Follow) is cancelled and interrupted() turns true. Methods
// may be called from any thread; one per process.
class InterruptWatcher {
 public:
  InterruptWatcher() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &signals_, &old_);
  }
  ~InterruptWatcher() {
    stopping_.store(true);
    if (thread_.joinable()) thread_.join();
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

  void Start() {
    thread_ = std::thread([this] {
      const timespec tick{0, 100 * 1000 * 1000};
      while (!stopping_.load()) {
        if (::sigtimedwait(&signals_, nullptr, &tick) > 0) {
          std::lock_guard lock(mu_);
          interrupted_.store(true);
          if (current_ != nullptr) current_->TryCancel();
          return;
        }
      }
    });
  }

  // Makes `context` (null: none) the call a signal cancels; it must stay
  // alive until replaced. A context given after the signal is cancelled at
  // once.
  void Follow(grpc::ClientContext* context) {
    std::lock_guard lock(mu_);
    current_ = context;
    if (current_ != nullptr && interrupted_.load()) current_->TryCancel();
  }

  bool interrupted() const { return interrupted_.load(); }

  // Sleeps for up to `wait`, less when a signal comes.
  void Sleep(std::chrono::milliseconds wait) const {
    const auto end = std::chrono::steady_clock::now() + wait;
    while (!interrupted() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  sigset_t signals_;
  sigset_t old_;
  std::thread thread_;
  std::mutex mu_;
  grpc::ClientContext* current_ = nullptr;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::atomic<bool> interrupted_{false};
};

// True when a watch that ended with `status` (not cancelled by this
// process) may be resumed from the last event received: the connection was
// lost (a server restarting cancels the calls it still gets, a network
// break) or the server dropped a watcher that fell behind.
bool Resumable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::CANCELLED ||
         (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
          absl::StrContains(status.error_message(), "fell behind"));
}

}  // namespace

int RunGet(const std::vector<std::string>& args) {
  ConnectionFlags connection_flags;
  bool json = false;
  FlagSet flags(
      "pdk-archive get SEQ [flags]",
      "Prints the archived event with sequence number SEQ from a running\n"
      "pdk-archive server, with its raw payload exactly as received.");
  connection_flags.Declare(flags);
  flags.Bool("json", &json,
             "one JSON object (the raw payload in \"raw\") instead of text");
  std::vector<std::string> positional;
  if (auto exit = ParseOrExit("get", flags, args, &positional)) return *exit;
  int64_t sequence = 0;
  if (positional.size() != 1 || !absl::SimpleAtoi(positional[0], &sequence) ||
      sequence <= 0) {
    std::cerr << "pdk-archive get: wants one sequence number (a positive "
                 "integer), e.g. "
                 "`pdk-archive get 42`\n";
    return 2;
  }
  int exit_code = 0;
  std::unique_ptr<ServerConnection> connection =
      ConnectOrSay("get", connection_flags, &exit_code);
  if (connection == nullptr) return exit_code;
  v1::GetEventRequest request;
  request.set_sequence(sequence);
  v1::Event event;
  grpc::ClientContext context;
  connection->Authorize(context);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  grpc::Status status = connection->stub().GetEvent(&context, request, &event);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    std::cerr << "pdk-archive get: " << connection_flags.server
              << " holds no event with sequence " << sequence << "\n";
    return 1;
  }
  if (!status.ok()) return RpcFailed("get", connection_flags, status);
  absl::StatusOr<std::string> text = json ? JsonLine(event) : EventText(event);
  if (!text.ok()) {
    std::cerr << "pdk-archive get: event " << sequence
              << " cannot be printed: " << text.status().message() << "\n";
    return 1;
  }
  std::cout << *text << std::flush;
  if (!std::cout) {
    std::cerr << "pdk-archive get: writing to standard output failed\n";
    return 1;
  }
  return 0;
}

int RunWatch(const std::vector<std::string>& args) {
  ConnectionFlags connection_flags;
  FilterFlags filter_flags;
  int64_t after = 0;
  bool json = false;
  FlagSet flags(
      "pdk-archive watch [flags]",
      "Follows a running pdk-archive server's archive: prints the matching\n"
      "events after --after SEQ (all of them by default: use --after with the\n"
      "last sequence seen, or --from 15m, to start near now), then each new "
      "one\n"
      "as it is committed, in commit order, until interrupted (Ctrl-C or\n"
      "SIGTERM: exit status 0). Once the server has sent an event, a lost\n"
      "connection (a server restarting) is resumed after the last event\n"
      "received, saying so on stderr. Text columns are cut with \"…\"; --json\n"
      "prints them whole.");
  connection_flags.Declare(flags);
  filter_flags.Declare(flags);
  flags.Int("after", "SEQ", &after,
            "start after this sequence number (0 = from the start)");
  flags.Bool("json", &json, "one JSON object per line instead of a table");
  if (auto exit = ParseOrExit("watch", flags, args)) return *exit;
  if (after < 0) {
    std::cerr << "pdk-archive watch: --after must be >= 0\n";
    return 2;
  }
  v1::WatchEventsRequest request;
  if (!BuildFilterOrSay("watch", filter_flags, request.mutable_filter()))
    return 2;
  request.set_after_sequence(after);

  // Before the channel: gRPC's threads must inherit the blocked signals.
  InterruptWatcher interrupts;
  int exit_code = 0;
  std::unique_ptr<ServerConnection> connection =
      ConnectOrSay("watch", connection_flags, &exit_code);
  if (connection == nullptr) return exit_code;
  interrupts.Start();
  const EventTableLayout layout;
  bool header_printed = false;
  bool received = false;  // once the server has answered, losing it is resumed
  int64_t unprintable = 0;
  grpc::Status status;
  while (true) {
    grpc::ClientContext context;
    connection->Authorize(context);
    // A resumed watch waits for the server to come back.
    context.set_wait_for_ready(received);
    interrupts.Follow(&context);
    std::unique_ptr<grpc::ClientReader<v1::Event>> reader =
        connection->stub().WatchEvents(&context, request);
    bool write_failed = false;
    v1::Event event;
    while (reader->Read(&event)) {
      received = true;
      request.set_after_sequence(
          std::max(request.after_sequence(), event.sequence()));
      if (!json && !header_printed) {
        std::cout << EventTableHeader(layout);
        header_printed = true;
      }
      absl::StatusOr<std::string> line =
          json ? JsonLine(event) : EventTableRow(event, layout);
      if (!line.ok()) {
        std::cerr << "pdk-archive watch: event " << event.sequence()
                  << " cannot be printed: " << line.status().message() << "\n";
        ++unprintable;
        continue;
      }
      std::cout << *line << std::flush;
      if (!std::cout) {
        write_failed = true;
        context.TryCancel();
        break;
      }
    }
    status = reader->Finish();
    interrupts.Follow(nullptr);
    if (write_failed) {
      std::cerr << "pdk-archive watch: writing to standard output failed\n";
      return 1;
    }
    if (interrupts.interrupted() || !received || !Resumable(status)) break;
    std::cerr << "pdk-archive watch: " << connection_flags.server << ": "
              << status.error_message() << "; resuming after sequence "
              << request.after_sequence() << "\n";
    interrupts.Sleep(std::chrono::seconds(1));
    if (interrupts.interrupted()) break;
  }
  if (!interrupts.interrupted() && !status.ok()) {
    return RpcFailed("watch", connection_flags, status);
  }
  if (unprintable > 0) {
    std::cerr << "pdk-archive watch: " << unprintable
              << " events could not be printed\n";
    return 1;
  }
  return 0;
}

}  // namespace pdkarchive::cli
