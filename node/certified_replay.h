// Catching up by certified blocks: executing, on this replica's own ledger, the batches that
// peers prove committed, one block after another. It is how a replica reaches a stable
// checkpoint whose snapshot no peer holds any more (snapshots live in a process's memory, and
// every peer may have restarted since), and it needs nothing but what every replica keeps on
// disk: its blocks with their commit certificates (ledger schema 4).
//
// What it trusts: nothing the peer says but the certificate, which it checks against the
// replicas' keys. A batch that 2f+1 replicas committed at a seq is the one every honest
// replica executes there, so executing it is exactly what this replica would have done; the
// block's header as served is not read (this ledger computes its own), and the caller checks
// the state it reaches against the checkpoint's proven digest, as after a snapshot.
//
// The node fetches the blocks from a peer (replica_state.cc) and executes them here.
#pragma once

#include <cstddef>
#include <vector>

#include "bft/engine.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "ledger/state.h"

namespace tally::node {

// Executes `block`, which must be the next one (ledger.last_seq() + 1), from its commit
// certificate. Errors: "bad_block" (the peer's fault: the wrong height, a certificate that
// fails its check or proves another seq), or the ledger's own ("io", ...: this replica's).
Result<ledger::AppliedBlock> execute_certified_block(ledger::State& ledger,
                                                     const ledger::CertifiedBlock& block,
                                                     const std::vector<crypto::PublicKey>& replicas,
                                                     size_t quorum);

// The ledger's certificates as an engine reads them when it (re)starts (bft::Engine::on_start):
// a block the ledger lacks, or holds without its certificate, reads as empty. The engine
// checks every one before it trusts it.
bft::CertificateOf certificates_in(const ledger::State& ledger);

}  // namespace tally::node
