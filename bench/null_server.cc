// pdk-null-server: the HTTP ceiling. A Pistache 0.0.5 endpoint configured
// as `pdk-archive serve` configures its own (threads, request size limit,
// keep-alive for HTTP/1.1 requests that name no Connection header) whose
// handler answers every request 200 `{}` and does nothing else: no
// signature check, no parsing, no store. What pdk-load measures against it
// is what Pistache and the loopback can carry on this machine.
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/net.h>
#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "bench/bench_flags.h"

namespace pdkarchive::bench {
namespace {

// The same limits ingest/http_server.cc derives from serve's defaults:
// 1 MiB bodies, four times that before Pistache refuses on its own, plus
// header room.
constexpr size_t kMaxRequestBytes = (size_t{1} << 20) * 4 + 64 * 1024;

class NullHandler final : public Pistache::Http::Handler {
 public:
  HTTP_PROTOTYPE(NullHandler)

  void onRequest(const Pistache::Http::Request& request,
                 Pistache::Http::ResponseWriter response) override {
    // As serve does: Pistache pre-sets "Connection: Close" on the response
    // when the request named no Connection header, which would end every
    // HTTP/1.1 connection after one exchange. Keep it open unless the
    // client asked to close (or speaks HTTP/1.0 and did not ask to keep it).
    bool keep_alive = request.version() == Pistache::Http::Version::Http11;
    if (auto connection =
            request.headers().tryGet<Pistache::Http::Header::Connection>()) {
      keep_alive =
          connection->control() != Pistache::Http::ConnectionControl::Close;
    }
    auto& headers = response.headers();
    headers.remove<Pistache::Http::Header::Connection>();
    headers.add<Pistache::Http::Header::Connection>(
        keep_alive ? Pistache::Http::ConnectionControl::KeepAlive
                   : Pistache::Http::ConnectionControl::Close);
    headers.add<Pistache::Http::Header::ContentType>(
        Pistache::Http::Mime::MediaType::fromString("application/json"));
    response.send(Pistache::Http::Code::Ok, "{}");
  }
};

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  int64_t threads = 2;
  Flags flags("pdk-null-server [--listen HOST:PORT] [--threads N]");
  flags.String("listen", &listen, "where to listen; port 0 picks a free port");
  flags.Int("threads", &threads,
            "Pistache worker threads (serve's default is 2)");
  flags.Parse(argc, argv);
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || threads <= 0) {
    std::cerr << "pdk-null-server: --listen wants HOST:PORT, --threads > 0\n";
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    Pistache::Address address(listen.substr(0, colon),
                              Pistache::Port(static_cast<uint16_t>(
                                  std::stoi(listen.substr(colon + 1)))));
    Pistache::Http::Endpoint endpoint(address);
    endpoint.init(Pistache::Http::Endpoint::options()
                      .threads(static_cast<int>(threads))
                      .flags(Pistache::Tcp::Options::ReuseAddr)
                      .maxRequestSize(kMaxRequestBytes)
                      .maxResponseSize(1 << 20));
    endpoint.setHandler(Pistache::Http::make_handler<NullHandler>());
    endpoint.serveThreaded();
    std::cout << "http listening on " << listen.substr(0, colon) << ":"
              << static_cast<uint16_t>(endpoint.getPort()) << "\n"
              << std::flush;
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    endpoint.shutdown();
  } catch (const std::exception& e) {
    std::cerr << "pdk-null-server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace pdkarchive::bench

int main(int argc, char** argv) { return pdkarchive::bench::Main(argc, argv); }
