#include "ingest/webhook_handler.h"

#include <openssl/crypto.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ingest/metrics.h"
#include "ingest/normalizer.h"
#include "ingest/signature.h"
#include "ingest/subscription_directory.h"
#include "store/group_commit_writer.h"
#include "timeutil/time_util.h"

namespace pdkarchive::ingest {
namespace {

constexpr char kWebhooksPath[] = "/webhooks";
constexpr char kNamedWebhooksPrefix[] = "/webhooks/";
constexpr char kHealthPath[] = "/healthz";
constexpr char kMetricsPath[] = "/metrics";
// PDK retries a refused delivery; this says when.
constexpr char kRetryAfterSeconds[] = "5";

HttpResponse Error(int status, std::string_view reason) {
  HttpResponse r;
  r.status = status;
  r.body = ErrorJson(reason);
  return r;
}

std::string AcceptedJson(const store::AppendResult& result) {
  return absl::StrCat("{\"sequence\":", result.sequence,
                      ",\"duplicate\":", result.duplicate ? "true" : "false", "}");
}

HttpResponse BasicAuthRefusal() {
  HttpResponse r = Error(401, "missing or wrong basic auth credentials");
  r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"pdk-archive\"");
  return r;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::optional<std::string_view> FindHeader(const HeaderList& headers,
                                           std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, absl::string_view(name.data(), name.size()))) {
      return std::string_view(value);
    }
  }
  return std::nullopt;
}

std::string ErrorJson(std::string_view reason) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("error");
  writer.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

WebhookHandler::WebhookHandler(WebhookOptions options, store::GroupCommitWriter& writer,
                               Metrics& metrics)
    : options_(std::move(options)), writer_(writer), metrics_(metrics) {
  if (!options_.now_ms) options_.now_ms = timeutil::NowMs;
}

void WebhookHandler::Handle(HttpRequest request, Respond respond) {
  const bool is_get = request.method == "GET" || request.method == "HEAD";
  const bool named = absl::StartsWith(request.path, kNamedWebhooksPrefix) &&
                     request.path.size() > sizeof(kNamedWebhooksPrefix) - 1;
  if (request.path == kWebhooksPath || named) {
    if (request.method != "POST") {
      metrics_.CountDelivery(DeliveryResult::kMethodNotAllowed);
      HttpResponse r = Error(405, absl::StrCat("method ", request.method,
                                               " not allowed; use POST"));
      r.headers.emplace_back("Allow", "POST");
      respond(std::move(r));
      return;
    }
    Credentials credentials;
    if (!named) {
      credentials.secret = options_.secret;
      credentials.basic_auth = options_.basic_auth;
      credentials.subscription = options_.subscription;
    } else {
      const std::string name = request.path.substr(sizeof(kNamedWebhooksPrefix) - 1);
      std::optional<store::Subscription> sub;
      if (options_.subscriptions != nullptr) sub = options_.subscriptions->Find(name);
      if (!sub) {
        metrics_.CountDelivery(DeliveryResult::kNotFound);
        respond(Error(404, absl::StrCat("no such subscription: ", name)));
        return;
      }
      credentials.secret = sub->secret;
      if (!sub->previous_secret.empty() && sub->previous_until_ms &&
          options_.now_ms() < *sub->previous_until_ms) {
        credentials.previous_secret = sub->previous_secret;
      }
      if (!sub->basic_auth.empty()) credentials.basic_auth = sub->basic_auth;
      credentials.subscription = sub->name;
      credentials.family = sub->family;
      credentials.api = sub->api;
    }
    HandleWebhook(std::move(request), credentials, std::move(respond));
    return;
  }
  if (request.path == kHealthPath || request.path == kMetricsPath) {
    if (!is_get) {
      HttpResponse r = Error(405, absl::StrCat("method ", request.method,
                                               " not allowed; use GET"));
      r.headers.emplace_back("Allow", "GET, HEAD");
      respond(std::move(r));
      return;
    }
    if (request.path == kHealthPath) {
      respond(HandleHealth());
      return;
    }
    // The counters say what arrives and how often; with credentials set
    // they are not for anyone who can reach the ingest port.
    if (options_.basic_auth && !BasicAuthOk(request.headers, *options_.basic_auth)) {
      respond(BasicAuthRefusal());
      return;
    }
    respond(HandleMetrics());
    return;
  }
  metrics_.CountDelivery(DeliveryResult::kNotFound);
  respond(Error(404, absl::StrCat("no such path: ", request.path)));
}

