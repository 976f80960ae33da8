#!/usr/bin/env python3
"""SCRAM credentials managed with confluent-kafka's AdminClient (KIP-554).

Usage:
  scram_admin.py roundtrip PLAINTEXT_BOOTSTRAP SASL_BOOTSTRAP
      bob gets SCRAM-SHA-256 and SCRAM-SHA-512 credentials (password bob-1), describe shows both
      with their iterations, bob logs in over SASL with each mechanism; then bob-2 replaces the
      SHA-512 one: bob-2 logs in, bob-1 is refused at once; the SHA-256 credential is deleted:
      describe shows only SHA-512, and a SHA-256 login is refused. Every error case of the
      APIs answers Kafka's error code; producing to or deleting the credentials topic is
      refused. Prints "OK".
  scram_admin.py set PLAINTEXT_BOOTSTRAP USER PASSWORD      (SCRAM-SHA-512, 8192 iterations)
  scram_admin.py login SASL_BOOTSTRAP MECHANISM USER PASSWORD
      prints "LOGIN OK" or "LOGIN REFUSED".
"""

import sys
import time

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

TIMEOUT_S = 20


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def login(bootstrap, mechanism, user, password):
    errors = []
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mechanism,
            "sasl.username": user,
            "sasl.password": password,
            "error_cb": lambda e: errors.append(e),
        }
    )
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            p.list_topics(timeout=2)
            return True
        except KafkaException:
            p.poll(0.2)  # serves error_cb
            if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
                return False
    fail(f"{user} {mechanism}: neither logged in nor refused: {errors}")


def alter(a, changes):
    """user -> error code (0 for success) of one AlterUserScramCredentials request."""
    out = {}
    for user, fut in a.alter_user_scram_credentials(changes).items():
        try:
            fut.result(timeout=TIMEOUT_S)
            out[user] = 0
        except KafkaException as e:
            out[user] = e.args[0].code()
    return out


def describe(a, users):
    out = {}
    for user, fut in a.describe_user_scram_credentials(users).items():
        try:
            d = fut.result(timeout=TIMEOUT_S)
            out[user] = sorted(
                (i.mechanism, i.iterations) for i in d.scram_credential_infos
            )
        except KafkaException as e:
            out[user] = e.args[0].code()
    return out


def upsert(user, mechanism, iterations, password):
    return UserScramCredentialUpsertion(
        user, ScramCredentialInfo(mechanism, iterations), password.encode()
    )


def roundtrip(plain, sasl):
    a = admin(plain)
    sha256, sha512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512
    got = alter(a, [upsert("bob", sha256, 4096, "bob-1")])
    if got != {"bob": 0}:
        fail(f"upsert bob SHA-256: {got}")
    got = alter(a, [upsert("bob", sha512, 8192, "bob-1")])
    if got != {"bob": 0}:
        fail(f"upsert bob SHA-512: {got}")
    got = describe(a, ["bob"])
    if got != {"bob": [(sha256, 4096), (sha512, 8192)]}:
        fail(f"describe bob: {got}")
    for m in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        if not login(sasl, m, "bob", "bob-1"):
            fail(f"bob-1 refused with {m}")
    got = alter(a, [upsert("bob", sha512, 4096, "bob-2")])
    if got != {"bob": 0}:
        fail(f"change bob's password: {got}")
    if not login(sasl, "SCRAM-SHA-512", "bob", "bob-2"):
        fail("the new password is refused")
    if login(sasl, "SCRAM-SHA-512", "bob", "bob-1"):
        fail("the old password still logs in")
    got = alter(a, [UserScramCredentialDeletion("bob", sha256)])
    if got != {"bob": 0}:
        fail(f"delete bob SHA-256: {got}")
    got = describe(a, ["bob"])
    if got != {"bob": [(sha512, 4096)]}:
        fail(f"describe bob after the deletion: {got}")
    if login(sasl, "SCRAM-SHA-256", "bob", "bob-1"):
        fail("a deleted credential still logs in")

    # Kafka's validations.
    cases = [
        ("too few iterations", [upsert("carol", sha256, 4095, "x")], "carol",
         KafkaError.UNACCEPTABLE_CREDENTIAL),
        ("too many iterations", [upsert("carol", sha256, 16385, "x")], "carol",
         KafkaError.UNACCEPTABLE_CREDENTIAL),
        ("duplicate user", [upsert("carol", sha256, 4096, "x"),
                            upsert("carol", sha512, 4096, "x")], "carol",
         KafkaError.DUPLICATE_RESOURCE),
        ("delete a missing credential", [UserScramCredentialDeletion("carol", sha256)],
         "carol", KafkaError.RESOURCE_NOT_FOUND),
    ]
    for what, changes, user, code in cases:
        try:
            got = alter(a, changes)
        except (ValueError, KafkaException) as e:
            fail(f"{what}: the client refused it itself: {e}")
        if got.get(user) != code:
            fail(f"{what}: {got}, expected {code}")
    got = describe(a, ["nobody"])
    if got != {"nobody": KafkaError.RESOURCE_NOT_FOUND}:
        fail(f"describe an unknown user: {got}")
    # Nothing of the refused requests was applied.
    if describe(a, ["carol"]) != {"carol": KafkaError.RESOURCE_NOT_FOUND}:
        fail("a refused request left a credential behind")
    # The credentials topic is the broker's own.
    errs = []
    p = Producer({"bootstrap.servers": plain, "message.timeout.ms": 15000})
    p.produce("__datasync_scram_credentials", b"forged", key=b"k",
              on_delivery=lambda e, m: errs.append(e))
    p.flush(20)
    if len(errs) != 1 or errs[0] is None:
        fail(f"a client produced to the credentials topic: {errs}")
    try:
        a.delete_topics(["__datasync_scram_credentials"])[
            "__datasync_scram_credentials"].result(timeout=TIMEOUT_S)
        fail("a client deleted the credentials topic")
    except KafkaException:
        pass
    print("OK")


def main():
    mode = sys.argv[1]
    if mode == "roundtrip":
        roundtrip(sys.argv[2], sys.argv[3])
    elif mode == "set":
        got = alter(
            admin(sys.argv[2]),
            [upsert(sys.argv[3], ScramMechanism.SCRAM_SHA_512, 8192, sys.argv[4])],
        )
        if got != {sys.argv[3]: 0}:
            fail(f"set: {got}")
        print("SET")
    elif mode == "login":
        ok = login(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
        print("LOGIN OK" if ok else "LOGIN REFUSED")
    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
