use super::*;

/// Pull `name=` out of our own header value (quoted or not).
fn field<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    let start = header.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &header[start..];
    if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()
    } else {
        rest.split(',').next()
    }
}

// RFC 7616 §3.9.1, with the header's line folding left in.
const RFC7616_SHA256: &str = "Digest\r\n    realm=\"http-auth@example.org\",\r\n    qop=\"auth, auth-int\",\r\n    algorithm=SHA-256,\r\n    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const RFC7616_MD5: &str = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

#[test]
fn rfc7616_sha256_vector() {
    let ch = parse_challenge(RFC7616_SHA256).unwrap();
    assert_eq!(ch.algorithm, Algorithm::Sha256);
    assert!(ch.qop_auth && ch.algorithm_given && !ch.stale);
    let h = authorize(
        &ch,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        RFC7616_CNONCE,
        1,
    );
    assert_eq!(
        field(&h, "response"),
        Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
    );
    assert_eq!(
        h,
        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", uri=\"/dir/index.html\", \
         response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
         algorithm=SHA-256, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", qop=auth, nc=00000001"
    );
}

#[test]
fn rfc7616_md5_vector() {
    let ch = parse_challenge(RFC7616_MD5).unwrap();
    assert_eq!(ch.algorithm, Algorithm::Md5);
    let h = authorize(
        &ch,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        RFC7616_CNONCE,
        1,
    );
    assert_eq!(
        field(&h, "response"),
        Some("8ca523f5e9506fed4657c9700eebdbec")
    );
    assert_eq!(field(&h, "algorithm"), Some("MD5"));
}

