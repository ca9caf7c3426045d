#include "tests/test_support/ingest_stack.h"

#include <gtest/gtest.h>

#include <utility>

namespace pdkarchive::testing {

IngestStack::IngestStack(store::BatchSink& sink, ingest::WebhookOptions options,
                         const ingest::HttpServerOptions& http)
    : writer_(sink, feed_), handler_(std::move(options), writer_, metrics_) {
  auto server = ingest::HttpServer::Start("127.0.0.1:0", handler_, http);
  EXPECT_TRUE(server.ok()) << server.status();
  if (server.ok()) server_ = *std::move(server);
}

IngestStack::~IngestStack() {
  handler_.StopAccepting();
  writer_.Stop();
  if (server_ != nullptr) server_->Shutdown();
}

}  // namespace pdkarchive::testing
