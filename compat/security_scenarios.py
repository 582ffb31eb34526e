"""Security scenarios (issue 11): the four real clients over SSL, mutual TLS, SASL_PLAINTEXT
and SASL_SSL with PLAIN and SCRAM, against one broker whose key and trust stores are made
by the JDK's keytool (PKCS12, as Kafka operators make them) and whose SCRAM users are
created with the clients' own admin APIs.

Registered into scenarios.SCENARIOS by scenarios.py.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

from harness import clients as C
from harness.broker import Broker, free_port
from harness.util import CheckFailed, check, compare, gen_records, now_ms

STORE_PASSWORD = "compat-pass"
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_alice="alice-secret" user_bob="bob-secret";')


def _keytool(workdir: Path, *args: str) -> None:
    cp = subprocess.run(["keytool", *args], cwd=str(workdir), stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, timeout=60)
    if cp.returncode != 0:
        raise CheckFailed(f"keytool {' '.join(args[:2])} failed: {cp.stdout.decode(errors='replace')[-500:]}")


class Pki:
    """A CA, the broker's key store and trust store, and a client key store, by keytool."""

    def __init__(self, workdir: Path):
        self.dir = workdir / "pki"
        self.dir.mkdir(parents=True, exist_ok=True)
        d, pw = self.dir, STORE_PASSWORD
        _keytool(d, "-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=Compat CA",
                 "-ext", "bc:c", "-validity", "3", "-keystore", "ca.p12", "-storetype", "PKCS12", "-storepass", pw)
        _keytool(d, "-exportcert", "-alias", "ca", "-keystore", "ca.p12", "-storepass", pw, "-rfc", "-file", "ca.pem")
        _keytool(d, "-importcert", "-alias", "ca", "-file", "ca.pem", "-keystore", "truststore.p12",
                 "-storetype", "PKCS12", "-storepass", pw, "-noprompt")
        self.ca_pem = d / "ca.pem"
        self.truststore = d / "truststore.p12"
        self.broker_store = self._leaf("broker", "CN=broker,OU=compat,O=Moldau", "ip:127.0.0.1,dns:localhost")
        self.alice_store = self._leaf("alice", "CN=alice,OU=clients,O=Moldau", None)
        # PEM copies of alice's certificate and key for clients that want files (kafka-python).
        self.alice_crt = d / "alice.crt"
        self.alice_key = d / "alice.key"
        for out, flags in ((self.alice_crt, ["-nokeys"]), (self.alice_key, ["-nocerts", "-nodes"])):
            cp = subprocess.run(["openssl", "pkcs12", "-in", str(self.alice_store), "-passin", f"pass:{pw}",
                                 "-out", str(out), *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=60)
            check(cp.returncode == 0, f"openssl pkcs12: {cp.stdout.decode(errors='replace')[-300:]}")

    def _leaf(self, name: str, dname: str, san) -> Path:
        d, pw = self.dir, STORE_PASSWORD
        store = f"{name}.p12"
        ext = ["-ext", f"SAN={san}"] if san else []
        _keytool(d, "-genkeypair", "-alias", name, "-keyalg", "RSA", "-keysize", "2048", "-dname", dname,
                 "-validity", "3", "-keystore", store, "-storetype", "PKCS12", "-storepass", pw, *ext)
        _keytool(d, "-certreq", "-alias", name, "-keystore", store, "-storepass", pw, "-file", f"{name}.csr")
        _keytool(d, "-gencert", "-alias", "ca", "-keystore", "ca.p12", "-storepass", pw, "-infile", f"{name}.csr",
                 "-outfile", f"{name}.signed", "-rfc", "-validity", "3", *ext)
        _keytool(d, "-importcert", "-alias", "ca", "-file", "ca.pem", "-keystore", store, "-storepass", pw,
                 "-noprompt")
        _keytool(d, "-importcert", "-alias", name, "-file", f"{name}.signed", "-keystore", store,
                 "-storepass", pw, "-noprompt")
        return d / store


class SecureBroker:
    """One broker with PLAINTEXT (readiness, admin), SSL (server-authenticated), MTLS (an
    SSL listener requiring client certificates), SASL_PLAINTEXT and SASL_SSL listeners."""

    def __init__(self, ctx, pki: Pki):
        self.ports = {name: free_port() for name in ("SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL")}
        self.pki = pki
        broker = Broker(ctx.workdir / f"node{len(ctx.brokers)}")
        listeners = ",".join([f"PLAINTEXT://127.0.0.1:{broker.port}"]
                             + [f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()])
        broker.extra.update({
            "listeners": listeners,
            "advertised.listeners": listeners,
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name": "PLAINTEXT",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(pki.broker_store),
            "ssl.keystore.password": STORE_PASSWORD,
            "ssl.key.password": STORE_PASSWORD,
            # Kafka's default type (JKS) reading a PKCS12 file, as Java does.
            "ssl.truststore.location": str(pki.truststore),
            "ssl.truststore.password": STORE_PASSWORD,
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        })
        ctx.brokers.append(broker)
        self.broker = broker.start()

    def addr(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


def _configs(pki: Pki, mode: str, user: str = "alice", password: str = "alice-secret"
             ) -> Tuple[str, dict, dict, dict, List[str]]:
    """(listener, confluent conf, kafka-python conf, Java conf, kcat -X args) for a mode."""
    ca, trust = str(pki.ca_pem), str(pki.truststore)
    java_trust = {"ssl.truststore.location": trust, "ssl.truststore.password": STORE_PASSWORD,
                  "ssl.truststore.type": "PKCS12"}
    if mode == "ssl":
        return ("SSL", {"security.protocol": "SSL", "ssl.ca.location": ca},
                {"security_protocol": "SSL", "ssl_cafile": ca},
                {"security.protocol": "SSL", **java_trust},
                ["security.protocol=SSL", f"ssl.ca.location={ca}"])
    if mode == "mtls":
        store = str(pki.alice_store)
        return ("MTLS", {"security.protocol": "SSL", "ssl.ca.location": ca, "ssl.keystore.location": store,
                         "ssl.keystore.password": STORE_PASSWORD},
                {"security_protocol": "SSL", "ssl_cafile": ca, "ssl_certfile": str(pki.alice_crt),
                 "ssl_keyfile": str(pki.alice_key)},
                {"security.protocol": "SSL", **java_trust, "ssl.keystore.location": store,
                 "ssl.keystore.password": STORE_PASSWORD, "ssl.keystore.type": "PKCS12",
                 "ssl.key.password": STORE_PASSWORD},
                ["security.protocol=SSL", f"ssl.ca.location={ca}", f"ssl.certificate.location={pki.alice_crt}",
                 f"ssl.key.location={pki.alice_key}"])
    protocol, mechanism = {"sasl-plain": ("SASL_PLAINTEXT", "PLAIN"),
                           "sasl-scram256": ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
                           "sasl-ssl-scram512": ("SASL_SSL", "SCRAM-SHA-512"),
                           "sasl-ssl-plain": ("SASL_SSL", "PLAIN")}[mode]
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    jaas = f'{module} required username="{user}" password="{password}";'
    ck = {"security.protocol": protocol, "sasl.mechanism": mechanism, "sasl.username": user,
          "sasl.password": password}
    kp = {"security_protocol": protocol, "sasl_mechanism": mechanism, "sasl_plain_username": user,
          "sasl_plain_password": password}
    java = {"security.protocol": protocol, "sasl.mechanism": mechanism, "sasl.jaas.config": jaas}
    kcat = [f"security.protocol={protocol}", f"sasl.mechanisms={mechanism}", f"sasl.username={user}",
            f"sasl.password={password}"]
    if protocol == "SASL_SSL":
        ck["ssl.ca.location"] = ca
        kp["ssl_cafile"] = ca
        java.update(java_trust)
        kcat.append(f"ssl.ca.location={ca}")
    return protocol, ck, kp, java, kcat


def _create_scram_users(ctx, bootstrap: str) -> None:
    """SCRAM credentials through the clients' admin APIs: confluent-kafka sets alice's,
    the Java admin client describes them."""
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # One request per mechanism: Kafka refuses a user named twice in one request
    # (DUPLICATE_RESOURCE), whatever the mechanisms.
    for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        upsert = UserScramCredentialUpsertion("alice", ScramCredentialInfo(m, 8192), b"alice-secret")
        for user, fut in admin.alter_user_scram_credentials([upsert]).items():
            fut.result(timeout=30)
    described = admin.describe_user_scram_credentials(["alice"])
    desc = described["alice"].result(timeout=30) if isinstance(described, dict) else described.result(timeout=30)["alice"]
    mechanisms = sorted(str(i.mechanism) for i in desc.scram_credential_infos)
    iterations = sorted(i.iterations for i in desc.scram_credential_infos)
    ctx.log(f"SCRAM credentials of alice: {mechanisms} {iterations}")
    check(len(mechanisms) == 2 and iterations == [8192, 8192], f"describe after alter: {mechanisms} {iterations}")


def _round_trip(ctx, sb: SecureBroker, client: str, mode: str) -> None:
    listener, ck, kp, java, kcat = _configs(sb.pki, mode)
    bs = sb.addr(listener)
    topic = f"sec-{mode}-{client}".replace("_", "-")
    base = now_ms() - 60_000
    if client == "kcat":
        recs = [r for r in gen_records(topic, 12, base, f"{mode}-{client}", with_specials=False, headers=False)]
        extra = [a for kv in kcat for a in ("-X", kv)]
        C.kcat_produce(bs, topic, recs, extra=extra)
        got = C.kcat_consume(bs, topic, extra=extra, count=len(recs))
        check(sorted(r.value for r in got) == sorted(r.value for r in recs),
              f"kcat over {mode}: read {len(got)} of {len(recs)} records")
        return
    recs = gen_records(topic, 20, base, f"{mode}-{client}")
    if client == "confluent":
        sent = C.ck_produce(bs, recs, conf=ck)
        got = C.ck_consume(bs, topic, conf=ck)
    elif client == "kafka-python":
        sent = C.kp_produce(bs, recs, conf=kp)
        got = C.kp_consume(bs, topic, conf=kp)
    else:
        sent = C.java_produce(bs, recs, conf=java)
        got = C.java_consume(bs, [topic], conf=java)[topic]
    problems = compare(sent, got, f"{client} over {mode}")
    check(not problems, "\n".join(problems))


def _refused(ctx, sb: SecureBroker, mode: str, **wrong) -> None:
    """A client with wrong credentials (or none) gets no records in."""
    listener, ck, _, java, _ = _configs(sb.pki, mode, **wrong)
    if mode == "mtls":
        ck = {k: v for k, v in ck.items() if not k.startswith("ssl.keystore")}
        java = {k: v for k, v in java.items() if not k.startswith("ssl.keystore") and k != "ssl.key.password"}
    bs = sb.addr(listener)
    recs = gen_records(f"refused-{mode}", 3, now_ms(), "refused", with_specials=False)
    try:
        C.ck_produce(bs, recs, conf={**ck, "message.timeout.ms": 5000}, timeout=15)
    except CheckFailed as e:
        ctx.log(f"confluent-kafka refused over {mode}: {str(e)[:160]}")
    else:
        raise CheckFailed(f"confluent-kafka produced over {mode} with {wrong or 'no certificate'}")
    lines = C.java_produce_lines(bs, recs, {**java, "delivery.timeout.ms": "8000", "request.timeout.ms": "5000",
                                            "max.block.ms": "8000"}, timeout=60)
    check(lines and all(ln.startswith("err") for ln in lines), f"Java producer over {mode} with bad credentials: {lines[:3]}")
    auth_errors = [ln for ln in lines if "Authentication" in ln or "SSL" in ln or "Timeout" in ln]
    ctx.log(f"Java refused over {mode}: {lines[0][:200]}")
    check(auth_errors, f"Java producer over {mode}: unexpected errors {lines[:3]}")


def register(scenario):
    @scenario
    def security_tls(ctx):
        """SSL and mutual TLS with keytool-made PKCS12 stores: confluent-kafka, kafka-python, Java, kcat produce and consume; a client without a certificate is refused by the mTLS listener"""
        pki = Pki(ctx.workdir)
        sb = SecureBroker(ctx, pki)
        for mode in ("ssl", "mtls"):
            for client in ("confluent", "kafka-python", "java", "kcat"):
                _round_trip(ctx, sb, client, mode)
                ctx.log(f"{client} over {mode}: produced and consumed")
        _refused(ctx, sb, "mtls")

    @scenario
    def security_sasl(ctx):
        """SASL PLAIN and SCRAM-SHA-256/512 over SASL_PLAINTEXT and SASL_SSL with all four clients (SCRAM users made with confluent-kafka's admin API); wrong passwords are refused"""
        pki = Pki(ctx.workdir)
        sb = SecureBroker(ctx, pki)
        _create_scram_users(ctx, sb.broker.bootstrap)
        for mode in ("sasl-plain", "sasl-scram256", "sasl-ssl-scram512", "sasl-ssl-plain"):
            for client in ("confluent", "kafka-python", "java", "kcat"):
                _round_trip(ctx, sb, client, mode)
                ctx.log(f"{client} over {mode}: produced and consumed")
        _refused(ctx, sb, "sasl-plain", password="wrong")
        _refused(ctx, sb, "sasl-ssl-scram512", password="wrong")
        _refused(ctx, sb, "sasl-scram256", user="mallory")


def _acl_broker(ctx, pki: Pki) -> SecureBroker:
    """A SecureBroker with the StandardAuthorizer; `admin` is a super user."""
    sb = SecureBroker.__new__(SecureBroker)
    sb.ports = {name: free_port() for name in ("SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL")}
    sb.pki = pki
    broker = Broker(ctx.workdir / f"node{len(ctx.brokers)}")
    listeners = ",".join([f"SASL_PLAINTEXT://127.0.0.1:{broker.port}"]
                         + [f"{n}://127.0.0.1:{p}" for n, p in sb.ports.items() if n == "SASL_SSL"])
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
            'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')
    broker.extra.update({
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.broker_store),
        "ssl.keystore.password": STORE_PASSWORD,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
    })
    ctx.brokers.append(broker)
    # The harness's readiness probe speaks plaintext ApiVersions, which a SASL listener
    # answers before authentication.
    sb.broker = broker.start()
    sb.ports["SASL_PLAINTEXT"] = broker.port
    return sb