#[test]
fn rfc2617_md5_qop_vector() {
    // RFC 2617 §3.5 (no algorithm parameter: MD5 by default, not echoed).
    let ch = parse_challenge(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    assert!(!ch.algorithm_given);
    let h = authorize(
        &ch,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        "0a4f113b",
        1,
    );
    assert_eq!(
        field(&h, "response"),
        Some("6629fae49393a05397450978507c4ef1")
    );
    assert_eq!(field(&h, "algorithm"), None);
    assert_eq!(
        field(&h, "opaque"),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
}

// Expected values in the tests below were computed independently with Python hashlib.

#[test]
fn sip_trunk_md5_without_qop() {
    let ch = parse_challenge(
        "Digest realm=\"trunk.example.net\", nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\"",
    )
    .unwrap();
    assert!(!ch.qop_auth);
    let uri = "sip:+15551234567@trunk.example.net";
    let h = authorize(&ch, "INVITE", uri, "alice", "s3cr3t", "unused", 1);
    assert_eq!(
        h,
        "Digest username=\"alice\", realm=\"trunk.example.net\", \
         nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", uri=\"sip:+15551234567@trunk.example.net\", \
         response=\"ecfa05894d07678125bc504b9830a567\""
    );
}

#[test]
fn sess_variants_and_nc_formatting() {
    for (alg, expected) in [
        ("MD5-sess", "db663872e6f1e092002f94aa891fd393"),
        (
            "sha-256-SESS",
            "4193f8391236b03103d2bc3f292ae50baf9ab1cc15e700725bb423bdb9e76197",
        ),
    ] {
        let ch = parse_challenge(&format!(
            "Digest realm=\"sip.example.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", qop=auth, algorithm={alg}"
        ))
        .unwrap();
        let h = authorize(
            &ch,
            "REGISTER",
            "sip:sip.example.com",
            "bob",
            "pw",
            "0a4f113b",
            42,
        );
        assert_eq!(field(&h, "response"), Some(expected), "{alg}");
        assert_eq!(field(&h, "nc"), Some("0000002a"));
        assert_eq!(field(&h, "cnonce"), Some("0a4f113b"));
    }
}

#[test]
fn sha512_256_with_userhash() {
    // Inputs of RFC 7616 §3.9.2 (its printed outputs have errata; these are recomputed).
    let ch = parse_challenge(
        "Digest realm=\"api@example.org\", qop=\"auth\", algorithm=SHA-512-256, \
         nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\", \
         opaque=\"HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS\", charset=UTF-8, userhash=true",
    )
    .unwrap();
    assert!(ch.userhash);
    let h = authorize(
        &ch,
        "GET",
        "/doe.json",
        "J\u{e4}s\u{f8}n Doe",
        "Secret, or not?",
        "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
        1,
    );
    assert_eq!(
        field(&h, "username"),
        Some("793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b")
    );
    assert_eq!(
        field(&h, "response"),
        Some("3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5")
    );
    assert!(h.ends_with(", userhash=true"));
}

#[test]
fn tolerant_syntax() {
    let ch = parse_challenge(
        "  digest   REALM = trunk ,, NONCE=abc123 ,algorithm = md5 , Stale=TRUE,opaque=\"x\\\"y\",qop=\"auth-int , AUTH\"",
    )
    .unwrap();
    assert_eq!(ch.realm, "trunk");
    assert_eq!(ch.nonce, "abc123");
    assert_eq!(ch.algorithm, Algorithm::Md5);
    assert!(ch.stale && ch.qop_auth);
    assert_eq!(ch.opaque.as_deref(), Some("x\"y"));
    // The escaped quote goes back out escaped.
    let h = authorize(&ch, "BYE", "sip:a@b", "u", "p", "c", 1);
    assert!(h.contains("opaque=\"x\\\"y\""), "{h}");
}

#[test]
fn first_duplicate_param_wins_and_unknown_params_are_ignored() {
    let ch =
        parse_challenge("Digest realm=a, nonce=n1, nonce=n2, domain=\"sip:x\", foo=bar").unwrap();
    assert_eq!((ch.realm.as_str(), ch.nonce.as_str()), ("a", "n1"));
}

#[test]
fn errors_are_typed() {
    assert!(matches!(
        parse_challenge("Basic realm=\"x\""),
        Err(DigestError::NotDigest(_))
    ));
    assert!(matches!(
        parse_challenge(""),
        Err(DigestError::NotDigest(_))
    ));
    assert_eq!(
        parse_challenge("Digest nonce=x"),
        Err(DigestError::MissingParam("realm"))
    );
    assert_eq!(
        parse_challenge("Digest realm=x"),
        Err(DigestError::MissingParam("nonce"))
    );
    assert!(matches!(
        parse_challenge("Digest realm=x, nonce=y, algorithm=AKAv1-MD5"),
        Err(DigestError::UnsupportedAlgorithm(_))
    ));
    assert!(matches!(
        parse_challenge("Digest realm=x, nonce=y, qop=\"auth-int\""),
        Err(DigestError::UnsupportedQop(_))
    ));
    assert!(matches!(
        parse_challenge("Digest realm=\"x, nonce=y"),
        Err(DigestError::Malformed(_))
    ));
    assert!(matches!(
        parse_challenge("Digest realm"),
        Err(DigestError::Malformed(_))
    ));
    assert!(matches!(
        parse_challenge("Digest realm=x, nonce=\"a\r\nVia: evil\""),
        Err(DigestError::Malformed(_))
    ));
}

#[test]
fn pick_prefers_sha2_then_topmost() {
    let md5 = parse_challenge(RFC7616_MD5).unwrap();
    let sha = parse_challenge(RFC7616_SHA256).unwrap();
    let md5_sess =
        parse_challenge("Digest realm=r, nonce=n, algorithm=MD5-sess, qop=auth").unwrap();
    assert_eq!(pick(&[md5.clone(), sha.clone()]), Some(&sha));
    assert_eq!(pick(&[sha.clone(), md5.clone()]), Some(&sha));
    assert_eq!(pick(&[md5.clone(), md5_sess.clone()]), Some(&md5));
    assert_eq!(pick(&[]), None);

    let parsed = parse_all([
        RFC7616_MD5,
        "Digest realm=x, nonce=y, algorithm=SHA-1",
        RFC7616_SHA256,
    ]);
    assert_eq!(parsed.len(), 2);
    assert_eq!(pick(&parsed).map(|c| c.algorithm), Some(Algorithm::Sha256));
}

#[test]
fn quoting_strips_control_characters_from_our_inputs() {
    let ch = parse_challenge("Digest realm=r, nonce=n").unwrap();
    let h = authorize(&ch, "INVITE", "sip:x@y", "ev\"il\r\nX: 1", "p", "c", 1);
    assert!(!h.contains('\r') && !h.contains('\n'));
    assert!(h.starts_with("Digest username=\"ev\\\"ilX: 1\""), "{h}");
}

#[test]
fn cnonce_is_fresh_hex() {
    let a = new_cnonce();
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, new_cnonce());
}

#[test]
fn mutated_headers_never_panic() {
    let base = RFC7616_SHA256.as_bytes().to_vec();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = "=,\" \\\täé\u{0}aZ-";
    let alphabet: Vec<char> = alphabet.chars().collect();
    for _ in 0..5000 {
        let mut s: Vec<char> = String::from_utf8_lossy(&base).chars().collect();
        for _ in 0..(next() % 6 + 1) {
            if s.is_empty() {
                break;
            }
            let at = (next() as usize) % s.len();
            match next() % 3 {
                0 => s[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    s.remove(at);
                }
                _ => s.truncate(at),
            }
        }
        let text: String = s.into_iter().collect();
        if let Ok(ch) = parse_challenge(&text) {
            let _ = authorize(&ch, "INVITE", "sip:a@b", "u", "p", "c", 1);
        }
    }
}
