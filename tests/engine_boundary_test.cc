// Each storage engine stays inside its folder: no source file outside
// store/sqlite/ includes a SQLite header or a store/sqlite/ header, none
// outside store/postgres/ includes libpq or a store/postgres/ header, except
// the one engine factory (store/archive.cc). Tests, bench and fuzz may.
#include <gtest/gtest.h>

#include <algorithm>
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
constexpr std::string_view kFactory = "store/archive.cc";

struct EngineFolder {
  std::string_view folder;
  std::vector<std::string_view> markers;  // what an include of the engine contains
};

const std::vector<EngineFolder>& Engines() {
  static const auto* engines = new std::vector<EngineFolder>{
      {"store/sqlite", {"<sqlite3.h>", "<SQLiteCpp/", "\"store/sqlite/"}},
      {"store/postgres", {"<libpq-fe.h>", "<postgresql/", "<pqxx/", "\"store/postgres/"}},
  };
  return *engines;
}

// The engine `line` includes (its client library or one of its headers), if
// any: its folder, or "" for none.
std::string_view IncludedEngine(std::string_view line) {
  const size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos || line.substr(start, 8) != "#include") return "";
  for (const EngineFolder& engine : Engines()) {
    for (std::string_view marker : engine.markers) {
      if (line.find(marker) != std::string_view::npos) return engine.folder;
    }
  }
  return "";
}

bool IncludesEngine(std::string_view line) { return !IncludedEngine(line).empty(); }

TEST(EngineBoundaryTest, TheMatcherKnowsAnEngineIncludeWhenItSeesOne) {
  EXPECT_TRUE(IncludesEngine("#include <sqlite3.h>"));
  EXPECT_TRUE(IncludesEngine("#include <SQLiteCpp/SQLiteCpp.h>"));
  EXPECT_TRUE(IncludesEngine("#include \"store/sqlite/sqlite_store.h\""));
  EXPECT_FALSE(IncludesEngine("#include \"store/archive.h\""));
  EXPECT_FALSE(IncludesEngine("// see store/sqlite/sqlite_store.h"));
  EXPECT_EQ(IncludedEngine("#include <libpq-fe.h>"), "store/postgres");
  EXPECT_EQ(IncludedEngine("#include \"store/postgres/pg_reader.h\""), "store/postgres");
  EXPECT_EQ(IncludedEngine("#include \"store/sqlite/event_reader.h\""), "store/sqlite");
}

TEST(EngineBoundaryTest, NoSourceOutsideTheEngineIncludesIt) {
  const fs::path root = fs::path(PDKARCHIVE_TESTDATA_DIR).parent_path().parent_path();
  int files = 0;
  std::vector<std::string_view> factory_includes;
  std::vector<std::string> offenders;
  for (std::string_view folder : kCheckedFolders) {
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(root / folder)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cc")) continue;
      const std::string relative = fs::relative(entry.path(), root).generic_string();
      ++files;
      std::ifstream in(entry.path());
      std::string line;
      for (int number = 1; std::getline(in, line); ++number) {
        const std::string_view engine = IncludedEngine(line);
        if (engine.empty() || relative.rfind(std::string(engine) + "/", 0) == 0) continue;
        if (relative == kFactory) {
          factory_includes.push_back(engine);
        } else {
          offenders.push_back(relative + ":" + std::to_string(number) + ": " + line);
        }
      }
    }
  }
  EXPECT_GT(files, 40) << "the walk found too few sources under " << root;
  for (const EngineFolder& engine : Engines()) {
    EXPECT_NE(std::find(factory_includes.begin(), factory_includes.end(), engine.folder),
              factory_includes.end())
        << kFactory << " no longer opens the engine in " << engine.folder << "?";
  }
  for (const std::string& offender : offenders) ADD_FAILURE() << offender;
}

}  // namespace
}  // namespace pdkarchive
