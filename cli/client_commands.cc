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

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/flags.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

namespace v1 = ::pdk::archive::v1;

// ---- JSON, written so that any value the server sends prints. ----

// Appends `text` as a JSON string (RFC 8259): quotes, backslashes, control
// characters, DEL, U+2028 and U+2029 escaped; ill-formed UTF-8 replaced with
// U+FFFD (store::SanitizeUtf8), so the line is valid UTF-8 JSON whatever the
// server sent.
void AppendJsonString(std::string_view raw, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string repaired;
  std::string_view text = raw;
  if (!store::IsValidUtf8(raw)) {
    repaired = store::SanitizeUtf8(raw);
    text = repaired;
  }
  out.push_back('"');
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    // U+2028 and U+2029 are valid JSON but end lines in JavaScript.
    if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(text[i + 2]) & 0xFE) == 0xA8) {
      out.append(static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
      i += 2;
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

absl::Status AppendJsonMessage(const google::protobuf::Message& message, std::string& out);

// Appends one value of `field` (element `index` of a repeated field, or the
// singular value when `index` < 0) as protobuf's JSON mapping writes it:
// 64-bit integers as quoted decimals, enums by name, bytes as base64,
// Timestamps as RFC 3339 strings. InvalidArgument for a Timestamp that RFC
// 3339 cannot express.
absl::Status AppendJsonValue(const google::protobuf::Message& message,
                             const google::protobuf::FieldDescriptor& field, int index,
                             std::string& out) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection& r = *message.GetReflection();
  const bool rep = index >= 0;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(&out, rep ? r.GetRepeatedInt32(message, &field, index)
                                : r.GetInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(&out, rep ? r.GetRepeatedUInt32(message, &field, index)
                                : r.GetUInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(&out, "\"",
                      rep ? r.GetRepeatedInt64(message, &field, index)
                          : r.GetInt64(message, &field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(&out, "\"",
                      rep ? r.GetRepeatedUInt64(message, &field, index)
                          : r.GetUInt64(message, &field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const double value =
          field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
              ? (rep ? r.GetRepeatedDouble(message, &field, index) : r.GetDouble(message, &field))
              : (rep ? r.GetRepeatedFloat(message, &field, index) : r.GetFloat(message, &field));
      if (std::isnan(value)) {
        out.append("\"NaN\"");
      } else if (std::isinf(value)) {
        out.append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      } else {
        char text[32];
        std::snprintf(text, sizeof text, "%.17g", value);
        out.append(text);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      out.append((rep ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field))
                     ? "true"
                     : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number = rep ? r.GetRepeatedEnumValue(message, &field, index)
                             : r.GetEnumValue(message, &field);
      const google::protobuf::EnumValueDescriptor* value =
          field.enum_type()->FindValueByNumber(number);
      if (value == nullptr) {
        absl::StrAppend(&out, number);
      } else {
        AppendJsonString(value->name(), out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& value =
          rep ? r.GetRepeatedStringReference(message, &field, index, &scratch)
              : r.GetStringReference(message, &field, &scratch);
      if (field.type() == FieldDescriptor::TYPE_BYTES) {
        AppendJsonString(absl::Base64Escape(value), out);
      } else {
        AppendJsonString(value, out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const google::protobuf::Message& sub =
          rep ? r.GetRepeatedMessage(message, &field, index) : r.GetMessage(message, &field);
      if (sub.GetDescriptor()->full_name() != "google.protobuf.Timestamp") {
        return AppendJsonMessage(sub, out);
      }
      const google::protobuf::Descriptor& type = *sub.GetDescriptor();
      const google::protobuf::Reflection& sub_r = *sub.GetReflection();
      const int64_t seconds = sub_r.GetInt64(sub, type.FindFieldByNumber(1));
      const int64_t nanos = sub_r.GetInt32(sub, type.FindFieldByNumber(2));
      std::string text;
      if (absl::Status s = timeutil::AppendRfc3339(seconds, nanos, timeutil::Fraction::kAsNeeded, text); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(field.name(), ": ", s.message()));
      }
      AppendJsonString(text, out);
      break;
    }
  }
  return absl::OkStatus();
}

// Appends `message` as one JSON object in protobuf's JSON mapping with proto
// field names: the fields that are set, in field-number order (maps, which
// our messages do not use, come out as arrays of {"key","value"} objects).
// Always valid JSON when it succeeds; InvalidArgument (with `out` partly
// written) when a time cannot be written.
absl::Status AppendJsonMessage(const google::protobuf::Message& message, std::string& out) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  out.push_back('{');
  for (size_t i = 0; i < fields.size(); ++i) {
    const google::protobuf::FieldDescriptor& field = *fields[i];
    if (i > 0) out.push_back(',');
    AppendJsonString(field.name(), out);
    out.push_back(':');
    if (!field.is_repeated()) {
      if (absl::Status s = AppendJsonValue(message, field, -1, out); !s.ok()) return s;
      continue;
    }
    out.push_back('[');
    const int size = message.GetReflection()->FieldSize(message, &field);
    for (int j = 0; j < size; ++j) {
      if (j > 0) out.push_back(',');
      if (absl::Status s = AppendJsonValue(message, field, j, out); !s.ok()) return s;
    }
    out.push_back(']');
  }
  out.push_back('}');
  return absl::OkStatus();
}

// One JSON line for `message`, or why it cannot be written.
absl::StatusOr<std::string> JsonLine(const google::protobuf::Message& message) {
  std::string line;
  if (absl::Status s = AppendJsonMessage(message, line); !s.ok()) return s;
  line.push_back('\n');
  return line;
}

// The table's time column: RFC 3339 with milliseconds.
absl::StatusOr<std::string> TableTime(const google::protobuf::Timestamp& ts) {
  std::string text;
  if (absl::Status s = timeutil::AppendRfc3339(ts.seconds(), ts.nanos(), timeutil::Fraction::kMillis, text); !s.ok()) return s;
  return text;
}

// The largest reply the clients accept by default. gRPC's own default, 4 MiB,
// is too small for a count by person and hour over a large archive; the
// server bounds what it sends, this only bounds what the client holds.
constexpr int64_t kDefaultMaxReplyMib = 256;
constexpr int64_t kMaxReplyMibLimit = INT_MAX / (1024 * 1024);

// The flags every client command shares: where the server is, and the filter.
struct FilterFlags {
  std::string server = "127.0.0.1:50051";
  std::string from;
  std::string to;
  std::vector<std::string> topics;
  std::vector<std::string> panels;
  std::vector<std::string> doors;
  std::vector<std::string> people;
  std::vector<std::string> ous;
  std::string family;
  int64_t max_reply_mib = kDefaultMaxReplyMib;

  void Declare(FlagSet& flags) {
    flags.String("server", "HOST:PORT", &server, "the pdk-archive gRPC address");
    flags.Int("max-reply-mib", "MIB", &max_reply_mib,
              "the largest server reply this client accepts, in MiB (1-2047)");
    flags.String("from", "TIME", &from,
                 "events at or after TIME (RFC 3339, or a date YYYY-MM-DD = its 00:00 UTC)");
    flags.String("to", "TIME", &to,
                 "events before TIME (RFC 3339, or a date YYYY-MM-DD = through that whole day)");
    flags.List("topic", "TOPIC", &topics,
               "a topic, or a prefix such as door.request.* (repeatable, or comma-separated)");
    flags.List("panel", "ID", &panels, "panel id (repeatable)");
    flags.List("door", "ID", &doors, "door id (repeatable)");
    flags.List("person", "ID", &people, "person id (repeatable)");
    flags.List("ou", "ID", &ous, "organization id (repeatable)");
    flags.String("family", "FAMILY", &family, "org, panel or unknown");
  }
};

// Parses a --from/--to value to ms. A bare date means its midnight (UTC),
// or, with `date_means_end_of_day`, the next midnight: "--to 2026-03-31"
// includes March 31.
absl::StatusOr<int64_t> ParseTimeFlag(const std::string& flag, const std::string& text,
                                      bool date_means_end_of_day) {
  if (absl::StatusOr<int64_t> day = timeutil::ParseDateMs(text); day.ok()) {
    return date_means_end_of_day ? *day + timeutil::kDayMs : *day;
  }
  absl::StatusOr<int64_t> ms = timeutil::ParseRfc3339Ms(text);
  if (!ms.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " wants an RFC 3339 time (2026-03-01T08:00:00Z) or a date "
        "(2026-03-01), got \"", text, "\""));
  }
  return *ms;
}

void SetTimestamp(int64_t ms, google::protobuf::Timestamp* ts) {
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(millis * 1000000));
}

absl::Status ParseIds(const std::string& flag, const std::vector<std::string>& values,
                      google::protobuf::RepeatedField<int64_t>* out) {
  for (const std::string& v : values) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(v, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " wants numeric ids, got \"", v, "\""));
    }
    out->Add(id);
  }
  return absl::OkStatus();
}

absl::Status BuildFilter(const FilterFlags& f, v1::EventFilter* filter) {
  if (!f.from.empty()) {
    absl::StatusOr<int64_t> ms = ParseTimeFlag("from", f.from, false);
    if (!ms.ok()) return ms.status();
    SetTimestamp(*ms, filter->mutable_start_time());
  }
  if (!f.to.empty()) {
    absl::StatusOr<int64_t> ms = ParseTimeFlag("to", f.to, true);
    if (!ms.ok()) return ms.status();
    SetTimestamp(*ms, filter->mutable_end_time());
  }
  for (const auto& t : f.topics) filter->add_topics(t);
  for (const auto& p : f.panels) filter->add_panel_ids(p);
  for (const auto& o : f.ous) filter->add_ou_ids(o);
  if (absl::Status s = ParseIds("door", f.doors, filter->mutable_door_ids()); !s.ok()) return s;
  if (absl::Status s = ParseIds("person", f.people, filter->mutable_person_ids()); !s.ok()) {
    return s;
  }
  filter->set_family(f.family);
  return absl::OkStatus();
}

// Checks the shared flags BuildFilter does not: InvalidArgument names the flag.
absl::Status CheckClientFlags(const FilterFlags& f) {
  if (f.max_reply_mib < 1 || f.max_reply_mib > kMaxReplyMibLimit) {
    return absl::InvalidArgumentError(absl::StrCat("--max-reply-mib wants 1 to ",
                                                   kMaxReplyMibLimit, ", got ",
                                                   f.max_reply_mib));
  }
  return absl::OkStatus();
}

std::unique_ptr<v1::EventArchive::Stub> Connect(const FilterFlags& f) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(static_cast<int>(f.max_reply_mib * 1024 * 1024));
  return v1::EventArchive::NewStub(
      grpc::CreateCustomChannel(f.server, grpc::InsecureChannelCredentials(), arguments));
}

// True when the call failed because a reply was over this client's
// --max-reply-mib (gRPC reports that as RESOURCE_EXHAUSTED on the client).
bool ReplyOverClientLimit(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StrContains(status.error_message(), "Received message larger than max");
}

int RpcFailed(const char* command, const FilterFlags& f, const grpc::Status& status) {
  std::cerr << "pdk-archive " << command << ": " << f.server << ": ";
  if (ReplyOverClientLimit(status)) {
    std::cerr << "the server's reply is larger than this client accepts (--max-reply-mib "
              << f.max_reply_mib << "; " << status.error_message()
              << "): narrow the filter (--from/--to, --topic, --door, --person, ...)"
              << (std::string_view(command) == "count" ? " or group --by fewer dimensions" : "")
              << ", or raise --max-reply-mib\n";
    return 1;
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) std::cerr << "server unavailable: ";
  std::cerr << status.error_message();
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    std::cerr << " (narrow the filter: --from/--to, --topic, --door, --person, ...)";
  }
  std::cerr << "\n";
  return 1;
}

