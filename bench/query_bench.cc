// pdk-query-bench: measures the query API of a running `pdk-archive serve`
// from a separate process, through gRPC, as dashboards and scripts use it.
//
//   pdk-query-bench --server 127.0.0.1:50051 --iterations 200
//       [--server-pid PID] [--http 127.0.0.1:8080 --secret S] [--only list,count]
//
// Phases (--only picks some; all by default, watch only with --http):
//   list    ListEvents first page (100) per filter shape, parameters varied
//           per call: door+day, person+week, topic+month, time alone (a day).
//   deep    page 1000 (page_size 100) reached through page tokens.
//   count   CountEvents door x day over a month, topic over 2025, and two
//           that the rollups cannot answer (person, hour).
//   export  ExportEvents of a time range holding about --export-rows events;
//           rows/s and the server's VmHWM/VmRSS (--server-pid).
//   watch   WatchEvents latency: signed webhooks posted over HTTP at a steady
//           --watch-rate, each carrying its send time (metadata.benchSentNs),
//           against a watch filtered to door.request.*; latency is from just
//           before the POST is written to the watch receiving the event.
// The archive is expected to hold pdk-make-events output (2025, doors
// 1..500, people 1..2000). Prints a readable report and, per figure, one
// "RESULT name key=value ..." line for scripts.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_flags.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "timeutil/time_util.h"

namespace pdkarchive::bench {
namespace {

namespace v1 = ::pdk::archive::v1;
using Clock = std::chrono::steady_clock;

using timeutil::kDayMs;
constexpr int64_t kYearStartMs = timeutil::DaysFromCivil(2025, 1, 1) * kDayMs;  // 2025-01-01
constexpr int kDoorCount = 500;
constexpr int kPersonCount = 2000;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Latency samples in ms; percentiles by nearest rank.
class Samples {
 public:
  void Add(double ms) { values_.push_back(ms); }
  void Merge(const Samples& other) {
    values_.insert(values_.end(), other.values_.begin(), other.values_.end());
  }
  size_t size() const { return values_.size(); }
  double Percentile(double p) {
    if (values_.empty()) return 0;
    std::sort(values_.begin(), values_.end());
    size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(values_.size()) + 0.999999);
    rank = std::clamp<size_t>(rank, 1, values_.size());
    return values_[rank - 1];
  }
  double Max() { return values_.empty() ? 0 : *std::max_element(values_.begin(), values_.end()); }

