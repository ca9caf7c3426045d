// The flags the client commands share besides the connection's: the event
// filter, with its times (RFC 3339, dates, and times relative to now), and
// the parse-or-exit step every command starts with.
#ifndef PDKARCHIVE_CLI_CLIENT_FLAGS_H_
#define PDKARCHIVE_CLI_CLIENT_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "pdk/archive/v1/event_archive.pb.h"

namespace pdkarchive::cli {

// Which events a command asks for. Targets of FlagSet; not thread-safe.
struct FilterFlags {
  std::string from;
  std::string to;
  std::vector<std::string> topics;
  std::vector<std::string> panels;
  std::vector<std::string> doors;
  std::vector<std::string> people;
  std::vector<std::string> ous;
  std::string family;

  void Declare(FlagSet& flags);
};

// Parses a --from/--to value (`flag` names it in errors) to ms since the
// epoch: RFC 3339; a date YYYY-MM-DD (its 00:00 UTC, or with
// `date_means_end_of_day` the next midnight, so "--to 2026-03-31" includes
// March 31); `now`; `today` and `yesterday` (those UTC midnights, for --from
// and --to alike); or a duration before now: a positive whole number and s,
// m, h, d or w ("15m", "24h", "7d"). `now_ms` is the current time.
// InvalidArgument names the flag and the forms it accepts.
absl::StatusOr<int64_t> ParseTimeFlag(const std::string& flag,
                                      const std::string& text,
                                      bool date_means_end_of_day,
                                      int64_t now_ms);

// Fills `filter` from `flags`, times taken relative to `now_ms`.
// InvalidArgument names the bad flag.
absl::Status BuildFilter(const FilterFlags& flags, int64_t now_ms,
                         pdk::archive::v1::EventFilter* filter);

// BuildFilter at the current time; prints why not (prefixed "pdk-archive
// `command`: ") and returns false.
bool BuildFilterOrSay(const char* command, const FilterFlags& flags,
                      pdk::archive::v1::EventFilter* filter);

// Parses `args` into `flags` (non-flag arguments into `positional` when
// given). Returns the exit status to stop with: 2 after printing why the
// arguments are wrong, 0 after printing --help; nullopt to go on.
std::optional<int> ParseOrExit(const char* command, FlagSet& flags,
                               const std::vector<std::string>& args,
                               std::vector<std::string>* positional = nullptr);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_CLIENT_FLAGS_H_
