// The in-process ingest stack tests run HTTP against: a group-commit writer
// over a sink, the webhook handler and the Pistache server on a free
// loopback port, torn down in the order serve uses.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_INGEST_STACK_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_INGEST_STACK_H_

#include <memory>

#include "ingest/http_server.h"
#include "ingest/metrics.h"
#include "ingest/webhook_handler.h"
#include "store/batch_sink.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"

namespace pdkarchive::testing {

class IngestStack {
 public:
  // Starts serving deliveries into `sink`, which must outlive the stack. A
  // server that cannot start fails the running test (port() is then 0).
  IngestStack(store::BatchSink& sink, ingest::WebhookOptions options,
              const ingest::HttpServerOptions& http = {});
  // Refuses new deliveries, commits what was accepted, stops the server.
  ~IngestStack();
  IngestStack(const IngestStack&) = delete;
  IngestStack& operator=(const IngestStack&) = delete;

  int port() const { return server_ == nullptr ? 0 : server_->port(); }
  store::GroupCommitWriter& writer() { return writer_; }
  ingest::Metrics& metrics() { return metrics_; }
  ingest::HttpServer& server() { return *server_; }

 private:
  store::LocalCommitFeed feed_;
  store::GroupCommitWriter writer_;
  ingest::Metrics metrics_;
  ingest::WebhookHandler handler_;
  std::unique_ptr<ingest::HttpServer> server_;
};

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_INGEST_STACK_H_
