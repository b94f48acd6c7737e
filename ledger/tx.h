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
enum class ResultCode : uint8_t {
    kOk = 0,
    kMalformed = 1,          // does not decode, or a field has the wrong size
    kBadSignature = 2,       // the signature is not the sender's over the body
    kUnknownSender = 3,      // the sender has no account
    kInsufficientFunds = 4,  // balance < amount
    kNonceTooLow = 5,        // nonce <= the account's last nonce: already used
    kNonceTooHigh = 6,       // nonce > last + 1: a gap
    kZeroAmount = 7,
    kOverflow = 8,           // the recipient's balance would overflow 64 bits
    kSelfTransfer = 9,       // from == to
    kUnknownAccount = 10,    // a balance query for an account that does not exist
    kUnknownTx = 11,         // a tx query for an id that was never applied
};

// "ok", "malformed", "bad_signature", "unknown_sender", "insufficient_funds", "nonce_too_low",
// "nonce_too_high", "zero_amount", "overflow", "self_transfer", "unknown_account", "unknown_tx".
std::string_view result_name(ResultCode code);
std::optional<ResultCode> result_from_name(std::string_view name);

enum class TxKind : uint8_t { kTransfer, kBalanceQuery, kTxQuery };

// A decoded transaction. `envelope` is the exact bytes it arrived as.
struct Tx {
    TxKind kind = TxKind::kTransfer;
    crypto::PublicKey sender{};
    uint64_t nonce = 0;
    crypto::PublicKey to{};        // transfer
    uint64_t amount = 0;           // transfer
    crypto::PublicKey account{};   // balance query
    crypto::Hash queried_tx{};     // tx query
    crypto::Hash id{};             // SHA-256 of the envelope's signed bytes
    std::string envelope;
};

// Signed transaction envelopes, ready to submit.
std::string make_transfer(const crypto::KeyPair& sender, const crypto::PublicKey& to, uint64_t amount,
                          uint64_t nonce);
std::string make_balance_query(const crypto::KeyPair& client, const crypto::PublicKey& account,
                               uint64_t nonce);
std::string make_tx_query(const crypto::KeyPair& client, const crypto::Hash& tx_id, uint64_t nonce);

// Strict decode of a transaction envelope (no signature check): a kRequest envelope whose body
// is a TxBody with sender == the envelope's sender. Error "malformed" with the reason.
Result<Tx> decode_tx(std::string_view envelope);
// The sender's signature over the envelope.
bool verify_tx(const Tx& tx);

}  // namespace tally::ledger
