// A small command-line flag parser: "--name value", "--name=value" and
// boolean "--name". Each command declares its flags, with help text, then
// parses its arguments; unknown flags and missing values are errors.
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

  // Parses `args` (without the program and command names). Non-flag
  // arguments go to `positional` when it is given, else they are errors.
  // Sets help_requested() on --help / -h. InvalidArgument says what is wrong.
  absl::Status Parse(const std::vector<std::string>& args,
                     std::vector<std::string>* positional = nullptr);

  bool help_requested() const { return help_requested_; }
  std::string Help() const;

 private:
  struct Flag {
    std::string name;
    std::string value_name;  // empty for booleans
    std::string help;
    std::string default_text;
    std::function<absl::Status(const std::string&)> set;
  };
  const Flag* Find(const std::string& name) const;

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::pair<char, std::string>> aliases_;
  bool help_requested_ = false;
};

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_FLAGS_H_
