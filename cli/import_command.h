// `pdk-archive import FILE`: loads PDK webhook payloads, one JSON object per
// line (a backfill from another system), through the same normalization and
// dedupe as live ingest, in large transactions.
#ifndef PDKARCHIVE_CLI_IMPORT_COMMAND_H_
#define PDKARCHIVE_CLI_IMPORT_COMMAND_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// Runs the command with `args` (after "import"). Returns 0 when every line
// was stored (or found already stored), 1 when some lines were refused or the
// archive could not be written, 2 on bad flags.
int RunImport(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_IMPORT_COMMAND_H_
