// The PDK half of `pdk-archive subscriptions`: the flags that reach PDK's
// API, PDK's rules checked before any call, and the verbs that talk to PDK
// (create, update, check; the PDK steps of list, show, rotate and delete).
// DESIGN.md "Subscriptions" is the contract. Secrets (the subscription's,
// the client secret, the id_token, Basic passwords) are never printed.
#ifndef PDKARCHIVE_CLI_SUBSCRIPTIONS_PDK_H_
#define PDKARCHIVE_CLI_SUBSCRIPTIONS_PDK_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "pdkapi/pdk_client.h"
#include "store/subscription_store.h"

namespace pdkarchive::cli {

// Print "pdk-archive subscriptions: MESSAGE" on stderr and return the exit
// code: Fail 1 (PDK or the archive failed), Usage 2 (bad arguments, a PDK
// rule broken).
int SubscriptionsFail(const absl::Status& status);
int SubscriptionsUsage(const std::string& message);

// --pdk-api, --pdk-org, --pdk-client-id, --pdk-client-secret-file,
// --public-url (all also from --config).
struct PdkFlags {
  std::string api = "https://accounts.pdk.io";
  std::string org;
  std::string client_id;
  std::optional<std::string> client_secret_file;
  std::string public_url;
};
void AddPdkFlags(FlagSet& flags, PdkFlags* target);

// Whether PDK access is configured: org, client id and client secret file.
bool PdkConfigured(const PdkFlags& flags);

// A client for the configured PDK. InvalidArgument when the flags are
// incomplete or the API URL is refused (see pdkapi::PdkClient::Create).
absl::StatusOr<std::unique_ptr<pdkapi::PdkClient>> OpenPdk(
    const PdkFlags& flags);

// What create and update may set (unset = keep / PDK's default).
struct PdkSettings {
  std::vector<std::string> events;
  std::optional<std::string> scope;
  std::optional<int> secrecy_level;
  std::optional<std::string> expires_at;  // RFC 3339
  std::optional<bool> active;
  bool basic_auth = false;                     // --basic-auth
  std::optional<std::string> basic_auth_file;  // USER:PASSWORD
  int api = 1;
};

// The family ("org", "panel", "system", "cloudnode") every topic of
// `events` belongs to in API `api`'s catalog. InvalidArgument naming the
// topic when one is unknown, or when they are of more than one family, or
// of a family API `api` has not. This is where the 2.0 catalog plugs in.
absl::StatusOr<std::string> FamilyOfEvents(
    const std::vector<std::string>& events, int api);

// The verbs. Each returns the process exit code: 0 done, 1 PDK or the
// archive failed (the message says which and, for PDK, PDK's status and
// message) or, for check, events are missing; 2 bad arguments or a PDK
// rule broken (nothing was sent).
int RunCreate(const std::string& name, const PdkSettings& settings,
              const PdkFlags& pdk, const ArchiveFlags& archive);
int RunUpdate(const std::string& name, const PdkSettings& settings,
              const PdkFlags& pdk, const ArchiveFlags& archive);
int RunCheck(const std::optional<std::string>& name, bool json,
             const PdkFlags& pdk, const ArchiveFlags& archive);

// PDK's side of `s` (a subscription with a PDK id).
absl::StatusOr<pdkapi::PdkSubscription> FetchAtPdk(
    pdkapi::PdkClient& client, const store::Subscription& s);

// Sets `new_secret` on `s`'s subscription at PDK (the whole object is
// sent again, as PDK's update takes it).
absl::Status PushSecretToPdk(pdkapi::PdkClient& client,
                             const store::Subscription& s,
                             const std::string& new_secret);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_SUBSCRIPTIONS_PDK_H_
