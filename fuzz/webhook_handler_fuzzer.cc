// Fuzzes ingest::WebhookHandler::Handle, the whole HTTP contract without
// Pistache: method, path, headers, body and signature all come from the
// input, in front of the real group-commit writer and a fake store.
//
// Input: one flags byte, then header lines ("Name: value\n") up to an empty
// line, then the body. Flags: bits 0-1 method (POST GET PUT HEAD), bits 2-3
// path (/webhooks /healthz /metrics /other), bits 4-5 configuration (signed,
// signed + Basic auth, unsigned, signed), bit 6 "sign the body correctly",
// bit 7 "send the right Basic credentials" (asked for by deliveries and by
// /metrics). The flags decide the signature
// and credentials, so the expected status is known exactly: the handler
// must answer once, with that status, a JSON body (an "error" for refusals),
// store a row exactly when it says 200 for a new event, and answer a
// redelivery of it as a duplicate with the same sequence.
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "ingest/metrics.h"
#include "ingest/normalizer.h"
#include "ingest/signature.h"
#include "ingest/webhook_handler.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"
#include "store/sqlite/sqlite_store.h"

namespace {

using pdkarchive::ingest::HttpRequest;
using pdkarchive::ingest::HttpResponse;
using pdkarchive::ingest::WebhookHandler;
using pdkarchive::ingest::WebhookOptions;
namespace store = pdkarchive::store;

constexpr char kSecret[] = "fuzz-secret";
constexpr char kBasic[] = "pdk:s3cret";
constexpr char kRightAuthorization[] = "Basic cGRrOnMzY3JldA==";  // pdk:s3cret
constexpr char kWrongAuthorization[] = "Basic d3Jvbmc6d3Jvbmc=";  // wrong:wrong
constexpr size_t kMaxBody = 4096;

// The store's append semantics in memory: one sequence per dedupe key.
class FakeStore final : public store::BatchSink {
 public:
  absl::StatusOr<std::vector<store::AppendResult>> AppendBatch(
      std::span<const store::EventRow> rows) override {
    std::lock_guard lock(mu_);
    std::vector<store::AppendResult> results;
    for (const store::EventRow& row : rows) {
      auto [it, inserted] = by_key_.emplace(row.dedupe_key, next_);
      if (inserted) ++next_;
      results.push_back({it->second, !inserted});
    }
    return results;
  }
  size_t rows() {
    std::lock_guard lock(mu_);
    return by_key_.size();
  }
  // Forgets everything, so each input starts from an empty archive.
  void Clear() {
    std::lock_guard lock(mu_);
    by_key_.clear();
  }

 private:
  std::mutex mu_;
  std::map<std::string, int64_t> by_key_;
  int64_t next_ = 1;
};

// One long-lived stack for all inputs (a writer thread per input would be
// slow); never destroyed, so no thread is joined at exit.
struct Stack {
  FakeStore sink;
  store::LocalCommitFeed feed;
  store::GroupCommitWriter writer{sink, feed};
  pdkarchive::ingest::Metrics metrics;
  std::unique_ptr<WebhookHandler> handlers[3];

