// QueryAccess: who may query the archive, and the record of who did. It
// keeps the archive's live bearer tokens in memory, reloading them from the
// AccessStore every `reload_interval` (so a token created or revoked on any
// node counts everywhere within that time), answers each call from memory,
// and writes token use and the access log in the background, in batches,
// never on a call's path. Free of gRPC types: query/access_interceptor.h
// adapts it to gRPC.
#ifndef PDKARCHIVE_QUERY_QUERY_ACCESS_H_
#define PDKARCHIVE_QUERY_QUERY_ACCESS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "store/access_store.h"

namespace pdkarchive::query {

struct QueryAccessOptions {
  // How often live tokens are read again from the archive.
  std::chrono::milliseconds reload_interval{1000};
  // How often queued access records and token uses are written.
  std::chrono::milliseconds flush_interval{250};
  // Access records waiting to be written past this are dropped (and the
  // count reported on stderr) rather than letting memory grow without end
  // while the archive cannot be written.
  size_t max_queued_records = 100000;
};

// The answer every refused call gets, whatever was wrong with its token.
inline constexpr char kUnauthenticatedMessage[] =
    "this archive requires a bearer token: metadata \"authorization: Bearer "
    "TOKEN\" "
    "with a token from `pdk-archive tokens create`";

inline constexpr std::chrono::seconds kStaleTokensLimit{5};

// Thread-safe. `store` must outlive it. Stop (or destruction) writes what is
// queued and joins the background thread.
class QueryAccess {
 public:
  // Loads the live tokens once (the store's error when it cannot) and
  // starts the background thread.
  static absl::StatusOr<std::unique_ptr<QueryAccess>> Start(store::AccessStore& store,
                                                            const QueryAccessOptions& options = {});

  ~QueryAccess();
  QueryAccess(const QueryAccess&) = delete;
  QueryAccess& operator=(const QueryAccess&) = delete;

  // Whether the archive held a token at the last reload, live or revoked:
  // then every call needs a live one. Revoking the last token therefore
  // shuts every client out instead of opening the archive to anyone.
  bool tokens_required() const;

  // Decides a call from its `authorization` metadata value (nullptr when
  // absent): the name of the live token it carries ("" when no token is
  // required), or Unauthenticated with kUnauthenticatedMessage for a missing,
  // malformed, unknown or revoked token. Compares hashes in constant time.
  // Unavailable when tokens are required but could not be reloaded for
  // kStaleTokensLimit: a revocation must not be missed while the archive is
  // unreachable.
  absl::StatusOr<std::string> Authenticate(const std::string_view* authorization);

  // Queues `record` for the access log.
  void Log(store::AccessRecord record);

  // Writes what is queued and stops the background thread. Idempotent.
  void Stop();

 private:
  struct Tokens {
    std::vector<store::LiveToken> live;
    bool required = false;
  };
  static absl::StatusOr<Tokens> LoadTokens(store::AccessStore& store);

  QueryAccess(store::AccessStore& store, const QueryAccessOptions& options, Tokens tokens);
  void Run();
  // Writes the queued access records, and the token uses when `with_uses`.
  void Flush(bool with_uses);
  void Reload();

  store::AccessStore& store_;
  const QueryAccessOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  Tokens tokens_;
  std::chrono::steady_clock::time_point loaded_at_;
  std::map<std::string, int64_t> uses_;  // token name -> last use, not yet written
  std::vector<store::AccessRecord> queue_;
  int64_t dropped_ = 0;
  bool stopping_ = false;
  // When a failed access-log write was last reported; background thread only.
  std::chrono::steady_clock::time_point last_complaint_{};
  std::thread thread_;
  std::once_flag joined_;
};

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_QUERY_ACCESS_H_
