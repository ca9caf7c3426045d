// pdk-make-events: writes a year of realistic PDK webhook payloads as JSON
// lines, for `pdk-archive import` and the archive-size and query benchmarks.
//
//   pdk-make-events --count 10000000 --out /tmp/events.jsonl [--seed 1]
//
// What a busy multi-site customer sends over 2025: ten panels with fifty
// doors each (door ids 1..500, unique across panels), two thousand people,
// mostly badge reads (door.request.allowed) and the door position changes
// they cause, some denials and unknown cards, forced and propped alarms, a
// few person and entity changes, and endpoint (reader/power) status. Busy
// doors and people are busier than others (a skewed pick), weekdays busier
// than weekends and office hours than nights. Lines come in occurred order,
// as a backfill export would. Every event id is a distinct v4-shaped UUID.
// Equal --seed and --count give byte-identical files.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "timeutil/time_util.h"

namespace pdkarchive::bench {
namespace {

constexpr int kPanelCount = 10;
constexpr int kDoorsPerPanel = 50;
constexpr int kPersonCount = 2000;
constexpr int kDays = 365;
using timeutil::kDayMs;
using timeutil::kHourMs;
constexpr int64_t kYear2025StartMs = timeutil::DaysFromCivil(2025, 1, 1) * kDayMs;

enum class Shape {
  kRequest,        // body {doorId, personId, requestFactor}
  kDenied,         // the same plus explicit/disabled
  kDoor,           // body {doorId}
  kEntity,         // body {occurred, userId, details {personId, entityType}, action}
  kPersonNotice,   // body {enabled, partition, metadata {}, id: personId}
  kEndpointAlarm,  // body {ioLinkId, address}
  kEndpointPower,  // body {voltage, current, inputPowerOn, ioLinkId, address}
};

struct TopicShare {
  const char* topic;
  int weight;  // per 10,000 events
  Shape shape;
  const char* action;  // entity.* only
};

// Sums to 10,000.
constexpr TopicShare kTopics[] = {
    {"door.request.allowed", 6000, Shape::kRequest, nullptr},
    {"door.request.denied", 400, Shape::kDenied, nullptr},
    {"door.request.unknown", 60, Shape::kDoor, nullptr},
    {"door.input.dps.opened", 1500, Shape::kDoor, nullptr},
    {"door.input.dps.closed", 1500, Shape::kDoor, nullptr},
    {"door.input.rex.on", 200, Shape::kDoor, nullptr},
    {"door.alarm.forced", 80, Shape::kDoor, nullptr},
    {"door.alarm.forced.cleared", 80, Shape::kDoor, nullptr},
    {"door.alarm.propped.on", 40, Shape::kDoor, nullptr},
    {"door.alarm.propped.off", 40, Shape::kDoor, nullptr},
    {"entity.added", 5, Shape::kEntity, "person.added"},
    {"entity.modified", 15, Shape::kEntity, "person.modified.group.added"},
    {"entity.removed", 3, Shape::kEntity, "person.removed"},
    {"notification.person.created", 5, Shape::kPersonNotice, nullptr},
    {"notification.person.updated", 12, Shape::kPersonNotice, nullptr},
    {"notification.person.deleted", 3, Shape::kPersonNotice, nullptr},
    {"endpoint.alarm.comloss.on", 10, Shape::kEndpointAlarm, nullptr},
    {"endpoint.alarm.comloss.off", 10, Shape::kEndpointAlarm, nullptr},
    {"endpoint.input.pi.status", 37, Shape::kEndpointPower, nullptr},
};

constexpr int TotalWeight() {
  int total = 0;
  for (const TopicShare& t : kTopics) total += t.weight;
  return total;
}
static_assert(TotalWeight() == 10000);

// Relative traffic per UTC hour of a weekday: night trickle, morning
// arrivals, lunch, evening departures.
constexpr double kHourWeights[24] = {0.2, 0.15, 0.1, 0.1, 0.15, 0.4, 1.2, 3.5,
                                     6.0, 4.5,  3.0, 3.0, 4.0,  4.0, 3.0, 3.0,
                                     3.5, 5.0,  3.0, 1.2, 0.8,  0.6, 0.4, 0.3};
constexpr double kWeekendShare = 0.25;  // a weekend day vs a weekday

constexpr const char* kPlaces[] = {"Front Lobby", "Loading Dock", "Server Room", "Stairwell",
                                   "Parking Gate", "Side Entry", "Lab", "Mail Room",
                                   "Roof Access", "Warehouse"};
constexpr const char* kFactors[] = {"CARD_ONLY", "CARD_OR_PIN", "CARD_AND_PIN", "MOBILE"};
constexpr const char* kAdmins[] = {"5f92b1682633360001cd3a4f", "5f92b1682633360001cd3a50",
                                   "61a0c2d41b2e7a0001f3c911"};

// splitmix64 finalizer: a bijection on 64 bits.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Picks from `n` items, item i weighted 1/(i+1)^0.6 after a fixed shuffle,
// so a few doors or people are much busier than the rest.
class SkewedPick {
 public:
  SkewedPick(int n, uint64_t seed) : ids_(static_cast<size_t>(n)) {
    double sum = 0;
    cumulative_.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      sum += 1.0 / std::pow(i + 1.0, 0.6);
      cumulative_.push_back(sum);
      ids_[static_cast<size_t>(i)] = i + 1;
    }
    std::mt19937_64 shuffle_rng(seed);
    std::shuffle(ids_.begin(), ids_.end(), shuffle_rng);
  }

