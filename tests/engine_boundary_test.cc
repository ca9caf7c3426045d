// The storage engine stays inside its folder: no source file outside
// store/sqlite/ includes a SQLite header or a store/sqlite/ header, except
// the one engine factory (store/archive.cc). Tests, bench and fuzz may.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace pdkarchive {
namespace {

namespace fs = std::filesystem;

// The folders of the product's libraries and its command.
constexpr std::string_view kCheckedFolders[] = {"store", "ingest", "query", "cli", "timeutil"};
constexpr std::string_view kEngineFolder = "store/sqlite";
constexpr std::string_view kFactory = "store/archive.cc";

// Whether `line` includes SQLite (its C API or SQLiteCpp) or an engine header.
bool IncludesEngine(std::string_view line) {
  const size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos || line.substr(start, 8) != "#include") return false;
  for (std::string_view engine : {"<sqlite3.h>", "<SQLiteCpp/", "\"store/sqlite/"}) {
    if (line.find(engine) != std::string_view::npos) return true;
  }
  return false;
}

TEST(EngineBoundaryTest, TheMatcherKnowsAnEngineIncludeWhenItSeesOne) {
  EXPECT_TRUE(IncludesEngine("#include <sqlite3.h>"));
  EXPECT_TRUE(IncludesEngine("#include <SQLiteCpp/SQLiteCpp.h>"));
  EXPECT_TRUE(IncludesEngine("#include \"store/sqlite/sqlite_store.h\""));
  EXPECT_FALSE(IncludesEngine("#include \"store/archive.h\""));
  EXPECT_FALSE(IncludesEngine("// see store/sqlite/sqlite_store.h"));
}

TEST(EngineBoundaryTest, NoSourceOutsideTheEngineIncludesIt) {
  const fs::path root = fs::path(PDKARCHIVE_TESTDATA_DIR).parent_path().parent_path();
  int files = 0;
  bool factory_includes_engine = false;
  std::vector<std::string> offenders;
  for (std::string_view folder : kCheckedFolders) {
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(root / folder)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cc")) continue;
      const std::string relative = fs::relative(entry.path(), root).generic_string();
      if (relative.rfind(std::string(kEngineFolder) + "/", 0) == 0) continue;
      ++files;
      std::ifstream in(entry.path());
      std::string line;
      for (int number = 1; std::getline(in, line); ++number) {
        if (!IncludesEngine(line)) continue;
        if (relative == kFactory) {
          factory_includes_engine = true;
        } else {
          offenders.push_back(relative + ":" + std::to_string(number) + ": " + line);
        }
      }
    }
  }
  EXPECT_GT(files, 40) << "the walk found too few sources under " << root;
  EXPECT_TRUE(factory_includes_engine) << kFactory << " no longer opens the SQLite engine?";
  for (const std::string& offender : offenders) ADD_FAILURE() << offender;
}

}  // namespace
}  // namespace pdkarchive
