// pdk-load: drives POST /webhooks with signed, unique PDK door events over
// many keep-alive HTTP/1.1 connections and reports durable events/s and
// latency percentiles.
//
// Each connection has at most one request in flight, as a webhook sender
// does. Closed loop by default (a connection sends its next request as soon
// as the previous one is answered); with --rate, requests follow a fixed
// schedule shared by all connections and latency is measured from the
// scheduled time, so a stalled server is charged for the requests it kept
// waiting. Every request is generated, signed and serialized before the
// clock starts. Exits 1 if any response was not 200 or any request failed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_flags.h"
#include "bench/event_generator.h"

namespace pdkarchive::bench {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;
// When --pool is not given: enough unique events for this rate over the
// whole run (warm-up included).
constexpr double kAutoPoolRate = 60000;
// How long to wait for in-flight answers once sending has stopped.
constexpr int64_t kDrainNs = 10 * kNsPerSec;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Config {
  std::string host = "127.0.0.1";
  int64_t port = 8080;
  std::string path = "/webhooks";
  std::string secret;
  int64_t connections = 64;
  int64_t threads = 1;
  double duration_s = 10;
  double warmup_s = 2;
  int64_t requests = 0;
  double rate = 0;
  int64_t pool = 0;
  int64_t seed = 1;
  std::string occurred = "year";
  bool metrics = false;
  int64_t server_pid = 0;
  std::string label;
  double stall_s = 30;
};

// Every request's bytes, made before the run (on several threads: signing
// dominates), in one arena. Requests are handed out by index; an index past
// the end wraps around (the archive then sees duplicates, which the report
// counts).
class RequestPool {
 public:
  RequestPool(const Config& config, size_t count) {
    const size_t parts =
        std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
    std::vector<std::string> arenas(parts);
    std::vector<std::vector<size_t>> sizes(parts);
    std::vector<std::thread> threads;
    const uint64_t nonce = RandomNonce();
    for (size_t p = 0; p < parts; ++p) {
      threads.emplace_back([&, p] {
        GeneratorOptions options;
        // Distinct seeds and nonces per part: the parts' ids never collide.
        options.seed = static_cast<uint64_t>(config.seed) * 1000 + p;
        options.id_nonce = nonce + p;
        options.live_times = config.occurred == "live";
        EventGenerator generator(options);
        const size_t n = count / parts + (p < count % parts ? 1 : 0);
        arenas[p].reserve(n * 400);
        for (size_t i = 0; i < n; ++i) {
          const size_t before = arenas[p].size();
          AppendRequest(config, generator.Next(), &arenas[p]);
          sizes[p].push_back(arenas[p].size() - before);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    size_t total = 0;
    for (const std::string& a : arenas) total += a.size();
    arena_.reserve(total);
    offsets_.reserve(count + 1);
    // Interleave the parts so consecutive requests come from different
    // generators, as they would from one.
    std::vector<size_t> cursor(parts, 0);
    std::vector<size_t> index(parts, 0);
    for (size_t i = 0; i < count; ++i) {
      const size_t p = i % parts;
      offsets_.push_back(arena_.size());
      arena_.append(arenas[p], cursor[p], sizes[p][index[p]]);
      cursor[p] += sizes[p][index[p]];
      ++index[p];
    }
    offsets_.push_back(arena_.size());
  }

  std::string_view Get(uint64_t index) const {
    const size_t i = static_cast<size_t>(index % size());
    return std::string_view(arena_).substr(offsets_[i],
                                           offsets_[i + 1] - offsets_[i]);
  }
  size_t size() const { return offsets_.size() - 1; }
  size_t bytes() const { return arena_.size(); }

 private:
  static void AppendRequest(const Config& config, const std::string& body,
                            std::string* out) {
    *out += "POST " + config.path + " HTTP/1.1\r\nHost: " + config.host + ":" +
            std::to_string(config.port) +
            "\r\nContent-Type: application/json\r\n";
    if (!config.secret.empty()) {
      *out += "X-PDK-SIGNATURE: " + SignatureHex(config.secret, body) + "\r\n";
    }
    *out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    *out += body;
  }

  std::string arena_;
  std::vector<size_t> offsets_;
};

// What every worker thread reads (fixed before they start) or shares.
struct Run {
  const Config* config = nullptr;
  const RequestPool* pool = nullptr;
  int64_t start_ns = 0;         // the rate schedule starts here
  int64_t window_start_ns = 0;  // measurement starts after the warm-up
  int64_t window_end_ns = 0;    // duration mode only; 0 with --requests
  int64_t interval_ns = 0;      // --rate only: time between scheduled requests
  std::atomic<uint64_t> next_request{0};  // pool index, and ticket under --rate
  std::atomic<int64_t> measured_sent{0};  // --requests only
};

struct Stats {
  std::vector<int64_t> latencies_ns;  // measured requests only
  uint64_t answered = 0;              // every answer, warm-up included
  uint64_t ok = 0;
  uint64_t non_200 = 0;
  uint64_t errors = 0;  // connection failures, unanswered requests
  uint64_t reconnects = 0;
  uint64_t duplicates = 0;
  int64_t last_measured_ns = 0;
  std::map<int, uint64_t> statuses;  // non-200 answers by status
  std::string sample_error;          // the first non-200 body or failure
};

// A blocking connect to host:port, then non-blocking with Nagle off.
// Returns -1 (and says why in `error`) on failure.
int Connect(const Config& config, std::string* error) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(config.port));
  if (inet_pton(AF_INET, config.host.c_str(), &addr.sin_addr) != 1) {
    *error = "--host must be an IPv4 address: " + config.host;
    return -1;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    *error = "connect to " + config.host + ":" + std::to_string(config.port) +
             ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

struct ParsedResponse {
  int status = 0;
  std::string_view body;
  bool close = false;   // the server will close the connection after it
  size_t consumed = 0;  // bytes of the buffer this response took
};

// Parses one Content-Length-framed HTTP/1.1 response from the front of
// `buffer`. nullopt while incomplete; status -1 when it cannot be framed.
std::optional<ParsedResponse> ParseResponse(std::string_view buffer) {
  const size_t header_end = buffer.find("\r\n\r\n");
  if (header_end == std::string_view::npos) return std::nullopt;
  ParsedResponse r;
  std::string_view head = buffer.substr(0, header_end);
  // "HTTP/1.1 200 OK"
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") {
    r.status = -1;
    return r;
  }
  r.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::optional<size_t> length;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos) {
    const size_t line_start = pos + 2;
    const size_t line_end = head.find("\r\n", line_start);
    std::string_view line = head.substr(
        line_start,
        (line_end == std::string_view::npos ? head.size() : line_end) -
            line_start);
    if (StartsWithIgnoreCase(line, "content-length:")) {
      length = static_cast<size_t>(std::strtoull(
          std::string(line.substr(std::strlen("content-length:"))).c_str(),
          nullptr, 10));
    } else if (StartsWithIgnoreCase(line, "connection:")) {
      std::string value(line.substr(std::strlen("connection:")));
      for (char& c : value)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.close = value.find("close") != std::string::npos;
    }
    pos = line_end;
  }
  if (!length) {
    r.status = -1;  // pdk-archive and the null server always send a length
    return r;
  }
  const size_t body_start = header_end + 4;
  if (buffer.size() < body_start + *length) return std::nullopt;
  r.body = buffer.substr(body_start, *length);
  r.consumed = body_start + *length;
  return r;
}

struct Connection {
  int fd = -1;
  bool busy = false;
  bool measured = false;    // --requests: sent after the warm-up
  bool want_write = false;  // EPOLLOUT registered
  int64_t origin_ns = 0;    // latency is measured from here
  std::string_view out;     // request bytes not yet written
  std::string in;           // response bytes received so far
};

// One thread's share of the connections, driven by one epoll loop.
class Worker {
 public:
  Worker(Run& run, std::vector<int> fds) : run_(run), config_(*run.config) {
    connections_.resize(fds.size());
    for (size_t i = 0; i < fds.size(); ++i) connections_[i].fd = fds[i];
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    for (Connection& c : connections_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (timer_fd_ >= 0) close(timer_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  void Loop();
  Stats& stats() { return stats_; }

 private:
  void Dispatch(int64_t now);
  void Send(Connection& c, std::string_view request, int64_t origin_ns,
            bool measured);
  void Flush(Connection& c);
  void OnReadable(Connection& c);
  void Complete(Connection& c, const ParsedResponse& response);
  void Fail(Connection& c, const std::string& why);
  void Reconnect(Connection& c);
  void Watch(Connection& c, bool write);
  void ArmTimer(int64_t at_ns);
  bool SendingDone(int64_t now);

  Run& run_;
  const Config& config_;
  std::vector<Connection> connections_;
  std::vector<Connection*> idle_;
  size_t busy_ = 0;
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  int64_t armed_at_ns_ = 0;
  bool sending_done_ = false;
  int64_t last_progress_ns_ = 0;
  Stats stats_;
};

void Worker::Watch(Connection& c, bool write) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | (write ? EPOLLOUT : 0u);
  event.data.ptr = &c;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &event) != 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &event);
  }
  c.want_write = write;
}

void Worker::ArmTimer(int64_t at_ns) {
  if (at_ns == armed_at_ns_) return;
  armed_at_ns_ = at_ns;
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(at_ns / kNsPerSec);
  spec.it_value.tv_nsec = static_cast<long>(at_ns % kNsPerSec);
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

bool Worker::SendingDone(int64_t now) {
  if (sending_done_) return true;
  if (run_.window_end_ns != 0 && now >= run_.window_end_ns)
    sending_done_ = true;
  if (config_.requests > 0 &&
      run_.measured_sent.load(std::memory_order_relaxed) >= config_.requests) {
    sending_done_ = true;
  }
  return sending_done_;
}

void Worker::Dispatch(int64_t now) {
  while (!idle_.empty() && !SendingDone(now)) {
    uint64_t index = 0;
    int64_t origin = now;
    if (run_.interval_ns > 0) {
      index = run_.next_request.load(std::memory_order_relaxed);
      const int64_t due =
          run_.start_ns + static_cast<int64_t>(index) * run_.interval_ns;
      if (due > now) {
        ArmTimer(due);
        return;
      }
      if (!run_.next_request.compare_exchange_weak(index, index + 1)) continue;
      origin = due;
    } else {
      index = run_.next_request.fetch_add(1, std::memory_order_relaxed);
    }
    bool measured = false;
    if (config_.requests > 0 && origin >= run_.window_start_ns) {
      if (run_.measured_sent.fetch_add(1) >= config_.requests) {
        sending_done_ = true;
        return;
      }
      measured = true;
    }
    Connection* c = idle_.back();
    idle_.pop_back();
    Send(*c, run_.pool->Get(index), origin, measured);
  }
}

void Worker::Send(Connection& c, std::string_view request, int64_t origin_ns,
                  bool measured) {
  c.busy = true;
  ++busy_;
  c.measured = measured;
  c.origin_ns = origin_ns;
  c.out = request;
  Flush(c);
}

void Worker::Flush(Connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.want_write) Watch(c, true);
      return;
    }
    Fail(c, std::string("send: ") + std::strerror(errno));
    return;
  }
  if (c.want_write) Watch(c, false);
}

