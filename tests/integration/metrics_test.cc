// A replica's Prometheus metrics (node/metrics.h) over HTTP, scraped as Prometheus would, while
// transfers commit: the counters move, and the numbers are those `tally net status` shows.
#include <gtest/gtest.h>
#include <httplib.h>

#include <regex>

#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

// The body of http://host:port/metrics, or "" when the scrape failed.
std::string scrape_metrics(const node::api::ReplicaConfig& replica) {
    httplib::Client http(replica.host, replica.metrics_port);
    http.set_connection_timeout(2);
    http.set_read_timeout(2);
    auto response = http.Get("/metrics");
    return response && response->status == 200 ? response->body : std::string();
}

// The value of the one series of `name` whose labels include each of `labels` (any when none).
std::optional<double> metric_value(const std::string& body, const std::string& name,
                                   const std::vector<std::string>& labels = {}) {
    const std::regex line("^" + name + "\\{([^}]*)\\} (\\S+)$", std::regex::multiline);
    for (auto it = std::sregex_iterator(body.begin(), body.end(), line); it != std::sregex_iterator(); ++it) {
        const std::string have = (*it)[1].str();
        bool all = true;
        for (const auto& label : labels) all = all && have.find(label) != std::string::npos;
        if (all) return std::stod((*it)[2].str());
    }
    return std::nullopt;
}

TEST(Metrics, AReplicaServesPrometheusMetricsThatMoveAsTransfersCommitAndAgreeWithNetStatus) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto& replica = net.config().replicas[1];
    ASSERT_NE(replica.metrics_port, 0) << "net up gives every replica a metrics port";

    const std::string first = scrape_metrics(replica);
    ASSERT_FALSE(first.empty()) << "no answer at http://" << replica.host << ":" << replica.metrics_port << "/metrics";
    EXPECT_NE(first.find("# TYPE tally_committed_transactions_total counter"), std::string::npos) << first;
    EXPECT_NE(first.find("# TYPE tally_block_apply_seconds histogram"), std::string::npos) << first;
    EXPECT_EQ(metric_value(first, "tally_role", {"role=\"backup\""}), 1.0) << first;  // replica 1 backs view 0
    const double before = metric_value(first, "tally_committed_transactions_total", {"replica=\"1\""}).value_or(-1);
    ASSERT_GE(before, 0) << first;

    {
        Load load(net.config(), net.account("alice"), net.account("bob").public_key());
        ASSERT_TRUE(load.wait_more(20, 60s)) << "no commits";
    }
    // Once replica 1 executed the load's transfers too (the load saw f+1 replies, not
    // necessarily its own: on a busy machine it may still be applying its first blocks), the
    // metrics say what `tally net status` says (they are copied from the same status reply
    // every 250 ms).
    std::string body;
    uint64_t executed = 0;
    const auto until = Clock::now() + 30s;
    bool agree = false;
    while (!agree && Clock::now() < until) {
        auto status = net.status();
        body = scrape_metrics(replica);
        if (status.size() > 1 && status[1].up) {
            executed = status[1].reply.executed();
            agree = metric_value(body, "tally_committed_transactions_total").value_or(0) >= before + 20 &&
                    metric_value(body, "tally_executed_seq") == static_cast<double>(executed) &&
                    metric_value(body, "tally_stable_checkpoint_seq") == static_cast<double>(status[1].reply.stable_checkpoint()) &&
                    metric_value(body, "tally_view") == static_cast<double>(status[1].reply.view()) &&
                    metric_value(body, "tally_catching_up_to_seq") == 0.0;  // a replica in step fetches nothing
        }
        if (!agree) std::this_thread::sleep_for(100ms);  // polling interval, not synchronisation
    }
    EXPECT_TRUE(agree) << "net status says executed " << executed << "; the metrics:\n" << body;
    EXPECT_GE(metric_value(body, "tally_committed_transactions_total").value_or(0), before + 20) << body;
    EXPECT_GE(metric_value(body, "tally_committed_batches_total").value_or(0), 1.0) << body;
    EXPECT_GE(metric_value(body, "tally_block_apply_seconds_count").value_or(0), 1.0) << body;
    // The phases and the synced writes under them move as batches commit (not one each per
    // batch: a replica that catches up from a peer's certificate skips its own phases, and one
    // synced write may carry the votes of several batches).
    for (const char* phase : {"prepared", "committed", "executed"})
        EXPECT_GE(metric_value(body, "tally_phase_seconds_count", {std::string("phase=\"") + phase + "\""}).value_or(0),
                  1.0)
            << phase << ":\n" << body;
    EXPECT_GE(metric_value(body, "tally_fsync_seconds_count", {"what=\"consensus_store\""}).value_or(0), 1.0)
        << body;
    // A batch per executed seq (no view change happened, so no null batch was left out).
    EXPECT_EQ(metric_value(body, "tally_committed_batches_total"), static_cast<double>(executed)) << body;
    // Replica 1, a backup, heard the primary's pre-prepares and sent prepares to every peer.
    EXPECT_GE(metric_value(body, "tally_messages_received_total", {"peer=\"0\"", "type=\"pre_prepare\""})
                  .value_or(0),
              1.0)
        << body;
    for (const char* peer : {"0", "2", "3"})
        EXPECT_GE(metric_value(body, "tally_sent_bytes_total",
                               {std::string("peer=\"") + peer + "\"", "type=\"prepare\""})
                      .value_or(0),
                  1.0)
            << "to " << peer << ":\n" << body;
}

}  // namespace
}  // namespace tally::integration
