//! JWT test material minted by Python (PyJWT, jwcrypto; see tools/jwt-fixtures/), never by the
//! jwt-simple the filter uses: the committed fixtures, and fresh tokens signed against the real
//! clock.

use serde_json::{json, Value};

use crate::workspace_root;

/// A fixture document of `filter/src/jwt/testdata/` (`jws.json`, `jwe.json`).
pub fn fixture(name: &str) -> Value {
    let path = workspace_root().join("filter/src/jwt/testdata").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A named token of `jws.json` (fixed times: valid until 2100, or deliberately broken).
pub fn token(name: &str) -> String {
    fixture("jws.json")["tokens"][name]
        .as_str()
        .unwrap_or_else(|| panic!("jws.json has no token {name:?}"))
        .to_string()
}

/// The fixture's public JWKS restricted to `kids` (panics if one is missing).
pub fn jwks(kids: &[&str]) -> Value {
    let keys: Vec<Value> = fixture("jws.json")["jwks"]["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter(|k| k["kid"].as_str().is_some_and(|kid| kids.contains(&kid)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(keys.len(), kids.len(), "fixture lacks some of {kids:?}");
    json!({ "keys": keys })
}

/// A token signed now by PyJWT with the fixture key `kid`; claim values may be `"$now+N"` or
/// `"$now-N"` (needs `.venv`, which `make setup` prepares).
pub fn mint(kid: &str, claims: &Value) -> String {
    let root = workspace_root();
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tools/jwt-fixtures/mint.py"))
        .arg(kid)
        .arg(claims.to_string())
        .output()
        .expect("run .venv/bin/python (make pytools installs PyJWT)");
    assert!(
        out.status.success(),
        "mint.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
