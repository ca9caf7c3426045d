// Command-line clients of a running server's query API, for people without
// a gRPC tool: `events`, `count` and `export`.
#ifndef PDKARCHIVE_CLI_CLIENT_COMMANDS_H_
#define PDKARCHIVE_CLI_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// Each runs its command with `args` (after the command name) and returns the
// exit status: 0 on success, 2 on bad flags, 1 when the server call fails,
// the output cannot be written, or (events) a row cannot be printed: JSON
// lines are always valid JSON, and a row whose time RFC 3339 cannot express
// is named on stderr instead. `export -o FILE` replaces a regular FILE only
// with a complete, synced export and leaves it untouched on failure.
int RunEvents(const std::vector<std::string>& args);
int RunCount(const std::vector<std::string>& args);
int RunExport(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_CLIENT_COMMANDS_H_
