//! Tokens signed at test time with RSA, P-256 and Ed25519 keys, checked against a JWKS served
//! over real HTTP that counts its fetches (`jwt_tests_support.rs`).

use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header, get_current_timestamp};
use serde_json::json;

use super::*;

#[path = "jwt_tests_support.rs"]
mod support;

#[path = "layer_tests.rs"]
mod service;

use support::*;

#[test]
fn only_public_key_algorithms_can_be_configured() {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let parsed = JwtSettings::parse_algorithms(&names(&["RS256", "es256", " EdDSA ", "RS256"]));
    assert_eq!(
        parsed.unwrap(),
        [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
    );
    let hs = JwtSettings::parse_algorithms(&names(&["RS256", "HS256"])).unwrap_err();
    assert!(hs.contains("\"HS256\" is refused: HMAC"), "{hs}");
    assert!(hs.contains("allowed: RS256, RS384"), "{hs}");
    let none = JwtSettings::parse_algorithms(&names(&["none"])).unwrap_err();
    assert!(none.contains("unsigned"), "{none}");
    let unknown = JwtSettings::parse_algorithms(&names(&["ES512"])).unwrap_err();
    assert!(unknown.starts_with("unknown algorithm"), "{unknown}");
    assert!(JwtSettings::parse_algorithms(&[]).is_err());
}

#[test]
fn only_public_signature_keys_of_the_jwks_are_used() {
    let s = signers();
    let base = &s.p256.jwk;
    let edit = |name: &str, value: Value| {
        let mut jwk = base.clone();
        jwk[name] = value;
        jwk
    };
    let skipped = [
        edit("use", json!("enc")),
        edit("key_ops", json!(["encrypt"])),
        edit("alg", json!("ES384")),
        edit("crv", json!("P-521")),
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        json!({"kty": "RSA", "kid": "no-modulus"}),
    ];
    for jwk in skipped {
        assert!(Key::parse(jwk.clone()).is_err(), "{jwk}");
    }
    let verify_only = edit("key_ops", json!(["verify"]));
    for jwk in [base, &s.rsa.jwk, &s.ed25519.jwk, &verify_only] {
        assert!(Key::parse(jwk.clone()).is_ok(), "{jwk}");
    }
}

#[tokio::test]
async fn good_tokens_of_every_key_type_are_accepted() {
    let s = signers();
    let (_idp, url) = Idp::start(&[&s.rsa, &s.p256, &s.ed25519]).await;
    let verifier = verifier(&url);
    for signer in [&s.rsa, &s.p256, &s.ed25519] {
        let who = verifier.verify(&signer.sign(&claims())).await;
        let who = who.unwrap_or_else(|e| panic!("{:?}: {e}", signer.algorithm));
        assert_eq!(who.subject, "alice");
        assert_eq!(who.method, Method::Jwt);
        assert_eq!(who.groups, ["dev", "ops", "admin"]);
        assert_eq!(who.scopes, ["tools:read", "tools:call"]);
    }
    // `scp` as a list, `aud` as a list holding ours, no groups at all.
    let mut other = with("scp", json!(["a", "b"]));
    other["aud"] = json!(["https://other.example", AUDIENCE]);
    for claim in ["scope", "groups", "roles"] {
        other.as_object_mut().unwrap().remove(claim);
    }
    let who = verifier.verify(&s.p256.sign(&other)).await.unwrap();
    assert_eq!(
        (who.groups.len(), who.scopes),
        (0, vec!["a".into(), "b".into()])
    );
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let s = signers();
    let (_idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = verifier(&url);
    let now = get_current_timestamp();
    let expired = s.p256.sign(&with("exp", json!(now - 120)));
    assert!(refused(&verifier, &expired).await.contains("expired"));
    let early = s.p256.sign(&with("nbf", json!(now + 120)));
    assert!(refused(&verifier, &early).await.contains("not valid yet"));
    let no_exp = s.p256.sign(&with("exp", Value::Null));
    assert!(refused(&verifier, &no_exp).await.contains("no `exp`"));
    // Within the leeway (30 s) both ways.
    let mut skewed = with("exp", json!(now - 10));
    skewed["nbf"] = json!(now + 10);
    verifier.verify(&s.p256.sign(&skewed)).await.unwrap();
}

#[tokio::test]
async fn a_wrong_audience_or_issuer_is_refused() {
    let s = signers();
    let (_idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = verifier(&url);
    let cases = [
        ("aud", json!("https://other.example"), "wrong audience"),
        ("aud", json!(["https://other.example"]), "wrong audience"),
        ("aud", Value::Null, "no `aud`"),
        ("iss", json!("https://evil.example"), "wrong issuer"),
        ("iss", json!(["https://x.example", ISSUER]), "wrong issuer"),
        ("iss", Value::Null, "no `iss`"),
    ];
    for (claim, value, why) in cases {
        let message = refused(&verifier, &s.p256.sign(&with(claim, value.clone()))).await;
        assert!(message.contains(why), "{claim}={value}: {message}");
    }
}

#[tokio::test]
async fn unsigned_and_hmac_tokens_are_refused() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.rsa, &s.p256]).await;
    // Even with HS256 forced into the settings, bypassing `parse_algorithms`.
    let mut forced = settings(&url);
    forced.algorithms.push(Algorithm::HS256);
    let verifier = JwtVerifier::new(forced, client());
    let payload = s.p256.sign(&claims()).split('.').nth(1).unwrap().to_owned();
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let message = refused(&verifier, &format!("{none}.{payload}.")).await;
    assert!(
        message.contains("algorithm not allowed: \"none\""),
        "{message}"
    );
    // The confusion attack: HMAC with the public key, as the JWKS publishes it, as the secret.
    for (signer, public) in [(&s.p256, &s.p256.public), (&s.rsa, &s.rsa.public)] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(signer.kid.clone());
        let key = EncodingKey::from_secret(public).unwrap();
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        let message = refused(&verifier, &token).await;
        assert!(
            message.contains("algorithm not allowed: \"HS256\""),
            "{message}"
        );
    }
    assert_eq!(idp.fetches(), 0, "refused before any key is looked up");
    // Below that check, jsonwebtoken itself never lets an RSA key check HS256 or ES256.
    let rsa = Key::parse(s.rsa.jwk.clone()).unwrap();
    let hmac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(&s.rsa.public).unwrap(),
    );
    let hmac = hmac.unwrap();
    for (token, algorithm) in [
        (&hmac, Algorithm::HS256),
        (&s.p256.sign(&claims()), Algorithm::ES256),
    ] {
        let message = match verifier.decode(token, algorithm, &rsa) {
            Err(Rejection::Invalid(message)) => message,
            other => panic!("{algorithm:?} with an RSA key: {other:?}"),
        };
        assert!(
            message.contains("cannot check") || message.contains("does not fit"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_key_checks_only_the_algorithms_it_fits() {
    let s = signers();
    // The RSA key's JWK says RS384, and a P-256 key goes by the RSA key's id.
    let mut rsa384 = s.rsa.jwk.clone();
    rsa384["alg"] = json!("RS384");
    let (idp, url) = Idp::start(&[&s.p256]).await;
    idp.keys.lock().unwrap().push(rsa384);
    let verifier = verifier(&url);
    let message = refused(&verifier, &s.rsa.sign(&claims())).await;
    assert!(
        message.contains("RS256 does not fit the key (RSA, for RS384)"),
        "{message}"
    );
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(s.rsa.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims(), &s.p256.key).unwrap();
    let message = refused(&verifier, &token).await;
    assert!(
        message.contains("ES256 does not fit the key (RSA"),
        "{message}"
    );
}

#[tokio::test]
async fn tampered_tokens_and_garbage_are_refused() {
    let s = signers();
    let (_idp, url) = Idp::start(&[&s.p256, &s.ed25519]).await;
    let verifier = verifier(&url);
    let good = s.p256.sign(&claims());
    let forged = s.p256.sign(&with("sub", json!("mallory")));
    let parts: Vec<&str> = good.split('.').collect();
    let payload = forged.split('.').nth(1).unwrap();
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(refused(&verifier, &tampered).await, "bad signature");
    // A signature by another key of the set, under this key's id.
    let ed = s.ed25519.sign(&claims());
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        ed.split('.').nth(2).unwrap()
    );
    assert_eq!(refused(&verifier, &swapped).await, "bad signature");
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    for garbage in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "...", "é.é.é", &long] {
        let message = refused(&verifier, garbage).await;
        assert!(
            message.starts_with("malformed token"),
            "{garbage:.20}: {message}"
        );
    }
    for (claim, value, why) in [
        ("groups", json!(5), "`groups` is not a string or a list"),
        ("scp", json!([1]), "`scp` is not a string or a list"),
        ("sub", Value::Null, "no `sub`"),
        ("sub", json!(""), "`sub` is not a non-empty string"),
    ] {
        let message = refused(&verifier, &s.p256.sign(&with(claim, value))).await;
        assert!(message.contains(why), "{claim}: {message}");
    }
}

#[tokio::test]
async fn an_algorithm_left_out_of_the_settings_is_refused() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.rsa, &s.p256]).await;
    let mut only_rsa = settings(&url);
    only_rsa.algorithms = vec![Algorithm::RS256];
    let verifier = JwtVerifier::new(only_rsa, client());
    let message = refused(&verifier, &s.p256.sign(&claims())).await;
    assert_eq!(message, "algorithm not allowed: \"ES256\" (allowed: RS256)");
    assert_eq!(idp.fetches(), 0);
    verifier.verify(&s.rsa.sign(&claims())).await.unwrap();
}

