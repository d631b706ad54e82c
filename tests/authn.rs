//! Service-account authentication end to end: `kubectl create token` mints a token
//! (TokenRequest), the token authenticates (`kubectl auth whoami` shows the service
//! account's user), is refused once its account is gone, a garbage token is 401, a
//! TokenReview answers for it, and the OIDC discovery documents are public.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::Cluster;
use serde_json::Value;
use std::process::Command;

/// kubectl against the cluster with only a bearer token (no client certificate, which
/// would win over the token, as upstream's authenticator order has it).
fn with_token(c: &Cluster, bin: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let server = c.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let ca = c.data_dir().join("pki/ca.crt");
    let mut all = vec![
        "--kubeconfig=/dev/null".to_string(),
        format!("--server={server}"),
        format!("--certificate-authority={}", ca.display()),
        format!("--token={token}"),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = c.kubectl_bin(bin, &refs, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn curl(c: &Cluster, path: &str) -> String {
    let server = c.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let ca = c.data_dir().join("pki/ca.crt");
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .arg(format!("{server}{path}"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn service_account_tokens_authenticate() {
    let c = Cluster::start("authn");
    c.ok(&["create", "sa", "bot"]);
    let uid = c.ok(&["get", "sa", "bot", "-o", "jsonpath={.metadata.uid}"]);
    let token = c.ok(&["create", "token", "bot", "--duration=10m"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "{token}");

    for bin in ["kubectl", "kubectl.1.27", "kubectl.1.33"] {
        let (ok, out, err) = with_token(&c, bin, token, &["auth", "whoami", "-o", "json"]);
        assert!(ok, "{bin} whoami: {err}");
        let v: Value = serde_json::from_str(&out).expect("whoami JSON");
        let u = &v["status"]["userInfo"];
        assert_eq!(u["username"], "system:serviceaccount:default:bot", "{out}");
        assert_eq!(u["uid"], uid.as_str(), "{out}");
        let groups: Vec<&str> = u["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ],
            "{out}"
        );
        let cred = u["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap_or("");
        assert!(cred.starts_with("JTI="), "{out}");
    }

    // Authenticated but not authorised (until RBAC): the Forbidden names the user.
    let (ok, _, err) = with_token(&c, "kubectl", token, &["get", "pods"]);
    assert!(!ok);
    assert!(
        err.contains("Forbidden") && err.contains("system:serviceaccount:default:bot"),
        "{err}"
    );

    // A TokenReview by the admin.
    let review = format!(
        "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {token}\n"
    );
    let out = c.ok_stdin(&["create", "-f", "-", "-o", "json"], &review);
    let v: Value = serde_json::from_str(&out).expect("TokenReview JSON");
    assert_eq!(v["status"]["authenticated"], true, "{out}");
    assert_eq!(
        v["status"]["user"]["username"], "system:serviceaccount:default:bot",
        "{out}"
    );

    // Too short a lifetime: upstream's 422.
    let err = c.fails(&["create", "token", "bot", "--duration=1m"]);
    assert!(
        err.contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
        "{err}"
    );

    // Garbage is 401.
    let (ok, _, err) = with_token(&c, "kubectl", "not.a.token", &["get", "pods"]);
    assert!(!ok);
    assert!(
        err.contains("error: You must be logged in to the server (Unauthorized)"),
        "{err}"
    );

    // OIDC discovery, without credentials; the token verifies against the JWKS.
    let conf: Value = serde_json::from_str(&curl(&c, "/.well-known/openid-configuration"))
        .expect("discovery JSON");
    assert_eq!(
        conf["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        conf["jwks_uri"],
        "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
    );
    let jwks: Value = serde_json::from_str(&curl(&c, "/openid/v1/jwks")).expect("JWKS JSON");
    let key = &jwks["keys"][0];
    assert_eq!(key["alg"], "ES256");
    verify_with_jwk(token, key);

    // The account deleted: its tokens no longer authenticate.
    c.ok(&["delete", "sa", "bot"]);
    let (ok, _, err) = with_token(&c, "kubectl", token, &["auth", "whoami"]);
    assert!(!ok);
    assert!(
        err.contains("error: You must be logged in to the server (Unauthorized)"),
        "{err}"
    );
}

/// Checks the token's ES256 signature with the published key (x, y of the JWK).
fn verify_with_jwk(token: &str, key: &Value) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let x = B64.decode(key["x"].as_str().expect("x")).expect("x b64");
    let y = B64.decode(key["y"].as_str().expect("y")).expect("y b64");
    let mut point = vec![4u8];
    point.extend(x);
    point.extend(y);
    let (input, sig) = token.rsplit_once('.').expect("JWS");
    let sig = B64.decode(sig).expect("sig b64");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(input.as_bytes(), &sig)
        .expect("token verifies against the JWKS");
}

/// `rkind kubeconfig --user` prints a kubeconfig that authenticates as a service account
/// with a fresh token: what that account's role allows works, the rest is Forbidden.
#[test]
fn a_service_account_kubeconfig_acts_as_the_account() {
    let c = Cluster::start("authn-kc");
    c.ok(&["create", "sa", "bot"]);
    c.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "bot-reads",
        "--role=pod-reader",
        "--serviceaccount=default:bot",
    ]);
    c.ok(&["create", "configmap", "cm"]);
    let out = c.rkind(&[
        "kubeconfig",
        "--name",
        "authn-kc",
        "--user",
        "bot",
        "--duration",
        "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kc = common::write_file(
        c.dir.path(),
        "bot.kubeconfig",
        &String::from_utf8_lossy(&out.stdout),
    );
    let flag = format!("--kubeconfig={}", kc.display());
    let run = |args: &[&str]| {
        let mut all = vec![flag.as_str()];
        all.extend_from_slice(args);
        c.kubectl_bin("kubectl", &all, None)
    };
    let who = run(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        "system:serviceaccount:default:bot"
    );
    assert!(run(&["get", "pods"]).status.success());
    let del = run(&["delete", "configmap", "cm"]);
    assert!(!del.status.success());
    let err = String::from_utf8_lossy(&del.stderr);
    assert!(
        err.contains("configmaps \"cm\" is forbidden: User \"system:serviceaccount:default:bot\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    let bad = c.rkind(&["kubeconfig", "--name", "authn-kc", "--user", "a/b/c"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected NAME"));
    let missing = c.rkind(&["kubeconfig", "--name", "authn-kc", "--user", "ghost"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("serviceaccounts \"ghost\" not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// Legacy, Secret-based tokens where a user still asks for them (upstream's token
/// controller): a `kubernetes.io/service-account-token` Secret naming an account gets a
/// token, the CA and the namespace; the token authenticates until its Secret or its
/// account goes; a Secret for a missing account is deleted; one naming no account is
/// refused.
#[test]
fn legacy_token_secrets_are_filled_and_checked_against_their_secret() {
    let c = Cluster::start("authn-legacy");
    c.ok(&["create", "sa", "old"]);
    let secret = |name: &str, account: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\nmetadata:\n  name: {name}\n  annotations: {{kubernetes.io/service-account.name: {account}}}\n"
        )
    };
    c.ok_stdin(&["create", "-f", "-"], &secret("old-token", "old"));
    let field = |name: &str, key: &str| -> String {
        use base64::Engine;
        let b64 = c.ok(&[
            "get",
            "secret",
            name,
            "-o",
            &format!("jsonpath={{.data.{}}}", key.replace('.', "\\.")),
        ]);
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    };
    c.eventually(10, "the token filled in", || {
        !field("old-token", "token").is_empty()
    });
    let token = field("old-token", "token");
    let ca = std::fs::read_to_string(c.data_dir().join("pki/ca.crt")).unwrap();
    assert_eq!(field("old-token", "ca.crt"), ca);
    assert_eq!(field("old-token", "namespace"), "default");
    let sa_uid = c.ok(&["get", "sa", "old", "-o", "jsonpath={.metadata.uid}"]);
    let annotated = c.ok(&[
        "get",
        "secret",
        "old-token",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/service-account\\.uid}",
    ]);
    assert_eq!(annotated, sa_uid);
    let whoami = |token: &str| {
        with_token(
            &c,
            "kubectl",
            token,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
        )
    };
    let (ok, who, err) = whoami(&token);
    assert!(ok, "{err}");
    assert_eq!(who, "system:serviceaccount:default:old");
    // The token is this Secret's: deleted, it no longer authenticates.
    c.ok(&["delete", "secret", "old-token"]);
    let (ok, _, err) = whoami(&token);
    assert!(!ok && err.contains("Unauthorized"), "{err}");

    // Refused without an account; deleted when the account is missing or goes.
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\nmetadata:\n  name: nobody\n",
    );
    assert!(
        err.contains("metadata.annotations[kubernetes.io/service-account.name]: Required value"),
        "{err}"
    );
    c.ok_stdin(&["create", "-f", "-"], &secret("orphan", "ghost"));
    c.eventually(10, "the orphan token deleted", || {
        !c.kubectl(&["get", "secret", "orphan"]).status.success()
    });
    c.ok_stdin(&["create", "-f", "-"], &secret("second", "old"));
    c.eventually(10, "the second token filled in", || {
        !field("second", "token").is_empty()
    });
    let second = field("second", "token");
    assert!(whoami(&second).0);
    c.ok(&["delete", "sa", "old"]);
    c.eventually(10, "the account's token deleted with it", || {
        !c.kubectl(&["get", "secret", "second"]).status.success()
    });
    assert!(!whoami(&second).0);
}
