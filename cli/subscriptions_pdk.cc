#include "cli/subscriptions_pdk.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ingest/catalog.h"
#include "store/archive.h"
#include "store/family.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

constexpr size_t kPdkNameLimit = 70;
constexpr size_t kPdkSecretLimit = 255;
constexpr int64_t kExpiryWarningMs = 7 * timeutil::kDayMs;

std::string EventsJson(const std::vector<std::string>& events) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartArray();
  for (const std::string& e : events)
    w.String(e.data(), static_cast<rapidjson::SizeType>(e.size()));
  w.EndArray();
  return buffer.GetString();
}

std::string DefaultScope(int api) {
  return api == 2 ? "recursive" : "ouRecursive";
}

// Sets the authentication of `out` from the local "user:password".
void SetAuth(const std::string& basic_auth, pdkapi::PdkSubscription* out) {
  const size_t colon = basic_auth.find(':');
  if (basic_auth.empty() || colon == std::string::npos) {
    out->auth_type = "None";
    out->auth_user.clear();
    out->auth_password.clear();
    return;
  }
  out->auth_type = "Basic";
  out->auth_user = basic_auth.substr(0, colon);
  out->auth_password = basic_auth.substr(colon + 1);
}

// Checks --expires-at: RFC 3339 and in the future. Returns it as given.
absl::StatusOr<std::string> CheckExpiry(const std::string& text) {
  absl::StatusOr<int64_t> ms = timeutil::ParseRfc3339Ms(text);
  if (!ms.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad --expires-at \"", text,
                     "\": want an RFC 3339 time such as 2027-01-31T00:00:00Z"));
  }
  if (*ms <= timeutil::NowMs()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--expires-at ", text, " is not in the future (PDK's rule)"));
  }
  return text;
}

// Checks --secrecy-level (0, 1 or 2) and --expires-at (CheckExpiry), and
// sets `*expires_at` to the latter ("" when not given).
absl::Status CheckLevelAndExpiry(const PdkSettings& settings,
                                 std::string* expires_at) {
  if (settings.secrecy_level &&
      (*settings.secrecy_level < 0 || *settings.secrecy_level > 2)) {
    return absl::InvalidArgumentError("--secrecy-level: want 0, 1 or 2");
  }
  expires_at->clear();
  if (settings.expires_at) {
    absl::StatusOr<std::string> checked = CheckExpiry(*settings.expires_at);
    if (!checked.ok()) return checked.status();
    *expires_at = *checked;
  }
  return absl::OkStatus();
}

// The public URL without trailing slashes, checked against PDK's rule
// (https) and for a host PDK can reach (not loopback).
absl::StatusOr<std::string> CheckPublicUrl(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.empty()) {
    return absl::InvalidArgumentError(
        "create needs --public-url: the https address PDK delivers to");
  }
  if (!absl::StartsWith(absl::AsciiStrToLower(url), "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--public-url \"", url,
                     "\" is not https://: PDK delivers to https URLs only"));
  }
  if (pdkapi::IsLoopbackUrl(url)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--public-url \"", url,
        "\" is a loopback address PDK cannot reach: give the public one"));
  }
  return url;
}

// Reads --basic-auth-file: USER:PASSWORD, both non-empty.
absl::StatusOr<std::string> ReadBasic(const PdkSettings& settings) {
  if (!settings.basic_auth_file) {
    if (settings.basic_auth) {
      return absl::InvalidArgumentError(
          "--basic-auth: PDK's Basic authentication needs a user and a "
          "password: give them as USER:PASSWORD in --basic-auth-file");
    }
    return std::string();
  }
  absl::StatusOr<std::string> basic =
      ReadSecretFile("basic-auth-file", *settings.basic_auth_file);
  if (!basic.ok()) return basic.status();
  const size_t colon = basic->find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == basic->size()) {
    return absl::InvalidArgumentError(
        "--basic-auth-file must hold USER:PASSWORD, both non-empty (PDK's "
        "Basic authentication needs a user and a password)");
  }
  return basic;
}

