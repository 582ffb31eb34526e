//! Certificates made at run time for tests (feature `test-pki`): a CA and the leaf
//! certificates it signs, as PEM and as files a broker or a client reads.

use std::path::{Path, PathBuf};

/// Subject attribute types for [`TestPki::leaf_with_subject`].
pub use rcgen::DnType;

/// A certificate authority of a test.
pub struct TestPki {
    /// The CA certificate, PEM: what clients and brokers trust.
    pub ca_pem: String,
    ca_key: rcgen::KeyPair,
    ca_params: rcgen::CertificateParams,
}

/// A leaf certificate and its key, written to files.
pub struct LeafFiles {
    /// The certificate chain (leaf, then the CA), PEM.
    pub chain: PathBuf,
    /// The private key, PKCS#8 PEM.
    pub key: PathBuf,
    /// Key then chain in one file: Kafka's PEM key store (`ssl.keystore.type=PEM`).
    pub key_store: PathBuf,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    pub fn new() -> TestPki {
        Self::named("Moldau Test CA")
    }

    pub fn named(common_name: &str) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let ca_cert = params.self_signed(&ca_key).expect("CA certificate");
        TestPki {
            ca_pem: ca_cert.pem(),
            ca_key,
            ca_params: params,
        }
    }

    /// A leaf for `names` (DNS names or IP addresses) with subject `CN=<cn>` and optional
    /// organisational unit and organisation: (chain PEM, key PEM, key pair).
    pub fn leaf_pem(&self, cn: &str, names: &[&str]) -> (String, String, rcgen::KeyPair) {
        self.leaf_with_subject(&[(rcgen::DnType::CommonName, cn)], names)
    }

    /// A leaf with the given subject attributes, in order.
    pub fn leaf_with_subject(
        &self,
        subject: &[(rcgen::DnType, &str)],
        names: &[&str],
    ) -> (String, String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("leaf params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
        let chain = format!("{}{}", cert.pem(), self.ca_pem);
        (chain, key.serialize_pem(), key)
    }

    /// Writes the CA certificate to `dir/ca.pem`.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write ca.pem");
        path
    }

    /// A leaf for `names` with subject `CN=<cn>`, written as `dir/<file_stem>.*`.
    pub fn write_leaf(&self, dir: &Path, file_stem: &str, cn: &str, names: &[&str]) -> LeafFiles {
        let (chain, key, _) = self.leaf_pem(cn, names);
        let files = LeafFiles {
            chain: dir.join(format!("{file_stem}.crt")),
            key: dir.join(format!("{file_stem}.key")),
            key_store: dir.join(format!("{file_stem}.pem")),
        };
        std::fs::write(&files.chain, &chain).expect("write chain");
        std::fs::write(&files.key, &key).expect("write key");
        std::fs::write(&files.key_store, format!("{key}{chain}")).expect("write key store");
        files
    }
}
