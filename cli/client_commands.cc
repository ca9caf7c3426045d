#include "cli/client_commands.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "cli/client_channel.h"
#include "cli/client_flags.h"
#include "cli/event_format.h"
#include "cli/flags.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"

namespace pdkarchive::cli {
namespace {

namespace v1 = ::pdk::archive::v1;

// ---- Where `export -o FILE` writes. ----

// The partial file to remove if a signal ends the export; a signal handler can
// reach nothing else. Set when the partial file is created, before the
// handlers are installed (an export creates one).
char g_partial_path[PATH_MAX];
std::atomic<bool> g_partial_armed{false};
static_assert(std::atomic<bool>::is_always_lock_free, "read in a signal handler");

extern "C" void RemovePartialAndDie(int signal_number) {
  if (g_partial_armed.load()) ::unlink(g_partial_path);
  // SA_RESETHAND restored the default action: the signal ends the process as
  // it would have, once this handler returns.
  ::raise(signal_number);
}

std::string ErrnoText(int error) { return std::strerror(error); }

// The signals that remove the partial file before ending an export.
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, signal_number);
  return set;
}

// Holds SIGINT, SIGTERM and SIGHUP back from the calling thread while it
// lives; one that arrives meanwhile is delivered when it ends.
class StopSignalsHeld {
 public:
  StopSignalsHeld() {
    const sigset_t set = StopSignals();
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~StopSignalsHeld() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  StopSignalsHeld(const StopSignalsHeld&) = delete;
  StopSignalsHeld& operator=(const StopSignalsHeld&) = delete;

 private:
  sigset_t old_;
};

// An export's output file. A regular FILE (or one that does not exist yet) is
// written to a partial file created exclusively beside it (mkstemp: a new
// name, never a symlink followed) and renamed over FILE only once complete
// and synced, keeping FILE's mode (new files get 0600: the export is
// personal data). A symlink to a regular file has its target replaced, the
// link kept. FILE that is a device, FIFO or socket (/dev/null, /dev/stdout,
// a named pipe) is written straight: replacing it is never what was meant.
// A directory, or a symlink to nothing, is refused. Not thread-safe.
class OutputFile {
 public:
  static absl::StatusOr<std::unique_ptr<OutputFile>> Open(const std::string& path) {
    auto file = std::unique_ptr<OutputFile>(new OutputFile());
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      const int error = errno;
      struct stat link {};
      if (error == ENOENT && ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat(path, " is a symbolic link to nothing; not following it"));
      }
      if (error != ENOENT) {
        return absl::FailedPreconditionError(absl::StrCat(path, ": ", ErrnoText(error)));
      }
      file->target_ = path;
    } else if (S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is a directory; -o wants a file name"));
    } else if (!S_ISREG(st.st_mode)) {
      file->fd_ = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
      if (file->fd_ < 0) {
        return absl::FailedPreconditionError(absl::StrCat(path, ": ", ErrnoText(errno)));
      }
      file->target_ = path;
      return file;
    } else {
      std::error_code ec;
      const std::filesystem::path resolved = std::filesystem::canonical(path, ec);
      if (ec) return absl::FailedPreconditionError(absl::StrCat(path, ": ", ec.message()));
      file->target_ = resolved.string();
      file->existing_ = st;
    }
    std::string name = absl::StrCat(file->target_, ".partial-XXXXXX");
    if (name.size() >= sizeof g_partial_path) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": name too long"));
    }
    {
      // A signal taken after the file exists but before Arm would end the
      // process with the file left behind, so none is taken in between. The
      // export has started no thread yet (gRPC's come with the channel):
      // this thread is the only one a signal can go to.
      StopSignalsHeld held;
      file->fd_ = ::mkostemp(name.data(), O_CLOEXEC);
      if (file->fd_ < 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot create a file beside ", path, ": ", ErrnoText(errno)));
      }
      file->partial_ = name;
      file->Arm();
    }
    if (file->existing_.has_value()) {
      // Ownership is kept where the system lets us (root, or a group of ours).
      if (::fchown(file->fd_, file->existing_->st_uid, file->existing_->st_gid) != 0) {
        (void)::fchown(file->fd_, static_cast<uid_t>(-1), file->existing_->st_gid);
      }
    }
    const mode_t mode = file->existing_.has_value() ? (file->existing_->st_mode & 07777) : 0600;
    if (::fchmod(file->fd_, mode) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot set the mode of ", name, ": ", ErrnoText(errno)));
    }
    return file;
  }

  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Removes the partial file unless Commit renamed it.
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!partial_.empty()) {
      // Unlinked before disarming: a signal in between (on any thread) then
      // finds nothing left to remove, rather than a file it may not touch.
      ::unlink(partial_.c_str());
      g_partial_armed.store(false);
    }
  }

  // The file the user named (after symlinks, when it is replaced).
  const std::string& target() const { return target_; }

  absl::Status Write(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return absl::DataLossError(absl::StrCat("writing ", Name(), ": ", ErrnoText(errno)));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  // Syncs the data and puts it in place. Fails, leaving FILE as it is, when
  // FILE changed since Open (another export finished first: each reported
  // file must be the one written); the partial file is then removed.
  absl::Status Commit() {
    const bool replacing = !partial_.empty();
    if (::fsync(fd_) != 0 && (replacing || (errno != EINVAL && errno != EROFS &&
                                            errno != ENOTSUP))) {
      return absl::DataLossError(absl::StrCat("syncing ", Name(), ": ", ErrnoText(errno)));
    }
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      return absl::DataLossError(absl::StrCat("closing ", Name(), ": ", ErrnoText(errno)));
    }
    if (!replacing) return absl::OkStatus();
    if (existing_.has_value()) {
      struct stat now {};
      if (::lstat(target_.c_str(), &now) != 0 || now.st_dev != existing_->st_dev ||
          now.st_ino != existing_->st_ino || now.st_size != existing_->st_size ||
          now.st_mtim.tv_sec != existing_->st_mtim.tv_sec ||
          now.st_mtim.tv_nsec != existing_->st_mtim.tv_nsec) {
        return Conflict();
      }
      if (::rename(partial_.c_str(), target_.c_str()) != 0) {
        return absl::DataLossError(
            absl::StrCat("renaming ", partial_, " to ", target_, ": ", ErrnoText(errno)));
      }
    } else if (absl::Status s = RenameNoReplace(); !s.ok()) {
      return s;
    }
    partial_.clear();
    g_partial_armed.store(false);
    const std::string dir = std::filesystem::path(target_).parent_path().string();
    const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const bool synced = dir_fd >= 0 && ::fsync(dir_fd) == 0;
    const int error = errno;
    if (dir_fd >= 0) ::close(dir_fd);
    if (!synced) {
      return absl::DataLossError(absl::StrCat(target_, " is complete but its directory ",
                                              "could not be synced: ", ErrnoText(error)));
    }
    return absl::OkStatus();
  }

 private:
  OutputFile() = default;

  const std::string& Name() const { return partial_.empty() ? target_ : partial_; }

  // Lets a SIGINT, SIGTERM or SIGHUP remove the partial file before ending
  // the process. A signal the caller ignores (`nohup` ignores SIGHUP) stays
  // ignored.
  void Arm() {
    std::memcpy(g_partial_path, partial_.c_str(), partial_.size() + 1);
    g_partial_armed.store(true);  // after the path is in place: the handler reads it
    struct sigaction action {};
    action.sa_handler = RemovePartialAndDie;
    action.sa_flags = static_cast<int>(SA_RESETHAND);
    action.sa_mask = StopSignals();  // one handler at a time
    for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (::sigaction(signal_number, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
        continue;
      }
      ::sigaction(signal_number, &action, nullptr);
    }
  }

  // Puts the partial file at `target_`, which did not exist at Open, unless
  // something has appeared there since.
  absl::Status RenameNoReplace() {
    if (::renameat2(AT_FDCWD, partial_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE) ==
        0) {
      return absl::OkStatus();
    }
    if (errno == EEXIST) return Conflict();
    if (errno != EINVAL && errno != ENOSYS) {
      return absl::DataLossError(
          absl::StrCat("renaming ", partial_, " to ", target_, ": ", ErrnoText(errno)));
    }
    // A file system without RENAME_NOREPLACE: link() refuses an existing name too.
    if (::link(partial_.c_str(), target_.c_str()) != 0) {
      if (errno == EEXIST) return Conflict();
      return absl::DataLossError(
          absl::StrCat("linking ", partial_, " to ", target_, ": ", ErrnoText(errno)));
    }
    ::unlink(partial_.c_str());
    return absl::OkStatus();
  }

  absl::Status Conflict() const {
    return absl::AbortedError(absl::StrCat(
        target_, " changed while this export ran (another export to the same file?); "
                 "left it as it is and wrote nothing"));
  }

  int fd_ = -1;
  std::string target_;
  std::string partial_;                 // empty when writing straight to target_
  std::optional<struct stat> existing_;  // target_ as it was at Open, if it existed
};

}  // namespace

