// HMAC-SHA1 webhook signatures (X-PDK-SIGNATURE).
#include "ingest/signature.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace pdkarchive::ingest {
namespace {

// RFC 2202 section 3, test case 2 (checked with `openssl dgst -sha1 -hmac`).
constexpr char kKey[] = "Jefe";
constexpr char kData[] = "what do ya want for nothing?";
constexpr char kDigest[] = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79";

TEST(SignatureTest, HmacSha1MatchesRfc2202) {
  EXPECT_EQ(HmacSha1Hex(kKey, kData), kDigest);
  // Test case 1: a 20-byte key of 0x0b.
  EXPECT_EQ(HmacSha1Hex(std::string(20, '\x0b'), "Hi There"),
            "b617318655057264e28bc0b6fb378c8ef146be00");
  // Test case 6: a key longer than SHA-1's block is hashed first.
  EXPECT_EQ(HmacSha1Hex(std::string(80, '\xaa'),
                        "Test Using Larger Than Block-Size Key - Hash Key "
                        "First"),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

TEST(SignatureTest, EmptySecretAndBodyStillSign) {
  EXPECT_EQ(HmacSha1Hex("", ""), "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
}

TEST(SignatureTest, BodyBytesAreSignedAsGivenIncludingNul) {
  const std::string with_nul("a\0b", 3);
  EXPECT_NE(HmacSha1Hex(kKey, with_nul), HmacSha1Hex(kKey, "a"));
}

TEST(SignatureTest, VerifyAcceptsTheSignatureInEitherCase) {
  EXPECT_TRUE(VerifySignature(kKey, kData, kDigest));
  EXPECT_TRUE(
      VerifySignature(kKey, kData, "EFFCDF6AE5EB2FA2D27416D5F184DF9C259A7C79"));
  EXPECT_TRUE(
      VerifySignature(kKey, kData, "EffcDF6ae5eb2fa2d27416d5f184df9c259a7c79"));
}

TEST(SignatureTest, VerifyIgnoresSurroundingSpaces) {
  EXPECT_TRUE(VerifySignature(kKey, kData, std::string(" ") + kDigest + "  "));
  EXPECT_TRUE(VerifySignature(kKey, kData, std::string("\t") + kDigest));
}

TEST(SignatureTest, VerifyRejectsWrongLength) {
  const std::string digest = kDigest;
  EXPECT_FALSE(VerifySignature(kKey, kData, ""));
  EXPECT_FALSE(VerifySignature(kKey, kData, digest.substr(0, 39)));
  EXPECT_FALSE(VerifySignature(kKey, kData, digest + "0"));
  EXPECT_FALSE(VerifySignature(kKey, kData, "sha1=" + digest));
  EXPECT_FALSE(VerifySignature(kKey, kData, digest.substr(0, 20)));
}

TEST(SignatureTest, VerifyRejectsNonHex) {
  std::string digest = kDigest;
  digest[7] = 'g';
  EXPECT_FALSE(VerifySignature(kKey, kData, digest));
  digest = kDigest;
  digest[20] = ' ';
  EXPECT_FALSE(VerifySignature(kKey, kData, digest));
}

TEST(SignatureTest, VerifyRejectsEverySignatureOneBitOff) {
  constexpr std::string_view kHex = "0123456789abcdef";
  for (size_t i = 0; i < 40; ++i) {
    for (size_t bit = 0; bit < 4; ++bit) {
      std::string digest = kDigest;
      digest[i] = kHex[kHex.find(digest[i]) ^ (size_t{1} << bit)];
      SCOPED_TRACE(digest);
      EXPECT_FALSE(VerifySignature(kKey, kData, digest));
    }
  }
}

TEST(SignatureTest, VerifyRejectsOtherSecretOrBody) {
  EXPECT_FALSE(VerifySignature("jefe", kData, kDigest));
  EXPECT_FALSE(VerifySignature(kKey, std::string(kData) + "\n", kDigest));
  EXPECT_FALSE(VerifySignature("", kData, kDigest));
}

TEST(SignatureTest, VerifyRoundTripsAPdkPayload) {
  const std::string body =
      R"({"id":"679521e4-c455-423f-8155-d012c98f5dcc","body":{"doorId":1},)"
      R"("panelId":"1070000","topic":"door.request.allowed"})";
  EXPECT_TRUE(VerifySignature("s3cret", body, HmacSha1Hex("s3cret", body)));
}

}  // namespace
}  // namespace pdkarchive::ingest