#[tokio::test]
async fn unknown_key_ids_fetch_the_jwks_again_at_most_once_per_interval() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = verifier(&url);
    verifier.verify(&s.p256.sign(&claims())).await.unwrap();
    assert_eq!(idp.fetches(), 1);
    let made_up = |n: usize| Signer::p256_as(&s.p256, &format!("made-up-{n}"));
    for n in 0..20 {
        let message = refused(&verifier, &made_up(n).sign(&claims())).await;
        assert!(message.contains("unknown key id \"made-up-"), "{message}");
    }
    assert_eq!(idp.fetches(), 1, "within 10 s of the first fetch");
    pretend_the_interval_passed(&verifier).await;
    for n in 20..40 {
        refused(&verifier, &made_up(n).sign(&claims())).await;
    }
    assert_eq!(
        idp.fetches(),
        2,
        "once more after 10 s, however many tokens"
    );
}

#[tokio::test]
async fn a_key_published_after_the_first_fetch_is_found() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = verifier(&url);
    verifier.verify(&s.p256.sign(&claims())).await.unwrap();
    idp.publish(&[&s.p256, &s.rsa]);
    pretend_the_interval_passed(&verifier).await;
    let who = verifier.verify(&s.rsa.sign(&claims())).await.unwrap();
    assert_eq!(who.subject, "alice");
    assert_eq!(idp.fetches(), 2);
    // Both keys now cached: no further fetch.
    verifier.verify(&s.p256.sign(&claims())).await.unwrap();
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn without_any_jwks_tokens_cannot_be_checked() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.p256]).await;
    idp.failing.store(true, SeqCst);
    let verifier = verifier(&url);
    let token = s.p256.sign(&claims());
    match verifier.verify(&token).await {
        Err(Rejection::Unavailable(message)) => {
            let expected = format!("the JWKS at {url} answered 500 Internal Server Error");
            assert_eq!(message, expected);
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Asked again at once: not fetched again, still unavailable, saying when it will be.
    match verifier.verify(&token).await {
        Err(Rejection::Unavailable(message)) => assert!(message.contains("next try"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn cached_keys_stay_in_use_while_the_jwks_cannot_be_fetched() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = eager_verifier(&url);
    let token = s.p256.sign(&claims());
    verifier.verify(&token).await.unwrap();
    idp.failing.store(true, SeqCst);
    // Every token starts a background refresh, which fails; the cached key keeps working.
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.fetches() < 4 {
        assert!(Instant::now() < deadline, "no refresh attempts");
        verifier.verify(&token).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unknown = Signer::p256_as(&s.p256, "rotated").sign(&claims());
    assert!(
        refused(&verifier, &unknown)
            .await
            .contains("unknown key id")
    );
}

#[tokio::test]
async fn an_old_jwks_is_refreshed_and_keys_taken_out_stop_working() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = eager_verifier(&url);
    let token = s.p256.sign(&claims());
    verifier.verify(&token).await.unwrap();
    idp.publish(&[&s.rsa]);
    // Accepted with the keys at hand while the refresh runs in the background.
    verifier.verify(&token).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refreshed = || {
        let set = verifier.inner.jwks.current.load_full();
        set.is_some_and(|set| set.keys.iter().all(|key| key.kid.as_deref() == Some("rsa")))
    };
    while !refreshed() {
        assert!(Instant::now() < deadline, "the JWKS was not refreshed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        refused(&verifier, &token)
            .await
            .contains("unknown key id \"p256\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_tokens_fetch_the_jwks_once() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = verifier(&url);
    let token = s.p256.sign(&claims());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn a_token_may_leave_out_its_key_id_only_when_the_jwks_has_one_key() {
    let s = signers();
    let (idp, url) = Idp::start(&[&s.p256]).await;
    let verifier = verifier(&url);
    let anonymous = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims(), &s.p256.key);
    let anonymous = anonymous.unwrap();
    verifier.verify(&anonymous).await.unwrap();
    idp.publish(&[&s.p256, &s.rsa]);
    pretend_the_interval_passed(&verifier).await;
    verifier.verify(&s.rsa.sign(&claims())).await.unwrap();
    let message = refused(&verifier, &anonymous).await;
    assert!(
        message.contains("no key id (`kid`), and the JWKS has 2 keys"),
        "{message}"
    );
}