// Parses the filter flags into `filter`; prints why not and returns false.
bool BuildFilterOrSay(const char* command, const FilterFlags& f, v1::EventFilter* filter) {
  absl::Status s = CheckClientFlags(f);
  if (s.ok()) s = BuildFilter(f, filter);
  if (s.ok()) return true;
  std::cerr << "pdk-archive " << command << ": " << s.message() << "\n";
  return false;
}

// Parses flags; returns an exit status to stop with, or nullopt to go on.
std::optional<int> ParseOrExit(const char* command, FlagSet& flags,
                               const std::vector<std::string>& args) {
  if (absl::Status s = flags.Parse(args); !s.ok()) {
    std::cerr << "pdk-archive " << command << ": " << s.message() << "\n\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  return std::nullopt;
}


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
  FilterFlags filter_flags;
  int64_t limit = 100;
  bool json = false;
  bool descending = false;
  FlagSet flags("pdk-archive events [flags]",
                "Lists archived events from a running pdk-archive server, oldest first\n"
                "(--desc for newest first), as a table or as JSON lines (--json).");
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
  auto stub = Connect(filter_flags);
  if (!json) {
    std::cout << std::left << std::setw(10) << "SEQUENCE" << std::setw(26) << "OCCURRED (UTC)"
              << std::setw(30) << "TOPIC" << std::setw(12) << "PANEL" << std::setw(7)
              << "DOOR" << std::setw(20) << "DOOR NAME" << "PERSON\n";
  }
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
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status status = stub->ListEvents(&context, request, &response);
    if (!status.ok() && ReplyOverClientLimit(status) && want > 1) {
      page_cap = want / 2;
      continue;
    }
    if (!status.ok()) return RpcFailed("events", filter_flags, status);
    for (const v1::Event& e : response.events()) {
      if (json) {
        absl::StatusOr<std::string> line = JsonLine(e);
        if (!line.ok()) {
          report(e, line.status());
          continue;
        }
        std::cout << *line;
      } else {
        absl::StatusOr<std::string> occurred = TableTime(e.occur_time());
        if (!occurred.ok()) {
          report(e, absl::InvalidArgumentError(
                        absl::StrCat("occur_time: ", occurred.status().message())));
          continue;
        }
        std::cout << std::left << std::setw(10) << e.sequence() << std::setw(26) << *occurred
                  << std::setw(30) << e.topic() << std::setw(12) << e.panel_id()
                  << std::setw(7) << (e.has_door_id() ? absl::StrCat(e.door_id()) : "-")
                  << std::setw(20)
                  << (e.door_name().empty() ? "-" : e.door_name().substr(0, 19))
                  << (e.has_person_id() ? absl::StrCat(e.person_id()) : "-") << "\n";
      }
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
  FilterFlags filter_flags;
  std::vector<std::string> by;
  bool json = false;
  FlagSet flags("pdk-archive count [--by DIM,...] [flags]",
                "Counts archived events on a running pdk-archive server, grouped by any of\n"
                "topic, panel, door, person, hour, day (hours and days in UTC).");
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
  auto stub = Connect(filter_flags);
  v1::CountEventsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  grpc::Status status = stub->CountEvents(&context, request, &response);
  if (!status.ok()) return RpcFailed("count", filter_flags, status);
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
  for (const std::string& name : by) std::cout << std::left << std::setw(30) << name;
  std::cout << "COUNT\n";
  for (const v1::Group& g : response.groups()) {
    for (const std::string& k : g.key()) std::cout << std::setw(30) << (k.empty() ? "-" : k);
    std::cout << g.count() << "\n";
  }
  if (!by.empty()) std::cout << "total " << response.total() << "\n";
  return 0;
}

int RunExport(const std::vector<std::string>& args) {
  FilterFlags filter_flags;
  std::string output = "-";
  bool include_raw = false;
  FlagSet flags("pdk-archive export [-o FILE] [flags]",
                "Exports archived events from a running pdk-archive server as RFC 4180\n"
                "CSV, oldest first. A regular FILE is replaced only once the export is\n"
                "complete and on disk (its mode kept; a new FILE is created 0600), and is\n"
                "left as it was on any failure; a device or FIFO (/dev/stdout) is written\n"
                "straight.");
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

  auto stub = Connect(filter_flags);
  grpc::ClientContext context;
  auto reader = stub->ExportEvents(&context, request);
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
  if (!status.ok()) return RpcFailed("export", filter_flags, status);
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
