// `pdk-archive access-log`: prints the archive's record of query calls —
// who (token name), from where, what (method and request), how much came
// back, and how it ended — refused calls included.
#ifndef PDKARCHIVE_CLI_ACCESS_LOG_COMMAND_H_
#define PDKARCHIVE_CLI_ACCESS_LOG_COMMAND_H_

#include <string>
#include <vector>

#include "store/access_store.h"

namespace pdkarchive::cli {

// Appends to the access log that this process, run by the local user, did
// `method` (e.g. "pdk-archive access-log") with `detail` (its arguments as
// JSON): reading the log and changing tokens are audit data too. A failure
// is reported on stderr and otherwise ignored.
void RecordLocalAccess(store::AccessStore& access, const std::string& method,
                       const std::string& detail);

// Runs the command with `args` (after "access-log"). Returns 0 on success,
// 1 when the archive cannot be read, 2 on bad flags.
int RunAccessLog(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_ACCESS_LOG_COMMAND_H_