  // An id in [1, n].
  int Next(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, cumulative_.back())(rng);
    const size_t i = static_cast<size_t>(
        std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin());
    return ids_[std::min(i, ids_.size() - 1)];
  }

 private:
  std::vector<double> cumulative_;
  std::vector<int> ids_;
};

class Writer {
 public:
  Writer(uint64_t seed, FILE* out)
      : rng_(seed),
        id_key_(Mix(seed ^ 0x5eed)),
        doors_(kPanelCount * kDoorsPerPanel, seed + 1),
        people_(kPersonCount, seed + 2),
        out_(out) {
    buffer_.reserve(kFlushBytes + 4096);
  }

  // Writes `count` events spread over 2025 in occurred order.
  bool WriteYear(uint64_t count) {
    // Events per day in proportion to the day's weight; the cumulative
    // rounding makes the days add up to exactly `count`.
    std::array<double, kDays> day_weight{};
    double total = 0;
    for (int d = 0; d < kDays; ++d) {
      const int weekday = (d + 2) % 7;  // 0 = Monday; 2025-01-01 was a Wednesday
      day_weight[static_cast<size_t>(d)] = weekday >= 5 ? kWeekendShare : 1.0;
      total += day_weight[static_cast<size_t>(d)];
    }
    std::array<double, 25> hour_cumulative{};
    for (int h = 0; h < 24; ++h) {
      hour_cumulative[static_cast<size_t>(h) + 1] =
          hour_cumulative[static_cast<size_t>(h)] + kHourWeights[h];
    }
    double running = 0;
    uint64_t emitted = 0;
    std::vector<int64_t> times;
    for (int d = 0; d < kDays; ++d) {
      running += day_weight[static_cast<size_t>(d)];
      const uint64_t through =
          d == kDays - 1 ? count
                         : static_cast<uint64_t>(std::llround(running / total *
                                                              static_cast<double>(count)));
      const uint64_t today = through > emitted ? through - emitted : 0;
      times.clear();
      const int64_t day_start = kYear2025StartMs + int64_t{d} * kDayMs;
      std::uniform_real_distribution<double> hour_pick(0, hour_cumulative[24]);
      for (uint64_t i = 0; i < today; ++i) {
        const double u = hour_pick(rng_);
        const auto hour = static_cast<int64_t>(
            std::upper_bound(hour_cumulative.begin() + 1, hour_cumulative.end(), u) -
            (hour_cumulative.begin() + 1));
        const auto in_hour = static_cast<int64_t>(rng_() % static_cast<uint64_t>(kHourMs));
        times.push_back(day_start + std::min<int64_t>(hour, 23) * kHourMs + in_hour);
      }
      std::sort(times.begin(), times.end());
      for (int64_t t : times) {
        AppendEvent(t);
        if (buffer_.size() >= kFlushBytes && !Flush()) return false;
      }
      emitted += today;
    }
    return Flush();
  }

 private:
  static constexpr size_t kFlushBytes = 1 << 20;

