// Transactions: result names, building, strict decoding and signature checks (ledger/tx.h).
#include "ledger/tx.h"

#include <gtest/gtest.h>

#include "crypto/hash.h"
#include "ledger_test_util.h"

namespace tally::ledger {
namespace {

using testing::bytes_of;
using testing::key;
using testing::seal_body;

TEST(ResultNames, EveryCodeHasANameThatMapsBack) {
    const char* names[] = {"ok",
                           "malformed",
                           "bad_signature",
                           "unknown_sender",
                           "insufficient_funds",
                           "nonce_too_low",
                           "nonce_too_high",
                           "zero_amount",
                           "overflow",
                           "self_transfer",
                           "unknown_account",
                           "unknown_tx",
                           "busy"};
    for (uint8_t i = 0; i < std::size(names); ++i) {
        auto code = static_cast<ResultCode>(i);
        EXPECT_EQ(result_name(code), names[i]);
        ASSERT_TRUE(result_from_name(names[i]).has_value()) << names[i];
        EXPECT_EQ(*result_from_name(names[i]), code);
    }
    EXPECT_FALSE(result_from_name("").has_value());
    EXPECT_FALSE(result_from_name("OK").has_value());
    EXPECT_FALSE(result_from_name("unknown_result").has_value());
}

TEST(DecodeTx, ATransferDecodesToWhatWasSigned) {
    auto alice = key(1), bob = key(2);
    std::string envelope = make_transfer(alice, bob.public_key(), 250, 7);
    auto tx = decode_tx(envelope);
    ASSERT_TRUE(tx.ok()) << tx.error().message;
    EXPECT_EQ(tx->kind, TxKind::kTransfer);
    EXPECT_EQ(tx->sender, alice.public_key());
    EXPECT_EQ(tx->to, bob.public_key());
    EXPECT_EQ(tx->amount, 250u);
    EXPECT_EQ(tx->nonce, 7u);
    EXPECT_EQ(tx->envelope, envelope);
    EXPECT_EQ(tx->id, crypto::sha256(std::string_view(envelope).substr(0, envelope.size() - 64)));
    EXPECT_EQ(tx_id(envelope), tx->id);
    EXPECT_TRUE(verify_tx(*tx));
}

TEST(DecodeTx, QueriesDecode) {
    auto client = key(3), alice = key(1);
    auto balance = decode_tx(make_balance_query(client, alice.public_key(), 4));
    ASSERT_TRUE(balance.ok());
    EXPECT_EQ(balance->kind, TxKind::kBalanceQuery);
    EXPECT_EQ(balance->account, alice.public_key());
    EXPECT_EQ(balance->nonce, 4u);
    EXPECT_TRUE(verify_tx(*balance));

    crypto::Hash queried = crypto::sha256("some transaction");
    auto status = decode_tx(make_tx_query(client, queried, 5));
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->kind, TxKind::kTxQuery);
    EXPECT_EQ(status->queried_tx, queried);
    EXPECT_TRUE(verify_tx(*status));
}

TEST(DecodeTx, DifferentNoncesGiveDifferentIds) {
    auto alice = key(1), bob = key(2);
    auto a = decode_tx(make_transfer(alice, bob.public_key(), 1, 1));
    auto b = decode_tx(make_transfer(alice, bob.public_key(), 1, 2));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(a->id, b->id);
}

void expect_malformed(const std::string& envelope, const std::string& what) {
    auto tx = decode_tx(envelope);
    ASSERT_FALSE(tx.ok()) << what;
    EXPECT_EQ(tx.error().code, "malformed") << what;
    EXPECT_FALSE(tx.error().message.empty()) << what;
}

pb::TxBody transfer_body(const crypto::KeyPair& from, const crypto::PublicKey& to) {
    pb::TxBody body;
    body.set_sender(bytes_of(from.public_key()));
    body.set_nonce(1);
    body.mutable_transfer()->set_to(bytes_of(to));
    body.mutable_transfer()->set_amount(5);
    return body;
}

TEST(DecodeTx, RefusesEverythingThatIsNotAStrictTxBodyInARequest) {
    auto alice = key(1), bob = key(2);
    expect_malformed("", "empty");
    expect_malformed("definitely not an envelope", "garbage");
    std::string good = make_transfer(alice, bob.public_key(), 5, 1);
    expect_malformed(good.substr(0, good.size() - 1), "truncated");
    expect_malformed(good + "x", "trailing byte");

    std::string body_bytes;
    transfer_body(alice, bob.public_key()).SerializeToString(&body_bytes);
    expect_malformed(crypto::seal(alice, crypto::MessageType::kReply, body_bytes), "a reply");
    expect_malformed(crypto::seal(alice, crypto::MessageType::kRequest, "\xff\xff\xff"),
                     "a body that is no protobuf");
    expect_malformed(crypto::seal(alice, crypto::MessageType::kRequest, body_bytes + "\x30\x01"),
                     "an unknown field");

    pb::TxBody no_op;
    no_op.set_sender(bytes_of(alice.public_key()));
    no_op.set_nonce(1);
    expect_malformed(seal_body(alice, no_op), "no operation");

    // Two operations: a transfer followed by a balance query on the wire (the parser keeps the
    // last; the re-encoding differs, so it is refused).
    pb::TxBody second;
    second.mutable_balance()->set_account(bytes_of(bob.public_key()));
    std::string second_bytes;
    second.SerializeToString(&second_bytes);
    expect_malformed(crypto::seal(alice, crypto::MessageType::kRequest, body_bytes + second_bytes),
                     "two operations");

    pb::TxBody wrong_sender = transfer_body(alice, bob.public_key());
    wrong_sender.set_sender(bytes_of(bob.public_key()));
    expect_malformed(seal_body(alice, wrong_sender), "body sender is not the signer");

    pb::TxBody short_sender = transfer_body(alice, bob.public_key());
    short_sender.set_sender(bytes_of(alice.public_key()).substr(0, 31));
    expect_malformed(seal_body(alice, short_sender), "31-byte sender");

    pb::TxBody long_to = transfer_body(alice, bob.public_key());
    long_to.mutable_transfer()->set_to(bytes_of(bob.public_key()) + "x");
    expect_malformed(seal_body(alice, long_to), "33-byte recipient");

    pb::TxBody bad_account;
    bad_account.set_sender(bytes_of(alice.public_key()));
    bad_account.mutable_balance()->set_account("short");
    expect_malformed(seal_body(alice, bad_account), "short account");

    pb::TxBody bad_tx_id;
    bad_tx_id.set_sender(bytes_of(alice.public_key()));
    bad_tx_id.mutable_tx()->set_tx_id(std::string(31, 'a'));
    expect_malformed(seal_body(alice, bad_tx_id), "short tx id");
}

TEST(VerifyTx, DetectsAForgedSignatureAndAnAlteredBody) {
    auto alice = key(1), bob = key(2), mallory = key(9);
    std::string envelope = make_transfer(alice, bob.public_key(), 5, 1);
    auto broken = decode_tx(testing::break_signature(envelope));
    ASSERT_TRUE(broken.ok());  // decoding never looks at the signature
    EXPECT_FALSE(verify_tx(*broken));

    // Mallory signs a body claiming to be from Alice, in an envelope naming Alice.
    pb::TxBody forged = transfer_body(alice, mallory.public_key());
    std::string forged_bytes;
    forged.SerializeToString(&forged_bytes);
    std::string by_mallory = crypto::seal(mallory, crypto::MessageType::kRequest, forged_bytes);
    // Put Alice's key in the frame's sender field (offset 2).
    by_mallory.replace(2, 32, bytes_of(alice.public_key()));
    auto tx = decode_tx(by_mallory);
    ASSERT_TRUE(tx.ok());
    EXPECT_FALSE(verify_tx(*tx));
}

// decode_tx looks for unknown fields in the body and in the operation it carries: every
// operation TxBody has, filled with valid fields, decodes; with one unknown field more inside
// it, it is refused. A message anywhere else in TxBody, or inside an operation, would need the
// check to look there too.
TEST(DecodeTx, RefusesAnUnknownFieldInsideEachOperation) {
    auto alice = key(1), bob = key(2);
    const auto* op = pb::TxBody::descriptor()->FindOneofByName("op");
    ASSERT_NE(op, nullptr);
    ASSERT_GE(op->field_count(), 3);
    for (int i = 0; i < pb::TxBody::descriptor()->field_count(); ++i) {
        const auto* field = pb::TxBody::descriptor()->field(i);
        if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
            EXPECT_EQ(field->containing_oneof(), op) << field->name() << " is a message outside op";
        }
    }
    for (int i = 0; i < op->field_count(); ++i) {
        const auto* field = op->field(i);
        SCOPED_TRACE(field->name());
        pb::TxBody body;
        body.set_sender(bytes_of(alice.public_key()));
        body.set_nonce(1);
        auto* operation = body.GetReflection()->MutableMessage(&body, field);
        const auto* reflection = operation->GetReflection();
        for (int j = 0; j < operation->GetDescriptor()->field_count(); ++j) {
            const auto* inner = operation->GetDescriptor()->field(j);
            // One level: an operation holding a message would need the check to go deeper.
            ASSERT_NE(inner->cpp_type(), google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE);
            if (inner->type() == google::protobuf::FieldDescriptor::TYPE_BYTES)
                reflection->SetString(operation, inner, bytes_of(bob.public_key()));
            else if (inner->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64)
                reflection->SetUInt64(operation, inner, 5);
        }
        ASSERT_TRUE(decode_tx(seal_body(alice, body)).ok());

        reflection->MutableUnknownFields(operation)->AddVarint(99, 1);
        auto refused = decode_tx(seal_body(alice, body));
        ASSERT_FALSE(refused.ok());
        EXPECT_EQ(refused.error().code, "malformed");
        EXPECT_NE(refused.error().message.find("canonically"), std::string::npos)
            << refused.error().message;
    }
}

TEST(TxId, GarbageGetsTheHashOfAllItsBytes) {
    EXPECT_EQ(tx_id("garbage"), crypto::sha256("garbage"));
    EXPECT_EQ(tx_id(""), crypto::sha256(""));
}

}  // namespace
}  // namespace tally::ledger