absl::StatusOr<store::Subscription> FindLive(store::SubscriptionStore& store,
                                             const std::string& name) {
  absl::StatusOr<std::vector<store::Subscription>> all =
      store.ListSubscriptions();
  if (!all.ok()) return all.status();
  for (store::Subscription& s : *all) {
    if (s.name == name) return std::move(s);
  }
  return absl::NotFoundError(absl::StrCat("no subscription named ", name));
}

std::string TimeText(int64_t ms) {
  return timeutil::FormatRfc3339Millis(ms).value_or(absl::StrCat(ms));
}

}  // namespace

int SubscriptionsFail(const absl::Status& status) {
  std::cerr << "pdk-archive subscriptions: " << status.message() << "\n";
  return 1;
}

int SubscriptionsUsage(const std::string& message) {
  std::cerr << "pdk-archive subscriptions: " << message << "\n";
  return 2;
}

void AddPdkFlags(FlagSet& flags, PdkFlags* target) {
  flags.String("pdk-api", "URL", &target->api,
               "PDK's API (https; http only to a loopback host)");
  flags.String("pdk-org", "ID", &target->org,
               "the PDK organization the subscriptions belong to");
  flags.String("pdk-client-id", "ID", &target->client_id,
               "the PDK API client (OAuth2 client credentials)");
  flags.OptionalString("pdk-client-secret-file", "FILE",
                       &target->client_secret_file,
                       "a file holding that client's secret");
  flags.String("public-url", "URL", &target->public_url,
               "create: the https address PDK reaches this archive's serve "
               "at; PDK delivers to PUBLIC_URL/webhooks/NAME");
}

bool PdkConfigured(const PdkFlags& flags) {
  return !flags.org.empty() && !flags.client_id.empty() &&
         flags.client_secret_file.has_value();
}

absl::StatusOr<std::unique_ptr<pdkapi::PdkClient>> OpenPdk(
    const PdkFlags& flags) {
  if (!PdkConfigured(flags)) {
    return absl::InvalidArgumentError(
        "this needs PDK access: --pdk-org, --pdk-client-id and "
        "--pdk-client-secret-file (or the same keys in --config)");
  }
  absl::StatusOr<std::string> secret =
      ReadSecretFile("pdk-client-secret-file", *flags.client_secret_file);
  if (!secret.ok()) return secret.status();
  pdkapi::PdkAccess access;
  access.api_url = flags.api;
  access.org = flags.org;
  access.client_id = flags.client_id;
  access.client_secret = *secret;
  return pdkapi::PdkClient::Create(std::move(access));
}

absl::StatusOr<std::string> FamilyOfEvents(
    const std::vector<std::string>& events, int api) {
  if (events.empty()) {
    return absl::InvalidArgumentError(
        "--events: give the topics the subscription carries");
  }
  std::optional<store::Family> family;
  std::string first;
  for (const std::string& topic : events) {
    if (!ingest::IsKnownTopic(topic, api)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--events: \"", topic, "\" is not a known PDK API ", api, " topic"));
    }
    const store::Family f = ingest::LookupTopic(topic, api).family;
    if (!family) {
      family = f;
      first = topic;
    } else if (*family != f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--events mixes families: ", first, " is ",
          std::string(store::FamilyName(*family)), ", ", topic, " is ",
          std::string(store::FamilyName(f)),
          " (PDK takes one family per subscription: make one each)"));
    }
  }
  if (!store::FamilyOfApi(*family, api)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--events: PDK API ", api, " has no ",
                     std::string(store::FamilyName(*family)), " family"));
  }
  return std::string(store::FamilyName(*family));
}

absl::StatusOr<pdkapi::PdkSubscription> FetchAtPdk(
    pdkapi::PdkClient& client, const store::Subscription& s) {
  return client.GetSubscription(s.api, s.pdk_id);
}

