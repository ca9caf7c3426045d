#include "cli/tokens_command.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/access_log_command.h"
#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "store/access_store.h"
#include "store/archive.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

constexpr char kUsage[] = "pdk-archive tokens create|list|revoke [NAME] [flags]";
constexpr char kDescription[] =
    "Bearer tokens for the query API. Once the archive holds a live token,\n"
    "every query (pdk.archive.v1.EventArchive) needs \"authorization: Bearer\n"
    "TOKEN\"; health checking stays open. Running serve nodes notice a new or\n"
    "revoked token within seconds.\n"
    "  create NAME   makes a token and prints it alone on the first line of\n"
    "                stdout, once: only its SHA-256 hash is kept\n"
    "  list          names, when made, last used, revoked\n"
    "  revoke NAME   the token stops working on every node within 5 seconds\n"
    "NAME: a letter or digit, then up to 62 of [A-Za-z0-9._-].";

std::string TimeText(std::optional<int64_t> ms) {
  if (!ms) return "-";
  return timeutil::FormatRfc3339Millis(*ms).value_or(absl::StrCat(*ms));
}

int Fail(const absl::Status& status) {
  std::cerr << "pdk-archive tokens: " << status.message() << "\n";
  return 1;
}

int List(store::AccessStore& access) {
  absl::StatusOr<std::vector<store::TokenInfo>> tokens = access.ListTokens();
  if (!tokens.ok()) return Fail(tokens.status());
  size_t width = 4;
  for (const store::TokenInfo& token : *tokens) width = std::max(width, token.name.size());
  std::printf("%-*s  %-24s  %-24s  %s\n", static_cast<int>(width), "NAME", "CREATED", "LAST USED",
              "REVOKED");
  for (const store::TokenInfo& token : *tokens) {
    std::printf("%-*s  %-24s  %-24s  %s\n", static_cast<int>(width), token.name.c_str(),
                TimeText(token.created_ms).c_str(), TimeText(token.last_used_ms).c_str(),
                TimeText(token.revoked_ms).c_str());
  }
  return 0;
}

}  // namespace

int RunTokens(const std::vector<std::string>& args) {
  ArchiveFlags archive_flags;
  FlagSet flags(kUsage, kDescription);
  AddArchiveFlags(flags, &archive_flags);
  std::vector<std::string> positional;
  if (absl::Status s = flags.Parse(args, &positional); !s.ok()) {
    std::cerr << "pdk-archive tokens: " << s.message() << "\n\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  const std::string verb = positional.empty() ? "" : positional[0];
  const bool named = verb == "create" || verb == "revoke";
  if (!(named || verb == "list") || positional.size() != (named ? 2u : 1u)) {
    std::cerr << "pdk-archive tokens: want `create NAME`, `list` or `revoke NAME`\n\n"
              << flags.Help();
    return 2;
  }
  if (named && !store::ValidTokenName(positional[1])) {
    std::cerr << "pdk-archive tokens: \"" << positional[1]
              << "\" is not a token name: a letter or digit, then up to 62 of "
                 "[A-Za-z0-9._-]\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<store::Archive>> archive = OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) return Fail(archive.status());
  store::AccessStore& access = (*archive)->access();

  if (verb == "list") return List(access);
  const std::string& name = positional[1];
  // Token names are [A-Za-z0-9._-]: JSON as they are.
  const std::string detail = absl::StrCat("{\"name\":\"", name, "\"}");
  if (verb == "revoke") {
    if (absl::Status s = access.RevokeToken(name, timeutil::NowMs()); !s.ok()) return Fail(s);
    RecordLocalAccess(access, "pdk-archive tokens revoke", detail);
    std::cerr << "pdk-archive tokens: revoked " << name
              << "; serve nodes refuse it within 5 seconds\n";
    return 0;
  }
  absl::StatusOr<std::string> token = store::NewToken();
  if (!token.ok()) return Fail(token.status());
  if (absl::Status s = access.CreateToken(name, store::HashToken(*token), timeutil::NowMs()); !s.ok()) {
    return Fail(s);
  }
  RecordLocalAccess(access, "pdk-archive tokens create", detail);
  std::cout << *token << "\n" << std::flush;
  std::cerr << "pdk-archive tokens: created " << name
            << "; this is the only time the token is shown (the archive keeps "
               "its hash)\n";
  return 0;
}

}  // namespace pdkarchive::cli
