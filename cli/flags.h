// A small command-line flag parser: "--name value", "--name=value" and
// boolean "--name". Each command declares its flags, with help text, then
// parses its arguments; unknown flags and missing values are errors.
//
// Every FlagSet also takes "--config FILE": a TOML file whose top-level keys
// are the long flag names without the dashes (db = "...", max-body-bytes =
// 1048576, json = true, by = ["door", "day"]). A flag given on the
// command line wins over the file. An unknown key, a value of the wrong TOML
// type and a key whose flag has a "-file" twin (a secret: it belongs in that
// file, so the config file may be world-readable) are errors naming the key.
#ifndef PDKARCHIVE_CLI_FLAGS_H_
#define PDKARCHIVE_CLI_FLAGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pdkarchive::cli {

class FlagSet {
 public:
  // `usage` is the first line of --help, e.g. "pdk-archive serve [flags]".
  explicit FlagSet(std::string usage, std::string description = "");

  // Declares a flag. `value_name` is shown in help ("PATH"); the target keeps
  // its current value as the default unless the flag is given. Targets must
  // outlive Parse.
  void String(std::string name, std::string value_name, std::string* target,
              std::string help);
  void OptionalString(std::string name, std::string value_name,
                      std::optional<std::string>* target, std::string help);
  void Int(std::string name, std::string value_name, int64_t* target, std::string help);
  void Bool(std::string name, bool* target, std::string help);
  // A flag that may be given several times, or as a comma-separated list.
  void List(std::string name, std::string value_name, std::vector<std::string>* target,
            std::string help);

  // Makes "-`short_name`" mean "--`long_name`" (e.g. "-o" for "--output").
  void Alias(char short_name, std::string long_name);

  // Parses `args` (without the program and command names), then the
  // --config file if one is named. Non-flag arguments go to `positional`
  // when it is given, else they are errors. Sets help_requested() on
  // --help / -h. InvalidArgument says what is wrong (for the config file:
  // its path, the key and the line).
  absl::Status Parse(const std::vector<std::string>& args,
                     std::vector<std::string>* positional = nullptr);

  bool help_requested() const { return help_requested_; }
  std::string Help() const;

 private:
  enum class Kind { kString, kInt, kBool, kList };
  struct Flag {
    Kind kind = Kind::kString;
    std::string name;
    std::string value_name;  // empty for booleans
    std::string help;
    std::string default_text;
    std::function<absl::Status(const std::string&)> set;
  };
  const Flag* Find(const std::string& name) const;
  // Applies the TOML file at `path` to the flags not in `given`.
  absl::Status ApplyConfig(const std::string& path, const std::vector<std::string>& given);

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::pair<char, std::string>> aliases_;
  bool help_requested_ = false;
};

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_FLAGS_H_