absl::Status PushSecretToPdk(pdkapi::PdkClient& client,
                             const store::Subscription& s,
                             const std::string& new_secret) {
  absl::StatusOr<pdkapi::PdkSubscription> current = FetchAtPdk(client, s);
  if (!current.ok()) return current.status();
  current->id = s.pdk_id;
  current->secret = new_secret;
  SetAuth(s.basic_auth, &*current);
  return client.UpdateSubscription(s.api, *current);
}

int RunCreate(const std::string& name, const PdkSettings& settings,
              const PdkFlags& pdk, const ArchiveFlags& archive_flags) {
  // PDK's rules, and ours, before any call.
  if (name.size() > kPdkNameLimit) {
    return SubscriptionsUsage(absl::StrCat("the name is ", name.size(),
                              " characters: PDK takes at most ",
                              kPdkNameLimit));
  }
  if (!store::ValidSubscriptionName(name)) {
    return SubscriptionsUsage(absl::StrCat(
        "\"", name,
        "\" is not a subscription name: a lowercase letter or digit, then "
        "up to 62 of [a-z0-9_-]"));
  }
  if (settings.api != 1 && settings.api != 2)
    return SubscriptionsUsage(absl::StrCat("unknown --api ", settings.api, ": want 1 or 2"));
  absl::StatusOr<std::string> family =
      FamilyOfEvents(settings.events, settings.api);
  if (!family.ok()) return SubscriptionsUsage(std::string(family.status().message()));
  absl::StatusOr<std::string> public_url = CheckPublicUrl(pdk.public_url);
  if (!public_url.ok())
    return SubscriptionsUsage(std::string(public_url.status().message()));
  std::string expires_at;
  if (absl::Status st = CheckLevelAndExpiry(settings, &expires_at); !st.ok()) {
    return SubscriptionsUsage(std::string(st.message()));
  }
  absl::StatusOr<std::string> basic = ReadBasic(settings);
  if (!basic.ok()) return SubscriptionsUsage(std::string(basic.status().message()));
  absl::StatusOr<std::unique_ptr<pdkapi::PdkClient>> client = OpenPdk(pdk);
  if (!client.ok()) return SubscriptionsUsage(std::string(client.status().message()));
  absl::StatusOr<std::string> secret = store::NewSubscriptionSecret();
  if (!secret.ok()) return SubscriptionsFail(secret.status());
  if (secret->size() > kPdkSecretLimit)
    return SubscriptionsFail(absl::InternalError("generated secret over PDK's 255"));

  // The archive first: a name taken here never reaches PDK.
  absl::StatusOr<std::unique_ptr<store::Archive>> archive =
      OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) return SubscriptionsFail(archive.status());
  store::SubscriptionStore& subscriptions = (*archive)->subscriptions();
  if (absl::StatusOr<store::Subscription> existing =
          FindLive(subscriptions, name);
      existing.ok()) {
    return SubscriptionsFail(absl::AlreadyExistsError(
        absl::StrCat("a subscription named ", name, " exists")));
  } else if (existing.status().code() != absl::StatusCode::kNotFound) {
    return SubscriptionsFail(existing.status());
  }
  absl::StatusOr<int64_t> sequence = subscriptions.LatestSequence();
  if (!sequence.ok()) return SubscriptionsFail(sequence.status());

  pdkapi::PdkSubscription wanted;
  wanted.name = name;
  wanted.url = absl::StrCat(*public_url, "/webhooks/", name);
  wanted.scope = settings.scope.value_or(DefaultScope(settings.api));
  SetAuth(*basic, &wanted);
  wanted.events = settings.events;
  wanted.active = settings.active.value_or(true);
  wanted.secrecy_level = settings.secrecy_level;
  wanted.expires_at = expires_at;
  wanted.secret = *secret;
  absl::StatusOr<std::string> id =
      (*client)->CreateSubscription(settings.api, wanted);
  if (!id.ok()) {
    std::cerr << "pdk-archive subscriptions: PDK did not create " << name
              << "; nothing was registered here\n";
    return SubscriptionsFail(id.status());
  }
  int64_t odometer = 0;
  absl::StatusOr<pdkapi::PdkSubscription> made =
      (*client)->GetSubscription(settings.api, *id);
  if (made.ok() && made->odometer) {
    odometer = *made->odometer;
  } else if (!made.ok()) {
    std::cerr << "pdk-archive subscriptions: warning: cannot read the new "
                 "subscription back from PDK (its odometer is taken as 0): "
              << made.status().message() << "\n";
  }

  store::Subscription added;
  added.name = name;
  added.family = *family;
  added.api = settings.api;
  added.pdk_id = *id;
  added.secret = *secret;
  added.basic_auth = *basic;
  added.odometer_baseline = odometer;
  added.created_ms = timeutil::NowMs();
  added.events = EventsJson(settings.events);
  added.scope = wanted.scope;
  added.public_url = *public_url;
  added.secrecy_level = settings.secrecy_level;
  added.expires_at = expires_at;
  added.pdk_active = made.ok() && made->active ? *made->active : *wanted.active;
  added.baseline_sequence = *sequence;
  if (absl::Status s = subscriptions.AddSubscription(added); !s.ok()) {
    absl::Status undone = (*client)->DeleteSubscription(settings.api, *id);
    std::cerr << "pdk-archive subscriptions: PDK created " << name << " (id "
              << *id << ") but it cannot be registered here: " << s.message()
              << "\n"
              << (undone.ok()
                      ? "pdk-archive subscriptions: deleted it at PDK again\n"
                      : absl::StrCat("pdk-archive subscriptions: and deleting "
                                     "it at PDK failed too (",
                                     undone.message(),
                                     "): delete PDK subscription ", *id,
                                     " by hand\n"));
    return 1;
  }
  std::cout << *id << "\n" << std::flush;
  std::cerr << "pdk-archive subscriptions: created " << name << " at PDK (id "
            << *id << ", " << *family << " events, API " << settings.api
            << "), delivering to " << wanted.url
            << "; its secret is set at PDK and here (never shown); serve "
               "nodes take it within 5 seconds\n";
  return 0;
}

