#include "bench/event_generator.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <iterator>

#include "timeutil/time_util.h"

namespace pdkarchive::bench {
namespace {

enum class Shape {
  kPersonRequest,  // body {doorId, personId, requestFactor}
  kDenied,         // the same plus explicit/disabled flags
  kDoorOnly,       // body {doorId}: door position inputs and alarms
};

struct TopicShare {
  const char* topic;
  int weight;  // out of the sum of all weights
  Shape shape;
};

// Roughly what a busy office sends: mostly badge reads, door position
// changes for each opening, and a few alarms and unknown credentials.
constexpr TopicShare kTopics[] = {
    {"door.request.allowed", 52, Shape::kPersonRequest},
    {"door.request.denied", 8, Shape::kDenied},
    {"door.request.unknown", 2, Shape::kDoorOnly},
    {"door.input.dps.opened", 16, Shape::kDoorOnly},
    {"door.input.dps.closed", 16, Shape::kDoorOnly},
    {"door.alarm.forced", 2, Shape::kDoorOnly},
    {"door.alarm.forced.cleared", 2, Shape::kDoorOnly},
    {"door.alarm.propped.on", 1, Shape::kDoorOnly},
    {"door.alarm.propped.off", 1, Shape::kDoorOnly},
};

constexpr int TotalWeight() {
  int total = 0;
  for (const TopicShare& t : kTopics) total += t.weight;
  return total;
}

constexpr const char* kDoorPlaces[] = {
    "Front Lobby", "Loading Dock", "Server Room", "Stairwell",   "Parking Gate",
    "Side Entry",  "Lab",          "Mail Room",   "Roof Access", "Warehouse"};
static_assert(std::size(kDoorPlaces) == kPanels);

constexpr const char* kRequestFactors[] = {"CARD_ONLY", "CARD_OR_PIN",
                                           "CARD_AND_PIN", "MOBILE"};

constexpr int64_t kYearStartMs = timeutil::DaysFromCivil(2025, 1, 1) * timeutil::kDayMs;
constexpr int64_t kYearMs = 365 * timeutil::kDayMs;

// splitmix64: a bijective scrambler, so distinct inputs give distinct outputs.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

EventGenerator::EventGenerator(const GeneratorOptions& options)
    : rng_(options.seed),
      id_nonce_(options.id_nonce),
      live_times_(options.live_times) {}

std::string EventGenerator::Next() {
  const uint64_t n = counter_++;
  // Version-4 UUID layout. The last group carries the counter itself (48
  // bits), which makes ids unique within a run; the scrambled high half
  // makes them look random and differ between runs.
  const uint64_t hi = Mix(id_nonce_ ^ Mix(n));
  const uint64_t lo = (n ^ Mix(id_nonce_)) & 0xffffffffffffULL;
  char id[40];
  std::snprintf(id, sizeof(id),
                "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64
                "-%012" PRIx64,
                hi >> 32, (hi >> 16) & 0xffff, hi & 0xfff,
                0x8000 | ((id_nonce_ >> 7) & 0x3fff), lo);

  int pick = static_cast<int>(rng_() % static_cast<uint64_t>(TotalWeight()));
  const TopicShare* topic = &kTopics[0];
  for (const TopicShare& t : kTopics) {
    if (pick < t.weight) {
      topic = &t;
      break;
    }
    pick -= t.weight;
  }
  const int door = static_cast<int>(rng_() % kDoors) + 1;
  const int panel_index = (door - 1) % kPanels;  // five doors per panel
  const int person = static_cast<int>(rng_() % kPeople) + 1;
  const int64_t spread =
      static_cast<int64_t>(rng_() % static_cast<uint64_t>(kYearMs));
  const int64_t occurred =
      live_times_ ? std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                            .count() -
                        spread % 2000
                  : kYearStartMs + spread;
  const char* factor = kRequestFactors[rng_() % std::size(kRequestFactors)];
  const bool explicit_deny = (rng_() & 1) != 0;

  char body_json[160];
  switch (topic->shape) {
    case Shape::kPersonRequest:
      std::snprintf(body_json, sizeof(body_json),
                    "{\"doorId\":%d,\"personId\":%d,\"requestFactor\":\"%s\"}",
                    door, person, factor);
      break;
    case Shape::kDenied:
      std::snprintf(body_json, sizeof(body_json),
                    "{\"doorId\":%d,\"personId\":%d,\"requestFactor\":\"%s\","
                    "\"explicit\":%s,\"disabled\":false}",
                    door, person, factor, explicit_deny ? "true" : "false");
      break;
    case Shape::kDoorOnly:
      std::snprintf(body_json, sizeof(body_json), "{\"doorId\":%d}", door);
      break;
  }
  char out[512];
  const int size = std::snprintf(
      out, sizeof(out),
      "{\"id\":\"%s\",\"body\":%s,\"metadata\":{\"occurred\":%" PRId64
      ",\"doorName\":\"%s %d\"},\"panelId\":\"%d\",\"topic\":\"%s\"}",
      id, body_json, occurred, kDoorPlaces[panel_index],
      (door - 1) / kPanels + 1, 1070000 + panel_index, topic->topic);
  return std::string(out, static_cast<size_t>(size));
}

uint64_t RandomNonce() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

std::string SignatureHex(std::string_view secret, std::string_view body) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  static constexpr unsigned char kEmpty = 0;
  const void* key =
      secret.empty() ? static_cast<const void*>(&kEmpty) : secret.data();
  const auto* data = body.empty()
                         ? &kEmpty
                         : reinterpret_cast<const unsigned char*>(body.data());
  if (HMAC(EVP_sha1(), key, static_cast<int>(secret.size()), data, body.size(),
           digest.data(), &size) == nullptr) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

}  // namespace pdkarchive::bench
