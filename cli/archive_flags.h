// The flags every command that opens an archive shares (--db and
// --db-password-file), reading secret files, and opening the archive they
// name.
#ifndef PDKARCHIVE_CLI_ARCHIVE_FLAGS_H_
#define PDKARCHIVE_CLI_ARCHIVE_FLAGS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "store/archive.h"

namespace pdkarchive::cli {

struct ArchiveFlags {
  std::string db = "./pdk-archive.db";
  std::optional<std::string> password_file;
};

// Registers --NAME (default "db") and --NAME-password-file on `flags`.
// `role` completes the help text ("the archive", "the archive to copy from").
void AddArchiveFlags(FlagSet& flags, ArchiveFlags* target, const std::string& name = "db",
                     const std::string& role = "the archive");

// The contents of the file named by `--flag`, for secrets kept out of the
// command line (which any user can read in /proc/PID/cmdline), without a
// trailing newline. NotFound when unreadable; InvalidArgument when empty.
absl::StatusOr<std::string> ReadSecretFile(const std::string& flag, const std::string& path);

// Opens the archive `flags` name (see store::OpenArchive), with the password
// from the password file when one is given.
absl::StatusOr<std::unique_ptr<store::Archive>> OpenArchiveFromFlags(
    const ArchiveFlags& flags, store::ArchiveOptions options = {},
    const std::string& name = "db");

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_ARCHIVE_FLAGS_H_