 private:
  std::vector<double> values_;
};

void SetTimestamp(int64_t ms, google::protobuf::Timestamp* ts) {
  ts->set_seconds(ms / 1000);
  ts->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
}

int64_t MonthStartMs(int month) {  // month 0..12 (12 = 2026-01-01)
  return timeutil::DaysFromCivil(2025 + month / 12, month % 12 + 1, 1) * kDayMs;
}

// "VmHWM" and "VmRSS" of a process in KiB, from /proc/PID/status; 0 when
// unreadable.
int64_t ProcStatusKiB(int64_t pid, std::string_view key) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() &&
        line[key.size()] == ':') {
      return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

// CPU seconds (user + system) of a process so far, from /proc/PID/stat.
double ProcCpuSeconds(int64_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtod(field.c_str(), nullptr);
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Options {
  std::string server;
  int64_t iterations = 200;
  int64_t warmup = 20;
  int64_t count_iterations = 50;
  int64_t seed = 1;
  int64_t server_pid = 0;
  std::string only;
  int64_t deep_pages = 1000;
  int64_t export_rows = 1000000;
  std::string http;
  std::string secret;
  double watch_rate = 3000;
  int64_t watch_seconds = 20;
  int64_t watch_warmup = 3;
  int64_t watch_connections = 64;
  std::string watch_topic = "door.request.*";
  std::string export_cases = "012";
};

class Bench {
 public:
  explicit Bench(const Options& options)
      : options_(options),
        rng_(static_cast<uint64_t>(options.seed)),
        channel_(grpc::CreateChannel(options.server, grpc::InsecureChannelCredentials())),
        stub_(v1::EventArchive::NewStub(channel_)) {}

  bool Wants(std::string_view phase) const {
    if (options_.only.empty()) return phase != "watch" || !options_.http.empty();
    std::string_view list = options_.only;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      if (list.substr(0, comma) == phase) return true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    return false;
  }

  bool Connect() {
    if (!channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::cerr << "pdk-query-bench: cannot connect to " << options_.server << "\n";
      return false;
    }
    return true;
  }

  // ListEvents first page per filter shape.
  bool RunList() {
    std::cout << "\n## ListEvents, first page of 100 (" << options_.iterations
              << " calls per shape after " << options_.warmup << " warm-up calls)\n\n"
              << "| shape | p50 ms | p90 ms | p99 ms | max ms | mean rows |\n"
              << "|---|---:|---:|---:|---:|---:|\n";
    using Maker = std::function<std::string(v1::EventFilter*)>;
    static const char* const kTopics[] = {"door.request.allowed", "door.request.denied",
                                          "door.alarm.forced",    "door.input.dps.opened",
                                          "door.request.*",       "entity.*",
                                          "endpoint.*",           "notification.person.*"};
    const std::vector<std::pair<std::string, Maker>> shapes = {
        {"door+day",
         [&](v1::EventFilter* f) {
           f->add_door_ids(Uniform(1, kDoorCount));
           const int64_t day = Uniform(0, 364);
           SetTimestamp(kYearStartMs + day * kDayMs, f->mutable_start_time());
           SetTimestamp(kYearStartMs + (day + 1) * kDayMs, f->mutable_end_time());
           return std::string();
         }},
        {"person+week",
         [&](v1::EventFilter* f) {
           f->add_person_ids(Uniform(1, kPersonCount));
           const int64_t day = Uniform(0, 357);
           SetTimestamp(kYearStartMs + day * kDayMs, f->mutable_start_time());
           SetTimestamp(kYearStartMs + (day + 7) * kDayMs, f->mutable_end_time());
           return std::string();
         }},
        {"topic+month",
         [&](v1::EventFilter* f) {
           const char* topic = kTopics[Uniform(0, std::size(kTopics) - 1)];
           f->add_topics(topic);
           const int month = static_cast<int>(Uniform(0, 11));
           SetTimestamp(MonthStartMs(month), f->mutable_start_time());
           SetTimestamp(MonthStartMs(month + 1), f->mutable_end_time());
           return std::string(topic);
         }},
        {"time alone (a day)",
         [&](v1::EventFilter* f) {
           const int64_t day = Uniform(0, 364);
           SetTimestamp(kYearStartMs + day * kDayMs, f->mutable_start_time());
           SetTimestamp(kYearStartMs + (day + 1) * kDayMs, f->mutable_end_time());
           return std::string();
         }},
    };
    std::map<std::string, Samples> by_topic;
    for (const auto& [name, make] : shapes) {
      Samples samples;
      int64_t rows = 0;
      for (int64_t i = 0; i < options_.warmup + options_.iterations; ++i) {
        v1::ListEventsRequest request;
        request.set_page_size(100);
        const std::string label = make(request.mutable_filter());
        v1::ListEventsResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
        const auto start = Clock::now();
        grpc::Status status = stub_->ListEvents(&context, request, &response);
        const double ms = MsSince(start);
        if (!status.ok()) return Failed("ListEvents " + name, status);
        if (i < options_.warmup) continue;
        samples.Add(ms);
        rows += response.events_size();
        if (!label.empty()) by_topic[label].Add(ms);
      }
      PrintRow(name, samples, static_cast<double>(rows) / static_cast<double>(samples.size()));
      Result("list", name, samples);
    }
    std::cout << "\ntopic+month by topic (p50 / max ms, calls):";
    for (auto& [topic, samples] : by_topic) {
      std::printf(" %s %.2f / %.2f (%zu);", topic.c_str(), samples.Percentile(50), samples.Max(),
                  samples.size());
    }
    std::cout << "\n";
    return true;
  }

  // Page `deep_pages` via page tokens, for two filters.
  bool RunDeep() {
    std::cout << "\n## ListEvents deep paging: page " << options_.deep_pages
              << " of 100 through page tokens\n\n"
              << "| filter | time to reach the page s | per page p50 ms | p99 ms | max ms | "
                 "last page ms |\n|---|---:|---:|---:|---:|---:|\n";
    struct Case {
      const char* name;
      const char* topic;
      bool year;  // start_time 2025-01-01, end_time 2026-01-01
    };
    for (const Case& c : {Case{"none (whole archive)", nullptr, false},
                          Case{"time: all of 2025", nullptr, true},
                          Case{"topic door.request.denied", "door.request.denied", false}}) {
      v1::ListEventsRequest request;
      request.set_page_size(100);
      if (c.topic != nullptr) request.mutable_filter()->add_topics(c.topic);
      if (c.year) {
        SetTimestamp(MonthStartMs(0), request.mutable_filter()->mutable_start_time());
        SetTimestamp(MonthStartMs(12), request.mutable_filter()->mutable_end_time());
      }
      Samples samples;
      double last = 0;
      int64_t pages = 0;
      const auto start = Clock::now();
      for (; pages < options_.deep_pages; ++pages) {
        v1::ListEventsResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
        const auto call_start = Clock::now();
        grpc::Status status = stub_->ListEvents(&context, request, &response);
        last = MsSince(call_start);
        if (!status.ok()) return Failed("ListEvents deep", status);
        samples.Add(last);
        if (response.next_page_token().empty()) {
          ++pages;
          break;
        }
        request.set_page_token(response.next_page_token());
      }
      const double total_s = MsSince(start) / 1000.0;
      std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |%s\n", c.name, total_s,
                  samples.Percentile(50), samples.Percentile(99), samples.Max(), last,
                  pages < options_.deep_pages ? " (ran out of pages)" : "");
      Result("deep", c.name, samples, {{"reach_s", total_s}, {"pages", static_cast<double>(pages)}});
    }
    return true;
  }

  bool RunCount() {
    std::cout << "\n## CountEvents (" << options_.count_iterations << " calls each after "
              << std::min<int64_t>(options_.warmup, 5) << " warm-up)\n\n"
              << "| question | p50 ms | p90 ms | p99 ms | max ms | groups |\n"
              << "|---|---:|---:|---:|---:|---:|\n";
    using Maker = std::function<void(v1::CountEventsRequest*)>;
    const std::vector<std::pair<std::string, Maker>> cases = {
        {"door x day, a month (rollup)",
         [&](v1::CountEventsRequest* r) {
           const int month = static_cast<int>(Uniform(0, 11));
           SetTimestamp(MonthStartMs(month), r->mutable_filter()->mutable_start_time());
           SetTimestamp(MonthStartMs(month + 1), r->mutable_filter()->mutable_end_time());
           r->add_group_by(v1::DIMENSION_DOOR);
           r->add_group_by(v1::DIMENSION_DAY);
         }},
        {"topic, all of 2025 (rollup)",
         [&](v1::CountEventsRequest* r) {
           SetTimestamp(MonthStartMs(0), r->mutable_filter()->mutable_start_time());
           SetTimestamp(MonthStartMs(12), r->mutable_filter()->mutable_end_time());
           r->add_group_by(v1::DIMENSION_TOPIC);
         }},
        {"door.alarm.* by door x day, whole archive (rollup)",
         [&](v1::CountEventsRequest* r) {
           r->mutable_filter()->add_topics("door.alarm.*");
           r->add_group_by(v1::DIMENSION_DOOR);
           r->add_group_by(v1::DIMENSION_DAY);
         }},
        {"person, a month, by day (events)",
         [&](v1::CountEventsRequest* r) {
           r->mutable_filter()->add_person_ids(Uniform(1, kPersonCount));
           const int month = static_cast<int>(Uniform(0, 11));
           SetTimestamp(MonthStartMs(month), r->mutable_filter()->mutable_start_time());
           SetTimestamp(MonthStartMs(month + 1), r->mutable_filter()->mutable_end_time());
           r->add_group_by(v1::DIMENSION_DAY);
         }},
        {"door x hour, a day (events)",
         [&](v1::CountEventsRequest* r) {
           const int64_t day = Uniform(0, 364);
           SetTimestamp(kYearStartMs + day * kDayMs, r->mutable_filter()->mutable_start_time());
           SetTimestamp(kYearStartMs + (day + 1) * kDayMs,
                        r->mutable_filter()->mutable_end_time());
           r->add_group_by(v1::DIMENSION_DOOR);
           r->add_group_by(v1::DIMENSION_HOUR);
         }},
    };
    const int64_t warmup = std::min<int64_t>(options_.warmup, 5);
    for (const auto& [name, make] : cases) {
      Samples samples;
      int64_t groups = 0;
      for (int64_t i = 0; i < warmup + options_.count_iterations; ++i) {
        v1::CountEventsRequest request;
        make(&request);
        v1::CountEventsResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
        const auto start = Clock::now();
        grpc::Status status = stub_->CountEvents(&context, request, &response);
        const double ms = MsSince(start);
        if (!status.ok()) return Failed("CountEvents " + name, status);
        if (i < warmup) continue;
        samples.Add(ms);
        groups += response.groups_size();
      }
      PrintRow(name, samples,
               static_cast<double>(groups) / static_cast<double>(samples.size()));
      Result("count", name, samples);
    }
    return true;
  }

  bool RunExport() {
    v1::CountEventsRequest count_request;
    SetTimestamp(MonthStartMs(0), count_request.mutable_filter()->mutable_start_time());
    SetTimestamp(MonthStartMs(12), count_request.mutable_filter()->mutable_end_time());
    count_request.add_group_by(v1::DIMENSION_DAY);
    v1::CountEventsResponse days;
    {
      grpc::ClientContext context;
      grpc::Status status = stub_->CountEvents(&context, count_request, &days);
      if (!status.ok()) return Failed("CountEvents by day", status);
    }
    // Whole days from `first_day` until about export_rows events, by the
    // rollups: {end day, events}.
    auto range_from = [&](int64_t first_day) {
      int64_t expected = 0;
      int64_t last_day = first_day;
      for (int day = static_cast<int>(first_day);
           day < days.groups_size() && expected < options_.export_rows; ++day) {
        expected += days.groups(day).count();
        last_day = day + 1;
      }
      return std::make_pair(last_day, expected);
    };
    struct Case {
      const char* name;
      int64_t first_day;
      bool open_start;  // no start_time: the rows from the archive's start
      bool raw;
    };
    const Case cases[] = {
        {"[2025-03-03, +N days)", 61, false, false},
        {"[open, N days from 2025-01-01)", 0, true, false},
        {"[open, N days from 2025-01-01), include_raw", 0, true, true},
    };
    std::cout << "\n## ExportEvents, about " << options_.export_rows << " rows\n\n"
              << "| range | days | include_raw | rows | MB | s | rows/s | MB/s | first chunk ms "
                 "| server CPU s | server VmHWM before → after MiB | VmRSS max during MiB |\n"
              << "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n";
    for (size_t i = 0; i < std::size(cases); ++i) {
      const Case& c = cases[i];
      if (options_.export_cases.find(static_cast<char>('0' + i)) == std::string::npos) continue;
      const auto [last_day, expected] = range_from(c.first_day);
      v1::ExportEventsRequest request;
      if (!c.open_start) {
        SetTimestamp(kYearStartMs + c.first_day * kDayMs,
                     request.mutable_filter()->mutable_start_time());
      }
      SetTimestamp(kYearStartMs + last_day * kDayMs, request.mutable_filter()->mutable_end_time());
      request.set_include_raw(c.raw);
      const int64_t hwm_before = ProcStatusKiB(options_.server_pid, "VmHWM");
      const double cpu_before = ProcCpuSeconds(options_.server_pid);
      std::atomic<bool> done{false};
      std::atomic<int64_t> rss_max{ProcStatusKiB(options_.server_pid, "VmRSS")};
      std::thread sampler([&] {
        while (!done.load()) {
          rss_max = std::max<int64_t>(rss_max.load(), ProcStatusKiB(options_.server_pid, "VmRSS"));
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      });
      grpc::ClientContext context;
      const auto start = Clock::now();
      auto reader = stub_->ExportEvents(&context, request);
      v1::ExportEventsResponse chunk;
      int64_t lines = 0;
      int64_t bytes = 0;
      double first_chunk_ms = -1;
      while (reader->Read(&chunk)) {
        if (first_chunk_ms < 0) first_chunk_ms = MsSince(start);
        const std::string& csv = chunk.csv_chunk();
        bytes += static_cast<int64_t>(csv.size());
        lines += std::count(csv.begin(), csv.end(), '\n');
      }
      grpc::Status status = reader->Finish();
      const double seconds = MsSince(start) / 1000.0;
      done = true;
      sampler.join();
      if (!status.ok()) return Failed("ExportEvents", status);
      const int64_t rows = lines - 1;  // the header
      const double cpu = ProcCpuSeconds(options_.server_pid) - cpu_before;
      const int64_t hwm_after = ProcStatusKiB(options_.server_pid, "VmHWM");
      std::printf("| %s | %" PRId64 " | %s | %" PRId64 " | %.1f | %.2f | %.0f | %.1f | %.1f | "
                  "%.2f | %.1f → %.1f | %.1f |\n",
                  c.name, last_day - c.first_day, c.raw ? "true" : "false", rows,
                  static_cast<double>(bytes) / 1e6, seconds, static_cast<double>(rows) / seconds,
                  static_cast<double>(bytes) / 1e6 / seconds, first_chunk_ms, cpu,
                  static_cast<double>(hwm_before) / 1024.0,
                  static_cast<double>(hwm_after) / 1024.0,
                  static_cast<double>(rss_max.load()) / 1024.0);
      std::string key;
      for (char ch : std::string(c.name)) {
        key.push_back(std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
      }
      std::printf("RESULT export name=%s raw=%d rows=%" PRId64 " seconds=%.3f rows_per_s=%.0f "
                  "mb=%.1f server_cpu_s=%.2f hwm_before_kib=%" PRId64 " hwm_after_kib=%" PRId64
                  " rss_max_kib=%" PRId64 "\n",
                  key.c_str(), c.raw ? 1 : 0, rows, seconds, static_cast<double>(rows) / seconds,
                  static_cast<double>(bytes) / 1e6, cpu, hwm_before, hwm_after, rss_max.load());
      if (rows != expected) {
        std::cout << "WARNING: exported " << rows << " rows, the rollups say " << expected
                  << "\n";
      }
    }
    return true;
  }

  bool RunWatch();

 private:
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  static bool Failed(const std::string& what, const grpc::Status& status) {
    std::cerr << "pdk-query-bench: " << what << ": " << status.error_message() << " (code "
              << status.error_code() << ")\n";
    return false;
  }

  static void PrintRow(const std::string& name, Samples& s, double mean) {
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.1f |\n", name.c_str(), s.Percentile(50),
                s.Percentile(90), s.Percentile(99), s.Max(), mean);
  }

  static void Result(const std::string& phase, const std::string& name, Samples& s,
                     const std::vector<std::pair<const char*, double>>& extra = {}) {
    std::string key;
    for (char c : name) key.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
    std::printf("RESULT %s name=%s n=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f",
                phase.c_str(), key.c_str(), s.size(), s.Percentile(50), s.Percentile(90),
                s.Percentile(99), s.Max());
    for (const auto& [k, v] : extra) std::printf(" %s=%.3f", k, v);
    std::printf("\n");
  }

  // The highest sequence in the archive, by GetEvent probes (sequences are
  // dense after an import: nothing is deleted).
  std::optional<int64_t> MaxSequence();

  const Options options_;
  std::mt19937_64 rng_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EventArchive::Stub> stub_;
};

std::optional<int64_t> Bench::MaxSequence() {
  auto exists = [&](int64_t sequence) -> std::optional<bool> {
    v1::GetEventRequest request;
    request.set_sequence(sequence);
    v1::Event event;
    grpc::ClientContext context;
    grpc::Status status = stub_->GetEvent(&context, request, &event);
    if (status.ok()) return true;
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return false;
    Failed("GetEvent", status);
    return std::nullopt;
  };
  int64_t lo = 0;  // exists (or 0)
  int64_t hi = 1;
  while (true) {
    std::optional<bool> e = exists(hi);
    if (!e) return std::nullopt;
    if (!*e) break;
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    std::optional<bool> e = exists(mid);
    if (!e) return std::nullopt;
    (*e ? lo : hi) = mid;
  }
  return lo;
}

// One keep-alive HTTP/1.1 connection posting signed webhooks.
class HttpPoster {
 public:
  HttpPoster(std::string host, int port, std::string secret)
      : host_(std::move(host)), port_(port), secret_(std::move(secret)) {}
  ~HttpPoster() { Close(); }

  // Posts `body`; returns the HTTP status, or -1 on a transport error.
  int Post(const std::string& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0 && !Open()) return -1;
      std::string request = "POST /webhooks HTTP/1.1\r\nHost: " + host_ +
                            "\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                            "X-PDK-SIGNATURE: " +
                            Sign(body) + "\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body;
      if (!WriteAll(request)) {
        Close();
        continue;
      }
      const int status = ReadResponse();
      if (status < 0) {
        Close();
        continue;
      }
      return status;
    }
    return -1;
  }

 private:
  bool Open() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    if (::inet_pton(AF_INET, host_.c_str(), &address.sin_addr) != 1 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      Close();
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    buffer_.clear();
    return true;
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response; returns its status code, or -1.
  int ReadResponse() {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore()) return -1;
    }
    const std::string head = buffer_.substr(0, header_end);
    int status = -1;
    if (head.size() > 12) status = std::atoi(head.c_str() + 9);
    size_t length = 0;
    std::string lower = head;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (size_t at = lower.find("content-length:"); at != std::string::npos) {
      length = static_cast<size_t>(std::strtoull(lower.c_str() + at + 15, nullptr, 10));
    }
    const bool close = lower.find("connection: close") != std::string::npos;
    while (buffer_.size() < header_end + 4 + length) {
      if (!ReadMore()) return -1;
    }
    buffer_.erase(0, header_end + 4 + length);
    if (close) Close();
    return status;
  }

  bool ReadMore() {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  std::string Sign(const std::string& body) const {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha1(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &size);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < size; ++i) {
      hex.push_back(kHex[digest[i] >> 4]);
      hex.push_back(kHex[digest[i] & 0xf]);
    }
    return hex;
  }

  const std::string host_;
  const int port_;
  const std::string secret_;
  int fd_ = -1;
  std::string buffer_;
};