def register_acls(scenario):
    @scenario
    def security_acls(ctx):
        """StandardAuthorizer: confluent-kafka's and kafka-python's admin clients create, describe and delete ACLs; the Java producer and consumer are refused (TopicAuthorizationException, GroupAuthorizationException), then let through"""
        from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                           AdminClient, ResourcePatternType, ResourceType)
        pki = Pki(ctx.workdir)
        sb = _acl_broker(ctx, pki)
        bs = sb.addr("SASL_PLAINTEXT")
        as_admin = {"bootstrap.servers": bs, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                    "sasl.username": "admin", "sasl.password": "admin-secret"}
        C.ck_produce(bs, gen_records("acl-orders", 5, now_ms() - 1000, "admin", with_specials=False),
                     conf={k: v for k, v in as_admin.items() if k != "bootstrap.servers"})
        alice_java = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                      "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                                          'username="alice" password="alice-secret";'}
        recs = gen_records("acl-orders", 5, now_ms(), "alice", with_specials=False)
        lines = C.java_produce_lines(bs, recs, {**alice_java, "delivery.timeout.ms": "8000",
                                                "request.timeout.ms": "5000", "max.block.ms": "8000"})
        check(lines and all("TopicAuthorizationException" in ln for ln in lines),
              f"Java producer without ACLs: {lines[:2]}")
        ctx.log(f"Java producer refused: {lines[0][:160]}")

        admin = AdminClient(as_admin)
        bindings = [
            AclBinding(ResourceType.TOPIC, "acl-", ResourcePatternType.PREFIXED, "User:alice", "*",
                       AclOperation.WRITE, AclPermissionType.ALLOW),
            AclBinding(ResourceType.TOPIC, "acl-orders", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.READ, AclPermissionType.ALLOW),
            AclBinding(ResourceType.GROUP, "acl-readers", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.READ, AclPermissionType.ALLOW),
        ]
        for binding, fut in admin.create_acls(bindings).items():
            fut.result(timeout=30)
        described = admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None,
                                                         None, AclOperation.ANY, AclPermissionType.ANY)).result(30)
        check(len(described) == 3, f"confluent-kafka describe_acls: {described}")
        # kafka-python's admin client sees the same three.
        from kafka.admin import KafkaAdminClient, ACLFilter, ResourcePatternFilter
        from kafka.admin import ACLOperation as KOp, ACLPermissionType as KPerm, ACLResourcePatternType as KPat
        from kafka.admin import ResourceType as KRes
        kadmin = KafkaAdminClient(bootstrap_servers=bs, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                                  sasl_plain_username="admin", sasl_plain_password="admin-secret")
        acls, error = kadmin.describe_acls(ACLFilter(principal=None, host="*", operation=KOp.ANY,
                                                      permission_type=KPerm.ANY,
                                                      resource_pattern=ResourcePatternFilter(KRes.ANY, None, KPat.ANY)))
        kadmin.close()
        check(len(acls) == 3, f"kafka-python describe_acls: {acls} {error}")
        ctx.log("ACLs created with confluent-kafka, described by both Python admin clients")

        sent = C.java_produce(bs, recs, conf=alice_java)
        got = C.java_consume(bs, ["acl-orders"], conf={**alice_java, "group.id": "acl-readers"})["acl-orders"]
        check(len(got) == 10, f"alice read {len(got)} of 10 records of acl-orders")
        lines = C.java_produce_lines(bs, gen_records("other", 2, now_ms(), "alice", with_specials=False),
                                     {**alice_java, "delivery.timeout.ms": "8000", "request.timeout.ms": "5000",
                                      "max.block.ms": "8000"})
        check(all("TopicAuthorizationException" in ln for ln in lines), f"a topic outside acl-*: {lines[:2]}")
        ctx.log(f"alice produced {len(sent)} and read {len(got)} with the ACLs; other topics still refused")

        deleted = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "acl-", ResourcePatternType.PREFIXED,
                                                      None, None, AclOperation.ANY, AclPermissionType.ANY)])
        for _, fut in deleted.items():
            check(len(fut.result(timeout=30)) == 1, "delete_acls removed the prefixed ACL")
        # Without idempotence (whose InitProducerId would be refused first, with no WRITE on
        # any topic left, and which the Java client may then raise from send() itself), the
        # refusal is the topic's.
        lines = C.java_produce_lines(bs, gen_records("acl-orders", 2, now_ms(), "alice", with_specials=False),
                                     {**alice_java, "enable.idempotence": "false", "acks": "1",
                                      "delivery.timeout.ms": "8000", "request.timeout.ms": "5000",
                                      "max.block.ms": "8000"})
        check(lines and all("TopicAuthorizationException" in ln for ln in lines),
              f"after delete_acls: {lines[:2]}")


