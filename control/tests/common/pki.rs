//! Certificates for the etcd TLS tests, generated fresh in a temp dir: a CA, etcd's
//! server certificate for 127.0.0.1, a client certificate, an expired client certificate
//! and a second, unrelated CA.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, date_time_ymd};

/// The files, by name: `ca.pem`, `server.pem`/`server-key.pem`, `client.pem`/`client-key.pem`
/// (CN `weft`), `expired.pem`/`expired-key.pem` (CN `weft`, expired in 2020),
/// `other-ca.pem` (a CA that signed nothing here).
#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("CA key");
    (params.self_signed(&key).expect("self-signed CA"), key)
}

fn leaf(cn: &str, sans: &[&str], expired: bool, issuer: &(Certificate, KeyPair)) -> (Certificate, KeyPair) {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    if expired {
        params.not_before = date_time_ymd(2019, 1, 1);
        params.not_after = date_time_ymd(2020, 1, 1);
    }
    let key = KeyPair::generate().expect("leaf key");
    (params.signed_by(&key, &issuer.0, &issuer.1).expect("signed leaf"), key)
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("weft-pki-").tempdir().expect("temp dir");
        let write =
            |name: &str, text: String| std::fs::write(dir.path().join(name), text).expect("write pem");
        let root = ca("weft test CA");
        write("ca.pem", root.0.pem());
        let (other, _) = ca("another CA");
        write("other-ca.pem", other.pem());
        for (name, cn, sans, expired) in [
            ("server", "etcd", &["127.0.0.1", "localhost"][..], false),
            ("client", "weft", &[][..], false),
            ("expired", "weft", &[][..], true),
        ] {
            let (cert, key) = leaf(cn, sans, expired, &root);
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        Pki { dir }
    }

    /// The path of one of the files listed on [`Pki`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