void Worker::OnReadable(Connection& c) {
  char buffer[16384];
  while (true) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      c.in.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // EOF or a reset. Anything already complete in the buffer still counts.
    const std::string why = n == 0
                                ? "server closed the connection"
                                : std::string("recv: ") + std::strerror(errno);
    if (std::optional<ParsedResponse> r = ParseResponse(c.in);
        r && r->status > 0) {
      ParsedResponse response = *r;
      response.close = true;
      Complete(c, response);
      return;
    }
    if (c.busy) {
      Fail(c, why);
    } else {
      Reconnect(c);  // an idle keep-alive connection timed out; not a failure
    }
    return;
  }
  std::optional<ParsedResponse> r = ParseResponse(c.in);
  if (!r) return;
  if (r->status < 0 || !c.busy) {
    Fail(c, "unparseable or unexpected response: " + c.in.substr(0, 200));
    return;
  }
  Complete(c, *r);
}

void Worker::Complete(Connection& c, const ParsedResponse& response) {
  const int64_t now = NowNs();
  last_progress_ns_ = now;
  ++stats_.answered;
  if (response.status == 200) {
    ++stats_.ok;
    if (response.body.find("\"duplicate\":true") != std::string_view::npos) {
      ++stats_.duplicates;
    }
  } else {
    ++stats_.non_200;
    ++stats_.statuses[response.status];
    if (stats_.sample_error.empty()) {
      stats_.sample_error = "HTTP " + std::to_string(response.status) + ": " +
                            std::string(response.body);
    }
  }
  const bool measured = config_.requests > 0 ? c.measured
                                             : (now >= run_.window_start_ns &&
                                                now < run_.window_end_ns);
  if (measured) {
    stats_.latencies_ns.push_back(now - c.origin_ns);
    stats_.last_measured_ns = now;
  }
  c.in.erase(0, response.consumed);
  c.busy = false;
  --busy_;
  if (response.close) {
    ++stats_.reconnects;
    Reconnect(c);
    return;
  }
  idle_.push_back(&c);
}