int RunUpdate(const std::string& name, const PdkSettings& settings,
              const PdkFlags& pdk, const ArchiveFlags& archive_flags) {
  if (settings.events.empty() && !settings.active && !settings.secrecy_level &&
      !settings.expires_at && !settings.scope) {
    return SubscriptionsUsage(
        "update: give what changes: --events, --active, --secrecy-level, "
        "--expires-at or --scope");
  }
  std::string expires_at;
  if (absl::Status st = CheckLevelAndExpiry(settings, &expires_at); !st.ok()) {
    return SubscriptionsUsage(std::string(st.message()));
  }
  absl::StatusOr<std::unique_ptr<pdkapi::PdkClient>> client = OpenPdk(pdk);
  if (!client.ok()) return SubscriptionsUsage(std::string(client.status().message()));
  absl::StatusOr<std::unique_ptr<store::Archive>> archive =
      OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) return SubscriptionsFail(archive.status());
  store::SubscriptionStore& subscriptions = (*archive)->subscriptions();
  absl::StatusOr<store::Subscription> s = FindLive(subscriptions, name);
  if (!s.ok()) return SubscriptionsFail(s.status());
  if (s->pdk_id.empty()) {
    return SubscriptionsFail(absl::FailedPreconditionError(absl::StrCat(
        name, " was added by hand (no PDK id): change it at PDK")));
  }
  if (!settings.events.empty()) {
    absl::StatusOr<std::string> family =
        FamilyOfEvents(settings.events, s->api);
    if (!family.ok()) return SubscriptionsUsage(std::string(family.status().message()));
    if (*family != s->family) {
      return SubscriptionsUsage(absl::StrCat("--events are ", *family, " events but ", name,
                                " carries ", s->family,
                                " events: create another subscription"));
    }
  }
  absl::StatusOr<pdkapi::PdkSubscription> current = FetchAtPdk(**client, *s);
  if (!current.ok()) return SubscriptionsFail(current.status());
  pdkapi::PdkSubscription wanted = *current;
  wanted.id = s->pdk_id;
  wanted.secret = s->secret;
  SetAuth(s->basic_auth, &wanted);
  if (!settings.events.empty()) wanted.events = settings.events;
  if (settings.active) wanted.active = *settings.active;
  if (settings.secrecy_level) wanted.secrecy_level = *settings.secrecy_level;
  if (settings.expires_at) wanted.expires_at = expires_at;
  if (settings.scope) wanted.scope = *settings.scope;
  // PDK's update wants these (1.0: required on update).
  if (!wanted.active) wanted.active = true;
  if (!wanted.ssl_verification) wanted.ssl_verification = true;
  if (!wanted.secrecy_level) wanted.secrecy_level = 1;
  if (absl::Status st = (*client)->UpdateSubscription(s->api, wanted);
      !st.ok()) {
    return SubscriptionsFail(st);
  }
  store::Subscription settings_now = *s;
  settings_now.events = EventsJson(wanted.events);
  settings_now.scope = wanted.scope;
  settings_now.secrecy_level = wanted.secrecy_level;
  settings_now.expires_at = wanted.expires_at;
  settings_now.pdk_active = wanted.active;
  if (absl::Status st = subscriptions.UpdatePdkSettings(name, settings_now);
      !st.ok()) {
    std::cerr << "pdk-archive subscriptions: PDK took the update but the "
                 "archive did not record it\n";
    return SubscriptionsFail(st);
  }
  std::cerr << "pdk-archive subscriptions: updated " << name << " at PDK (id "
            << s->pdk_id << "): events " << absl::StrJoin(wanted.events, ",")
            << ", active " << (*wanted.active ? "true" : "false")
            << ", secrecy level " << *wanted.secrecy_level << ", expires "
            << (wanted.expires_at.empty() ? "never" : wanted.expires_at)
            << "\n";
  return 0;
}

