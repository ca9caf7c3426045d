#include "tests/test_support/test_data.h"

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

}  // namespace pdkarchive::testing
