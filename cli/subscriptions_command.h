// `pdk-archive subscriptions add|create|list|show|update|rotate|delete|check`:
// the PDK subscriptions the archive takes deliveries for on POST
// /webhooks/NAME, kept in the archive (running serve nodes hear a change
// within 5 seconds), and managed at PDK through its API (cli/subscriptions_pdk.h).
#ifndef PDKARCHIVE_CLI_SUBSCRIPTIONS_COMMAND_H_
#define PDKARCHIVE_CLI_SUBSCRIPTIONS_COMMAND_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// Runs the command with `args` (after "subscriptions"). Returns 0 on
// success; 1 when the archive cannot be opened or written, the subscription
// exists (add, create) or does not (show, update, rotate, delete, check),
// PDK refuses or cannot be reached (its status and message are shown), or
// check finds events missing; 2 on bad arguments, a PDK rule broken (nothing
// is sent to PDK), or PDK access missing where it is needed.
int RunSubscriptions(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_SUBSCRIPTIONS_COMMAND_H_