bool Bench::RunWatch() {
  const size_t colon = options_.http.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "pdk-query-bench: --http wants HOST:PORT\n";
    return false;
  }
  const std::string host = options_.http.substr(0, colon);
  const int port = std::atoi(options_.http.c_str() + colon + 1);
  std::optional<int64_t> max_sequence = MaxSequence();
  if (!max_sequence) return false;

  // The watch: door.request.*, from the current end of the archive.
  v1::WatchEventsRequest watch_request;
  if (!options_.watch_topic.empty()) {
    watch_request.mutable_filter()->add_topics(options_.watch_topic);
  }
  watch_request.set_after_sequence(*max_sequence);
  grpc::ClientContext watch_context;
  auto watch = stub_->WatchEvents(&watch_context, watch_request);
  std::mutex mu;
  std::vector<std::pair<int64_t, double>> watch_latency;  // sent ns, ms
  std::atomic<int64_t> received{0};
  std::thread watcher([&] {
    v1::Event event;
    constexpr std::string_view kKey = "\"benchSentNs\":";
    while (watch->Read(&event)) {
      const int64_t now = NowNs();
      const size_t at = event.raw().find(kKey);
      if (at == std::string::npos) continue;
      const int64_t sent = std::strtoll(event.raw().c_str() + at + kKey.size(), nullptr, 10);
      std::lock_guard lock(mu);
      watch_latency.emplace_back(sent, static_cast<double>(now - sent) / 1e6);
      received.fetch_add(1);
    }
  });

  const uint64_t nonce = std::random_device{}() ^ (static_cast<uint64_t>(NowNs()) << 20);
  std::atomic<uint64_t> next_id{0};
  auto make_body = [&](std::mt19937_64& rng, bool* matches) {
    const uint64_t n = next_id.fetch_add(1);
    const int door = static_cast<int>(rng() % kDoorCount) + 1;
    const int person = static_cast<int>(rng() % kPersonCount) + 1;
    const uint64_t pick = rng() % 10;
    const char* topic = pick < 6    ? "door.request.allowed"
                        : pick < 8  ? "door.input.dps.opened"
                                    : "door.input.dps.closed";
    *matches = options_.watch_topic.empty() || pick < 6;
    const int64_t occurred = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    char body[512];
    const int size = std::snprintf(
        body, sizeof body,
        "{\"id\":\"%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-8%03" PRIx64 "-%012" PRIx64
        "\",\"body\":{\"doorId\":%d,\"personId\":%d,\"requestFactor\":\"CARD_ONLY\"},"
        "\"metadata\":{\"occurred\":%" PRId64 ",\"doorName\":\"Front Lobby %d\","
        "\"benchSentNs\":%" PRId64 "},\"panelId\":\"%d\",\"topic\":\"%s\"}",
        nonce >> 32, (nonce >> 16) & 0xffff, nonce & 0xfff, (nonce >> 52) & 0xfff,
        n & uint64_t{0xffffffffffff}, door, person, occurred, (door - 1) % 50 + 1, NowNs(),
        1070000 + (door - 1) / 50, topic);
    return std::string(body, static_cast<size_t>(size));
  };

  // One warm event through the whole path first: proves the watch is live.
  {
    HttpPoster poster(host, port, options_.secret);
    std::mt19937_64 rng(1);
    bool matches = false;
    std::string body;
    do {
      body = make_body(rng, &matches);
    } while (!matches);
    if (const int status = poster.Post(body); status != 200) {
      std::cerr << "pdk-query-bench: warm-up POST answered " << status << "\n";
      watch_context.TryCancel();
      watcher.join();
      return false;
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (received.load() == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (received.load() == 0) {
      std::cerr << "pdk-query-bench: the watch did not deliver the warm-up event\n";
      watch_context.TryCancel();
      watcher.join();
      return false;
    }
  }

  const int connections = static_cast<int>(options_.watch_connections);
  const double interval_s = static_cast<double>(connections) / options_.watch_rate;
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto stop = start + std::chrono::seconds(options_.watch_seconds);
  const int64_t measure_from_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          (start + std::chrono::seconds(options_.watch_warmup)).time_since_epoch())
          .count();
  std::atomic<int64_t> posted{0};
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> matched_ok{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> late{0};
  std::vector<Samples> ack(static_cast<size_t>(connections));
  const double server_cpu_before = ProcCpuSeconds(options_.server_pid);
  std::vector<std::thread> posters;
  for (int c = 0; c < connections; ++c) {
    posters.emplace_back([&, c] {
      HttpPoster poster(host, port, options_.secret);
      std::mt19937_64 rng(static_cast<uint64_t>(options_.seed) * 1000 + static_cast<uint64_t>(c));
      for (int64_t k = 0;; ++k) {
        const auto due =
            start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                        interval_s * (static_cast<double>(k) +
                                      static_cast<double>(c) / connections)));
        if (due >= stop) break;
        if (Clock::now() < due) {
          std::this_thread::sleep_until(due);
        } else if (Clock::now() - due > std::chrono::milliseconds(10)) {
          late.fetch_add(1);
        }
        bool matches = false;
        const auto sent = Clock::now();
        const std::string body = make_body(rng, &matches);
        const int status = poster.Post(body);
        const double ms = MsSince(sent);
        posted.fetch_add(1);
        if (status != 200) {
          failed.fetch_add(1);
          continue;
        }
        ok.fetch_add(1);
        if (matches) matched_ok.fetch_add(1);
        if (std::chrono::duration_cast<std::chrono::nanoseconds>(sent.time_since_epoch())
                .count() >= measure_from_ns) {
          ack[static_cast<size_t>(c)].Add(ms);
        }
      }
    });
  }
  for (std::thread& t : posters) t.join();
  const double elapsed_s = MsSince(start) / 1000.0;
  const double server_cpu = ProcCpuSeconds(options_.server_pid) - server_cpu_before;
  // Let the watch catch up with everything acknowledged.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (received.load() < matched_ok.load() + 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  watch_context.TryCancel();
  watcher.join();

  Samples acks;
  for (const Samples& s : ack) acks.Merge(s);
  Samples watch_samples;
  {
    std::lock_guard lock(mu);
    for (const auto& [sent, ms] : watch_latency) {
      if (sent >= measure_from_ns) watch_samples.Add(ms);
    }
  }
  std::cout << "\n## WatchEvents under ingest\n\n"
            << "Posted " << posted.load() << " signed webhooks over " << connections
            << " keep-alive connections in " << elapsed_s << " s ("
            << static_cast<double>(posted.load()) / elapsed_s << "/s, target "
            << options_.watch_rate << "/s; " << late.load() << " sent >10 ms behind schedule), "
            << ok.load() << " answered 200, " << failed.load() << " not. Watch "
            << "(topic filter \"" << options_.watch_topic << "\") received " << received.load() - 1 << " of " << matched_ok.load()
            << " matching acknowledged events. Server CPU " << server_cpu << " s ("
            << 100.0 * server_cpu / elapsed_s << "% of one core). First "
            << options_.watch_warmup << " s not measured.\n\n"
            << "| latency | n | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n";
  std::printf("| POST → 200 (durable) | %zu | %.2f | %.2f | %.2f | %.2f |\n", acks.size(),
              acks.Percentile(50), acks.Percentile(90), acks.Percentile(99), acks.Max());
  std::printf("| POST → watch receives | %zu | %.2f | %.2f | %.2f | %.2f |\n",
              watch_samples.size(), watch_samples.Percentile(50), watch_samples.Percentile(90),
              watch_samples.Percentile(99), watch_samples.Max());
  Result("watch", "post_ack", acks,
         {{"rate", static_cast<double>(posted.load()) / elapsed_s},
          {"failed", static_cast<double>(failed.load())}});
  Result("watch", "post_to_watch", watch_samples,
         {{"received", static_cast<double>(received.load() - 1)},
          {"expected", static_cast<double>(matched_ok.load())}});
  return failed.load() == 0 && received.load() - 1 == matched_ok.load();
}

}  // namespace
}  // namespace pdkarchive::bench

