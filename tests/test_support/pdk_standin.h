// PdkStandin: a stand-in for PDK's REST API on loopback HTTP, for tests only
// (PDK itself cannot be reached from tests). A real HTTP/1.1 server on
// 127.0.0.1:<free port>, one connection at a time, each closed after its
// reply. It implements what pdk-archive calls:
// - POST /oauth2/token: checks HTTP Basic client_id:client_secret and the
//   form body grant_type=client_credentials; answers
//   {"id_token": "<random>", "expires_in": 3600} (401 {"message": …} else).
// - 1.0 hooks, /api/ous/{org}/hooks[/{id}], and 2.0 subscriptions,
//   /api/organizations/{org}/subscriptions[/{id}]: POST (201 {"id": 24 hex}),
//   GET list (array), GET one, PUT whole object (204), DELETE (204). Each
//   checks "Authorization: Bearer <an issued id_token>" (401) and the org
//   (403), and PDK's documented rules on create/update: name required and at
//   most 70 characters, https url, events non-empty (400 {"message": …}).
//   Objects are kept in memory with an odometer (0 at creation; the test sets
//   it) and active (default true).
// - Throttle(n, s): the next n requests (any path) answer 429 with
//   Retry-After: s. Refuse(n, status, body): the next n API requests (not
//   the token endpoint) answer `status` with `body`.
// Every request is recorded (method, path, Authorization, body) for tests
// to assert what was, and was not, sent. Thread-safe.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_PDK_STANDIN_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_PDK_STANDIN_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace pdkarchive::testing {

class PdkStandin {
 public:
  struct Request {
    std::string method;
    std::string path;
    std::string authorization;  // the header's value, "" when absent
    std::string body;
  };

  // Listens on 127.0.0.1:0 for the org `org` and the client credentials.
  static absl::StatusOr<std::unique_ptr<PdkStandin>> Start(
      std::string org, std::string client_id, std::string client_secret);
  ~PdkStandin();
  PdkStandin(const PdkStandin&) = delete;
  PdkStandin& operator=(const PdkStandin&) = delete;

  // "http://127.0.0.1:PORT", the --pdk-api value.
  std::string url() const;

  void Throttle(int n, int retry_after_seconds);
  // As Throttle, but saying when with X-RateLimit-Reset (Unix seconds, now
  // + `seconds`) instead of Retry-After.
  void ThrottleUntilReset(int n, int seconds);
  // Forgets every id_token issued (as if they expired): calls get 401.
  void RevokeTokens();
  void Refuse(int n, int status, std::string body);
  // Sets the odometer of subscription `id` (either API). False when unknown.
  bool SetOdometer(const std::string& id, int64_t odometer);

  std::vector<Request> requests() const;
  void ClearRequests();
  // The id_tokens issued so far.
  std::vector<std::string> tokens() const;
  // The stored object `id` as JSON (with id, odometer, active), and its API.
  std::optional<std::string> Object(const std::string& id) const;
  std::optional<int> ApiOf(const std::string& id) const;
  // Ids of the stored objects.
  std::vector<std::string> Ids() const;

 private:
  struct Stored {
    int api = 1;
    std::string json;  // as last written, without id/odometer
    int64_t odometer = 0;
  };
  struct Response {
    Response(int s, std::string b, std::string retry = "",
             std::string reset = "")
        : status(s),
          body(std::move(b)),
          retry_after(std::move(retry)),
          rate_limit_reset(std::move(reset)) {}
    int status = 200;
    std::string body;
    std::string retry_after;
    std::string rate_limit_reset;
  };
  PdkStandin() = default;
  void Serve();
  void HandleConnection(int fd);
  Response Handle(const Request& request, const std::string& content_type);
  Response HandleApi(const Request& request, int api, const std::string& id);
  std::string Render(const std::string& id, const Stored& stored) const;

  std::string org_, client_id_, client_secret_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Request> requests_;
  std::vector<std::string> tokens_;
  std::map<std::string, Stored> objects_;
  int throttle_n_ = 0;
  int throttle_seconds_ = 1;
  bool throttle_with_reset_ = false;
  std::vector<std::string> revoked_;
  int refuse_n_ = 0;
  int refuse_status_ = 400;
  std::string refuse_body_;
  uint64_t next_id_ = 1;
};

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_PDK_STANDIN_H_
