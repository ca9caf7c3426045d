// `pdk-archive copy --from SRC --to DST`: copies an archive between engines
// (a SQLite file to a PostgreSQL database when a site outgrows one machine,
// or back), keeping sequences, times, payloads and dedupe. Re-running it
// resumes after the newest event the destination holds.
#ifndef PDKARCHIVE_CLI_COPY_COMMAND_H_
#define PDKARCHIVE_CLI_COPY_COMMAND_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// Runs the command with `args` (after "copy"). Returns 0 when the
// destination holds every event of the source, 1 when an archive cannot be
// read or written or the destination holds events of another archive, 2 on
// bad flags.
int RunCopy(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_COPY_COMMAND_H_
