#include "cli/archive_flags.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pdkarchive::cli {

void AddArchiveFlags(FlagSet& flags, ArchiveFlags* target, const std::string& name,
                     const std::string& role) {
  flags.String(name, "PATH|URI", &target->db,
               absl::StrCat(role, ": a SQLite file (created if missing) or a\n"
                                  "PostgreSQL URI, postgresql://USER@HOST:PORT/DBNAME"));
  flags.OptionalString(absl::StrCat(name, "-password-file"), "PATH", &target->password_file,
                       absl::StrCat("the PostgreSQL password for --", name,
                                    ", when neither the URI nor\n~/.pgpass (PGPASSFILE) has it"));
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --", flag, " ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  // A trailing newline from an editor or `echo` is not part of the secret.
  std::string secret(absl::StripTrailingAsciiWhitespace(contents.str()));
  if (secret.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", path, " is empty"));
  }
  return secret;
}

absl::StatusOr<std::unique_ptr<store::Archive>> OpenArchiveFromFlags(
    const ArchiveFlags& flags, store::ArchiveOptions options, const std::string& name) {
  if (flags.password_file.has_value()) {
    absl::StatusOr<std::string> password =
        ReadSecretFile(absl::StrCat(name, "-password-file"), *flags.password_file);
    if (!password.ok()) return password.status();
    options.password = *std::move(password);
  }
  return store::OpenArchive(flags.db, options);
}

}  // namespace pdkarchive::cli
