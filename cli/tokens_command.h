// `pdk-archive tokens create|list|revoke`: the bearer tokens the query API
// asks for once the archive holds one (only their hashes are kept).
#ifndef PDKARCHIVE_CLI_TOKENS_COMMAND_H_
#define PDKARCHIVE_CLI_TOKENS_COMMAND_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// Runs the command with `args` (after "tokens"). Returns 0 on success, 1
// when the archive cannot be opened or written, or the token does not exist
// (revoke) or exists (create), 2 on bad arguments.
int RunTokens(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_TOKENS_COMMAND_H_
