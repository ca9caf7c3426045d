#include "tests/test_support/test_data.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace pdkarchive::testing {

std::string ReadTestData(std::string_view relative_path) {
  const std::string path =
      std::string(PDKARCHIVE_TESTDATA_DIR) + "/" + std::string(relative_path);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot open test data file " << path;
    return "";
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    ADD_FAILURE() << "cannot read test data file " << path;
    return "";
  }
  return contents.str();
}

std::string PdkV2ExamplePayload() {
  const std::string json = ReadTestData("pdk-2.0/topics.json");
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("topics") ||
      !doc["topics"].IsArray()) {
    ADD_FAILURE() << "pdk-2.0/topics.json is not the expected document";
    return "";
  }
  for (const auto& entry : doc["topics"].GetArray()) {
    if (!entry.IsObject() || !entry.HasMember("example") ||
        !entry["example"].IsObject()) {
      continue;
    }
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    entry["example"].Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize());
  }
  ADD_FAILURE() << "pdk-2.0/topics.json holds no example payload";
  return "";
}

}  // namespace pdkarchive::testing
