// The query layer's pure parts without a server: page tokens, CSV cells and
// proto conversion.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "query/convert.h"
#include "query/csv_writer.h"
#include "query/page_token.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {
namespace {

namespace pb = ::pdk::archive::v1;

TEST(PageTokenTest, RoundTripsAndIgnoresValueOrder) {
  PageTokenCodec codec(std::string(32, 'k'));
  store::EventFilter filter;
  filter.door_ids = {3, 1, 3};
  filter.topics = {"b", "a.*"};
  const store::Cursor cursor{-1234567, 42};
  const std::string token = codec.Encode(filter, true, cursor);
  EXPECT_EQ(
      token.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);

  store::EventFilter reordered;
  reordered.door_ids = {1, 3};
  reordered.topics = {"a.*", "b"};
  auto decoded = codec.Decode(token, reordered, true);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, cursor);
}

TEST(PageTokenTest, RejectsOtherKeysFiltersAndOrders) {
  PageTokenCodec codec(std::string(32, 'k'));
  PageTokenCodec other_key(std::string(32, 'j'));
  store::EventFilter filter;
  filter.family = "panel";
  const std::string token = codec.Encode(filter, false, {5, 6});

  EXPECT_EQ(other_key.Decode(token, filter, false).status().message(),
            "page_token is malformed");
  EXPECT_EQ(codec.Decode("", filter, false).status().message(),
            "page_token is malformed");
  EXPECT_EQ(codec.Decode(token + "A", filter, false).status().message(),
            "page_token is malformed");
  EXPECT_EQ(codec.Decode(token, filter, true).status().message(),
            "page_token does not match this filter/order");
  store::EventFilter other = filter;
  other.family = "org";
  EXPECT_EQ(codec.Decode(token, other, false).status().message(),
            "page_token does not match this filter/order");
  other = filter;
  other.end_ms = 0;  // set vs unset must differ even at value 0
  EXPECT_EQ(codec.Decode(token, other, false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PageTokenTest, FingerprintSeparatesFieldsUnambiguously) {
  store::EventFilter a;
  a.panel_ids = {"x"};
  store::EventFilter b;
  b.ou_ids = {"x"};
  store::EventFilter c;
  c.topics = {"ab"};
  store::EventFilter d;
  d.topics = {"a", "b"};
  EXPECT_NE(FilterFingerprint(a), FilterFingerprint(b));
  EXPECT_NE(FilterFingerprint(c), FilterFingerprint(d));
}

TEST(CsvWriterTest, QuotesOnlyWhenNeededAndGuardsFormulas) {
  auto field = [](std::string value, bool text) {
    std::string out;
    AppendCsvField(value, text, out);
    return out;
  };
  EXPECT_EQ(field("plain", true), "plain");
  EXPECT_EQ(field("a,b", true), "\"a,b\"");
  EXPECT_EQ(field("say \"hi\"", true), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(field("two\nlines", true), "\"two\nlines\"");
  EXPECT_EQ(field("cr\rhere", true), "\"cr\rhere\"");
  EXPECT_EQ(field("=1+1", true), "'=1+1");
  EXPECT_EQ(field("+1", true), "'+1");
  EXPECT_EQ(field("-1", true), "'-1");
  EXPECT_EQ(field("@x", true), "'@x");
  EXPECT_EQ(field("\tx", true), "'\tx");
  EXPECT_EQ(field("\rx", true), "\"'\rx\"");
  EXPECT_EQ(field("=a,b", true), "\"'=a,b\"");
  EXPECT_EQ(field("=raw", false), "=raw");
  EXPECT_EQ(field("", true), "");
}

TEST(CsvWriterTest, WritesRowsWithCrlfAndRfc3339Millis) {
  EXPECT_EQ(TimeCell(1646921051104), "2022-03-10T14:04:11.104Z");
  EXPECT_EQ(TimeCell(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(TimeCell(-1), "1969-12-31T23:59:59.999Z");

  store::EventRow row;
  row.sequence = 7;
  row.topic = "door.forced";
  row.family = "panel";
  row.panel_id = "p1";
  row.door_id = -3;
  row.door_name = "Front";
  row.ou_id = "o";
  row.event_id = "e";
  row.actor_user_id = "u";
  row.occur_time_ms = 1646921051104;
  row.receive_time_ms = 1646921051105;
  row.subscription = "default";
  row.raw = "{\"a\":1}";
  std::string out;
  CsvWriter(true).AppendHeader(out);
  CsvWriter(true).AppendRow(row, out);
  EXPECT_EQ(out,
            "sequence,occur_time,receive_time,topic,family,panel_id,door_id,"
            "door_name,"
            "person_id,ou_id,event_id,actor_user_id,subscription,raw,"
            "device_id,holder_id,holder_name,cloud_node_id,system_id\r\n"
            "7,2022-03-10T14:04:11.104Z,2022-03-10T14:04:11.105Z,door.forced,"
            "panel,p1,-3,"
            "Front,,o,e,u,default,\"{\"\"a\"\":1}\",,,,,\r\n");
}

// The formatter the time cell replaced, kept as the reference.
std::string AbslRfc3339Millis(int64_t ms) {
  return absl::FormatTime("%E4Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

// The calendar edges inside 0000-9999 are timeutil's (tests/timeutil_test.cc).
TEST(CsvWriterTest, TimesAtCalendarEdges) {
  EXPECT_EQ(TimeCell(-62167219200000), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(TimeCell(253402300799999), "9999-12-31T23:59:59.999Z");
  // Outside 0000-9999 the year keeps absl's "%E4Y" form.
  EXPECT_EQ(TimeCell(-62167219200001), AbslRfc3339Millis(-62167219200001));
  EXPECT_EQ(TimeCell(253402300800000), AbslRfc3339Millis(253402300800000));
  EXPECT_EQ(TimeCell(253402300800000), "10000-01-01T00:00:00.000Z");
}

TEST(CsvWriterTest, TimesMatchAbslFormatTime) {
  auto check = [](int64_t ms) {
    ASSERT_EQ(TimeCell(ms), AbslRfc3339Millis(ms)) << "ms=" << ms;
  };
  // Each day boundary (and a millisecond either side) from 1890 to 2110 and
  // through the first and last years the fast path covers.
  constexpr int64_t kDayMs = timeutil::kDayMs;
  const int64_t ranges[][2] = {{-29000, 51200}, {-719600, -719100}, {2932500, 2933000}};
  for (const auto& range : ranges) {
    for (int64_t day = range[0]; day <= range[1]; ++day) {
      check(day * kDayMs - 1);
      check(day * kDayMs);
      check(day * kDayMs + 1);
    }
  }
  // Random instants: most within 0000-9999, some anywhere an int64 reaches.
  std::mt19937_64 rng(20261127);
  std::uniform_int_distribution<int64_t> fast(-62167219200000 - 1000, 253402300800000 + 1000);
  for (int i = 0; i < 200000; ++i) check(fast(rng));
  std::uniform_int_distribution<int64_t> any(-(int64_t{1} << 62), int64_t{1} << 62);
  for (int i = 0; i < 2000; ++i) check(any(rng));
  check(INT64_MIN / 2);
  check(INT64_MAX / 2);
}

// The quoting rule as first written: quote when any of , " CR LF occurs.
std::string ReferenceField(std::string_view value, bool text) {
  static constexpr std::string_view kFormula = "=+-@\t\r";
  const bool guard = text && !value.empty() && kFormula.find(value.front()) != kFormula.npos;
  std::string out;
  const bool quote = value.find_first_of(",\"\r\n") != std::string_view::npos;
  if (quote) out.push_back('"');
  if (guard) out.push_back('\'');
  for (char c : value) {
    if (quote && c == '"') out.push_back('"');
    out.push_back(c);
  }
  if (quote) out.push_back('"');
  return out;
}

TEST(CsvWriterTest, FieldsMatchTheReferenceAtEveryPosition) {
  // A special character (or a near miss) at each position of fields of
  // every length up to 40, which covers the word-at-a-time scan and its tail.
  const std::string_view specials = ",\"\r\n+-=@\t'.\x80\xff\x2b\x0c";
  for (size_t length = 0; length <= 40; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (char c : specials) {
        std::string value(length, 'a');
        value[at] = c;
        for (bool text : {true, false}) {
          std::string out;
          AppendCsvField(value, text, out);
          ASSERT_EQ(out, ReferenceField(value, text)) << "length " << length << " at " << at;
        }
      }
    }
  }
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> size(0, 300);
  for (int i = 0; i < 20000; ++i) {
    std::string value(static_cast<size_t>(size(rng)), '\0');
    // Mostly plain bytes, so that some long values need no quotes at all.
    for (char& c : value) {
      const int b = byte(rng);
      c = static_cast<char>(b < 250 ? 'a' + b % 26 : b);
    }
    std::string out;
    AppendCsvField(value, true, out);
    ASSERT_EQ(out, ReferenceField(value, true));
  }
}

TEST(ConvertTest, TimestampsRoundUpToWholeMilliseconds) {
  pb::EventFilter proto;
  proto.mutable_start_time()->set_seconds(10);
  proto.mutable_start_time()->set_nanos(1);
  proto.mutable_end_time()->set_seconds(11);
  auto filter = FilterFromProto(proto);
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ(filter->start_ms, 10001);
  EXPECT_EQ(filter->end_ms, 11000);

  google::protobuf::Timestamp t;
  MillisToTimestamp(-1, &t);
  EXPECT_EQ(t.seconds(), -1);
  EXPECT_EQ(t.nanos(), 999000000);
}

TEST(ConvertTest, AbsentIdsStayAbsent) {
  store::EventRow row;
  row.sequence = 1;
  pb::Event event;
  EventToProto(row, &event);
  EXPECT_FALSE(event.has_door_id());
  EXPECT_FALSE(event.has_person_id());
  row.door_id = 0;
  event.Clear();
  EventToProto(row, &event);
  EXPECT_TRUE(event.has_door_id());
}

}  // namespace
}  // namespace pdkarchive::query
