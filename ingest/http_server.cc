#include "ingest/http_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/net.h>
#include <pistache/peer.h>
#include <pistache/transport.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ingest/request_framer.h"
#include "ingest/webhook_handler.h"

namespace pdkarchive::ingest {
namespace {

// The peer data under which a connection's state is kept.
constexpr char kConnectionData[] = "pdkarchive.connection";
// Pistache's per-peer request parser is fed nothing but this: see SetPhase.
constexpr char kBodyPhaseHead[] = "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n";
// The most Pistache's parser is ever fed (kBodyPhaseHead).
constexpr size_t kPistacheParserBytes = 4096;
// Pipelined requests one connection may have awaiting their answers (this
// one included); the next is answered 503 and the connection closed.
constexpr size_t kMaxUnanswered = 64;
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

// One response on the wire: status line, headers, body (none for HEAD).
std::string Serialize(const HttpResponse& r, bool keep_alive, bool head_request) {
  std::string out = absl::StrCat(
      "HTTP/1.1 ", r.status, " ",
      Pistache::Http::codeString(static_cast<Pistache::Http::Code>(r.status)), "\r\n");
  for (const auto& [name, value] : r.headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  absl::StrAppend(&out, "Content-Type: ", r.content_type, "\r\nContent-Length: ",
                  r.body.size(), "\r\nConnection: ", keep_alive ? "keep-alive" : "close",
                  "\r\n\r\n");
  if (!head_request) out.append(r.body);
  return out;
}

// The state of one connection. Answers may be produced on any thread (an
// accepted delivery is answered on the writer's thread after commit); they
// go on the wire in request order, each request's interim 100 before its
// final answer, and nothing after an answer that closes the connection.
class Connection {
 public:
  Connection(const FramingLimits& limits, Pistache::Tcp::Transport* transport,
             const std::shared_ptr<Pistache::Tcp::Peer>& peer)
      : framer(limits), transport_(transport), peer_(peer), fd_(peer->fd()) {}

  // Pistache's event-loop thread of this connection only: the framing, and
  // the request whose 100 went out while its body is still arriving.
  RequestFramer framer;
  std::optional<uint64_t> continued;

  // Reserves the place of the next request's answers. Event-loop thread.
  uint64_t Reserve() {
    std::lock_guard lock(mu_);
    slots_.emplace_back();
    return first_seq_ + slots_.size() - 1;
  }

  // Requests whose final answer has not gone out yet.
  size_t Unanswered() {
    std::lock_guard lock(mu_);
    return slots_.size();
  }

  // Sends "100 Continue" for request `seq` once the answers before it are out.
  void Continue(uint64_t seq) {
    std::lock_guard lock(mu_);
    if (Slot* slot = Find(seq)) slot->interim = true;
    FlushLocked();
  }

  // The final answer to request `seq`; `close` ends the connection after it.
  // Any thread.
  void Answer(uint64_t seq, std::string bytes, bool close) {
    std::lock_guard lock(mu_);
    if (Slot* slot = Find(seq)) {
      slot->final = std::move(bytes);
      slot->close = close;
    }
    FlushLocked();
  }

  // Whether every answer is out; marks the peer idle (for Pistache's
  // keep-alive sweep) when it is and `no_partial_request`. Event-loop thread.
  bool Idle(bool no_partial_request) {
    std::lock_guard lock(mu_);
    const bool idle = slots_.empty() && no_partial_request;
    if (auto peer = peer_.lock()) peer->setIdle(idle);
    return idle;
  }

  void Disconnected() {
    std::lock_guard lock(mu_);
    done_ = true;
    slots_.clear();
  }

 private:
  struct Slot {
    bool interim = false;
    bool interim_sent = false;
    std::optional<std::string> final;
    bool close = false;
  };

  Slot* Find(uint64_t seq) {
    if (seq < first_seq_ || seq - first_seq_ >= slots_.size()) return nullptr;
    return &slots_[static_cast<size_t>(seq - first_seq_)];
  }

  // Queues, in order, whatever can go out now. Pistache's write queue keeps
  // the order of asyncWrite calls, made here under mu_.
  void FlushLocked() {
    while (!done_ && !slots_.empty()) {
      Slot& front = slots_.front();
      if (front.interim && !front.interim_sent && !front.final) {
        front.interim_sent = true;
        Write(std::string(kContinue), /*close=*/false);
      }
      if (!front.final) return;
      const bool close = front.close;
      Write(*std::move(front.final), close);
      slots_.pop_front();
      ++first_seq_;
      if (close) {
        done_ = true;
        slots_.clear();
      }
    }
    if (auto peer = peer_.lock(); peer && slots_.empty()) peer->setIdle(true);
  }

  void Write(std::string bytes, bool close) {
    auto peer = peer_.lock();
    if (!peer) {
      done_ = true;
      return;
    }
    const size_t size = bytes.size();
    auto written = transport_->asyncWrite(fd_, Pistache::RawBuffer(std::move(bytes), size));
    if (close) {
      // Once the answer is written the client sees end of stream at once
      // (what it still sends is read and dropped); it then closes, or
      // Pistache's keep-alive sweep does.
      std::weak_ptr<Pistache::Tcp::Peer> weak = peer_;
      const int fd = fd_;
      written.then(
          [weak, fd](ssize_t) {
            if (weak.lock()) ::shutdown(fd, SHUT_WR);
          },
          [](std::exception_ptr) {});
    }
  }

  Pistache::Tcp::Transport* const transport_;
  const std::weak_ptr<Pistache::Tcp::Peer> peer_;
  const int fd_;
  std::mutex mu_;
  std::deque<Slot> slots_;  // guarded by mu_; front = oldest unanswered
  uint64_t first_seq_ = 0;  // guarded by mu_
  bool done_ = false;       // guarded by mu_: nothing more goes out
};

// Where a connection is, for Pistache's slow-client and keep-alive sweep,
// which reads the phase and start time of Pistache's own per-peer request
// parser: a head (or the wait for an answer) is cut off after the header
// timeout, a body after the body timeout, an idle connection after the
// keep-alive timeout.
enum class Phase { kIdle, kHead, kBody };

class Adaptor final : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(Adaptor)

  Adaptor(WebhookHandler& handler, const FramingLimits& limits, size_t parser_bytes)
      : handler_(handler), limits_(limits), parser_bytes_(parser_bytes) {}

  void onConnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    // Pistache's parser is kept only as the clock of the sweep (SetPhase).
    peer->putData(ParserData,
                  std::make_shared<Pistache::Http::RequestParser>(parser_bytes_));
    peer->putData(kConnectionData, std::make_shared<Connection>(limits_, transport(), peer));
  }

