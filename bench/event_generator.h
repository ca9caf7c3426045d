// Synthetic PDK door events for the benchmarks. Every tool in bench/ draws
// its payloads from here, so the load generator, the store ceiling and the
// null server all see the same shape of traffic: the door topics a busy site
// sends (request allowed/denied, door position, forced-door alarms), about
// ten panels, fifty doors and two thousand people, occurred times spread
// over 2025 (or live), and an event id that never repeats.
#ifndef PDKARCHIVE_BENCH_EVENT_GENERATOR_H_
#define PDKARCHIVE_BENCH_EVENT_GENERATOR_H_

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace pdkarchive::bench {

inline constexpr int kPanels = 10;
inline constexpr int kDoors = 50;
inline constexpr int kPeople = 2000;

struct GeneratorOptions {
  // Picks topics, doors, people and times; equal seeds give equal content.
  uint64_t seed = 1;
  // Mixed into every event id. Give each run its own nonce and ids stay
  // unique across runs against the same archive, whatever the seed.
  uint64_t id_nonce = 0;
  // false: occurred uniformly spread over 2025, so every index ending in
  // occur_time is written at random places. true: occurred is the wall clock
  // at generation minus up to two seconds, as live traffic arrives, so those
  // indexes grow at their ends.
  bool live_times = false;
};

// Not thread-safe; use one per thread.
class EventGenerator {
 public:
  explicit EventGenerator(const GeneratorOptions& options);

  // The next webhook body: compact JSON as PDK sends it, with a UUID-shaped
  // `id` unique among all bodies this generator returns.
  std::string Next();

 private:
  std::mt19937_64 rng_;
  uint64_t id_nonce_;
  bool live_times_;
  uint64_t counter_ = 0;
};

// A fresh nonce from the OS entropy source, for GeneratorOptions::id_nonce.
uint64_t RandomNonce();

// Lower-case hex HMAC-SHA1 of `body` under `secret`: the X-PDK-SIGNATURE
// value. Computed here with OpenSSL rather than borrowed from ingest/, so a
// bug in the server's signature code cannot hide by agreeing with itself.
std::string SignatureHex(std::string_view secret, std::string_view body);

}  // namespace pdkarchive::bench

#endif  // PDKARCHIVE_BENCH_EVENT_GENERATOR_H_
