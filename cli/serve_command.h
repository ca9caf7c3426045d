// `pdk-archive serve`: ingest (HTTP) and query (gRPC) over one archive, in
// one process, until SIGTERM or SIGINT.
#ifndef PDKARCHIVE_CLI_SERVE_COMMAND_H_
#define PDKARCHIVE_CLI_SERVE_COMMAND_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// Runs the command with `args` (after "serve"); returns the exit status:
// 0 after a clean shutdown, 2 on bad flags, 1 when the service cannot start.
int RunServe(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_SERVE_COMMAND_H_
