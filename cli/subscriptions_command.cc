#include "cli/subscriptions_command.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "cli/subscriptions_pdk.h"
#include "pdkapi/pdk_client.h"
#include "store/family.h"
#include "store/archive.h"
#include "store/subscription_store.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

constexpr char kUsage[] =
    "pdk-archive subscriptions "
    "add|create|list|show|update|rotate|delete|check [NAME] [flags]";
constexpr char kDescription[] =
    "The PDK subscriptions this archive takes deliveries for: PDK posts\n"
    "subscription NAME's events to PUBLIC_URL/webhooks/NAME, each checked\n"
    "against that subscription's own secret (and Basic credentials). They are\n"
    "kept in the archive; running serve nodes hear a change within 5 seconds.\n"
    "  add NAME      register a subscription made by hand in PDK (--family,\n"
    "                --api, --secret-file, --basic-auth-file); with no\n"
    "                --secret-file a secret is generated and printed alone on\n"
    "                the first line of stdout, once\n"
    "  create NAME   create it at PDK (--events, --api, --scope,\n"
    "                --secrecy-level, --expires-at, --basic-auth-file) with a\n"
    "                new secret, delivering to PUBLIC_URL/webhooks/NAME, and\n"
    "                register it here; PDK's rules are checked before any call\n"
    "  list          the subscriptions (never their secrets), with PDK's state\n"
    "                when PDK access is configured\n"
    "  show NAME     one subscription, likewise\n"
    "  update NAME   change --events, --active, --secrecy-level, --expires-at\n"
    "                or --scope at PDK\n"
    "  rotate NAME   a new secret (sent to PDK first for one made there); the\n"
    "                old one stays accepted for --grace\n"
    "  delete NAME   delete it at PDK (unless --local-only); /webhooks/NAME\n"
    "                answers 404 from then on; its events stay\n"
    "  check [NAME]  PDK's odometer since registration against the events\n"
    "                archived since; exit 1 when events are missing\n"
    "PDK access: --pdk-org, --pdk-client-id, --pdk-client-secret-file\n"
    "(--pdk-api for another PDK). NAME: a lowercase letter or digit, then up\n"
    "to 62 of [a-z0-9_-].";

std::string TimeText(std::optional<int64_t> ms) {
  if (!ms) return "-";
  return timeutil::FormatRfc3339Millis(*ms).value_or(absl::StrCat(*ms));
}

// A positive whole number and s, m, h or d ("90s", "24h") in milliseconds.
std::optional<int64_t> ParseDuration(const std::string& text) {
  if (text.size() < 2) return std::nullopt;
  int64_t unit_ms = 0;
  switch (text.back()) {
    case 's':
      unit_ms = 1000;
      break;
    case 'm':
      unit_ms = 60 * 1000;
      break;
    case 'h':
      unit_ms = 3600 * 1000;
      break;
    case 'd':
      unit_ms = 24 * 3600 * 1000;
      break;
    default:
      return std::nullopt;
  }
  int64_t n = 0;
  const std::string digits = text.substr(0, text.size() - 1);
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (!absl::SimpleAtoi(digits, &n) || n <= 0 || n > 3650LL * 24 * 3600)
    return std::nullopt;
  return n * unit_ms;
}

// Whether the previous secret of `s` is accepted at `now_ms`.
bool PreviousAccepted(const store::Subscription& s, int64_t now_ms) {
  return !s.previous_secret.empty() && s.previous_until_ms &&
         now_ms < *s.previous_until_ms;
}