  Stack() {
    for (int i = 0; i < 3; ++i) {
      WebhookOptions options;
      if (i != 2) options.secret = kSecret;
      if (i == 1) options.basic_auth = kBasic;
      options.max_body_bytes = kMaxBody;
      options.now_ms = [] { return int64_t{1646922708300}; };
      handlers[i] = std::make_unique<WebhookHandler>(options, writer, metrics);
    }
  }
};

Stack& GetStack() {
  static Stack* stack = new Stack;
  return *stack;
}

HttpResponse Call(WebhookHandler& handler, HttpRequest request) {
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  auto calls = std::make_shared<std::atomic<int>>(0);
  std::future<HttpResponse> future = promise->get_future();
  handler.Handle(std::move(request), [promise, calls](HttpResponse r) {
    FUZZ_CHECK(calls->fetch_add(1) == 0, "respond called twice");
    promise->set_value(std::move(r));
  });
  FUZZ_CHECK(future.wait_for(std::chrono::seconds(30)) == std::future_status::ready,
             "respond never called");
  return future.get();
}

void CheckJsonBody(const HttpResponse& r) {
  if (r.content_type != "application/json") return;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str(), r.body.size());
  FUZZ_CHECK(!doc.HasParseError() && doc.IsObject(), r.body);
  if (r.status != 200) {
    FUZZ_CHECK(doc.HasMember("error") && doc["error"].IsString(), r.body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pdkarchive::fuzz::FuzzInput in(data, size);
  const uint8_t flags = in.Byte();
  std::string rest = in.Rest();

  static const char* const kMethods[] = {"POST", "GET", "PUT", "HEAD"};
  static const char* const kPaths[] = {"/webhooks", "/healthz", "/metrics", "/other"};
  static const int kConfigs[] = {0, 1, 2, 0};
  const std::string method = kMethods[flags & 3];
  const std::string path = kPaths[(flags >> 2) & 3];
  const int config = kConfigs[(flags >> 4) & 3];
  const bool sign = (flags & 0x40) != 0;
  const bool right_credentials = (flags & 0x80) != 0;

  HttpRequest request;
  request.method = method;
  request.path = path;
  // The headers the flags decide come first, so they are the ones found.
  if (sign) {
    request.headers.emplace_back("X-PDK-SIGNATURE",
                                 pdkarchive::ingest::HmacSha1Hex(kSecret, ""));
  }
  if (config == 1) {
    request.headers.emplace_back(
        "Authorization", right_credentials ? kRightAuthorization : kWrongAuthorization);
  }
  size_t blank = rest.find("\n\n");
  std::string head = blank == std::string::npos ? std::string() : rest.substr(0, blank);
  request.body = blank == std::string::npos ? rest : rest.substr(blank + 2);
  if (sign) request.headers[0].second = pdkarchive::ingest::HmacSha1Hex(kSecret, request.body);
  for (size_t start = 0; start < head.size();) {
    size_t end = head.find('\n', start);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(start, end - start);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    } else {
      request.headers.emplace_back(line, "");
    }
    start = end + 1;
  }
  if (!sign) {
    // Without our signature, a fuzzed one could only match by forging HMAC.
    for (const auto& [name, value] : request.headers) {
      if (pdkarchive::ingest::VerifySignature(kSecret, request.body, value)) return 0;
    }
  }

  // The status the contract demands.
  int expected = 0;
  bool new_event_possible = false;
  if (path == "/webhooks") {
    if (method != "POST") {
      expected = 405;
    } else if (request.body.size() > kMaxBody) {
      expected = 413;
    } else if (config == 1 && !right_credentials) {
      expected = 401;
    } else if (config != 2 && !sign) {
      expected = 401;
    } else if (!pdkarchive::ingest::Normalize(request.body, 0, "default").ok()) {
      expected = 400;
    } else {
      expected = 200;
      new_event_possible = true;
    }
  } else if (path == "/healthz" || path == "/metrics") {
    expected = method == "GET" || method == "HEAD" ? 200 : 405;
    // /metrics is behind the Basic credentials when they are set.
    if (expected == 200 && path == "/metrics" && config == 1 && !right_credentials) {
      expected = 401;
    }
  } else {
    expected = 404;
  }

  Stack& stack = GetStack();
  stack.sink.Clear();
  WebhookHandler& handler = *stack.handlers[config];
  const HttpRequest copy = request;
  HttpResponse first = Call(handler, std::move(request));
  FUZZ_CHECK(first.status == expected,
             absl::StrCat("status ", first.status, ", expected ", expected, ": ", first.body));
  CheckJsonBody(first);
  if (first.status == 401 && config == 1 && !right_credentials) {
    bool challenged = false;
    for (const auto& [name, value] : first.headers) challenged |= name == "WWW-Authenticate";
    FUZZ_CHECK(challenged, "401 for Basic auth without WWW-Authenticate");
  }
  if (!new_event_possible) {
    FUZZ_CHECK(stack.sink.rows() == 0, "a refused delivery stored a row");
    return 0;
  }
  FUZZ_CHECK(stack.sink.rows() == 1, "an accepted delivery stored no row");
  FUZZ_CHECK(first.body == R"({"sequence":)" + first.body.substr(12, first.body.find(',') - 12) +
                               R"(,"duplicate":false})",
             first.body);
  HttpResponse again = Call(handler, copy);
  FUZZ_CHECK(again.status == 200, again.body);
  FUZZ_CHECK(again.body == first.body.substr(0, first.body.find(',')) + R"(,"duplicate":true})",
             again.body);
  FUZZ_CHECK(stack.sink.rows() == 1, "a redelivery stored another row");
  return 0;
}