int RunEvents(const std::vector<std::string>& args) {
  ConnectionFlags connection_flags;
  FilterFlags filter_flags;
  int64_t limit = 100;
  bool json = false;
  bool descending = false;
  FlagSet flags("pdk-archive events [flags]",
                "Lists archived events from a running pdk-archive server, oldest first\n"
                "(--desc for newest first), as a table or as JSON lines (--json). The\n"
                "table's text columns are as wide as the first page needs (up to a cap);\n"
                "longer values are cut with \"…\" (--json prints them whole).");
  connection_flags.Declare(flags);
  filter_flags.Declare(flags);
  flags.Int("limit", "N", &limit, "print at most N events; 0 = all");
  flags.Bool("desc", &descending, "newest first");
  flags.Bool("json", &json, "one JSON object per line instead of a table");
  if (auto exit = ParseOrExit("events", flags, args)) return *exit;
  if (limit < 0) {
    std::cerr << "pdk-archive events: --limit must be >= 0\n";
    return 2;
  }
  v1::ListEventsRequest request;
  if (!BuildFilterOrSay("events", filter_flags, request.mutable_filter())) return 2;
  request.set_descending(descending);
  int exit_code = 0;
  std::unique_ptr<ServerConnection> connection =
      ConnectOrSay("events", connection_flags, &exit_code);
  if (connection == nullptr) return exit_code;
  // The table's header waits for the first reply: its widths come from it,
  // and a failed connection prints nothing on stdout.
  std::optional<EventTableLayout> layout;
  // A row that cannot be written (a time RFC 3339 cannot express) is reported
  // on stderr and skipped; the exit status is then 1.
  int64_t printed = 0;
  int64_t unprintable = 0;
  auto report = [&](const v1::Event& e, const absl::Status& s) {
    std::cerr << "pdk-archive events: event " << e.sequence() << " cannot be printed: "
              << s.message() << "\n";
    ++unprintable;
  };
  // Pages shrink while one is over --max-reply-mib, down to a single event.
  int64_t page_cap = 1000;
  while (limit == 0 || printed + unprintable < limit) {
    const int64_t want =
        limit == 0 ? page_cap : std::min<int64_t>(page_cap, limit - printed - unprintable);
    request.set_page_size(static_cast<int32_t>(want));
    v1::ListEventsResponse response;
    grpc::ClientContext context;
    connection->Authorize(context);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status status = connection->stub().ListEvents(&context, request, &response);
    if (!status.ok() && ReplyOverClientLimit(status) && want > 1) {
      page_cap = want / 2;
      continue;
    }
    if (!status.ok()) {
      std::cout << std::flush;
      return RpcFailed("events", connection_flags, status);
    }
    if (!json && !layout.has_value()) {
      layout = LayoutFor(response.events());
      std::cout << EventTableHeader(*layout);
    }
    for (const v1::Event& e : response.events()) {
      absl::StatusOr<std::string> line = json ? JsonLine(e) : EventTableRow(e, *layout);
      if (!line.ok()) {
        report(e, line.status());
        continue;
      }
      std::cout << *line;
      ++printed;
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  std::cout << std::flush;
  if (!std::cout) {
    std::cerr << "pdk-archive events: writing to standard output failed\n";
    return 1;
  }
  if (unprintable > 0) {
    std::cerr << "pdk-archive events: printed " << printed << " events; " << unprintable
              << " could not be printed\n";
    return 1;
  }
  return 0;
}

int RunCount(const std::vector<std::string>& args) {
  ConnectionFlags connection_flags;
  FilterFlags filter_flags;
  std::vector<std::string> by;
  bool json = false;
  FlagSet flags("pdk-archive count [--by DIM,...] [flags]",
                "Counts archived events on a running pdk-archive server, grouped by any of\n"
                "topic, panel, door, person, hour, day (hours and days in UTC).");
  connection_flags.Declare(flags);
  filter_flags.Declare(flags);
  flags.List("by", "DIMS", &by, "group by these, e.g. door,day");
  flags.Bool("json", &json, "one JSON object per group instead of a table");
  if (auto exit = ParseOrExit("count", flags, args)) return *exit;
  v1::CountEventsRequest request;
  if (!BuildFilterOrSay("count", filter_flags, request.mutable_filter())) return 2;
  static const std::pair<const char*, v1::Dimension> kDimensions[] = {
      {"topic", v1::DIMENSION_TOPIC}, {"panel", v1::DIMENSION_PANEL},
      {"door", v1::DIMENSION_DOOR},   {"person", v1::DIMENSION_PERSON},
      {"hour", v1::DIMENSION_HOUR},   {"day", v1::DIMENSION_DAY}};
  for (const std::string& name : by) {
    bool found = false;
    for (const auto& [text, dim] : kDimensions) {
      if (name == text) {
        request.add_group_by(dim);
        found = true;
      }
    }
    if (!found) {
      std::cerr << "pdk-archive count: --by: unknown dimension \"" << name
                << "\" (want topic, panel, door, person, hour or day)\n";
      return 2;
    }
  }
  int exit_code = 0;
  std::unique_ptr<ServerConnection> connection =
      ConnectOrSay("count", connection_flags, &exit_code);
  if (connection == nullptr) return exit_code;
  v1::CountEventsResponse response;
  grpc::ClientContext context;
  connection->Authorize(context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  grpc::Status status = connection->stub().CountEvents(&context, request, &response);
  if (!status.ok()) return RpcFailed("count", connection_flags, status);
  if (json) {
    for (const v1::Group& g : response.groups()) {
      absl::StatusOr<std::string> line = JsonLine(g);
      if (!line.ok()) {  // a Group holds no times; kept total all the same
        std::cerr << "pdk-archive count: a group cannot be printed: "
                  << line.status().message() << "\n";
        return 1;
      }
      std::cout << *line;
    }
    std::cout << std::flush;
    return std::cout ? 0 : 1;
  }
  // One reply holds every group: each column is as wide as its widest key.
  std::vector<size_t> widths;
  for (const std::string& name : by) widths.push_back(name.size() + 2);
  for (const v1::Group& g : response.groups()) {
    for (int i = 0; i < g.key_size() && static_cast<size_t>(i) < widths.size(); ++i) {
      widths[static_cast<size_t>(i)] =
          std::max(widths[static_cast<size_t>(i)], TextWidth(g.key(i)) + 2);
    }
  }
  for (size_t i = 0; i < by.size(); ++i) std::cout << TableCell(by[i], widths[i], true);
  std::cout << "COUNT\n";
  for (const v1::Group& g : response.groups()) {
    for (int i = 0; i < g.key_size(); ++i) {
      const size_t width = static_cast<size_t>(i) < widths.size() ? widths[static_cast<size_t>(i)] : 2;
      std::cout << TableCell(g.key(i).empty() ? "-" : g.key(i), width, true);
    }
    std::cout << g.count() << "\n";
  }
  if (!by.empty()) std::cout << "total " << response.total() << "\n";
  return 0;
}

int RunExport(const std::vector<std::string>& args) {
  ConnectionFlags connection_flags;
  FilterFlags filter_flags;
  std::string output = "-";
  bool include_raw = false;
  FlagSet flags("pdk-archive export [-o FILE] [flags]",
                "Exports archived events from a running pdk-archive server as RFC 4180\n"
                "CSV, oldest first. A regular FILE is replaced only once the export is\n"
                "complete and on disk (its mode kept; a new FILE is created 0600), and is\n"
                "left as it was on any failure; a device or FIFO (/dev/stdout) is written\n"
                "straight.");
  connection_flags.Declare(flags);
  filter_flags.Declare(flags);
  flags.String("output", "FILE", &output, "where to write the CSV; - = standard output");
  flags.Alias('o', "output");
  flags.Bool("raw", &include_raw, "add the raw payload as the last column");
  if (auto exit = ParseOrExit("export", flags, args)) return *exit;
  v1::ExportEventsRequest request;
  if (!BuildFilterOrSay("export", filter_flags, request.mutable_filter())) return 2;
  request.set_include_raw(include_raw);
  const bool to_stdout = output == "-";
  std::unique_ptr<OutputFile> file;
  if (!to_stdout) {
    absl::StatusOr<std::unique_ptr<OutputFile>> opened = OutputFile::Open(output);
    if (!opened.ok()) {
      std::cerr << "pdk-archive export: " << opened.status().message() << "\n";
      return 1;
    }
    file = *std::move(opened);
  }
  auto write = [&](std::string_view data) -> absl::Status {
    if (file != nullptr) return file->Write(data);
    std::cout.write(data.data(), static_cast<std::streamsize>(data.size()));
    return std::cout ? absl::OkStatus()
                     : absl::DataLossError("writing to standard output failed");
  };
  const bool progress = ::isatty(STDERR_FILENO) != 0;

  // After the file: the channel starts gRPC's threads (see OutputFile::Open).
  int exit_code = 0;
  std::unique_ptr<ServerConnection> connection =
      ConnectOrSay("export", connection_flags, &exit_code);
  if (connection == nullptr) return exit_code;
  grpc::ClientContext context;
  connection->Authorize(context);
  auto reader = connection->stub().ExportEvents(&context, request);
  v1::ExportEventsResponse chunk;
  uint64_t bytes = 0;
  uint64_t lines = 0;
  absl::Status written;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  while (reader->Read(&chunk)) {
    const std::string& csv = chunk.csv_chunk();
    written = write(csv);
    if (!written.ok()) {
      context.TryCancel();
      break;
    }
    bytes += csv.size();
    for (char c : csv) lines += c == '\n' ? 1 : 0;
    const auto now = std::chrono::steady_clock::now();
    if (progress && now - last_report > std::chrono::milliseconds(250)) {
      last_report = now;
      std::cerr << "\rexporting: " << (lines > 0 ? lines - 1 : 0) << " rows, "
                << bytes / 1024 << " KiB" << std::flush;
    }
  }
  grpc::Status status = reader->Finish();
  if (progress) std::cerr << "\r\033[K";
  // On every failure `file` goes out of scope with its partial file removed.
  if (!written.ok()) {
    std::cerr << "pdk-archive export: " << written.message() << "\n";
    return 1;
  }
  if (!status.ok()) return RpcFailed("export", connection_flags, status);
  if (file != nullptr) {
    if (absl::Status s = file->Commit(); !s.ok()) {
      std::cerr << "pdk-archive export: " << s.message() << "\n";
      return 1;
    }
  } else if (!std::cout.flush()) {
    std::cerr << "pdk-archive export: writing to standard output failed\n";
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress || !to_stdout) {
    std::cerr << "exported " << (lines > 0 ? lines - 1 : 0) << " rows (" << bytes
              << " bytes) in " << std::fixed << std::setprecision(1) << seconds << " s"
              << (to_stdout ? "" : " to " + output) << "\n";
  }
  return 0;
}

}  // namespace pdkarchive::cli
