// CrashVfs: a simulated disk for SQLite, for fault-injection tests only.
//
// It registers a VFS (named "pdk-crashsim" by default, never the default VFS)
// that wraps SQLite's "unix" VFS and models a disk with a volatile write
// cache, after SQLite's own crash VFS (src/test6.c): every write to the
// database, WAL or journal stays in memory until an xSync of that file, and
// reads see it (the pending writes are overlaid on the real file). On xSync
// the file's pending writes reach the real file, in the order they were made.
//
// A simulated power cut drops every write that was not synced, or, in the
// torn mode, lets a random subset of them through at sector granularity
// (torn and reordered writes). The -shm file is memory-mapped and never goes
// through xWrite: it is volatile, and the caller deletes it after a cut
// (SQLite rebuilds it from the WAL). After the cut every read, write, sync,
// lock and open through the VFS fails, as it would on a machine without
// power, so nothing can be acknowledged after it.
//
// Independently, SetFault makes writes or syncs fail with SQLITE_FULL or
// SQLITE_IOERR for as long as it is on (a full disk, a failing device).
//
// Thread-safe: every file operation runs under one mutex. The real fsync is
// skipped: the simulation decides what survives a cut, so the data only has
// to reach the OS.
#ifndef PDKARCHIVE_TESTS_SQLITE_CRASH_VFS_H_
#define PDKARCHIVE_TESTS_SQLITE_CRASH_VFS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace pdkarchive::testing {

// What happens to unsynced writes at a power cut.
enum class PowerCutMode {
  kDropUnsynced,  // none of them reaches the disk
  kTornWrites,    // each 512-byte sector of each of them may or may not
};

// What SetFault makes fail.
enum class DiskFault {
  kNone,
  kDiskFull,   // xWrite returns SQLITE_FULL
  kIoError,    // xWrite, xTruncate, xSync return SQLITE_IOERR_WRITE, _TRUNCATE, _FSYNC
  kSyncError,  // writes succeed, xSync returns SQLITE_IOERR_FSYNC
};

struct CrashVfsStats {
  uint64_t writes = 0;                // xWrite calls on buffered files
  uint64_t syncs = 0;                 // successful xSync calls
  uint64_t dropped_writes = 0;        // unsynced writes at the power cut
  uint64_t torn_sectors_kept = 0;     // sectors of those that reached the disk
  uint64_t torn_sectors_dropped = 0;  // sectors of those that did not
};

class CrashVfs {
 public:
  // Registers the VFS as `name`. Dies when "unix" is missing or `name` is
  // taken (one CrashVfs per name at a time).
  explicit CrashVfs(std::string name = "pdk-crashsim");
  // Unregisters. Every connection opened through the VFS must be closed.
  // Writes still pending reach the real files (the machine kept running).
  ~CrashVfs();
  CrashVfs(const CrashVfs&) = delete;
  CrashVfs& operator=(const CrashVfs&) = delete;

  // The name to pass as store::OpenOptions::vfs.
  const std::string& name() const;

  // Cuts the power now. `seed` drives the torn mode's choices.
  void CutPower(PowerCutMode mode, uint32_t seed);
  // Arms a cut that happens by itself at the `io_count`-th write, sync or
  // truncate (counted from now, over every buffered file): that operation
  // fails and is not applied, as if the power went just before it.
  void CutPowerAt(uint64_t io_count, PowerCutMode mode, uint32_t seed);
  // Waits until the power is cut; false when `timeout` passes first.
  bool WaitForPowerCut(std::chrono::milliseconds timeout);
  bool power_on() const;

  // Turns a fault on (or off with kNone). Takes effect on the next operation.
  void SetFault(DiskFault fault);

  CrashVfsStats stats() const;

 private:
  class Disk;
  std::unique_ptr<Disk> disk_;
};

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_SQLITE_CRASH_VFS_H_