int main(int argc, char** argv) {
  pdkarchive::bench::Options o;
  o.server = "127.0.0.1:50051";
  pdkarchive::bench::Flags flags(
      "pdk-query-bench --server HOST:PORT [--iterations N] [--server-pid PID] "
      "[--http HOST:PORT --secret S] [--only list,deep,count,export,watch]");
  flags.String("server", &o.server, "the pdk-archive gRPC address");
  flags.Int("iterations", &o.iterations, "measured ListEvents calls per filter shape");
  flags.Int("warmup", &o.warmup, "unmeasured calls per shape first");
  flags.Int("count-iterations", &o.count_iterations, "measured CountEvents calls per question");
  flags.Int("seed", &o.seed, "picks the varying doors, people, topics and days");
  flags.Int("server-pid", &o.server_pid, "the server's pid, for VmHWM/VmRSS and CPU");
  flags.String("only", &o.only, "comma-separated phases: list,deep,count,export,watch");
  flags.Int("deep-pages", &o.deep_pages, "the page number the deep-paging test reaches");
  flags.Int("export-rows", &o.export_rows, "about this many rows are exported");
  flags.String("export-cases", &o.export_cases,
               "which exports to run: 0 = [2025-03-03, +N days), 1 = [open, ...), "
               "2 = 1 with include_raw");
  flags.String("http", &o.http, "the server's webhook HOST:PORT (numeric IPv4), for watch");
  flags.String("secret", &o.secret, "the server's --secret, for watch");
  flags.Double("watch-rate", &o.watch_rate, "webhooks per second posted during watch");
  flags.Int("watch-seconds", &o.watch_seconds, "how long watch posts");
  flags.Int("watch-warmup", &o.watch_warmup, "seconds of watch not measured at the start");
  flags.Int("watch-connections", &o.watch_connections, "HTTP connections posting");
  flags.String("watch-topic", &o.watch_topic,
               "the watch's topic filter (door.request.* or \"\" for none); posted events "
               "are 60% door.request.allowed, 40% door.input.dps.*");
  flags.Parse(argc, argv);
  if (o.iterations < 1 || o.count_iterations < 1 || o.watch_connections < 1 ||
      o.watch_rate <= 0) {
    std::cerr << "pdk-query-bench: --iterations, --count-iterations, --watch-connections and "
                 "--watch-rate must be positive\n";
    return 2;
  }
  pdkarchive::bench::Bench bench(o);
  if (!bench.Connect()) return 1;
  bool ok = true;
  if (ok && bench.Wants("list")) ok = bench.RunList();
  if (ok && bench.Wants("deep")) ok = bench.RunDeep();
  if (ok && bench.Wants("count")) ok = bench.RunCount();
  if (ok && bench.Wants("export")) ok = bench.RunExport();
  if (ok && bench.Wants("watch")) ok = bench.RunWatch();
  std::cout << std::flush;
  return ok ? 0 : 1;
}