void Worker::Fail(Connection& c, const std::string& why) {
  ++stats_.errors;
  if (stats_.sample_error.empty()) stats_.sample_error = why;
  if (c.busy) {
    c.busy = false;
    --busy_;
  }
  Reconnect(c);
}

void Worker::Reconnect(Connection& c) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  c.in.clear();
  c.out = {};
  std::string error;
  c.fd = SendingDone(NowNs()) ? -1 : Connect(config_, &error);
  if (c.fd < 0) {
    if (!error.empty()) {
      ++stats_.errors;
      if (stats_.sample_error.empty()) stats_.sample_error = error;
    }
    return;  // this connection is gone; the others carry on
  }
  fcntl(c.fd, F_SETFL, O_NONBLOCK);
  c.want_write = true;  // force Watch to (re)register
  Watch(c, false);
  idle_.push_back(&c);
}

void Worker::Loop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  epoll_event timer_event{};
  timer_event.events = EPOLLIN;
  timer_event.data.ptr = nullptr;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &timer_event);
  for (Connection& c : connections_) {
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.ptr = &c;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &event);
    idle_.push_back(&c);
  }
  const int64_t stall_ns = static_cast<int64_t>(config_.stall_s * kNsPerSec);
  last_progress_ns_ = NowNs();
  int64_t drain_deadline = 0;
  std::vector<epoll_event> events(connections_.size() + 1);
  while (true) {
    const int64_t now = NowNs();
    Dispatch(now);
    if (SendingDone(now)) {
      if (busy_ == 0) break;
      if (drain_deadline == 0) drain_deadline = now + kDrainNs;
    }
    if (busy_ > 0 && ((drain_deadline != 0 && now > drain_deadline) ||
                      now - last_progress_ns_ > stall_ns)) {
      stats_.errors += busy_;
      if (stats_.sample_error.empty()) {
        stats_.sample_error =
            std::to_string(busy_) + " requests never answered";
      }
      break;
    }
    // Wake at least every 100 ms to notice the end of the window.
    const int n = epoll_wait(epoll_fd_, events.data(),
                             static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      const epoll_event& e = events[static_cast<size_t>(i)];
      if (e.data.ptr == nullptr) {
        uint64_t expirations = 0;
        [[maybe_unused]] ssize_t r =
            read(timer_fd_, &expirations, sizeof(expirations));
        armed_at_ns_ = 0;
        continue;
      }
      Connection& c = *static_cast<Connection*>(e.data.ptr);
      if (c.fd < 0) continue;
      if ((e.events & EPOLLOUT) != 0 && c.busy) Flush(c);
      if ((e.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
        OnReadable(c);
    }
  }
}

// Counters read from the server's GET /metrics.
struct ServerMetrics {
  bool ok = false;
  double batch_rows = 0;  // pdkarchive_commit_batch_size_sum
  double batches = 0;     // pdkarchive_commit_batch_size_count
  double commit_ms = 0;   // pdkarchive_commit_latency_seconds_sum, in ms
  double accepted = 0;    // pdkarchive_deliveries_total{result="accepted"}
};

ServerMetrics ScrapeMetrics(const Config& config) {
  ServerMetrics m;
  std::string error;
  const int fd = Connect(config, &error);
  if (fd < 0) return m;
  const timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: " + config.host +
                              "\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return m;
  }
  std::string in;
  char buffer[16384];
  std::optional<ParsedResponse> response;
  while (!(response = ParseResponse(in))) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    in.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (!response || response->status != 200) return m;
  std::istringstream lines{std::string(response->body)};
  std::string line;
  auto value_of = [&line](std::string_view name) -> std::optional<double> {
    if (line.size() <= name.size() || line.compare(0, name.size(), name) != 0 ||
        line[name.size()] != ' ') {
      return std::nullopt;
    }
    return std::strtod(line.c_str() + name.size() + 1, nullptr);
  };
  int found = 0;
  while (std::getline(lines, line)) {
    if (auto v = value_of("pdkarchive_commit_batch_size_sum"))
      m.batch_rows = *v, ++found;
    if (auto v = value_of("pdkarchive_commit_batch_size_count"))
      m.batches = *v, ++found;
    if (auto v = value_of("pdkarchive_commit_latency_seconds_sum")) {
      m.commit_ms = *v * 1000;
      ++found;
    }
    if (auto v = value_of("pdkarchive_deliveries_total{result=\"accepted\"}")) {
      m.accepted = *v;
      ++found;
    }
  }
  m.ok = found == 4;
  return m;
}

