#include "query/query_access.h"

#include <iostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {
namespace {

constexpr std::string_view kBearer = "bearer ";
constexpr std::chrono::seconds kComplaintInterval{10};

}  // namespace

absl::StatusOr<std::unique_ptr<QueryAccess>> QueryAccess::Start(store::AccessStore& store,
                                                                const QueryAccessOptions& options) {
  absl::StatusOr<Tokens> tokens = LoadTokens(store);
  if (!tokens.ok()) return tokens.status();
  std::unique_ptr<QueryAccess> access(new QueryAccess(store, options, *std::move(tokens)));
  access->thread_ = std::thread([raw = access.get()] { raw->Run(); });
  return access;
}

absl::StatusOr<QueryAccess::Tokens> QueryAccess::LoadTokens(store::AccessStore& store) {
  Tokens tokens;
  absl::StatusOr<std::vector<store::LiveToken>> live = store.LiveTokens();
  if (!live.ok()) return live.status();
  tokens.live = *std::move(live);
  tokens.required = !tokens.live.empty();
  if (!tokens.required) {
    absl::StatusOr<bool> any = store.HasAnyToken();
    if (!any.ok()) return any.status();
    tokens.required = *any;
  }
  return tokens;
}

QueryAccess::QueryAccess(store::AccessStore& store, const QueryAccessOptions& options,
                         Tokens tokens)
    : store_(store),
      options_(options),
      tokens_(std::move(tokens)),
      loaded_at_(std::chrono::steady_clock::now()) {}

QueryAccess::~QueryAccess() { Stop(); }

bool QueryAccess::tokens_required() const {
  std::lock_guard lock(mu_);
  return tokens_.required;
}

absl::StatusOr<std::string> QueryAccess::Authenticate(const std::string_view* authorization) {
  std::string hash;
  bool well_formed = false;
  if (authorization != nullptr && authorization->size() > kBearer.size() &&
      absl::EqualsIgnoreCase(std::string(authorization->substr(0, kBearer.size())),
                             std::string(kBearer))) {
    hash = store::HashToken(std::string(authorization->substr(kBearer.size())));
    well_formed = true;
  }
  std::lock_guard lock(mu_);
  if (!tokens_.required) return std::string();
  if (std::chrono::steady_clock::now() - loaded_at_ > kStaleTokensLimit) {
    return absl::UnavailableError("cannot check bearer tokens: the archive is unreachable");
  }
  if (well_formed) {
    std::optional<std::string> name = store::MatchToken(tokens_.live, hash);
    if (name) {
      uses_[*name] = timeutil::NowMs();
      return *std::move(name);
    }
  }
  return absl::UnauthenticatedError(kUnauthenticatedMessage);
}

void QueryAccess::Log(store::AccessRecord record) {
  std::lock_guard lock(mu_);
  if (queue_.size() >= options_.max_queued_records) {
    ++dropped_;
    return;
  }
  queue_.push_back(std::move(record));
}

void QueryAccess::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  std::call_once(joined_, [this] { thread_.join(); });
}

void QueryAccess::Run() {
  auto next_reload = std::chrono::steady_clock::now() + options_.reload_interval;
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, options_.flush_interval, [this] { return stopping_; });
      stopping = stopping_;
    }
    const bool reload = std::chrono::steady_clock::now() >= next_reload;
    // Token use is written with each reload (and at the end): last use is
    // for people, to the second, and need not cost a write per flush.
    Flush(/*with_uses=*/reload || stopping);
    if (stopping) return;
    if (reload) {
      Reload();
      next_reload = std::chrono::steady_clock::now() + options_.reload_interval;
    }
  }
}

void QueryAccess::Flush(bool with_uses) {
  std::vector<store::AccessRecord> records;
  std::map<std::string, int64_t> uses;
  int64_t dropped;
  {
    std::lock_guard lock(mu_);
    records.swap(queue_);
    if (with_uses) uses.swap(uses_);
    dropped = std::exchange(dropped_, 0);
  }
  if (dropped > 0) {
    std::cerr << "pdk-archive: access log: " << dropped
              << " records dropped, the archive could not take them in time\n";
  }
  if (absl::Status s = store_.AppendAccess(records); !s.ok()) {
    // Once per kComplaintInterval while the archive stays unwritable.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_complaint_ >= kComplaintInterval) {
      last_complaint_ = now;
      std::cerr << "pdk-archive: access log: " << s.message() << " (will retry)\n";
    }
    std::lock_guard lock(mu_);
    // Keep them, oldest first, for the next flush.
    records.insert(records.end(), std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.end()));
    queue_ = std::move(records);
    if (queue_.size() > options_.max_queued_records) {
      dropped_ += static_cast<int64_t>(queue_.size() - options_.max_queued_records);
      queue_.resize(options_.max_queued_records);
    }
  }
  const std::vector<std::pair<std::string, int64_t>> list(uses.begin(), uses.end());
  if (absl::Status s = store_.RecordTokenUse(list); !s.ok()) {
    // Last use is a convenience; a later use records it again.
    std::cerr << "pdk-archive: token use: " << s.message() << "\n";
  }
}

void QueryAccess::Reload() {
  absl::StatusOr<Tokens> tokens = LoadTokens(store_);
  if (!tokens.ok()) {
    // Keep the tokens last read: a database hiccup must neither open the
    // archive nor shut everyone out.
    std::cerr << "pdk-archive: cannot reload bearer tokens: " << tokens.status().message() << "\n";
    return;
  }
  std::lock_guard lock(mu_);
  tokens_ = *std::move(tokens);
  loaded_at_ = std::chrono::steady_clock::now();
}

}  // namespace pdkarchive::query
