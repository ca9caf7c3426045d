#!/usr/bin/env bash
# Installs the Debian bookworm packages pdk-archive builds and tests with,
# when any is missing. Needs root or sudo only when something must be installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libpistache-dev libsqlitecpp-dev libsqlite3-dev rapidjson-dev libssl-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev libzstd-dev
  libpq-dev libtomlplusplus-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev
)
for option in "$@"; do
  case "$option" in
    --with-test-tools) packages+=(python3 sqlite3 postgresql-15 prometheus nginx openssl systemd strace) ;;
    --with-fuzz-tools) packages+=(clang-14 libclang-rt-14-dev) ;;
    *) echo "deps.sh: unknown option $option" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