void WebhookHandler::HandleWebhook(HttpRequest request, const Credentials& credentials,
                                   Respond respond) {
  if (!accepting_.load()) {
    metrics_.CountDelivery(DeliveryResult::kUnavailable);
    HttpResponse r = Error(503, "archive is shutting down");
    r.headers.emplace_back("Retry-After", kRetryAfterSeconds);
    respond(std::move(r));
    return;
  }
  const uint64_t body_bytes = request.unread_body_bytes.value_or(request.body.size());
  if (body_bytes > options_.max_body_bytes) {
    metrics_.CountDelivery(DeliveryResult::kTooLarge);
    respond(Error(413, absl::StrCat("body of ", body_bytes,
                                    " bytes exceeds the limit of ",
                                    options_.max_body_bytes)));
    return;
  }
  if (credentials.basic_auth && !BasicAuthOk(request.headers, *credentials.basic_auth)) {
    metrics_.CountDelivery(DeliveryResult::kUnauthorized);
    respond(BasicAuthRefusal());
    return;
  }
  if (credentials.secret) {
    std::optional<std::string_view> signature =
        FindHeader(request.headers, "X-PDK-SIGNATURE");
    if (!signature) signature = FindHeader(request.headers, "X_PDK_SIGNATURE");
    if (!signature) {
      metrics_.CountDelivery(DeliveryResult::kUnauthorized);
      respond(Error(401, "missing X-PDK-SIGNATURE header"));
      return;
    }
    // Both secrets are always tried, so the time taken says nothing about
    // which one matched.
    const bool current = VerifySignature(*credentials.secret, request.body, *signature);
    const bool previous =
        credentials.previous_secret &&
        VerifySignature(*credentials.previous_secret, request.body, *signature);
    if (!current && !previous) {
      metrics_.CountDelivery(DeliveryResult::kUnauthorized);
      respond(Error(401, "X-PDK-SIGNATURE does not match the body"));
      return;
    }
  }
  absl::StatusOr<Normalized> normalized =
      Normalize(request.body, options_.now_ms(), credentials.subscription,
                credentials.api);
  if (!normalized.ok()) {
    metrics_.CountDelivery(DeliveryResult::kBadRequest);
    respond(Error(400, std::string(normalized.status().message())));
    return;
  }
  if (!normalized->known_topic) metrics_.CountUnknownTopic();
  if (normalized->known_topic && !credentials.family.empty() &&
      normalized->row.family != credentials.family) {
    metrics_.CountFamilyMismatch(credentials.subscription);
  }
  metrics_.CountUnreadableFields(normalized->unreadable_fields);

  writer_.Submit(
      std::move(normalized->row),
      [this, respond = std::move(respond)](absl::StatusOr<store::AppendResult> result) {
        if (!result.ok()) {
          metrics_.CountDelivery(DeliveryResult::kUnavailable);
          HttpResponse r = Error(503, std::string(result.status().message()));
          r.headers.emplace_back("Retry-After", kRetryAfterSeconds);
          respond(std::move(r));
          return;
        }
        metrics_.CountDelivery(result->duplicate ? DeliveryResult::kDuplicate
                                                 : DeliveryResult::kAccepted);
        HttpResponse r;
        r.body = AcceptedJson(*result);
        respond(std::move(r));
      });
}

bool WebhookHandler::BasicAuthOk(const HeaderList& headers, const std::string& expected) {
  std::optional<std::string_view> value = FindHeader(headers, "Authorization");
  if (!value) return false;
  absl::string_view v(value->data(), value->size());
  v = absl::StripAsciiWhitespace(v);
  constexpr absl::string_view kScheme = "Basic ";
  if (v.size() <= kScheme.size() || !absl::StartsWithIgnoreCase(v, kScheme)) return false;
  std::string decoded;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(v.substr(kScheme.size())),
                            &decoded)) {
    return false;
  }
  return ConstantTimeEquals(decoded, expected);
}

HttpResponse WebhookHandler::HandleHealth() const {
  absl::Status health = writer_.Health();
  HttpResponse r;
  if (health.ok()) {
    r.body = "{\"status\":\"ok\"}";
    return r;
  }
  r.status = 503;
  r.headers.emplace_back("Retry-After", kRetryAfterSeconds);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("status");
  writer.String("unavailable");
  writer.Key("error");
  writer.String(health.message().data(),
                static_cast<rapidjson::SizeType>(health.message().size()));
  writer.EndObject();
  r.body.assign(buffer.GetString(), buffer.GetSize());
  return r;
}

HttpResponse WebhookHandler::HandleMetrics() const {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = metrics_.Render(writer_.stats());
  if (options_.subscriptions != nullptr)
    r.body += RenderSubscriptionChecks(options_.subscriptions->All());
  return r;
}

}  // namespace pdkarchive::ingest
