// QueryAccess (query/query_access.h) when its archive misbehaves: an
// AccessStore that fails on demand (fault injection) shows that a failed
// access-log write is retried rather than lost, and that tokens which cannot
// be reloaded stop admitting calls after kStaleTokensLimit, so an unreachable
// archive cannot hide a revocation.
#include "query/query_access.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/access_store.h"

namespace pdkarchive {
namespace {

// Holds one live token ("probe", hash of "secret"); fails while `down`.
class FlakyAccessStore final : public store::AccessStore {
 public:
  std::atomic<bool> down{false};

  absl::Status CreateToken(const std::string&, const std::string&, int64_t) override {
    return absl::UnimplementedError("not in this test");
  }
  absl::StatusOr<std::vector<store::TokenInfo>> ListTokens() override {
    return absl::UnimplementedError("not in this test");
  }
  absl::Status RevokeToken(const std::string&, int64_t) override {
    return absl::UnimplementedError("not in this test");
  }
  absl::StatusOr<std::vector<store::LiveToken>> LiveTokens() override {
    if (down) return absl::UnavailableError("down");
    return std::vector<store::LiveToken>{{"probe", store::HashToken("secret")}};
  }
  absl::Status RecordTokenUse(std::span<const std::pair<std::string, int64_t>> uses) override {
    return down && !uses.empty() ? absl::UnavailableError("down") : absl::OkStatus();
  }
  absl::StatusOr<bool> HasLiveToken() override { return true; }
  absl::StatusOr<bool> HasAnyToken() override { return true; }
  absl::Status AppendAccess(std::span<const store::AccessRecord> records) override {
    if (down) return absl::UnavailableError("down");
    std::lock_guard lock(mu_);
    for (const store::AccessRecord& r : records) written_.push_back(r.method);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<store::AccessRecord>> ListAccess(const store::AccessQuery&) override {
    return absl::UnimplementedError("not in this test");
  }

  std::vector<std::string> written() {
    std::lock_guard lock(mu_);
    return written_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> written_;
};

query::QueryAccessOptions FastOptions() {
  query::QueryAccessOptions options;
  options.reload_interval = std::chrono::milliseconds(100);
  options.flush_interval = std::chrono::milliseconds(20);
  return options;
}

TEST(QueryAccessTest, AuthenticatesBearerTokensOnly) {
  FlakyAccessStore store;
  auto access = query::QueryAccess::Start(store, FastOptions());
  ASSERT_TRUE(access.ok()) << access.status();
  EXPECT_TRUE((*access)->tokens_required());
  for (std::string_view header : {"Bearer secret", "bearer secret", "BEARER secret"}) {
    absl::StatusOr<std::string> who = (*access)->Authenticate(&header);
    ASSERT_TRUE(who.ok()) << header;
    EXPECT_EQ(*who, "probe");
  }
  for (std::string_view header :
       {"secret", "Bearer ", "Bearer", "Basic secret", "Bearer secret ", "Bearer secreT"}) {
    EXPECT_TRUE(absl::IsUnauthenticated((*access)->Authenticate(&header).status())) << header;
  }
  EXPECT_TRUE(absl::IsUnauthenticated((*access)->Authenticate(nullptr).status()));
}

TEST(QueryAccessTest, AFailedLogWriteIsRetriedAndStaleTokensAdmitNobody) {
  FlakyAccessStore store;
  auto access = query::QueryAccess::Start(store, FastOptions());
  ASSERT_TRUE(access.ok()) << access.status();
  store.down = true;
  store::AccessRecord record;
  record.method = "first";
  (*access)->Log(record);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(store.written().empty());

  // Within the limit the tokens last read still count; past it, nothing does.
  const std::string_view header = "Bearer secret";
  EXPECT_TRUE((*access)->Authenticate(&header).ok());
  std::this_thread::sleep_for(query::kStaleTokensLimit + std::chrono::milliseconds(300));
  EXPECT_TRUE(absl::IsUnavailable((*access)->Authenticate(&header).status()));

  store.down = false;
  record.method = "second";
  (*access)->Log(record);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(store.written(), (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE((*access)->Authenticate(&header).ok());
  (*access)->Stop();
}

}  // namespace
}  // namespace pdkarchive
