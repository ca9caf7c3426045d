#include "cli/subscriptions_command.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "store/archive.h"
#include "store/subscription_store.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

constexpr char kUsage[] =
    "pdk-archive subscriptions add|list|show|rotate|delete [NAME] [flags]";
constexpr char kDescription[] =
    "The PDK subscriptions this archive takes deliveries for: PDK posts\n"
    "subscription NAME's events to PUBLIC_URL/webhooks/NAME, each checked\n"
    "against that subscription's own secret (and Basic credentials). They are\n"
    "kept in the archive; running serve nodes hear a change within 5 seconds.\n"
    "  add NAME      register a subscription made by hand in PDK (--family,\n"
    "                --api, --secret-file, --basic-auth-file); with no\n"
    "                --secret-file a secret is generated and printed alone on\n"
    "                the first line of stdout, once\n"
    "  list          the subscriptions (never their secrets)\n"
    "  show NAME     one subscription, and whether a previous secret is still\n"
    "                accepted and until when\n"
    "  rotate NAME   a new secret, printed once; the old one stays accepted "
    "for\n"
    "                --grace (PDK is not told yet: set the new secret at PDK)\n"
    "  delete NAME   /webhooks/NAME answers 404 from then on; its events "
    "stay.\n"
    "                A subscription made at PDK needs --local-only (deleting "
    "it\n"
    "                at PDK is not built yet)\n"
    "NAME: a lowercase letter or digit, then up to 62 of [a-z0-9_-].";

std::string TimeText(std::optional<int64_t> ms) {
  if (!ms) return "-";
  return timeutil::FormatRfc3339Millis(*ms).value_or(absl::StrCat(*ms));
}

int Fail(const absl::Status& status) {
  std::cerr << "pdk-archive subscriptions: " << status.message() << "\n";
  return 1;
}

int Usage(const std::string& message) {
  std::cerr << "pdk-archive subscriptions: " << message << "\n";
  return 2;
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

// `s` as JSON, without its secrets.
void WriteJson(rapidjson::Writer<rapidjson::StringBuffer>& w,
               const store::Subscription& s, int64_t now_ms) {
  auto text = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  text("name", s.name);
  text("family", s.family);
  w.Key("api");
  w.Int(s.api);
  text("pdk_id", s.pdk_id);
  w.Key("basic_auth");
  w.Bool(!s.basic_auth.empty());
  text("created", TimeText(s.created_ms));
  w.Key("odometer_baseline");
  if (s.odometer_baseline) {
    w.Int64(*s.odometer_baseline);
  } else {
    w.Null();
  }
  w.Key("previous_secret_accepted_until");
  if (PreviousAccepted(s, now_ms)) {
    const std::string until = TimeText(s.previous_until_ms);
    w.String(until.data(), static_cast<rapidjson::SizeType>(until.size()));
  } else {
    w.Null();
  }
  w.EndObject();
}

int List(const std::vector<store::Subscription>& subs, bool json) {
  const int64_t now_ms = timeutil::NowMs();
  if (json) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartArray();
    for (const store::Subscription& s : subs) WriteJson(w, s, now_ms);
    w.EndArray();
    std::cout << buffer.GetString() << "\n";
    return 0;
  }
  size_t width = 4;
  for (const store::Subscription& s : subs)
    width = std::max(width, s.name.size());
  std::printf("%-*s  %-6s  %-3s  %-5s  %-24s  %s\n", static_cast<int>(width),
              "NAME", "FAMILY", "API", "BASIC", "CREATED", "PDK ID");
  for (const store::Subscription& s : subs) {
    std::printf("%-*s  %-6s  %-3d  %-5s  %-24s  %s\n", static_cast<int>(width),
                s.name.c_str(), s.family.c_str(), s.api,
                s.basic_auth.empty() ? "no" : "yes",
                TimeText(s.created_ms).c_str(),
                s.pdk_id.empty() ? "-" : s.pdk_id.c_str());
  }
  return 0;
}

int Show(const store::Subscription& s, bool json) {
  const int64_t now_ms = timeutil::NowMs();
  if (json) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    WriteJson(w, s, now_ms);
    std::cout << buffer.GetString() << "\n";
    return 0;
  }
  std::cout << "name:              " << s.name << "\n"
            << "family:            " << s.family << "\n"
            << "api:               " << s.api << "\n"
            << "pdk id:            "
            << (s.pdk_id.empty() ? "- (added by hand)" : s.pdk_id) << "\n"
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
  return 0;
}

}  // namespace

