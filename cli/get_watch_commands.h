// Command-line clients for one event (`get`) and for the live feed
// (`watch`) of a running server.
#ifndef PDKARCHIVE_CLI_GET_WATCH_COMMANDS_H_
#define PDKARCHIVE_CLI_GET_WATCH_COMMANDS_H_

#include <string>
#include <vector>

namespace pdkarchive::cli {

// `pdk-archive get SEQ [--json]`: prints one event, its raw payload last.
// Exit status 0; 1 when there is no such event or the call fails; 2 on bad
// flags.
int RunGet(const std::vector<std::string>& args);

// `pdk-archive watch [filters] [--after SEQ] [--json]`: prints matching
// events after SEQ, then each new one as it is committed, until SIGINT or
// SIGTERM (exit status 0) or the server ends the stream (1, saying why).
// Once an event has arrived, a lost connection, or the server dropping a
// watcher that fell behind, is resumed after the last event received.
int RunWatch(const std::vector<std::string>& args);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_GET_WATCH_COMMANDS_H_
