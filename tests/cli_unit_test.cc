// The pure parts of the command line: when serve may expose gRPC, --from/--to
// times, and table cells.
#include <gtest/gtest.h>

#include "cli/client_flags.h"
#include "cli/event_format.h"
#include "cli/grpc_security.h"

namespace pdkarchive::cli {
namespace {

TEST(GrpcExposureTest, LoopbackHostsAreLoopback) {
  for (const char* host :
       {"127.0.0.1", "127.8.9.10", "127.255.255.255", "::1", "[::1]",
        "localhost", "LocalHost", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host :
       {"0.0.0.0", "::", "[::]", "", "128.0.0.1", "10.0.0.1", "192.168.1.2",
        "example.com", "localhost.example.com", "::2", "126.255.255.255",
        "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(GrpcExposureTest, LoopbackIsAlwaysAllowed) {
  for (const char* listen :
       {"127.0.0.1:50051", "127.1.2.3:0", "[::1]:50051", "localhost:0",
        "unix:/run/pdk-archive/grpc.sock"}) {
    EXPECT_TRUE(CheckGrpcExposure(listen, false, false, false).ok()) << listen;
  }
}

TEST(GrpcExposureTest, ANetworkAddressNeedsTlsAndATokenOrInsecure) {
  for (const char* listen : {"0.0.0.0:50051", "[::]:0", ":50051",
                             "10.1.2.3:50051", "pdk.example.com:443"}) {
    SCOPED_TRACE(listen);
    EXPECT_TRUE(CheckGrpcExposure(listen, true, true, false).ok());
    EXPECT_TRUE(CheckGrpcExposure(listen, false, false, true).ok());
    EXPECT_TRUE(CheckGrpcExposure(listen, true, false, true).ok());
    for (auto [tls, token] :
         {std::pair{false, false}, {true, false}, {false, true}}) {
      absl::Status s = CheckGrpcExposure(listen, tls, token, false);
      EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_NE(s.message().find("--grpc-insecure"), std::string::npos)
          << s.message();
      EXPECT_EQ(s.message().find("--grpc-tls-cert") != std::string::npos, !tls)
          << s.message();
      EXPECT_EQ(s.message().find("token") != std::string::npos, !token)
          << s.message();
    }
  }
}

constexpr int64_t kDay = 86400000;
// 2026-12-06T11:30:00.250Z
constexpr int64_t kNow = 1796556600250;

TEST(TimeFlagTest, RelativeTimesCountBackFromNow) {
  EXPECT_EQ(*ParseTimeFlag("from", "now", false, kNow), kNow);
  EXPECT_EQ(*ParseTimeFlag("from", "today", false, kNow), 1796515200000);
  EXPECT_EQ(*ParseTimeFlag("to", "today", true, kNow), 1796515200000);
  EXPECT_EQ(*ParseTimeFlag("from", "yesterday", false, kNow),
            1796515200000 - kDay);
  EXPECT_EQ(*ParseTimeFlag("from", "15m", false, kNow), kNow - 15 * 60000);
  EXPECT_EQ(*ParseTimeFlag("from", "24h", false, kNow), kNow - kDay);
  EXPECT_EQ(*ParseTimeFlag("from", "7d", false, kNow), kNow - 7 * kDay);
  EXPECT_EQ(*ParseTimeFlag("from", "2w", false, kNow), kNow - 14 * kDay);
  EXPECT_EQ(*ParseTimeFlag("from", "90s", false, kNow), kNow - 90000);
  // Midnight itself is today.
  EXPECT_EQ(*ParseTimeFlag("from", "today", false, 1796515200000),
            1796515200000);
  // Before 1970 too.
  EXPECT_EQ(*ParseTimeFlag("from", "today", false, -1), -kDay);
}

TEST(TimeFlagTest, DatesAndRfc3339StillParse) {
  EXPECT_EQ(*ParseTimeFlag("from", "2026-12-06", false, kNow), 1796515200000);
  EXPECT_EQ(*ParseTimeFlag("to", "2026-12-06", true, kNow),
            1796515200000 + kDay);
  EXPECT_EQ(*ParseTimeFlag("from", "2026-12-06T11:30:00.250Z", false, 0), kNow);
}

TEST(TimeFlagTest, BadTimesAreRefusedNamingTheFlagAndTheForms) {
  for (const char* bad :
       {"", "soon", "0m", "-15m", "15", "15x", "m", "1.5h", "15 m",
        "999999999999999d", "9223372036854775807s", "tomorrow"}) {
    absl::StatusOr<int64_t> t = ParseTimeFlag("to", bad, true, kNow);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find("--to"), std::string::npos)
        << t.status().message();
  }
}

TEST(TableCellTest, PadsCutsAndCleans) {
  EXPECT_EQ(TableCell("abc", 6), "abc   ");
  EXPECT_EQ(TableCell("abcdef", 6), "abcd… ");
  EXPECT_EQ(TableCell("abcde", 6), "abcde ");
  EXPECT_EQ(TableCell("123456789", 6, true), "123456789 ");
  EXPECT_EQ(TableCell("étage", 6), "étage ");
  EXPECT_EQ(TableCell("a\x1b[2Jb", 8), "a?[2Jb  ");
  EXPECT_EQ(TableCell("a\xff", 4), "a\xEF\xBF\xBD  ");
}

}  // namespace
}  // namespace pdkarchive::cli