int RunSubscriptions(const std::vector<std::string>& args) {
  ArchiveFlags archive_flags;
  std::string family = "org";
  int64_t api = 1;
  std::optional<std::string> secret_file;
  std::optional<std::string> basic_auth_file;
  bool json = false;
  std::string grace = "24h";
  bool local_only = false;
  FlagSet flags(kUsage, kDescription);
  AddArchiveFlags(flags, &archive_flags);
  flags.String("family", "F", &family,
               "add: the family of events it carries: org or panel");
  flags.Int("api", "N", &api,
            "add: PDK's API version it was made with: 1 or 2");
  flags.OptionalString(
      "secret-file", "FILE", &secret_file,
      "add: its secret, as set at PDK (default: generate one)");
  flags.OptionalString(
      "basic-auth-file", "FILE", &basic_auth_file,
      "add: USER:PASSWORD PDK sends as HTTP Basic credentials");
  flags.Bool("json", &json, "list, show: print JSON");
  flags.String(
      "grace", "DURATION", &grace,
      "rotate: how long the old secret stays accepted (90s, 15m, 24h, 7d)");
  flags.Bool("local-only", &local_only,
             "delete: forget it here without telling PDK");
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
  const bool named =
      verb == "add" || verb == "show" || verb == "rotate" || verb == "delete";
  if (!(named || verb == "list") || positional.size() != (named ? 2u : 1u)) {
    std::cerr
        << "pdk-archive subscriptions: want `add NAME`, `list`, `show NAME`, "
           "`rotate NAME` or `delete NAME`\n\n"
        << flags.Help();
    return 2;
  }
  const std::string name = named ? positional[1] : "";
  if (named && !store::ValidSubscriptionName(name)) {
    return Usage(absl::StrCat(
        "\"", name,
        "\" is not a subscription name: a lowercase letter or digit, then "
        "up to 62 of [a-z0-9_-]"));
  }
  store::Subscription added;
  if (verb == "add") {
    if (family != "org" && family != "panel") {
      return Usage(
          absl::StrCat("unknown --family \"", family, "\": want org or panel"));
    }
    if (api != 1 && api != 2) {
      return Usage(absl::StrCat("unknown --api ", api, ": want 1 or 2"));
    }
    added.name = name;
    added.family = family;
    added.api = static_cast<int>(api);
    if (secret_file) {
      absl::StatusOr<std::string> secret =
          ReadSecretFile("secret-file", *secret_file);
      if (!secret.ok()) return Usage(std::string(secret.status().message()));
      if (secret->size() > 255)
        return Usage("the secret is over PDK's 255 characters");
      added.secret = *secret;
    }
    if (basic_auth_file) {
      absl::StatusOr<std::string> basic =
          ReadSecretFile("basic-auth-file", *basic_auth_file);
      if (!basic.ok()) return Usage(std::string(basic.status().message()));
      const size_t colon = basic->find(':');
      if (colon == std::string::npos || colon == 0 ||
          colon + 1 == basic->size()) {
        return Usage(
            "--basic-auth-file must hold USER:PASSWORD, both non-empty");
      }
      added.basic_auth = *basic;
    }
  }
  std::optional<int64_t> grace_ms;
  if (verb == "rotate") {
    grace_ms = ParseDuration(grace);
    if (!grace_ms) {
      return Usage(absl::StrCat(
          "bad --grace \"", grace,
          "\": want a positive whole number and s, m, h or d (24h)"));
    }
  }

  absl::StatusOr<std::unique_ptr<store::Archive>> archive =
      OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) return Fail(archive.status());
  store::SubscriptionStore& subscriptions = (*archive)->subscriptions();

  if (verb == "add") {
    const bool generated = added.secret.empty();
    if (generated) {
      absl::StatusOr<std::string> secret = store::NewSubscriptionSecret();
      if (!secret.ok()) return Fail(secret.status());
      added.secret = *secret;
    }
    added.created_ms = timeutil::NowMs();
    if (absl::Status s = subscriptions.AddSubscription(added); !s.ok())
      return Fail(s);
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
  if (!all.ok()) return Fail(all.status());
  if (verb == "list") return List(*all, json);
  const store::Subscription* found = nullptr;
  for (const store::Subscription& s : *all) {
    if (s.name == name) found = &s;
  }
  if (found == nullptr)
    return Fail(
        absl::NotFoundError(absl::StrCat("no subscription named ", name)));
  if (verb == "show") return Show(*found, json);

  if (verb == "rotate") {
    absl::StatusOr<std::string> secret = store::NewSubscriptionSecret();
    if (!secret.ok()) return Fail(secret.status());
    const int64_t until_ms = timeutil::NowMs() + *grace_ms;
    if (absl::Status s = subscriptions.RotateSecret(name, *secret, until_ms);
        !s.ok()) {
      return Fail(s);
    }
    std::cout << *secret << "\n" << std::flush;
    std::cerr << "pdk-archive subscriptions: rotated " << name
              << "; serve nodes accept the new secret within 5 seconds and the "
                 "old one until "
              << TimeText(until_ms)
              << "; this is the only time the new secret is shown\n";
    if (!found->pdk_id.empty()) {
      std::cerr << "pdk-archive subscriptions: NOTE: sending the new secret to "
                   "PDK is not "
                   "built yet: set it on PDK's subscription "
                << found->pdk_id << " by hand before the old one expires\n";
    } else {
      std::cerr << "pdk-archive subscriptions: set the new secret at PDK "
                   "before the old one "
                   "expires\n";
    }
    return 0;
  }

  // delete
  if (!found->pdk_id.empty() && !local_only) {
    std::cerr << "pdk-archive subscriptions: " << name
              << " was made at PDK (id " << found->pdk_id
              << ") and deleting it there is not built yet: delete it at PDK "
                 "by hand, "
                 "then run `delete "
              << name << " --local-only`\n";
    return 1;
  }
  if (absl::Status s = subscriptions.DeleteSubscription(name, timeutil::NowMs()); !s.ok())
    return Fail(s);
  std::cerr << "pdk-archive subscriptions: deleted " << name << "; /webhooks/"
            << name
            << " answers 404 on every serve node within 5 seconds; "
               "its events stay in the archive\n";
  return 0;
}

}  // namespace pdkarchive::cli
