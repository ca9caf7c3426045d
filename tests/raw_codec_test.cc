// The engine-neutral payload codec (store/raw_codec.h): the dictionary that
// format 1 depends on never changes, and UUID packing round-trips.
#include "store/raw_codec.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace pdkarchive::store {
namespace {

TEST(RawCodecTest, DictionaryV1NeverChanges) {
  // Rows compressed with format 1 can only be read with these exact bytes.
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(kRawDictionaryV1.data()),
         kRawDictionaryV1.size(), digest);
  std::string hex;
  for (unsigned char b : digest) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  EXPECT_EQ(hex, "92ec5f33c797eb6183cfc385ac6c9ab8d926cb47b9bfacee82723291a1dc8c29");
}

TEST(RawCodecTest, UuidPackingRoundTripsAndRejectsOtherIds) {
  const std::string id = "624af2c6-fc08-403f-94c7-a2d87d0703df";
  std::string packed = PackUuid(id);
  ASSERT_EQ(packed.size(), 16u);
  EXPECT_EQ(UnpackUuid(packed), id);
  for (const char* other : {"", "1070000", "624AF2C6-FC08-403F-94C7-A2D87D0703DF",
                            "624af2c6-fc08-403f-94c7-a2d87d0703dg",
                            "624af2c6fc08-403f-94c7-a2d87d0703df0"}) {
    EXPECT_EQ(PackUuid(other), "") << other;
  }
}

TEST(RawCodecTest, PayloadsRoundTripThroughTheCodec) {
  auto compressor = RawCompressor::Create();
  ASSERT_TRUE(compressor.ok()) << compressor.status();
  auto decompressor = RawDecompressor::Create();
  ASSERT_TRUE(decompressor.ok()) << decompressor.status();
  // A door event and a long repetitive body pack smaller than they are.
  for (const std::string& raw :
       {std::string(R"({"topic":"door.request.allowed","panelId":"1070000","body":{"doorId":3,)"
                    R"("personId":17},"metadata":{"occurred":1646922708300}})"),
        std::string(5000, 'x') + "\xff\xfe not UTF-8"}) {
    std::string packed;
    ASSERT_TRUE((*compressor)->Compress(raw, &packed)) << raw.substr(0, 40);
    EXPECT_LT(packed.size(), raw.size());
    absl::StatusOr<std::string> unpacked = (*decompressor)->Decompress(packed);
    ASSERT_TRUE(unpacked.ok()) << unpacked.status();
    EXPECT_EQ(*unpacked, raw);
  }
}

}  // namespace
}  // namespace pdkarchive::store
