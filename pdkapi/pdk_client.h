// PdkClient: the few calls pdk-archive makes to PDK's REST API to manage
// webhook subscriptions (issue 16). Nothing else in the project talks to PDK.
//
// Transport: libcurl (Debian's libcurl4-openssl-dev). Chosen because it is
// the best-kept HTTP client packaged in Debian, does TLS through OpenSSL
// (which the project links already) with certificate checks on by default,
// has connect and total timeouts, and honours the usual proxy variables
// (https_proxy, no_proxy, ...) from the environment, as operators expect.
//
// The contract, as PDK documents it (spec/pdk-webhooks.txt,
// spec/pdk-2.0/NOTES.md):
// - Token: POST {api}/oauth2/token with HTTP Basic client_id:client_secret
//   and the form body grant_type=client_credentials; the JSON reply's
//   `id_token` is sent as "Authorization: Bearer ..." on every call below and
//   reused until its `expires_in` (seconds) is nearly over: refreshed 60 s
//   before it expires (a token living under 2 minutes, at half its life).
//   A 401 on a call fetches a new token and retries that call once.
// - API 1 (hooks):         {api}/api/ous/{org}/hooks[/{id}]
//   API 2 (subscriptions): {api}/api/organizations/{org}/subscriptions[/{id}]
//   create = POST -> 201 {"id": ...}; list = GET -> array; get = GET one;
//   update = PUT with the whole object -> 204; delete = DELETE -> 204.
//   For API 2 the update method is unconfirmed (NOTES.md §2.2): PUT with the
//   whole object, as 1.0, is assumed.
// - 429: waits Retry-After (seconds) or, without it, until X-RateLimit-Reset
//   (Unix seconds), each wait capped at Options::max_wait, and retries up to
//   Options::max_retries times; then ResourceExhausted.
// - Any other non-2xx: a status whose message is "PDK answered <code>: <PDK's
//   message>" — PDK's message is the JSON body's "message" (or "error") when
//   there is one, else the body text, truncated to 300 characters.
//   Codes: 400/422 InvalidArgument, 401/403 PermissionDenied, 404 NotFound,
//   409 AlreadyExists, 5xx Unavailable, other FailedPrecondition. Transport
//   failures (cannot connect, timeout, TLS) are Unavailable.
// - Secrets (client secret, id_token, a subscription's secret and Basic
//   password) never appear in an error message or on any output: messages
//   name only the method, the URL path and PDK's reply.
// - An http:// API URL is refused unless its host is loopback (127.0.0.1,
//   ::1, localhost): the client secret would travel in clear. (Tests run a
//   stand-in on loopback http.)
//
// Threading: one PdkClient is used by one thread at a time.
#ifndef PDKARCHIVE_PDKAPI_PDK_CLIENT_H_
#define PDKARCHIVE_PDKAPI_PDK_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pdkarchive::pdkapi {

// Where PDK is and who we are to it.
struct PdkAccess {
  std::string api_url = "https://accounts.pdk.io";  // no trailing slash needed
  std::string org;                                  // organization id
  std::string client_id;
  std::string client_secret;  // never printed
};

// A PDK subscription object (1.0 "hook", 2.0 "subscription": same fields).
// Unset optionals and empty strings are left out of what is sent.
struct PdkSubscription {
  std::string id;  // PDK's; set by PDK on create
  std::string name;
  std::string url;
  // "ouRecursive", "ou", "recursive", "this", or a list of ids as its JSON
  // text (["1234ABC"]), sent as that list.
  std::string scope;
  std::string auth_type = "None";  // "None" or "Basic"
  std::string auth_user;
  std::string auth_password;  // never printed
  std::vector<std::string> events;
  std::optional<bool> active;
  std::optional<bool> ssl_verification;
  std::optional<int> secrecy_level;
  std::string expires_at;           // ISO 8601; "" = null (never expires)
  std::string secret;               // never printed; PDK may not echo it back
  std::optional<int64_t> odometer;  // PDK's trigger count (read only)
};

class PdkClient {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds total_timeout{30'000};
    int max_retries = 4;                         // after a 429
    std::chrono::milliseconds max_wait{30'000};  // per 429 wait
  };

  // InvalidArgument for an API URL that is not http(s), or is http:// to a
  // host other than loopback, or when org, client id or secret is empty.
  static absl::StatusOr<std::unique_ptr<PdkClient>> Create(PdkAccess access,
                                                           Options options);
  static absl::StatusOr<std::unique_ptr<PdkClient>> Create(PdkAccess access) {
    return Create(std::move(access), Options());
  }
  ~PdkClient();
  PdkClient(const PdkClient&) = delete;
  PdkClient& operator=(const PdkClient&) = delete;

  // `api` is 1 (hooks) or 2 (subscriptions). Errors as described above.
  absl::StatusOr<std::string> CreateSubscription(int api,
                                                 const PdkSubscription& s);
  absl::StatusOr<std::vector<PdkSubscription>> ListSubscriptions(int api);
  absl::StatusOr<PdkSubscription> GetSubscription(int api,
                                                  const std::string& id);
  // Sends the whole object `s` (s.id names it).
  absl::Status UpdateSubscription(int api, const PdkSubscription& s);
  absl::Status DeleteSubscription(int api, const std::string& id);

  // `s` as the JSON PDK takes (secret and password included: for the wire
  // only). Exposed for tests.
  static std::string ToJson(const PdkSubscription& s);
  // Reads one subscription object (unknown members ignored).
  static absl::StatusOr<PdkSubscription> FromJson(const std::string& json);

 private:
  struct Reply {
    long status = 0;
    std::string body;
    std::string retry_after;
    std::string rate_limit_reset;
  };
  PdkClient(PdkAccess access, Options options);
  std::string CollectionUrl(int api) const;
  absl::StatusOr<std::string> Token(bool refresh);
  // One API call with the token, 429 waits and one token refresh on 401.
  absl::StatusOr<Reply> Call(const std::string& method, const std::string& url,
                             const std::string& body);
  // One HTTP exchange. `bearer` or `basic_user`/`basic_password` authorize.
  absl::StatusOr<Reply> Exchange(const std::string& method,
                                 const std::string& url,
                                 const std::string& content_type,
                                 const std::string& body,
                                 const std::string& bearer,
                                 const std::string* basic_user,
                                 const std::string* basic_password);
  // Sleeps as a 429 `reply` asks: Retry-After seconds, else until
  // X-RateLimit-Reset, else 1 s; at most options_.max_wait.
  void WaitOut(const Reply& reply) const;
  // Non-2xx `reply` to `method path` as the status described above.
  absl::Status PdkError(const std::string& method, const std::string& url,
                        const Reply& reply) const;

  const PdkAccess access_;
  const Options options_;
  std::string token_;  // never printed
  std::chrono::steady_clock::time_point token_until_;
};

// Whether `url`'s host is 127.0.0.1, ::1 or localhost (any case).
bool IsLoopbackUrl(const std::string& url);

}  // namespace pdkarchive::pdkapi

#endif  // PDKARCHIVE_PDKAPI_PDK_CLIENT_H_