def _b64url(data: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JwtIssuer:
    """An RSA key made by openssl, its JWKS file, and RS256 tokens signed with it (the
    signature by `openssl dgst`): what an identity provider hands Kafka clients."""

    def __init__(self, workdir: Path, name: str, kid: str):
        self.dir = workdir / "jwt"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / f"{name}.key"
        self.kid = kid
        subprocess.run(["openssl", "genrsa", "-out", str(self.key), "2048"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        modulus = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-noout", "-modulus"], check=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60).stdout
        n = bytes.fromhex(modulus.decode().strip().split("=", 1)[1])
        self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": _b64url(n), "e": "AQAB"}

    def write_jwks(self, *issuers: "JwtIssuer") -> Path:
        import json
        path = self.dir / "jwks.json"
        path.write_text(json.dumps({"keys": [i.jwk for i in (self, *issuers)]}))
        return path

    def token(self, sub: str, lifetime_s: int = 3600, **claims) -> str:
        import json
        import time as _time
        now = int(_time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        payload = {"sub": sub, "iat": now, "exp": now + lifetime_s, "iss": "compat-idp", "aud": "moldau",
                   "scope": "kafka", **claims}
        signing_input = (_b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(payload).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             check=True, stdout=subprocess.PIPE, timeout=60).stdout
        return signing_input + "." + _b64url(sig)


def register_oauth(scenario):
    @scenario
    def security_oauthbearer(ctx):
        """OAUTHBEARER (KIP-768): RS256 tokens verified against a JWKS file; confluent-kafka (oauth_cb), kafka-python (token provider) and the Java client (a file token endpoint) produce and consume; a token of another key and an expired one are refused"""
        import time as _time
        idp = JwtIssuer(ctx.workdir, "idp", "idp-key-1")
        stranger = JwtIssuer(ctx.workdir, "stranger", "idp-key-1")
        jwks = idp.write_jwks()
        broker = Broker(ctx.workdir / f"node{len(ctx.brokers)}")
        sasl_port = free_port()
        listeners = f"PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
        broker.extra.update({
            "listeners": listeners,
            "advertised.listeners": listeners,
            "sasl.enabled.mechanisms": "OAUTHBEARER",
            "sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
            "sasl.oauthbearer.expected.audience": "moldau",
            "sasl.oauthbearer.expected.issuer": "compat-idp",
            # Kafka wants the login module named for the listener's mechanism.
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        })
        ctx.brokers.append(broker)
        broker.start()
        bs = f"127.0.0.1:{sasl_port}"

        def ck_conf(token: str) -> dict:
            return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                    "oauth_cb": lambda _config: (token, _time.time() + 3600)}

        good = idp.token("alice")
        recs = gen_records("oauth-ck", 10, now_ms() - 1000, "oauth-ck")
        sent = C.ck_produce(bs, recs, conf=ck_conf(good))
        got = C.ck_consume(bs, "oauth-ck", conf=ck_conf(good))
        check(not compare(sent, got, "confluent-kafka over OAUTHBEARER"), "confluent-kafka round trip")
        ctx.log("confluent-kafka: produced and consumed with a signed token")

        from kafka.net.sasl.oauth import AbstractTokenProvider

        class Provider(AbstractTokenProvider):
            def __init__(self, value):
                self.value = value

            def token(self):
                return self.value

        kp = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
              "sasl_oauth_token_provider": Provider(good)}
        recs = gen_records("oauth-kp", 10, now_ms() - 1000, "oauth-kp")
        sent = C.kp_produce(bs, recs, conf=kp)
        got = C.kp_consume(bs, "oauth-kp", conf=kp)
        check(not compare(sent, got, "kafka-python over OAUTHBEARER"), "kafka-python round trip")
        ctx.log("kafka-python: produced and consumed with a signed token")

        token_file = ctx.workdir / "jwt" / "alice.token"
        token_file.write_text(good)
        java = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                "sasl.login.callback.handler.class":
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
                "sasl.oauthbearer.token.endpoint.url": f"file://{token_file}",
                "sasl.jaas.config":
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"}
        recs = gen_records("oauth-java", 10, now_ms() - 1000, "oauth-java")
        sent = C.java_produce(bs, recs, conf=java)
        got = C.java_consume(bs, ["oauth-java"], conf=java)["oauth-java"]
        check(not compare(sent, got, "Java over OAUTHBEARER"), "Java round trip")
        ctx.log("Java: produced and consumed with a token from a file token endpoint")

        for label, token in (("another key", stranger.token("alice")),
                             ("expired", idp.token("alice", lifetime_s=-600))):
            try:
                C.ck_produce(bs, gen_records("oauth-refused", 2, now_ms(), "x", with_specials=False),
                             conf={**ck_conf(token), "message.timeout.ms": 5000}, timeout=15)
            except CheckFailed:
                ctx.log(f"confluent-kafka refused with a token of {label}")
            else:
                raise CheckFailed(f"a token of {label} was accepted")