// PDK's side of a subscription, read for list and show.
struct PdkState {
  bool read = false;
  std::string error;  // why it could not be read
  std::optional<bool> active;
  std::string expires_at;
  std::optional<int64_t> odometer;
};

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Writes `value`, after `key` unless it is null (an array element or a
// value whose key is written already).
void Text(Writer& w, const char* key, const std::string& value) {
  if (key != nullptr) w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void OptionalInt(Writer& w, const char* key, std::optional<int64_t> value) {
  w.Key(key);
  if (value) {
    w.Int64(*value);
  } else {
    w.Null();
  }
}

// `s` as JSON, without its secrets.
void WriteJson(Writer& w, const store::Subscription& s, const PdkState* pdk,
               int64_t now_ms) {
  w.StartObject();
  Text(w, "name", s.name);
  Text(w, "family", s.family);
  w.Key("api");
  w.Int(s.api);
  Text(w, "pdk_id", s.pdk_id);
  w.Key("basic_auth");
  w.Bool(!s.basic_auth.empty());
  Text(w, "secret", "set");
  Text(w, "created", TimeText(s.created_ms));
  OptionalInt(w, "odometer_baseline", s.odometer_baseline);
  OptionalInt(w, "baseline_sequence", s.baseline_sequence);
  w.Key("previous_secret_accepted_until");
  if (PreviousAccepted(s, now_ms)) {
    Text(w, nullptr, TimeText(s.previous_until_ms));
  } else {
    w.Null();
  }
  w.Key("events");
  rapidjson::Document events;
  events.Parse(s.events.c_str());
  if (!s.events.empty() && !events.HasParseError()) {
    events.Accept(w);
  } else {
    w.Null();
  }
  Text(w, "scope", s.scope);
  Text(w, "public_url", s.public_url);
  OptionalInt(w, "secrecy_level", s.secrecy_level
                                      ? std::optional<int64_t>(*s.secrecy_level)
                                      : std::nullopt);
  Text(w, "expires_at", s.expires_at);
  w.Key("last_check");
  if (s.last_check) {
    w.StartObject();
    Text(w, "checked", TimeText(s.last_check->checked_ms));
    w.Key("pdk_events");
    w.Int64(s.last_check->pdk_events);
    w.Key("archived_events");
    w.Int64(s.last_check->archived_events);
    w.Key("missing_events");
    w.Int64(s.last_check->missing_events);
    w.EndObject();
  } else {
    w.Null();
  }
  if (pdk != nullptr) {
    w.Key("pdk");
    w.StartObject();
    if (!pdk->error.empty()) {
      Text(w, "error", pdk->error);
    } else {
      w.Key("active");
      if (pdk->active) {
        w.Bool(*pdk->active);
      } else {
        w.Null();
      }
      w.Key("expiresAt");
      if (pdk->expires_at.empty()) {
        w.Null();
      } else {
        Text(w, nullptr, pdk->expires_at);
      }
      OptionalInt(w, "odometer", pdk->odometer);
    }
    w.EndObject();
  }
  w.EndObject();
}

std::string ActiveText(const PdkState* pdk) {
  if (pdk == nullptr) return "-";
  if (!pdk->error.empty()) return "error";
  if (!pdk->active) return "?";
  return *pdk->active ? "yes" : "NO";
}

int List(const std::vector<store::Subscription>& subs,
         const std::map<std::string, PdkState>& pdk, bool json) {
  const int64_t now_ms = timeutil::NowMs();
  auto state = [&pdk](const std::string& name) -> const PdkState* {
    auto it = pdk.find(name);
    return it == pdk.end() ? nullptr : &it->second;
  };
  if (json) {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartArray();
    for (const store::Subscription& s : subs)
      WriteJson(w, s, state(s.name), now_ms);
    w.EndArray();
    std::cout << buffer.GetString() << "\n";
    return 0;
  }
  size_t width = 4;
  for (const store::Subscription& s : subs)
    width = std::max(width, s.name.size());
  std::printf("%-*s  %-9s  %-3s  %-5s  %-24s  %-24s  %-6s  %-8s  %s\n",
              static_cast<int>(width), "NAME", "FAMILY", "API", "BASIC",
              "CREATED", "PDK ID", "ACTIVE", "ODOMETER", "EXPIRES");
  for (const store::Subscription& s : subs) {
    const PdkState* p = state(s.name);
    const std::string odometer =
        p != nullptr && p->odometer ? absl::StrCat(*p->odometer) : "-";
    const std::string expires =
        p != nullptr && p->error.empty()
            ? (p->expires_at.empty() ? "never" : p->expires_at)
            : "-";
    std::printf("%-*s  %-9s  %-3d  %-5s  %-24s  %-24s  %-6s  %-8s  %s\n",
                static_cast<int>(width), s.name.c_str(), s.family.c_str(),
                s.api, s.basic_auth.empty() ? "no" : "yes",
                TimeText(s.created_ms).c_str(),
                s.pdk_id.empty() ? "-" : s.pdk_id.c_str(),
                ActiveText(p).c_str(), odometer.c_str(), expires.c_str());
  }
  return 0;
}

int Show(const store::Subscription& s, const PdkState* pdk, bool json) {
  const int64_t now_ms = timeutil::NowMs();
  if (json) {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    WriteJson(w, s, pdk, now_ms);
    std::cout << buffer.GetString() << "\n";
    return 0;
  }
  std::cout << "name:              " << s.name << "\n"
            << "family:            " << s.family << "\n"
            << "api:               " << s.api << "\n"
            << "pdk id:            "
            << (s.pdk_id.empty() ? "- (added by hand)" : s.pdk_id) << "\n"
            << "secret:            set (never shown)\n"
            << "basic auth:        " << (s.basic_auth.empty() ? "no" : "yes")
            << "\n"
            << "created:           " << TimeText(s.created_ms) << "\n"
            << "odometer baseline: "
            << (s.odometer_baseline ? absl::StrCat(*s.odometer_baseline) : "-")
            << "\n"
            << "previous secret:   "
            << (PreviousAccepted(s, now_ms)
                    ? absl::StrCat("accepted until ",
                                   TimeText(s.previous_until_ms))
                    : "none accepted")
            << "\n";
  if (!s.pdk_id.empty()) {
    std::cout << "events:            " << (s.events.empty() ? "-" : s.events)
              << "\n"
              << "scope:             " << (s.scope.empty() ? "-" : s.scope)
              << "\n"
              << "delivered to:      "
              << (s.public_url.empty()
                      ? "-"
                      : absl::StrCat(s.public_url, "/webhooks/", s.name))
              << "\n"
              << "secrecy level:     "
              << (s.secrecy_level ? absl::StrCat(*s.secrecy_level)
                                  : "PDK's default")
              << "\n"
              << "expires:           "
              << (s.expires_at.empty() ? "never" : s.expires_at) << "\n"
              << "baseline sequence: "
              << (s.baseline_sequence ? absl::StrCat(*s.baseline_sequence)
                                      : "-")
              << "\n";
  }
  if (s.last_check) {
    std::cout << "last check:        " << TimeText(s.last_check->checked_ms)
              << ": PDK sent " << s.last_check->pdk_events << ", archived "
              << s.last_check->archived_events << ", missing "
              << s.last_check->missing_events << "\n";
  }
  if (pdk != nullptr) {
    if (!pdk->error.empty()) {
      std::cout << "at PDK:            cannot read: " << pdk->error << "\n";
    } else {
      std::cout << "at PDK:            active "
                << (pdk->active ? (*pdk->active ? "true" : "false") : "?")
                << ", expiresAt "
                << (pdk->expires_at.empty() ? "null" : pdk->expires_at)
                << ", odometer "
                << (pdk->odometer ? absl::StrCat(*pdk->odometer) : "?") << "\n";
    }
  }
  return 0;
}

// PDK's state of each of `subs` made at PDK, by name. Prints each failure.
std::map<std::string, PdkState> ReadPdkStates(
    pdkapi::PdkClient& client, const std::vector<store::Subscription>& subs,
    bool* failed) {
  std::map<std::string, PdkState> states;
  for (const store::Subscription& s : subs) {
    if (s.pdk_id.empty()) continue;
    PdkState& state = states[s.name];
    absl::StatusOr<pdkapi::PdkSubscription> at = FetchAtPdk(client, s);
    if (!at.ok()) {
      state.error = std::string(at.status().message());
      std::cerr << "pdk-archive subscriptions: " << s.name << ": "
                << state.error << "\n";
      *failed = true;
      continue;
    }
    state.read = true;
    state.active = at->active;
    state.expires_at = at->expires_at;
    state.odometer = at->odometer;
  }
  return states;
}

}  // namespace

int RunSubscriptions(const std::vector<std::string>& args) {
  ArchiveFlags archive_flags;
  PdkFlags pdk_flags;
  std::string family = "org";
  int64_t api = 1;
  std::optional<std::string> secret_file;
  std::optional<std::string> basic_auth_file;
  bool basic_auth = false;
  bool json = false;
  std::string grace = "24h";
  bool local_only = false;
  std::vector<std::string> events;
  std::optional<std::string> scope;
  int64_t secrecy_level = -1;
  std::optional<std::string> expires_at;
  std::optional<std::string> active;
  FlagSet flags(kUsage, kDescription);
  AddArchiveFlags(flags, &archive_flags);
  AddPdkFlags(flags, &pdk_flags);
  flags.String("family", "F", &family,
               "add: the family of events it carries: org or panel (API 1), "
               "org, system or cloudnode (API 2)");
  flags.Int("api", "N", &api,
            "add, create: PDK's API version: 1 (hooks) or 2 (subscriptions)");
  flags.OptionalString(
      "secret-file", "FILE", &secret_file,
      "add: its secret, as set at PDK (default: generate one)");
  flags.OptionalString(
      "basic-auth-file", "FILE", &basic_auth_file,
      "add, create: USER:PASSWORD PDK sends as HTTP Basic credentials");
  flags.Bool("basic-auth", &basic_auth,
             "create: have PDK send Basic credentials (from --basic-auth-file)");
  flags.List("events", "TOPICS", &events,
             "create, update: the topics it carries, all of one family");
  flags.OptionalString("scope", "S", &scope,
                       "create, update: PDK's scope (default ouRecursive for "
                       "API 1, recursive for API 2)");
  flags.Int("secrecy-level", "N", &secrecy_level,
            "create, update: PDK's secrecyLevel 0, 1 or 2; -1 leaves it to "
            "PDK (1 on create)");
  flags.OptionalString("expires-at", "TIME", &expires_at,
                       "create, update: when PDK makes it inactive (RFC 3339, "
                       "in the future)");
  flags.OptionalString("active", "BOOL", &active,
                       "update: true or false");
  flags.Bool("json", &json, "list, show, check: print JSON");
  flags.String(
      "grace", "DURATION", &grace,
      "rotate: how long the old secret stays accepted (90s, 15m, 24h, 7d)");
  flags.Bool("local-only", &local_only,
             "delete, rotate: change it here only, without telling PDK");
  std::vector<std::string> positional;
  if (absl::Status s = flags.Parse(args, &positional); !s.ok()) {
    std::cerr << "pdk-archive subscriptions: " << s.message() << "\n\n"
              << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  const std::string verb = positional.empty() ? "" : positional[0];
  const bool named = verb == "add" || verb == "create" || verb == "show" ||
                     verb == "update" || verb == "rotate" || verb == "delete";
  const bool optional_name = verb == "check";
  const bool ok_count =
      named ? positional.size() == 2
            : (optional_name ? positional.size() <= 2 : positional.size() == 1);
  if (!(named || optional_name || verb == "list") || !ok_count) {
    std::cerr
        << "pdk-archive subscriptions: want `add NAME`, `create NAME`, "
           "`list`, `show NAME`, `update NAME`, `rotate NAME`, `delete NAME` "
           "or `check [NAME]`\n\n"
        << flags.Help();
    return 2;
  }
  const std::string name = positional.size() == 2 ? positional[1] : "";
  PdkSettings settings;
  settings.events = events;
  settings.scope = scope;
  if (secrecy_level != -1) settings.secrecy_level = static_cast<int>(secrecy_level);
  settings.expires_at = expires_at;
  if (active) {
    if (*active != "true" && *active != "false")
      return SubscriptionsUsage(absl::StrCat("bad --active \"", *active, "\": want true or false"));
    settings.active = *active == "true";
  }
  settings.basic_auth = basic_auth;
  settings.basic_auth_file = basic_auth_file;
  settings.api = static_cast<int>(api);
  if (verb == "create") {
    if (api != 1 && api != 2)
      return SubscriptionsUsage(absl::StrCat("unknown --api ", api, ": want 1 or 2"));
    return RunCreate(name, settings, pdk_flags, archive_flags);
  }
  if ((named || !name.empty()) && !store::ValidSubscriptionName(name)) {
    return SubscriptionsUsage(absl::StrCat(
        "\"", name,
        "\" is not a subscription name: a lowercase letter or digit, then "
        "up to 62 of [a-z0-9_-]"));
  }
  if (verb == "update")
    return RunUpdate(name, settings, pdk_flags, archive_flags);
  if (verb == "check") {
    return RunCheck(name.empty() ? std::nullopt : std::optional<std::string>(name),
                    json, pdk_flags, archive_flags);
  }
  store::Subscription added;
  if (verb == "add") {
    const std::optional<store::Family> parsed = store::ParseFamily(family);
    if (!parsed || *parsed == store::Family::kUnknown) {
      return SubscriptionsUsage(absl::StrCat("unknown --family \"", family,
                                "\": want org, panel, system or cloudnode"));
    }
    if (api != 1 && api != 2) {
      return SubscriptionsUsage(absl::StrCat("unknown --api ", api, ": want 1 or 2"));
    }
    if (!store::FamilyOfApi(*parsed, static_cast<int>(api))) {
      return SubscriptionsUsage(absl::StrCat("--family ", family,
                                " is not a family of PDK API ", api,
                                " (1: org, panel; 2: org, system, cloudnode)"));
    }
    added.name = name;
    added.family = family;
    added.api = static_cast<int>(api);
    if (secret_file) {
      absl::StatusOr<std::string> secret =
          ReadSecretFile("secret-file", *secret_file);
      if (!secret.ok()) return SubscriptionsUsage(std::string(secret.status().message()));
      if (secret->size() > 255)
        return SubscriptionsUsage("the secret is over PDK's 255 characters");
      added.secret = *secret;
    }
    if (basic_auth_file) {
      absl::StatusOr<std::string> basic =
          ReadSecretFile("basic-auth-file", *basic_auth_file);
      if (!basic.ok()) return SubscriptionsUsage(std::string(basic.status().message()));
      const size_t colon = basic->find(':');
      if (colon == std::string::npos || colon == 0 ||
          colon + 1 == basic->size()) {
        return SubscriptionsUsage(
            "--basic-auth-file must hold USER:PASSWORD, both non-empty");
      }
      added.basic_auth = *basic;
    }
  }
  std::optional<int64_t> grace_ms;
  if (verb == "rotate") {
    grace_ms = ParseDuration(grace);
    if (!grace_ms) {
      return SubscriptionsUsage(absl::StrCat(
          "bad --grace \"", grace,
          "\": want a positive whole number and s, m, h or d (24h)"));
    }
  }
  // PDK access, when configured (list, show) or needed (rotate, delete of a
  // subscription made at PDK; checked below once it is found).
  std::unique_ptr<pdkapi::PdkClient> pdk;
  if (PdkConfigured(pdk_flags) && verb != "add") {
    absl::StatusOr<std::unique_ptr<pdkapi::PdkClient>> client = OpenPdk(pdk_flags);
    if (!client.ok()) return SubscriptionsUsage(std::string(client.status().message()));
    pdk = *std::move(client);
  }

  absl::StatusOr<std::unique_ptr<store::Archive>> archive =
      OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) return SubscriptionsFail(archive.status());
  store::SubscriptionStore& subscriptions = (*archive)->subscriptions();

  if (verb == "add") {
    const bool generated = added.secret.empty();
    if (generated) {
      absl::StatusOr<std::string> secret = store::NewSubscriptionSecret();
      if (!secret.ok()) return SubscriptionsFail(secret.status());
      added.secret = *secret;
    }
    added.created_ms = timeutil::NowMs();
    if (absl::Status s = subscriptions.AddSubscription(added); !s.ok())
      return SubscriptionsFail(s);
    if (generated) std::cout << added.secret << "\n" << std::flush;
    std::cerr
        << "pdk-archive subscriptions: added " << name << " (" << added.family
        << " events, API " << added.api
        << "); PDK delivers to PUBLIC_URL/webhooks/" << name
        << "; serve nodes take it within 5 seconds"
        << (generated
                ? "; this is the only time the secret is shown: set it at PDK"
                : "")
        << "\n";
    return 0;
  }

  absl::StatusOr<std::vector<store::Subscription>> all =
      subscriptions.ListSubscriptions();
  if (!all.ok()) return SubscriptionsFail(all.status());
  if (verb == "list") {
    bool failed = false;
    std::map<std::string, PdkState> states;
    if (pdk) states = ReadPdkStates(*pdk, *all, &failed);
    const int rc = List(*all, states, json);
    return failed ? 1 : rc;
  }
  const store::Subscription* found = nullptr;
  for (const store::Subscription& s : *all) {
    if (s.name == name) found = &s;
  }
  if (found == nullptr)
    return SubscriptionsFail(
        absl::NotFoundError(absl::StrCat("no subscription named ", name)));
  if (verb == "show") {
    bool failed = false;
    std::map<std::string, PdkState> states;
    if (pdk) states = ReadPdkStates(*pdk, {*found}, &failed);
    auto it = states.find(name);
    const int rc = Show(*found, it == states.end() ? nullptr : &it->second, json);
    return failed ? 1 : rc;
  }
  const bool at_pdk = !found->pdk_id.empty() && !local_only;
  if (at_pdk && !pdk) {
    return SubscriptionsUsage(absl::StrCat(
        name, " was made at PDK (id ", found->pdk_id, "): ", verb,
        " needs PDK access (--pdk-org, --pdk-client-id, "
        "--pdk-client-secret-file), or --local-only to change it here only"));
  }

  if (verb == "rotate") {
    absl::StatusOr<std::string> secret = store::NewSubscriptionSecret();
    if (!secret.ok()) return SubscriptionsFail(secret.status());
    const int64_t until_ms = timeutil::NowMs() + *grace_ms;
    if (at_pdk) {
      // PDK first: if it refuses, nothing changed anywhere.
      if (absl::Status s = PushSecretToPdk(*pdk, *found, *secret); !s.ok()) {
        std::cerr << "pdk-archive subscriptions: the secret of " << name
                  << " is unchanged (here and at PDK)\n";
        return SubscriptionsFail(s);
      }
    }
    if (absl::Status s = subscriptions.RotateSecret(name, *secret, until_ms);
        !s.ok()) {
      if (at_pdk) {
        absl::Status back = PushSecretToPdk(*pdk, *found, found->secret);
        std::cerr << "pdk-archive subscriptions: PDK took the new secret but "
                     "the archive did not; "
                  << (back.ok() ? "PDK has the old one again"
                                : absl::StrCat("putting the old one back at "
                                               "PDK failed too: ",
                                               back.message(),
                                               ": rotate again"))
                  << "\n";
      }
      return SubscriptionsFail(s);
    }
    if (at_pdk) {
      std::cerr << "pdk-archive subscriptions: rotated " << name
                << ": PDK signs with the new secret now (never shown); serve "
                   "nodes accept it within 5 seconds and the old one until "
                << TimeText(until_ms) << "\n";
      return 0;
    }
    std::cout << *secret << "\n" << std::flush;
    std::cerr << "pdk-archive subscriptions: rotated " << name
              << "; serve nodes accept the new secret within 5 seconds and the "
                 "old one until "
              << TimeText(until_ms)
              << "; this is the only time the new secret is shown: set it at "
                 "PDK before the old one expires\n";
    return 0;
  }

  // delete
  if (at_pdk) {
    absl::Status s = pdk->DeleteSubscription(found->api, found->pdk_id);
    if (s.code() == absl::StatusCode::kNotFound) {
      std::cerr << "pdk-archive subscriptions: PDK has no subscription "
                << found->pdk_id << " any more: " << s.message() << "\n";
    } else if (!s.ok()) {
      std::cerr << "pdk-archive subscriptions: " << name
                << " is kept (here and at PDK)\n";
      return SubscriptionsFail(s);
    } else {
      std::cerr << "pdk-archive subscriptions: deleted " << name
                << " at PDK (id " << found->pdk_id << ")\n";
    }
  }
  if (absl::Status s = subscriptions.DeleteSubscription(name, timeutil::NowMs());
      !s.ok())
    return SubscriptionsFail(s);
  std::cerr << "pdk-archive subscriptions: deleted " << name << "; /webhooks/"
            << name
            << " answers 404 on every serve node within 5 seconds; "
               "its events stay in the archive\n";
  return 0;
}

}  // namespace pdkarchive::cli
