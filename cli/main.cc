// The `pdk-archive` command: picks a subcommand and hands it its arguments.
#include <iostream>
#include <string>
#include <vector>

#include "cli/access_log_command.h"
#include "cli/client_commands.h"
#include "cli/copy_command.h"
#include "cli/get_watch_commands.h"
#include "cli/import_command.h"
#include "cli/serve_command.h"
#include "cli/subscriptions_command.h"
#include "cli/tokens_command.h"

namespace {

constexpr char kUsage[] =
    "usage: pdk-archive COMMAND [flags]\n"
    "\n"
    "commands:\n"
    "  serve          receive PDK webhooks into the archive and serve queries\n"
    "  events         list archived events from a running server\n"
    "  count          count archived events, grouped\n"
    "  export         export archived events as CSV\n"
    "  get            print one archived event with its raw payload\n"
    "  watch          follow new events as they are committed\n"
    "  import         load webhook payloads from a JSON-lines file into the archive\n"
    "  copy           copy an archive to another engine (SQLite to PostgreSQL, or back)\n"
    "  tokens         create, list and revoke bearer tokens for the query API\n"
    "  access-log     print who queried the archive, refused calls included\n"
    "  subscriptions  add, list, show, rotate and delete the PDK subscriptions\n"
    "                 (POST /webhooks/NAME takes each one's deliveries)\n"
    "\n"
    "Run `pdk-archive COMMAND --help` for a command's flags.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "serve") return pdkarchive::cli::RunServe(args);
  if (command == "events") return pdkarchive::cli::RunEvents(args);
  if (command == "count") return pdkarchive::cli::RunCount(args);
  if (command == "export") return pdkarchive::cli::RunExport(args);
  if (command == "get") return pdkarchive::cli::RunGet(args);
  if (command == "watch") return pdkarchive::cli::RunWatch(args);
  if (command == "import") return pdkarchive::cli::RunImport(args);
  if (command == "copy") return pdkarchive::cli::RunCopy(args);
  if (command == "tokens") return pdkarchive::cli::RunTokens(args);
  if (command == "subscriptions") return pdkarchive::cli::RunSubscriptions(args);
  if (command == "access-log") return pdkarchive::cli::RunAccessLog(args);
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "pdk-archive: unknown command \"" << command << "\"\n\n" << kUsage;
  return 2;
}