// CPU seconds (user + system) used so far by this process.
double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) /
             1e6;
}

// CPU seconds used so far by process `pid` (from /proc); -1 if unreadable.
double ProcessCpuSeconds(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  // After "pid (comm) ": state is field 3; utime and stime are 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(
      std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return static_cast<double>(
             sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1]) /
         1e6;
}

void SleepUntil(int64_t at_ns) {
  const int64_t now = NowNs();
  if (at_ns > now)
    std::this_thread::sleep_for(std::chrono::nanoseconds(at_ns - now));
}

int Main(int argc, char** argv) {
  Config config;
  Flags flags(
      "pdk-load --port PORT [--secret S] [--connections N] "
      "[--duration SEC | --requests N] [--warmup SEC] [--rate R] ...");
  flags.String("host", &config.host, "server IPv4 address");
  flags.Int("port", &config.port, "server port");
  flags.String("path", &config.path, "request path");
  flags.String("secret", &config.secret,
               "HMAC secret; empty sends no X-PDK-SIGNATURE header");
  flags.Int("connections", &config.connections,
            "concurrent keep-alive connections");
  flags.Int("threads", &config.threads,
            "client threads, each owning an epoll loop");
  flags.Double("duration", &config.duration_s,
               "seconds measured after the warm-up");
  flags.Double("warmup", &config.warmup_s, "seconds of load before measuring");
  flags.Int(
      "requests", &config.requests,
      "measure exactly this many requests instead of --duration (0 = off)");
  flags.Double(
      "rate", &config.rate,
      "requests/s on a fixed schedule, latency from the scheduled time "
      "(0 = closed loop, as fast as answers come)");
  flags.Int(
      "pool", &config.pool,
      "pre-generated unique events (0 = enough for 60000/s over the run)");
  flags.Int("seed", &config.seed,
            "content seed (ids are unique per run regardless)");
  flags.String("occurred", &config.occurred,
               "year: occurred spread over 2025; live: occurred = now");
  flags.Bool(
      "metrics", &config.metrics,
      "read GET /metrics at the window's start and end: commit batch size");
  flags.Int("server-pid", &config.server_pid,
            "report this process's CPU use (0 = no)");
  flags.String("label", &config.label, "a name echoed in the RESULT line");
  flags.Double("stall-timeout", &config.stall_s,
               "give up when nothing is answered for this many seconds");
  flags.Parse(argc, argv);
  if (config.connections <= 0 || config.threads <= 0 || config.port <= 0 ||
      config.port > 65535 || config.duration_s <= 0 || config.warmup_s < 0 ||
      config.requests < 0 || config.rate < 0 || config.pool < 0 ||
      (config.occurred != "year" && config.occurred != "live")) {
    std::cerr
        << "pdk-load: --port, --connections, --threads, --duration must be "
           "positive; --warmup, --requests, --rate, --pool not negative; "
           "--occurred year or live\n";
    return 2;
  }
  config.threads = std::min(config.threads, config.connections);
  signal(SIGPIPE, SIG_IGN);

  size_t pool_size = static_cast<size_t>(config.pool);
  if (pool_size == 0) {
    const double seconds =
        config.warmup_s + (config.requests > 0 ? 0 : config.duration_s);
    const double rate = config.rate > 0
                            ? std::min(config.rate * 1.05, kAutoPoolRate)
                            : kAutoPoolRate;
    pool_size = static_cast<size_t>(seconds * rate) +
                static_cast<size_t>(config.requests) +
                static_cast<size_t>(config.connections);
  }
  const int64_t generate_start = NowNs();
  RequestPool pool(config, pool_size);
  const double generate_s = static_cast<double>(NowNs() - generate_start) / 1e9;

  std::vector<std::vector<int>> fds(static_cast<size_t>(config.threads));
  for (int64_t i = 0; i < config.connections; ++i) {
    std::string error;
    const int fd = Connect(config, &error);
    if (fd < 0) {
      std::cerr << "pdk-load: " << error << "\n";
      return 1;
    }
    fds[static_cast<size_t>(i % config.threads)].push_back(fd);
  }

  Run run;
  run.config = &config;
  run.pool = &pool;
  run.start_ns = NowNs();
  run.window_start_ns =
      run.start_ns + static_cast<int64_t>(config.warmup_s * kNsPerSec);
  if (config.requests == 0) {
    run.window_end_ns = run.window_start_ns +
                        static_cast<int64_t>(config.duration_s * kNsPerSec);
  }
  if (config.rate > 0)
    run.interval_ns = static_cast<int64_t>(kNsPerSec / config.rate);

  std::vector<std::unique_ptr<Worker>> workers;
  for (std::vector<int>& thread_fds : fds) {
    workers.push_back(std::make_unique<Worker>(run, std::move(thread_fds)));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Loop(); });

  SleepUntil(run.window_start_ns);
  const ServerMetrics metrics_before =
      config.metrics ? ScrapeMetrics(config) : ServerMetrics{};
  const double self_cpu_before = SelfCpuSeconds();
  const double server_cpu_before =
      config.server_pid > 0 ? ProcessCpuSeconds(config.server_pid) : -1;
  const int64_t cpu_window_start = NowNs();
  ServerMetrics metrics_after;
  double self_cpu_after = 0;
  double server_cpu_after = -1;
  int64_t cpu_window_end = 0;
  auto sample_end = [&] {
    metrics_after = config.metrics ? ScrapeMetrics(config) : ServerMetrics{};
    self_cpu_after = SelfCpuSeconds();
    server_cpu_after =
        config.server_pid > 0 ? ProcessCpuSeconds(config.server_pid) : -1;
    cpu_window_end = NowNs();
  };
  if (config.requests == 0) {
    SleepUntil(run.window_end_ns);
    sample_end();
  }
  for (std::thread& t : threads) t.join();
  if (config.requests > 0) sample_end();

  Stats total;
  for (auto& w : workers) {
    Stats& s = w->stats();
    total.latencies_ns.insert(total.latencies_ns.end(), s.latencies_ns.begin(),
                              s.latencies_ns.end());
    total.answered += s.answered;
    total.ok += s.ok;
    total.non_200 += s.non_200;
    total.errors += s.errors;
    total.reconnects += s.reconnects;
    total.duplicates += s.duplicates;
    total.last_measured_ns =
        std::max(total.last_measured_ns, s.last_measured_ns);
    for (const auto& [status, count] : s.statuses)
      total.statuses[status] += count;
    if (total.sample_error.empty()) total.sample_error = s.sample_error;
  }
  std::sort(total.latencies_ns.begin(), total.latencies_ns.end());
  const int64_t window_end =
      config.requests > 0 ? total.last_measured_ns : run.window_end_ns;
  const double window_s = std::max(
      1e-9, static_cast<double>(window_end - run.window_start_ns) / 1e9);
  const double measured = static_cast<double>(total.latencies_ns.size());
  const double throughput = measured / window_s;
  const uint64_t sent = run.next_request.load();
  const uint64_t reused = sent > pool.size() ? sent - pool.size() : 0;

  const double cpu_window_s = std::max(
      1e-9, static_cast<double>(cpu_window_end - cpu_window_start) / 1e9);
  const double self_cpu_pct =
      100.0 * (self_cpu_after - self_cpu_before) / cpu_window_s;
  const double server_cpu_pct =
      server_cpu_before >= 0 && server_cpu_after >= 0
          ? 100.0 * (server_cpu_after - server_cpu_before) / cpu_window_s
          : -1;
  double batch_mean = 0;
  double commit_ms_mean = 0;
  double batches = 0;
  const bool have_metrics = metrics_before.ok && metrics_after.ok;
  if (have_metrics) {
    batches = metrics_after.batches - metrics_before.batches;
    if (batches > 0) {
      batch_mean =
          (metrics_after.batch_rows - metrics_before.batch_rows) / batches;
      commit_ms_mean =
          (metrics_after.commit_ms - metrics_before.commit_ms) / batches;
    }
  }

  const std::string mode =
      config.rate > 0
          ? "fixed rate " + std::to_string(static_cast<int64_t>(config.rate)) +
                "/s"
          : "closed loop";
  std::printf("pdk-load: %" PRId64 " connections on %" PRId64
              " thread(s), %s, %.2f s measured after %.1f s warm-up\n",
              config.connections, config.threads, mode.c_str(), window_s,
              config.warmup_s);
  std::printf(
      "pool         %zu requests, %.1f MB, generated and signed in %.2f s\n",
      pool.size(), static_cast<double>(pool.bytes()) / 1e6, generate_s);
  std::printf("answers      %" PRIu64 " (200: %" PRIu64 ", non-200: %" PRIu64
              "), transport errors %" PRIu64 ", reconnects %" PRIu64
              ", duplicates %" PRIu64 ", re-sent from pool %" PRIu64 "\n",
              total.answered, total.ok, total.non_200, total.errors,
              total.reconnects, total.duplicates, reused);
  for (const auto& [status, count] : total.statuses) {
    std::printf("             HTTP %d: %" PRIu64 "\n", status, count);
  }
  if (!total.sample_error.empty()) {
    std::printf("first error  %s\n", total.sample_error.substr(0, 300).c_str());
  }
  std::printf("throughput   %.0f requests/s (%.0f in the window)\n", throughput,
              measured);
  const double p50 = Percentile(total.latencies_ns, 50);
  const double p90 = Percentile(total.latencies_ns, 90);
  const double p99 = Percentile(total.latencies_ns, 99);
  const double p999 = Percentile(total.latencies_ns, 99.9);
  const double max = Percentile(total.latencies_ns, 100);
  std::printf(
      "latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", p50,
      p90, p99, p999, max);
  if (config.metrics) {
    if (have_metrics) {
      std::printf(
          "commits      %.0f batches, mean %.1f rows per batch, mean %.2f ms "
          "each\n",
          batches, batch_mean, commit_ms_mean);
    } else {
      std::printf("commits      GET /metrics unavailable\n");
    }
  }
  std::printf("cpu          pdk-load %.0f%% of a core", self_cpu_pct);
  if (server_cpu_pct >= 0) std::printf(", server %.0f%%", server_cpu_pct);
  std::printf("\n");
  std::printf("RESULT label=%s conns=%" PRId64
              " rate=%.0f events_per_s=%.1f p50_ms=%.3f"
              " p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f measured=%.0f"
              " non200=%" PRIu64 " errors=%" PRIu64 " reconnects=%" PRIu64
              " duplicates=%" PRIu64 " reused=%" PRIu64 " ok=%" PRIu64
              " answered=%" PRIu64
              " batch_mean=%.2f commit_ms_mean=%.3f load_cpu_pct=%.0f "
              "server_cpu_pct=%.0f\n",
              config.label.empty() ? "-" : config.label.c_str(),
              config.connections, config.rate, throughput, p50, p90, p99, p999,
              max, measured, total.non_200, total.errors, total.reconnects,
              total.duplicates, reused, total.ok, total.answered, batch_mean,
              commit_ms_mean, self_cpu_pct, server_cpu_pct);
  return total.non_200 == 0 && total.errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace pdkarchive::bench

int main(int argc, char** argv) { return pdkarchive::bench::Main(argc, argv); }
