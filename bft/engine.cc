// Output helpers shared by every engine.
#include "bft/engine.h"

#include <algorithm>
#include <iterator>

namespace tally::bft {

namespace {
template <typename T>
void move_append(std::vector<T>& into, std::vector<T>& from) {
    into.insert(into.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}
}  // namespace

void Output::append(Output&& other) {
    move_append(persist, other.persist);
    // Sent early, `other`'s messages would leave before this output's writes; once a sync is
    // pending here, they may rely on it (PBFT: the view record before a first vote), so they
    // wait for it, ahead of `other`'s own sends.
    if (sync) {
        move_append(send, other.send_early);
    } else {
        move_append(send_early, other.send_early);
    }
    move_append(send, other.send);
    move_append(commit, other.commit);
    if (other.fetch_snapshot) fetch_snapshot = std::move(other.fetch_snapshot);
    move_append(redirects, other.redirects);
    move_append(forwarded, other.forwarded);
    move_append(steps, other.steps);
    sync = sync || other.sync;
    ledger_sync_through = std::max(ledger_sync_through, other.ledger_sync_through);
}

void Output::fold_send_early() {
    send.insert(send.begin(), std::make_move_iterator(send_early.begin()),
                std::make_move_iterator(send_early.end()));
    send_early.clear();
}

}  // namespace tally::bft
