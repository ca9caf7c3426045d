// A minimal blocking HTTP/1.1 client over a TCP socket, for tests: it sends
// exactly the bytes it is told to (so tests can also send malformed or
// trickled requests) and parses Content-Length responses.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_HTTP_CLIENT_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_HTTP_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace pdkarchive::testing {

struct HttpReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header named `name`, case-insensitive; "" when absent.
  std::string Header(std::string_view name) const;
};

// One connection. Not thread-safe; use one per thread.
class HttpConnection {
 public:
  static absl::StatusOr<HttpConnection> Connect(int port,
                                                std::chrono::milliseconds timeout =
                                                    std::chrono::seconds(30));
  HttpConnection(HttpConnection&& other) noexcept;
  HttpConnection& operator=(HttpConnection&& other) noexcept;
  ~HttpConnection();

  // Sends `raw` as is.
  absl::Status SendRaw(std::string_view raw);
  // Reads one response. DeadlineExceeded when none arrives within the
  // connection's timeout; Unavailable when the server closed the connection.
  absl::StatusOr<HttpReply> ReadReply();
  // Sends a request with Content-Length and reads the reply.
  absl::StatusOr<HttpReply> Request(
      std::string_view method, std::string_view path, std::string_view body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  // True when the server has closed the connection (a read sees EOF).
  bool PeerClosed();

 private:
  HttpConnection(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

// Connects, sends one request, reads the reply, closes.
absl::StatusOr<HttpReply> HttpRequest(
    int port, std::string_view method, std::string_view path, std::string_view body = "",
    const std::vector<std::pair<std::string, std::string>>& headers = {});

// The sequence in a 200 reply body ({"sequence": N, ...}), or -1 when the
// body holds none.
int64_t SequenceInReply(std::string_view body);

// The headers of a signed PDK delivery: X-PDK-SIGNATURE = HMAC-SHA1(secret, body).
std::vector<std::pair<std::string, std::string>> SignedHeaders(std::string_view secret,
                                                               std::string_view body);

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_HTTP_CLIENT_H_
