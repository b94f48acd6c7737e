// Transactions: building, signing, decoding and checking them; result codes.
//
// A transaction travels as a crypto envelope of type kRequest: sender = the signing account,
// body = a TxBody (ledger.proto). One signature serves as both the transaction's and the
// message's, so each replica verifies a client request once. Its id is SHA-256 of the
// envelope's signed bytes (all but the trailing signature).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"

namespace tally::ledger {

// Every result a transaction can have. The numbers are stored and sent: never reuse one.
//
// What a result records and what it consumes (the one place this is decided):
// - A transfer's checks run in this order, and the first that fails is its result:
//   kMalformed, kBadSignature, kUnknownSender, kNonceTooLow, kNonceTooHigh, kZeroAmount,
//   kSelfTransfer, kInsufficientFunds, kOverflow. A failure moves no money.
// - The nonce: a transfer that passed the nonce checks CONSUMES its nonce (the sender's nonce
//   becomes the transfer's) whether it then succeeds or fails with kZeroAmount, kSelfTransfer,
//   kInsufficientFunds or kOverflow. Failures at or before the nonce check (kMalformed,
//   kBadSignature, kUnknownSender, kNonceTooLow, kNonceTooHigh) consume nothing. Why: a
//   failure past the nonce checks is recorded under its id (below), so a retry of the very
//   same bytes gets the recorded failure back; if the nonce were not consumed, the only transfer
//   the sender could sign next with that nonce and the same recipient and amount would have that
//   same id, and an identical payment could never be made again. With the nonce consumed, the
//   sender just signs the retry with nonce + 1, and later transfers queued behind a failed one
//   still apply.
// - Recording: a transfer's result is recorded in the ledger's transactions table under its
//   id when it is FINAL, i.e. when the same bytes could never get another result later:
//   kOk, kNonceTooLow and the nonce-consuming failures above. Any later copy of it is then a
//   duplicate that gets the first outcome again (duplicate = true) and changes nothing.
//   Not recorded, so that a copy is judged afresh:
//   * kNonceTooHigh and kUnknownSender: "not yet" — the transfer may become valid once the
//     nonces in between apply, or once the account is credited (pipelined or reordered
//     transfers must not fail forever because one arrived early);
//   * kMalformed and kBadSignature: the result is a pure function of the bytes, so a copy gets
//     the same answer anyway; and recording a bad signature under the id would let anyone who
//     saw a transaction block it by ordering a copy with a broken signature first.
//   A kNonceTooHigh execution is kept apart instead, outside every digest (ledger/schema.cc,
//   not_yet_outcomes; a sender's latest 16): a tx query for an id with no final record answers
//   it, at the seq it last executed, so the sender can learn that the network ordered it and
//   it moved nothing.
//   Queries (balance, tx) are never recorded and never touch a nonce.
// - The id of bytes that do not decode (tx_id() below): SHA-256 of the signed bytes when they
//   frame as an envelope, else SHA-256 of all the bytes. It only labels the outcome.
enum class ResultCode : uint8_t {
    kOk = 0,
    kMalformed = 1,          // does not decode, or a field has the wrong size
    kBadSignature = 2,       // the signature is not the sender's over the body
    kUnknownSender = 3,      // the sender has no account
    kInsufficientFunds = 4,  // balance < amount
    kNonceTooLow = 5,        // nonce <= the account's last nonce: already used
    kNonceTooHigh = 6,       // nonce > last + 1: a gap
    kZeroAmount = 7,
    kOverflow = 8,         // the recipient's balance would overflow 64 bits
    kSelfTransfer = 9,     // from == to
    kUnknownAccount = 10,  // a balance query for an account that does not exist
    kUnknownTx = 11,       // a tx query for an id that was never ordered (or never executed
                           // on the answering replica: one that caught up by state transfer)
    // Never a ledger result: a replica's admission refused the request without ordering it
    // because its sender, its connection or the replica has too much pending (node/admission.h).
    // Not final: retry later.
    kBusy = 12,
};

// "ok", "malformed", "bad_signature", "unknown_sender", "insufficient_funds", "nonce_too_low",
// "nonce_too_high", "zero_amount", "overflow", "self_transfer", "unknown_account", "unknown_tx",
// "busy".
std::string_view result_name(ResultCode code);
std::optional<ResultCode> result_from_name(std::string_view name);
// Whether a transfer with this result used up its nonce (the rule above): a client's next
// transfer then carries nonce + 1.
bool consumes_nonce(ResultCode code);

enum class TxKind : uint8_t { kTransfer, kBalanceQuery, kTxQuery };

// A decoded transaction. `envelope` is the exact bytes it arrived as.
struct Tx {
    TxKind kind = TxKind::kTransfer;
    crypto::PublicKey sender{};
    uint64_t nonce = 0;
    crypto::PublicKey to{};       // transfer
    uint64_t amount = 0;          // transfer
    crypto::PublicKey account{};  // balance query
    crypto::Hash queried_tx{};    // tx query
    crypto::Hash id{};            // SHA-256 of the envelope's signed bytes
    std::string envelope;
};

// Signed transaction envelopes, ready to submit.
std::string make_transfer(const crypto::KeyPair& sender, const crypto::PublicKey& to,
                          uint64_t amount, uint64_t nonce);
std::string make_balance_query(const crypto::KeyPair& client, const crypto::PublicKey& account,
                               uint64_t nonce);
std::string make_tx_query(const crypto::KeyPair& client, const crypto::Hash& tx_id, uint64_t nonce);

// Strict decode of a transaction envelope (no signature check): a kRequest envelope whose body
// is a TxBody with sender == the envelope's sender. Error "malformed" with the reason.
Result<Tx> decode_tx(std::string_view envelope);
// The sender's signature over the envelope.
bool verify_tx(const Tx& tx);

// The id of a transaction's bytes: SHA-256 of all but the trailing 64-byte signature when
// `envelope` frames as an envelope (crypto::open without the signature check), else SHA-256
// of all of `envelope` (so even garbage gets a stable label in a block's outcomes).
crypto::Hash tx_id(std::string_view envelope);

}  // namespace tally::ledger