  void AppendEvent(int64_t occurred) {
    const uint64_t n = counter_++;
    // 64 bits of the id are a bijection of the counter, so ids never repeat;
    // the rest is random. Laid out as a version-4, variant-1 UUID.
    const uint64_t unique = Mix(n ^ id_key_);
    const uint64_t random = rng_();
    char id[40];
    std::snprintf(id, sizeof id, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64
                  "-%012" PRIx64,
                  unique >> 32, (unique >> 16) & 0xffff, unique & 0xfff,
                  0x8000 | (random & 0x3fff), (random >> 16) & uint64_t{0xffffffffffff});

    int pick = static_cast<int>(rng_() % static_cast<uint64_t>(TotalWeight()));
    const TopicShare* topic = &kTopics[0];
    for (const TopicShare& t : kTopics) {
      if (pick < t.weight) {
        topic = &t;
        break;
      }
      pick -= t.weight;
    }
    const int door = doors_.Next(rng_);  // 1..500
    const int panel = (door - 1) / kDoorsPerPanel;
    const int door_in_panel = (door - 1) % kDoorsPerPanel + 1;
    const int person = people_.Next(rng_);
    const char* factor = kFactors[rng_() % std::size(kFactors)];
    const uint64_t bits = rng_();

    char body[256];
    char metadata[128];
    std::snprintf(metadata, sizeof metadata, "{\"occurred\":%" PRId64 ",\"doorName\":\"%s %d\"}",
                  occurred, kPlaces[panel], door_in_panel);
    switch (topic->shape) {
      case Shape::kRequest:
        std::snprintf(body, sizeof body,
                      "{\"doorId\":%d,\"personId\":%d,\"requestFactor\":\"%s\"}", door, person,
                      factor);
        break;
      case Shape::kDenied:
        std::snprintf(body, sizeof body,
                      "{\"doorId\":%d,\"personId\":%d,\"requestFactor\":\"%s\","
                      "\"explicit\":%s,\"disabled\":%s}",
                      door, person, factor, (bits & 1) ? "true" : "false",
                      (bits & 6) == 0 ? "true" : "false");
        break;
      case Shape::kDoor:
        std::snprintf(body, sizeof body, "{\"doorId\":%d}", door);
        break;
      case Shape::kEntity:
        // PDK stamps body.occurred a few tens of ms before metadata.occurred.
        std::snprintf(body, sizeof body,
                      "{\"occurred\":%" PRId64
                      ",\"userId\":\"%s\",\"details\":{\"personId\":%d,\"entityType\":"
                      "\"PERSON\"},\"action\":\"%s\"}",
                      occurred - 60, kAdmins[bits % std::size(kAdmins)], person,
                      topic->action);
        std::snprintf(metadata, sizeof metadata, "{\"occurred\":%" PRId64 "}", occurred);
        break;
      case Shape::kPersonNotice:
        std::snprintf(body, sizeof body,
                      "{\"enabled\":%s,\"partition\":0,\"metadata\":{},\"id\":%d}",
                      (bits & 1) ? "true" : "false", person);
        std::snprintf(metadata, sizeof metadata, "{\"occurred\":%" PRId64 "}", occurred);
        break;
      case Shape::kEndpointAlarm:
        std::snprintf(body, sizeof body, "{\"ioLinkId\":%d,\"address\":\"\"}",
                      static_cast<int>(bits % 4) + 1);
        std::snprintf(metadata, sizeof metadata,
                      "{\"occurred\":%" PRId64 ",\"ioLinkName\":\"%s OSDP\"}", occurred,
                      kPlaces[panel]);
        break;
      case Shape::kEndpointPower:
        std::snprintf(body, sizeof body,
                      "{\"voltage\":%d,\"current\":%d,\"inputPowerOn\":true,\"ioLinkId\":%d,"
                      "\"address\":\"\"}",
                      10800 + static_cast<int>(bits % 400), 140 + static_cast<int>(bits % 30),
                      static_cast<int>(bits % 4) + 1);
        std::snprintf(metadata, sizeof metadata,
                      "{\"occurred\":%" PRId64 ",\"ioLinkName\":\"%s OSDP\"}", occurred,
                      kPlaces[panel]);
        break;
    }
    char line[640];
    const int size = std::snprintf(
        line, sizeof line,
        "{\"id\":\"%s\",\"body\":%s,\"metadata\":%s,\"panelId\":\"%d\",\"topic\":\"%s\"}\n", id,
        body, metadata, 1070000 + panel, topic->topic);
    buffer_.append(line, static_cast<size_t>(size));
  }

  bool Flush() {
    if (buffer_.empty()) return true;
    const bool ok = std::fwrite(buffer_.data(), 1, buffer_.size(), out_) == buffer_.size();
    buffer_.clear();
    return ok;
  }

  std::mt19937_64 rng_;
  const uint64_t id_key_;
  const SkewedPick doors_;
  const SkewedPick people_;
  FILE* const out_;
  std::string buffer_;
  uint64_t counter_ = 0;
};

}  // namespace
}  // namespace pdkarchive::bench

int main(int argc, char** argv) {
  int64_t count = 1000000;
  int64_t seed = 1;
  std::string out_path;
  pdkarchive::bench::Flags flags("pdk-make-events --count N --out FILE [--seed S]");
  flags.Int("count", &count, "events to write");
  flags.Int("seed", &seed, "equal seeds give equal files");
  flags.String("out", &out_path, "the JSON-lines file to write (- for stdout)");
  flags.Parse(argc, argv);
  if (count <= 0 || out_path.empty()) {
    std::cerr << "pdk-make-events: want --count > 0 and --out FILE\n";
    return 2;
  }
  FILE* out = out_path == "-" ? stdout : std::fopen(out_path.c_str(), "wb");
  if (out == nullptr) {
    std::cerr << "pdk-make-events: cannot write " << out_path << ": " << std::strerror(errno)
              << "\n";
    return 1;
  }
  pdkarchive::bench::Writer writer(static_cast<uint64_t>(seed), out);
  const bool ok = writer.WriteYear(static_cast<uint64_t>(count));
  if (!ok || (out != stdout && std::fclose(out) != 0) || (out == stdout && std::fflush(out) != 0)) {
    std::cerr << "pdk-make-events: writing " << out_path << " failed\n";
    return 1;
  }
  return 0;
}
