// WebhookHandler: the HTTP behaviour of ingest, free of any HTTP framework.
// It takes a method, path, headers and body, and answers with a status,
// headers and a JSON body, following DESIGN.md's "Ingest HTTP" contract:
// checks run in the order method (405), subscription (404 for an unknown
// /webhooks/NAME), size (413), authentication (401), content (400); an accepted
// event is answered only after its batch commits.
#ifndef PDKARCHIVE_INGEST_WEBHOOK_HANDLER_H_
#define PDKARCHIVE_INGEST_WEBHOOK_HANDLER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pdkarchive::store {
class GroupCommitWriter;
}

namespace pdkarchive::ingest {

class Metrics;
class SubscriptionDirectory;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "POST", "GET", ...
  std::string path;    // without the query string
  HeaderList headers;  // names in any case
  std::string body;
  // Set when the server did not read a body over its limit: the body's
  // declared length (at least), and `body` is empty. Judged as the body's size.
  std::optional<uint64_t> unread_body_bytes;
};

struct HttpResponse {
  int status = 200;
  HeaderList headers;  // besides Content-Type, which is always JSON or text
  std::string content_type = "application/json";
  std::string body;
};

struct WebhookOptions {
  // HMAC secret of the default subscription; unset = accept unsigned.
  std::optional<std::string> secret;
  // "user:password" for HTTP Basic auth of deliveries and /metrics; unset =
  // not required. /healthz never asks for it.
  std::optional<std::string> basic_auth;
  size_t max_body_bytes = 1 << 20;
  std::string subscription = "default";
  // The subscriptions POST /webhooks/NAME takes deliveries for, each checked
  // against its own secrets and Basic credentials; null = none (every NAME
  // is a 404). Not owned; must outlive the handler.
  const SubscriptionDirectory* subscriptions = nullptr;
  // Milliseconds since the epoch, UTC; replaceable for tests.
  std::function<int64_t()> now_ms;
};

// Thread-safe. `writer` and `metrics` must outlive the handler.
class WebhookHandler {
 public:
  using Respond = std::function<void(HttpResponse)>;

  WebhookHandler(WebhookOptions options, store::GroupCommitWriter& writer,
                 Metrics& metrics);

  // Handles one request. `respond` is called exactly once: right away for
  // refusals, health and metrics, or on the writer's thread once an accepted
  // event is durable (or could not be stored: 503 with Retry-After).
  void Handle(HttpRequest request, Respond respond);

  // From now on deliveries are refused with 503 and Retry-After (PDK will
  // redeliver them), so a shutting-down server acknowledges nothing it has
  // not committed. Health and metrics keep answering.
  void StopAccepting() { accepting_.store(false); }

 private:
  // What one delivery is checked against and stored as.
  struct Credentials {
    std::optional<std::string> secret;
    // Also accepted (during a rotation's grace period); unset = none.
    std::optional<std::string> previous_secret;
    std::optional<std::string> basic_auth;
    std::string subscription;
    std::string family;  // "" = any (the default subscription)
    int api = 1;         // the PDK API version whose catalog reads the body
  };

  void HandleWebhook(HttpRequest request, const Credentials& credentials,
                     Respond respond);
  HttpResponse HandleHealth() const;
  HttpResponse HandleMetrics() const;
  static bool BasicAuthOk(const HeaderList& headers,
                          const std::string& expected);

  WebhookOptions options_;
  store::GroupCommitWriter& writer_;
  Metrics& metrics_;
  std::atomic<bool> accepting_{true};
};

// The value of the first header named `name` (case-insensitive), if any.
std::optional<std::string_view> FindHeader(const HeaderList& headers,
                                           std::string_view name);

// {"error": "<reason>"}, with the reason JSON-escaped.
std::string ErrorJson(std::string_view reason);

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_WEBHOOK_HANDLER_H_
