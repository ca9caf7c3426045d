#include "ingest/http_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/net.h>
#include <pthread.h>
#include <signal.h>

#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ingest/webhook_handler.h"

namespace pdkarchive::ingest {
namespace {

using Pistache::Http::Code;

// Room for the request line and headers on top of the largest body judged
// by the handler; Pistache counts both against maxRequestSize.
constexpr size_t kHeaderRoom = 64 * 1024;
// Bodies up to this many times the limit still get the handler's JSON 413;
// beyond it Pistache answers 413 itself.
constexpr size_t kOversizeFactor = 4;

// A response header with a name chosen at run time. Pistache 0.0.5 writes
// only typed headers into responses and silently drops addRaw() ones.
class NamedHeader final : public Pistache::Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void write(std::ostream& stream) const override { stream << value_; }
#ifdef SAFE_HEADER_CAST
  uint64_t hash() const override { return 0; }
#endif

 private:
  std::string name_;
  std::string value_;
};

HeaderList CollectHeaders(const Pistache::Http::Header::Collection& collection) {
  HeaderList headers;
  // Pistache parses headers it knows into typed objects and keeps the rest
  // raw; signatures (X_PDK_SIGNATURE among them) are only in the raw list.
  for (const auto& [name, raw] : collection.rawList()) {
    headers.emplace_back(raw.name(), raw.value());
  }
  for (const auto& typed : collection.list()) {
    std::ostringstream value;
    typed->write(value);
    headers.emplace_back(typed->name(), value.str());
  }
  return headers;
}

// HTTP/1.1 connections are persistent unless the client says otherwise, but
// Pistache 0.0.5 closes after each response unless the request carried
// "Connection: keep-alive". Echoing the header keeps the connection open.
bool WantsKeepAlive(const Pistache::Http::Request& request, const HeaderList& headers) {
  std::optional<std::string_view> connection = FindHeader(headers, "Connection");
  if (connection) {
    std::string v = absl::AsciiStrToLower(
        absl::string_view(connection->data(), connection->size()));
    return !absl::StrContains(v, "close");
  }
  return request.version() == Pistache::Http::Version::Http11;
}

class Adaptor final : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(Adaptor)

  explicit Adaptor(WebhookHandler& handler) : handler_(handler) {}

  void onRequest(const Pistache::Http::Request& request,
                 Pistache::Http::ResponseWriter response) override {
    // Pistache starts its threads unnamed; name each on its first request,
    // so `top -H` and perf tell them apart from the writer's.
    thread_local const bool named = pthread_setname_np(pthread_self(), "pdk-http") == 0;
    (void)named;
    HttpRequest req;
    req.method = Pistache::Http::methodString(request.method());
    req.path = request.resource();
    req.headers = CollectHeaders(request.headers());
    req.body = request.body();
    const bool keep_alive = WantsKeepAlive(request, req.headers);
    // The writer calls back on its own thread after commit. ResponseWriter
    // is only ever used by one thread at a time: here until Handle hands it
    // over, then by whoever calls `respond`, exactly once.
    auto writer = std::make_shared<Pistache::Http::ResponseWriter>(std::move(response));
    handler_.Handle(std::move(req), [writer, keep_alive](HttpResponse r) {
      auto& headers = writer->headers();
      for (const auto& [name, value] : r.headers) {
        headers.add(std::make_shared<NamedHeader>(name, value));
      }
      // Pistache pre-sets "Connection: Close" when the request named none.
      headers.remove<Pistache::Http::Header::Connection>();
      headers.add<Pistache::Http::Header::Connection>(
          keep_alive ? Pistache::Http::ConnectionControl::KeepAlive
                     : Pistache::Http::ConnectionControl::Close);
      headers.add<Pistache::Http::Header::ContentType>(
          Pistache::Http::Mime::MediaType::fromString(r.content_type));
      writer->send(static_cast<Code>(r.status), r.body);
    });
  }

 private:
  WebhookHandler& handler_;
};

}  // namespace

struct HttpServer::Impl {
  std::unique_ptr<Pistache::Http::Endpoint> endpoint;
  bool running = true;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& host_port, WebhookHandler& handler,
    const HttpServerOptions& options) {
  // A peer that hangs up mid-response must not kill the process.
  signal(SIGPIPE, SIG_IGN);
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen wants HOST:PORT, got \"", host_port, "\""));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    Pistache::Address address(host, Pistache::Port(static_cast<uint16_t>(
                                        std::stoi(host_port.substr(colon + 1)))));
    auto impl = std::make_unique<Impl>();
    impl->endpoint = std::make_unique<Pistache::Http::Endpoint>(address);
    auto opts = Pistache::Http::Endpoint::options()
                    .threads(options.threads)
                    .flags(Pistache::Tcp::Options::ReuseAddr | Pistache::Tcp::Options::NoDelay)
                    .maxRequestSize(options.max_body_bytes * kOversizeFactor + kHeaderRoom)
                    .maxResponseSize(1 << 20)
                    .headerTimeout(options.header_timeout)
                    .bodyTimeout(options.body_timeout)
                    .keepaliveTimeout(options.keepalive_timeout);
    impl->endpoint->init(opts);
    impl->endpoint->setHandler(Pistache::Http::make_handler<Adaptor>(handler));
    impl->endpoint->serveThreaded();
    const int port = static_cast<uint16_t>(impl->endpoint->getPort());
    std::string bound = absl::StrCat(host_port.substr(0, colon), ":", port);
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl), bound, port));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on ", host_port, ": ", e.what()));
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl, std::string address, int port)
    : impl_(std::move(impl)), address_(std::move(address)), port_(port) {}

HttpServer::~HttpServer() { Shutdown(); }

void HttpServer::Shutdown() {
  if (!impl_->running) return;
  impl_->running = false;
  impl_->endpoint->shutdown();
}

}  // namespace pdkarchive::ingest
