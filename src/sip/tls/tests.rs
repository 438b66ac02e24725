use super::*;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA and a leaf it signed for `names`, as PEM: (ca, leaf, leaf key).
fn chain(names: &[&str]) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(names)
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    fn put(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

fn identity(f: &Files, cert: &str, key: &str) -> Identity {
    Identity {
        certificate: f.put("cert.pem", cert),
        private_key: f.put("key.pem", key),
    }
}

#[test]
fn a_matching_pair_loads() {
    let f = Files::new();
    let (_, cert, key) = chain(&["tpswitch.test"]);
    assert!(server_config(&identity(&f, &cert, &key)).is_ok());
}

#[test]
fn a_missing_file_names_the_key_and_the_path() {
    let id = Identity {
        certificate: PathBuf::from("/nonexistent/tpswitch/cert.pem"),
        private_key: PathBuf::from("/nonexistent/tpswitch/key.pem"),
    };
    let e = server_config(&id).expect_err("missing file").to_string();
    assert!(
        e.starts_with("sip.tls_certificate: cannot read /nonexistent/tpswitch/cert.pem"),
        "{e}"
    );
    assert!(e.contains("check the path"), "{e}");
}

#[test]
fn a_file_without_pem_sections_says_what_it_lacks() {
    let f = Files::new();
    let (_, _, key) = chain(&["tpswitch.test"]);
    let e = server_config(&identity(&f, "just text\n", &key))
        .expect_err("no certificate")
        .to_string();
    assert!(e.starts_with("sip.tls_certificate: "), "{e}");
    assert!(e.contains("holds no certificate"), "{e}");
    // A key file holding a certificate instead of the key.
    let (_, cert, _) = chain(&["tpswitch.test"]);
    let e = server_config(&identity(&f, &cert, &cert))
        .expect_err("no key")
        .to_string();
    assert!(e.starts_with("sip.tls_private_key: "), "{e}");
    assert!(e.contains("holds no private key"), "{e}");
}

#[test]
fn corrupt_pem_is_named_and_the_key_is_never_echoed() {
    let f = Files::new();
    let (_, cert, key) = chain(&["tpswitch.test"]);
    // Cut the END line off the key: its base64 lines must not appear in
    // the message.
    let cut = key.lines().take(3).collect::<Vec<_>>().join("\n");
    let e = server_config(&identity(&f, &cert, &cut))
        .expect_err("corrupt key")
        .to_string();
    assert!(e.starts_with("sip.tls_private_key: "), "{e}");
    assert!(
        e.contains("is not valid PEM (a section has no END line)"),
        "{e}"
    );
    let secret_line = key.lines().nth(1).expect("a base64 line");
    assert!(!e.contains(secret_line), "{e}");
}

#[test]
fn a_key_of_another_certificate_is_a_mismatch() {
    let f = Files::new();
    let (_, cert, _) = chain(&["tpswitch.test"]);
    let (_, _, other_key) = chain(&["tpswitch.test"]);
    let e = server_config(&identity(&f, &cert, &other_key))
        .expect_err("mismatch")
        .to_string();
    assert!(e.starts_with("sip.tls_private_key: "), "{e}");
    assert!(e.contains("does not belong to the certificate"), "{e}");
}

#[test]
fn trunk_verification_settings_are_checked() {
    let f = Files::new();
    let verify = |ca: Option<PathBuf>, name: &str| TrunkVerification {
        ca_file: ca,
        server_name: name.into(),
    };
    let e = client_config(&verify(None, "not a name!"), None)
        .expect_err("bad name")
        .to_string();
    assert!(e.starts_with("trunk.tls_server_name: "), "{e}");
    let e = client_config(
        &verify(Some(f.put("ca.pem", "nothing")), "carrier.test"),
        None,
    )
    .expect_err("empty CA file")
    .to_string();
    assert!(e.starts_with("trunk.tls_ca_file: "), "{e}");
    let (ca, _, _) = chain(&["carrier.test"]);
    let ok = client_config(&verify(Some(f.put("ca.pem", &ca)), "127.0.0.1"), None);
    assert!(ok.is_ok_and(|(_, n)| matches!(n, ServerName::IpAddress(_))));
}

/// Runs one handshake over an in-memory pipe: the trunk (server) shows a
/// leaf for `cert_names`, we (client) expect `expect`.
async fn handshake(cert_names: &[&str], expect: &str) -> Result<(), String> {
    let f = Files::new();
    let (ca, cert, key) = chain(cert_names);
    let server = server_config(&identity(&f, &cert, &key)).map_err(|e| e.to_string())?;
    let (client, name) = client_config(
        &TrunkVerification {
            ca_file: Some(f.put("ca.pem", &ca)),
            server_name: expect.into(),
        },
        None,
    )
    .map_err(|e| e.to_string())?;
    let (a, b) = tokio::io::duplex(16 * 1024);
    let accept =
        tokio::spawn(async move { tokio_rustls::TlsAcceptor::from(server).accept(b).await });
    let connected = tokio_rustls::TlsConnector::from(client)
        .connect(name, a)
        .await
        .map_err(|e| e.to_string());
    // The server side fails too when we abort; only our verdict matters.
    accept.abort();
    connected.map(|_| ())
}

#[tokio::test]
async fn the_trunk_certificate_must_name_the_host_we_meant() {
    assert_eq!(handshake(&["carrier.test"], "carrier.test").await, Ok(()));
    assert_eq!(handshake(&["127.0.0.1"], "127.0.0.1").await, Ok(()));
    let wrong = handshake(&["carrier.test"], "other.test").await;
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("not valid for name")),
        "{wrong:?}"
    );
}
