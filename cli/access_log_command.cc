#include "cli/access_log_command.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "store/access_store.h"
#include "store/archive.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

constexpr char kUsage[] =
    "pdk-archive access-log [--from T] [--to T] [--token NAME] [--json] "
    "[flags]";
constexpr char kDescription[] =
    "Prints the archive's access log, oldest first: every query call a serve\n"
    "node answered or refused, with its time, the name of its bearer token\n"
    "(empty when none matched), the peer, the method, the request, the rows\n"
    "and bytes sent and the final status. --from/--to take RFC 3339 times\n"
    "(2026-01-01T13:00:00Z) or dates (2026-01-01); --to is exclusive. Serve\n"
    "nodes write the log in batches, within a second of each call ending.";

absl::StatusOr<std::optional<int64_t>> ParseTime(const std::string& flag,
                                                 const std::optional<std::string>& text) {
  if (!text) return std::optional<int64_t>();
  absl::StatusOr<int64_t> ms = timeutil::ParseRfc3339Ms(*text);
  if (!ms.ok()) ms = timeutil::ParseDateMs(*text);
  if (!ms.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag,
                                                   " wants an RFC 3339 time or a date, such as "
                                                   "2026-01-01T13:00:00Z, not \"",
                                                   *text, "\""));
  }
  return std::optional<int64_t>(*ms);
}

void AppendJsonString(std::string_view text, std::string& out) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string TimeText(int64_t ms) {
  return timeutil::FormatRfc3339Millis(ms).value_or(absl::StrCat(ms));
}

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::string JsonLine(const store::AccessRecord& r) {
  std::string out = "{\"time\":";
  AppendJsonString(TimeText(r.time_ms), out);
  out += ",\"token\":";
  AppendJsonString(r.token, out);
  out += ",\"peer\":";
  AppendJsonString(r.peer, out);
  out += ",\"method\":";
  AppendJsonString(r.method, out);
  out += ",\"filter\":";
  AppendJsonString(r.filter, out);
  absl::StrAppend(&out, ",\"rows\":", r.rows, ",\"bytes\":", r.bytes, ",\"code\":", r.code,
                  ",\"status\":");
  AppendJsonString(CodeName(r.code), out);
  out += ",\"message\":";
  AppendJsonString(r.message, out);
  out += "}";
  return out;
}

// The method's last part ("ListEvents"), for the table.
std::string ShortMethod(const std::string& method) {
  const size_t slash = method.rfind('/');
  return slash == std::string::npos ? method : method.substr(slash + 1);
}

// "local:USER@HOST", the peer of a command run on this machine.
std::string LocalPeer() {
  std::string user = absl::StrCat("uid ", getuid());
  if (const passwd* entry = getpwuid(getuid()); entry != nullptr && entry->pw_name != nullptr) {
    user = entry->pw_name;
  }
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return absl::StrCat("local:", user, "@", host);
}

}  // namespace

void RecordLocalAccess(store::AccessStore& access, const std::string& method,
                       const std::string& detail) {
  store::AccessRecord record;
  record.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  record.peer = LocalPeer();
  record.method = method;
  record.filter = detail;
  if (absl::Status s = access.AppendAccess({&record, 1}); !s.ok()) {
    std::cerr << "pdk-archive: cannot record this command in the access log: " << s.message()
              << "\n";
  }
}

int RunAccessLog(const std::vector<std::string>& args) {
  ArchiveFlags archive_flags;
  std::optional<std::string> from;
  std::optional<std::string> to;
  std::optional<std::string> token;
  bool json = false;
  int64_t limit = 100000;
  FlagSet flags(kUsage, kDescription);
  AddArchiveFlags(flags, &archive_flags);
  flags.OptionalString("from", "T", &from, "calls at or after this time");
  flags.OptionalString("to", "T", &to, "calls before this time");
  flags.OptionalString("token", "NAME", &token, "only calls made with this token");
  flags.Bool("json", &json, "one JSON object per line instead of a table");
  flags.Int("limit", "N", &limit, "print at most N calls (the oldest)");
  if (absl::Status s = flags.Parse(args); !s.ok()) {
    std::cerr << "pdk-archive access-log: " << s.message() << "\n\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  store::AccessQuery query;
  absl::StatusOr<std::optional<int64_t>> from_ms = ParseTime("from", from);
  absl::StatusOr<std::optional<int64_t>> to_ms = ParseTime("to", to);
  for (const auto* parsed : {&from_ms, &to_ms}) {
    if (!parsed->ok()) {
      std::cerr << "pdk-archive access-log: " << parsed->status().message() << "\n";
      return 2;
    }
  }
  if (limit <= 0) {
    std::cerr << "pdk-archive access-log: --limit must be positive\n";
    return 2;
  }
  query.from_ms = *from_ms;
  query.to_ms = *to_ms;
  query.token = token;
  query.limit = limit;

  absl::StatusOr<std::unique_ptr<store::Archive>> archive = OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) {
    std::cerr << "pdk-archive access-log: " << archive.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<std::vector<store::AccessRecord>> records = (*archive)->access().ListAccess(query);
  if (!records.ok()) {
    std::cerr << "pdk-archive access-log: " << records.status().message() << "\n";
    return 1;
  }
  if (!json) {
    std::printf("%-24s  %-16s  %-22s  %-12s  %-16s  %6s  %9s  %s\n", "TIME", "TOKEN", "PEER",
                "METHOD", "STATUS", "ROWS", "BYTES", "REQUEST");
  }
  for (const store::AccessRecord& r : *records) {
    if (json) {
      std::cout << JsonLine(r) << "\n";
    } else {
      std::printf("%-24s  %-16s  %-22s  %-12s  %-16s  %6lld  %9lld  %s\n",
                  TimeText(r.time_ms).c_str(), r.token.empty() ? "-" : r.token.c_str(),
                  r.peer.c_str(), ShortMethod(r.method).c_str(), CodeName(r.code).c_str(),
                  static_cast<long long>(r.rows), static_cast<long long>(r.bytes),
                  r.filter.c_str());
    }
  }
  std::cout << std::flush;
  // Recorded after the reading, so it shows in the next one.
  std::string detail = "{";
  auto add = [&detail](const char* key, const std::optional<std::string>& value) {
    if (!value) return;
    if (detail.size() > 1) detail += ",";
    AppendJsonString(key, detail);
    detail += ":";
    AppendJsonString(*value, detail);
  };
  add("from", from);
  add("to", to);
  add("token", token);
  detail += "}";
  RecordLocalAccess((*archive)->access(), "pdk-archive access-log", detail);
  if (static_cast<int64_t>(records->size()) == limit) {
    std::cerr << "pdk-archive access-log: stopped at --limit " << limit
              << "; narrow --from/--to or raise --limit for the rest\n";
  }
  return 0;
}

}  // namespace pdkarchive::cli
