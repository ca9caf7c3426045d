// `pdk-archive subscriptions add|list|show|rotate|delete`: the PDK
// subscriptions the archive takes deliveries for on POST /webhooks/NAME,
// kept in the archive (running serve nodes hear a change within 5 seconds).
// Talking to PDK's API (create, update, check, pushing a rotated secret) is
// not built yet.
#ifndef PDKARCHIVE_CLI_SUBSCRIPTIONS_COMMAND_H_
#define PDKARCHIVE_CLI_SUBSCRIPTIONS_COMMAND_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// Runs the command with `args` (after "subscriptions"). Returns 0 on
// success, 1 when the archive cannot be opened or written, the
// subscription exists (add) or does not (show, rotate, delete), or PDK would
// have to be told (delete without --local-only), 2 on bad arguments.
int RunSubscriptions(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_SUBSCRIPTIONS_COMMAND_H_