int RunCheck(const std::optional<std::string>& name, bool json,
             const PdkFlags& pdk, const ArchiveFlags& archive_flags) {
  absl::StatusOr<std::unique_ptr<pdkapi::PdkClient>> client = OpenPdk(pdk);
  if (!client.ok()) return SubscriptionsUsage(std::string(client.status().message()));
  absl::StatusOr<std::unique_ptr<store::Archive>> archive =
      OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) return SubscriptionsFail(archive.status());
  store::SubscriptionStore& subscriptions = (*archive)->subscriptions();
  absl::StatusOr<std::vector<store::Subscription>> all =
      subscriptions.ListSubscriptions();
  if (!all.ok()) return SubscriptionsFail(all.status());
  std::vector<store::Subscription> checked;
  for (const store::Subscription& s : *all) {
    if (name && s.name != *name) continue;
    if (s.pdk_id.empty()) {
      if (name) {
        return SubscriptionsFail(absl::FailedPreconditionError(absl::StrCat(
            *name,
            " was added by hand (no PDK id): PDK's odometer cannot be "
            "read for it")));
      }
      continue;
    }
    checked.push_back(s);
  }
  if (name && checked.empty())
    return SubscriptionsFail(
        absl::NotFoundError(absl::StrCat("no subscription named ", *name)));

  struct Row {
    std::string name;
    store::Subscription::Check check;
    std::optional<bool> active;
    std::string expires_at;
    std::string error;
  };
  std::vector<Row> rows;
  bool failed = false;
  bool missing = false;
  const int64_t now_ms = timeutil::NowMs();
  for (store::Subscription& s : checked) {
    Row& row = rows.emplace_back();
    row.name = s.name;
    absl::StatusOr<pdkapi::PdkSubscription> at = FetchAtPdk(**client, s);
    if (!at.ok()) {
      row.error = std::string(at.status().message());
      failed = true;
      std::cerr << "pdk-archive subscriptions: " << s.name << ": " << row.error
                << "\n";
      continue;
    }
    absl::StatusOr<int64_t> archived = subscriptions.CountArchivedSince(
        s.name, s.baseline_sequence.value_or(0));
    if (!archived.ok()) return SubscriptionsFail(archived.status());
    row.check.checked_ms = now_ms;
    row.check.pdk_events = std::max<int64_t>(
        at->odometer.value_or(0) - s.odometer_baseline.value_or(0), 0);
    row.check.archived_events = *archived;
    row.check.missing_events =
        std::max<int64_t>(row.check.pdk_events - row.check.archived_events, 0);
    row.active = at->active;
    row.expires_at = at->expires_at;
    if (row.check.missing_events > 0) missing = true;
    if (absl::Status st = subscriptions.RecordCheck(s.name, row.check);
        !st.ok())
      return SubscriptionsFail(st);
    if (at->active && s.pdk_active != at->active) {
      s.pdk_active = at->active;
      if (absl::Status st = subscriptions.UpdatePdkSettings(s.name, s);
          !st.ok()) {
        std::cerr << "pdk-archive subscriptions: warning: cannot record that "
                  << s.name << " is " << (*at->active ? "active" : "inactive")
                  << " at PDK: " << st.message() << "\n";
      }
    }
    if (at->active && !*at->active) {
      std::cerr << "pdk-archive subscriptions: warning: " << s.name
                << " is inactive at PDK: it delivers nothing\n";
    }
    if (!at->expires_at.empty()) {
      absl::StatusOr<int64_t> expires =
          timeutil::ParseRfc3339Ms(at->expires_at);
      if (expires.ok() && *expires - now_ms < kExpiryWarningMs) {
        std::cerr << "pdk-archive subscriptions: warning: " << s.name
                  << (*expires <= now_ms ? " expired at " : " expires at ")
                  << at->expires_at << ": extend it with `subscriptions update "
                  << s.name << " --expires-at …`\n";
      }
    }
  }

  if (json) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartArray();
    for (const Row& row : rows) {
      w.StartObject();
      w.Key("name");
      w.String(row.name.c_str());
      if (!row.error.empty()) {
        w.Key("error");
        w.String(row.error.c_str());
      } else {
        w.Key("pdk_events");
        w.Int64(row.check.pdk_events);
        w.Key("archived_events");
        w.Int64(row.check.archived_events);
        w.Key("missing_events");
        w.Int64(row.check.missing_events);
        w.Key("active");
        if (row.active) {
          w.Bool(*row.active);
        } else {
          w.Null();
        }
        w.Key("expires_at");
        if (row.expires_at.empty()) {
          w.Null();
        } else {
          w.String(row.expires_at.c_str());
        }
        w.Key("checked");
        w.String(TimeText(row.check.checked_ms).c_str());
      }
      w.EndObject();
    }
    w.EndArray();
    std::cout << buffer.GetString() << "\n";
  } else {
    size_t width = 4;
    for (const Row& row : rows) width = std::max(width, row.name.size());
    std::printf("%-*s  %10s  %10s  %10s  %s\n", static_cast<int>(width), "NAME",
                "PDK SENT", "ARCHIVED", "MISSING", "ACTIVE");
    for (const Row& row : rows) {
      if (!row.error.empty()) {
        std::printf("%-*s  %s\n", static_cast<int>(width), row.name.c_str(),
                    "cannot read PDK's odometer (see above)");
        continue;
      }
      std::printf("%-*s  %10lld  %10lld  %10lld  %s\n", static_cast<int>(width),
                  row.name.c_str(),
                  static_cast<long long>(row.check.pdk_events),
                  static_cast<long long>(row.check.archived_events),
                  static_cast<long long>(row.check.missing_events),
                  row.active ? (*row.active ? "yes" : "NO") : "?");
    }
    for (const Row& row : rows) {
      if (row.error.empty() && row.check.missing_events > 0) {
        std::printf(
            "%s: %lld events missing: PDK sent %lld since it was "
            "registered, the archive holds %lld\n",
            row.name.c_str(), static_cast<long long>(row.check.missing_events),
            static_cast<long long>(row.check.pdk_events),
            static_cast<long long>(row.check.archived_events));
      }
    }
    std::fflush(stdout);
  }
  return failed || missing ? 1 : 0;
}

}  // namespace pdkarchive::cli