  void onDisconnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    if (auto conn = GetConnection(peer)) conn->Disconnected();
  }

  // Never called: onInput frames and dispatches every request itself.
  void onRequest(const Pistache::Http::Request& /*request*/,
                 Pistache::Http::ResponseWriter response) override {
    response.send(Pistache::Http::Code::Internal_Server_Error);
  }

  // Pistache hands every read here; its own parser never sees the bytes.
  void onInput(const char* buffer, size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    // Pistache starts its threads unnamed; name each on its first request,
    // so `top -H` and perf tell them apart from the writer's.
    thread_local const bool named = pthread_setname_np(pthread_self(), "pdk-http") == 0;
    (void)named;
    std::shared_ptr<Connection> conn = GetConnection(peer);
    if (!conn || conn->framer.Closed()) return;
    const Phase before = conn->framer.InBody()    ? Phase::kBody
                         : conn->framer.InRequest() ? Phase::kHead
                                                    : Phase::kIdle;
    conn->framer.Feed(std::string_view(buffer, len));
    bool dispatched = false;
    std::optional<uint64_t>& continued = conn->continued;
    for (;;) {
      FramingEvent event = conn->framer.Next();
      if (event.kind == FramingEvent::Kind::kNeedMore) break;
      if (event.kind == FramingEvent::Kind::kContinue) {
        continued = conn->Reserve();
        conn->Continue(*continued);
        continue;
      }
      const uint64_t seq = continued ? *continued : conn->Reserve();
      continued.reset();
      dispatched = true;
      if (event.kind == FramingEvent::Kind::kRefusal) {
        HttpResponse r;
        r.status = event.status;
        r.body = ErrorJson(event.reason);
        conn->Answer(seq, Serialize(r, false, false), /*close=*/true);
        break;
      }
      if (conn->Unanswered() > kMaxUnanswered) {
        // A client that pipelines without reading its answers is not
        // allowed to queue work without bound.
        HttpResponse r;
        r.status = 503;
        r.headers.emplace_back("Retry-After", "5");
        r.body = ErrorJson(absl::StrCat("more than ", kMaxUnanswered,
                                        " pipelined requests awaiting answers"));
        conn->framer.Close();
        conn->Answer(seq, Serialize(r, false, false), /*close=*/true);
        break;
      }
      Dispatch(conn, seq, std::move(event));
    }
    const Phase after = conn->framer.InBody()    ? Phase::kBody
                        : conn->framer.InRequest() ? Phase::kHead
                                                   : Phase::kIdle;
    if (conn->Idle(after == Phase::kIdle)) return;
    if (dispatched || after != before) {
      // An answer still owed counts against the header timeout, from its
      // request's arrival, as a head does.
      SetPhase(peer, after == Phase::kBody ? Phase::kBody : Phase::kHead);
    }
  }

 private:
  static std::shared_ptr<Connection> GetConnection(
      const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    try {
      return std::static_pointer_cast<Connection>(peer->getData(kConnectionData));
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // Restarts the sweep's clock for `phase` by resetting Pistache's parser
  // and, for a body, walking it into its body step with a fixed head.
  static void SetPhase(const std::shared_ptr<Pistache::Tcp::Peer>& peer, Phase phase) {
    try {
      auto parser = Pistache::Http::Handler::getParser(peer);
      parser->reset();
      if (phase == Phase::kBody) {
        parser->feed(kBodyPhaseHead, sizeof kBodyPhaseHead - 1);
        parser->parse();
      }
    } catch (const std::exception&) {
      // A clock that was not restarted only cuts the client off earlier.
    }
  }

  void Dispatch(const std::shared_ptr<Connection>& conn, uint64_t seq, FramingEvent event) {
    const bool keep_alive = event.keep_alive;
    const bool head_request = event.request.method == "HEAD";
    handler_.Handle(std::move(event.request),
                    [conn, seq, keep_alive, head_request](HttpResponse r) {
                      conn->Answer(seq, Serialize(r, keep_alive, head_request), !keep_alive);
                    });
  }

  WebhookHandler& handler_;
  FramingLimits limits_;
  size_t parser_bytes_;
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
                    .maxRequestSize(kPistacheParserBytes)
                    .maxResponseSize(1 << 20)
                    .headerTimeout(options.header_timeout)
                    .bodyTimeout(options.body_timeout)
                    .keepaliveTimeout(options.keepalive_timeout);
    impl->endpoint->init(opts);
    impl->endpoint->setHandler(Pistache::Http::make_handler<Adaptor>(
        handler,
        FramingLimits{.max_header_count = options.max_header_count,
                      .max_header_bytes = options.max_header_bytes,
                      .max_body_bytes = options.max_body_bytes},
        kPistacheParserBytes));
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
