// HttpServer: the Pistache adaptor that feeds WebhookHandler. It owns the
// listening endpoint and its threads. Pistache 0.0.5 provides the sockets,
// the event loop, the write queue and the idle/slow-client sweep; the HTTP
// framing of requests is ours (ingest/request_framer.h), so the limits on
// header count, head size and body size hold before any request is parsed,
// pipelined requests are answered in order, and every refusal is JSON.
#ifndef PDKARCHIVE_INGEST_HTTP_SERVER_H_
#define PDKARCHIVE_INGEST_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace pdkarchive::ingest {

class WebhookHandler;

struct HttpServerOptions {
  int threads = 2;
  // A larger body is not read: the handler answers it (413 for a delivery)
  // and the connection is closed.
  size_t max_body_bytes = 1 << 20;
  // A request head with more header fields, or more bytes (request line and
  // fields), is answered 431 with a JSON error and the connection closed.
  size_t max_header_count = 100;
  size_t max_header_bytes = 16 * 1024;
  // A request's head, and the wait for its answer (commit included), must
  // each fit in this: keep it well above the store's 5 s busy timeout.
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  // An idle keep-alive connection is closed after this.
  std::chrono::milliseconds keepalive_timeout{60000};
};

class HttpServer {
 public:
  // Binds `host_port` ("0.0.0.0:8080"; port 0 picks a free port) and starts
  // serving on background threads. `handler` must outlive the server.
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host_port, WebhookHandler& handler,
      const HttpServerOptions& options);

  // Shuts down if still running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // "HOST:PORT" as bound, with the chosen port when 0 was asked for.
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Stops accepting and closes connections. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl, std::string address, int port);

  std::unique_ptr<Impl> impl_;
  std::string address_;
  int port_;
};

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_HTTP_SERVER_H_
