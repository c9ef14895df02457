//! Runs the `api-guard` binary on OpenAPI documents and checks what it writes: the Petstore
//! example from the OpenAPI Initiative (a real document written by someone else), and two
//! documents of ours covering 3.0 quirks (JSON) and 3.1 (YAML).

// Test helpers (not #[test] functions themselves) may unwrap and panic too: a failure is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory per test (tests run in parallel).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("api-guard-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn api_guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_api-guard"))
        .args(args)
        .output()
        .unwrap()
}

struct Converted {
    policies: Value,
    routes: Vec<Value>,
    routes_text: String,
    stderr: String,
}

/// Converts without the compile check (the conversion is what these tests are about).
fn convert(test: &str, spec: &str, extra: &[&str]) -> Converted {
    let dir = scratch(test);
    let policies = dir.join("policies.json");
    let routes = dir.join("routes.yaml");
    let mut args = vec![
        "openapi",
        spec,
        "--no-verify",
        "--policies",
        policies.to_str().unwrap(),
        "--routes",
        routes.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = api_guard(&args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    let routes_text = std::fs::read_to_string(&routes).unwrap();
    let routes_value: serde_yaml::Value = serde_yaml::from_str(&routes_text).unwrap();
    let routes: Vec<Value> =
        serde_json::from_value(serde_json::to_value(routes_value).unwrap()).unwrap();
    // Every route names its policy where the filter reads it, and the policy exists.
    let policies: Value = serde_json::from_slice(&std::fs::read(&policies).unwrap()).unwrap();
    for r in &routes {
        let name = r["metadata"]["filter_metadata"]["api_guard"]["policy"]
            .as_str()
            .unwrap();
        assert!(policies["policies"].get(name).is_some(), "{name}");
        assert!(r["route"]["cluster"].is_string());
    }
    assert_eq!(
        routes.len(),
        policies["policies"].as_object().unwrap().len()
    );
    Converted {
        policies,
        routes,
        routes_text,
        stderr,
    }
}

fn matchers(routes: &[Value]) -> Vec<Value> {
    routes.iter().map(|r| r["match"].clone()).collect()
}

#[test]
fn petstore_expanded() {
    let c = convert(
        "petstore-expanded",
        &fixture("petstore-expanded.yaml"),
        &["--cluster", "pets_backend"],
    );
    assert_eq!(
        c.policies,
        json!({"policies": {
            "pets": {
                "methods": ["GET", "POST"],
                "payload": {
                    "content_types": ["application/json"],
                    "methods": {"POST": {
                        "content_types": ["application/json"],
                        "schema": {
                            "$ref": "#/$defs/NewPet",
                            "$defs": {"NewPet": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "tag": {"type": "string"}
                                }
                            }}
                        }
                    }}
                }
            },
            "pets-id": {"methods": ["GET", "DELETE"]}
        }})
    );
    assert_eq!(
        matchers(&c.routes),
        [
            json!({"path": "/pets"}),
            json!({"safe_regex": {"regex": "^/pets/[^/]+$"}})
        ]
    );
    assert!(c
        .routes
        .iter()
        .all(|r| r["route"]["cluster"] == "pets_backend"));
    // The server URL's base path is pointed out, and optional parameters' rules are reported.
    assert!(c.stderr.contains("#/servers/0/url"), "{}", c.stderr);
    assert!(
        c.stderr.contains("query parameter \"limit\""),
        "{}",
        c.stderr
    );
    assert!(c.routes_text.starts_with("# Envoy routes generated"));
}

#[test]
fn petstore_with_prefix_and_base_path() {
    let c = convert(
        "petstore",
        &fixture("petstore.yaml"),
        &[
            "--prefix-policy-name",
            "petstore",
            "--base-path",
            "/v1",
            "--max-body-bytes",
            "65536",
        ],
    );
    let policies = &c.policies["policies"];
    // `/pets/{petId}` has one operation: its operationId names the policy.
    assert_eq!(
        policies.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["petstore-pets", "petstore-showPetById"]
    );
    assert_eq!(
        policies["petstore-showPetById"],
        json!({"methods": ["GET"]})
    );
    let pets = &policies["petstore-pets"];
    assert_eq!(pets["methods"], json!(["GET", "POST"]));
    assert_eq!(pets["payload"]["max_body_bytes"], 65536);
    let schema = &pets["payload"]["methods"]["POST"]["schema"];
    assert_eq!(schema["$ref"], "#/$defs/Pet");
    assert_eq!(schema["$defs"]["Pet"]["required"], json!(["id", "name"]));
    // int64 is not a format api-guard checks: dropped, with a warning naming where.
    assert_eq!(
        schema["$defs"]["Pet"]["properties"]["id"],
        json!({"type": "integer"})
    );
    assert!(c
        .stderr
        .contains("#/components/schemas/Pet/properties/id/format: format \"int64\""));
    assert_eq!(
        matchers(&c.routes),
        [
            json!({"path": "/v1/pets"}),
            json!({"safe_regex": {"regex": "^/v1/pets/[^/]+$"}})
        ]
    );
}

#[test]
fn openapi_30_json_quirks() {
    let c = convert("shop", &fixture("shop-3.0.json"), &[]);
    let p = &c.policies["policies"];
    assert_eq!(
        p.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "files-name-json",
            "myOrders",
            "orders",
            "orders-orderId",
            "replaceCategoryTree"
        ]
    );

    // Path-level $ref'd header parameter, lowercased; `page` is required by GET only, so the
    // path's policy (which also serves POST) does not require it; `Accept` is ignored.
    let orders = &p["orders"];
    assert_eq!(orders["methods"], json!(["GET", "POST"]));
    assert_eq!(orders["headers"], json!({"required": ["x-tenant"]}));
    assert!(orders.get("query").is_none());
    assert!(c
        .stderr
        .contains("query parameter \"page\" is required by GET only"));

    // $ref'd request body: both media types allowed, the JSON one's schema checked.
    let post = &orders["payload"]["methods"]["POST"];
    assert_eq!(
        post["content_types"],
        json!(["application/json", "application/x-www-form-urlencoded"])
    );
    let schema = &post["schema"];
    assert_eq!(schema["$ref"], "#/$defs/Order");
    let defs = schema["$defs"].as_object().unwrap();
    assert_eq!(
        defs.keys().collect::<Vec<_>>(),
        ["Address", "Base", "LineItem", "Money", "Order"]
    );
    // allOf kept, its $ref rewritten; readOnly `id` no longer required in a request.
    let order = &defs["Order"];
    assert_eq!(order["allOf"][0], json!({"$ref": "#/$defs/Base"}));
    assert!(defs["Base"].get("required").is_none());
    let props = &order["allOf"][1]["properties"];
    // nullable: type gains null, and a nullable enum gains null.
    assert_eq!(
        props["note"],
        json!({"type": ["string", "null"], "maxLength": 500})
    );
    assert_eq!(
        props["status"],
        json!({"type": ["string", "null"], "enum": ["new", "paid", null]})
    );
    assert_eq!(props["email"], json!({"type": "string", "format": "email"}));
    assert_eq!(props["items"]["items"], json!({"$ref": "#/$defs/LineItem"}));
    assert_eq!(defs["Address"]["type"], json!(["object", "null"]));
    assert!(defs["Address"].get("xml").is_none());
    // Boolean exclusiveMinimum -> the number form; multipleOf is unsupported: warned, skipped.
    assert_eq!(
        defs["Money"],
        json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1000000})
    );
    assert!(c
        .stderr
        .contains("#/components/schemas/Money/multipleOf: keyword \"multipleOf\""));
    assert!(defs["LineItem"].get("discriminator").is_none());

    // A cyclic $ref: the component is emitted once and references itself.
    let tree = &p["replaceCategoryTree"]["payload"]["methods"]["POST"]["schema"];
    assert_eq!(tree["$ref"], "#/$defs/Category");
    let category = &tree["$defs"]["Category"];
    assert_eq!(
        category["properties"]["parent"],
        json!({"$ref": "#/$defs/Category"})
    );
    assert_eq!(
        category["properties"]["children"]["items"],
        json!({"$ref": "#/$defs/Category"})
    );
    assert_eq!(tree["$defs"].as_object().unwrap().len(), 1);
    assert!(c.stderr.contains("text~1plain/schema: only JSON bodies"));

    // Media type parameters are dropped; `*/*` lifts the content-type restriction (warned).
    assert_eq!(
        p["orders-orderId"]["payload"]["content_types"],
        json!(["application/json"])
    );
    assert_eq!(p["files-name-json"], json!({"methods": ["GET", "PUT"]}));
    assert!(c.stderr.contains("media type range \"*/*\""));
    assert!(c.stderr.contains("cookie parameters are not checked"));
    // A shared parameter's warning is said once.
    assert_eq!(c.stderr.matches("header parameter \"X-Tenant\"").count(), 1);

    // Literal paths first, then templates, a literal segment before a parameter.
    assert_eq!(
        matchers(&c.routes),
        [
            json!({"path": "/orders"}),
            json!({"path": "/orders/mine"}),
            json!({"safe_regex": {"regex": "^/files/[^/]+\\.json$"}}),
            json!({"safe_regex": {"regex": "^/orders/[^/]+$"}}),
            json!({"safe_regex": {"regex": "^/categories/[^/]+/tree$"}}),
        ]
    );
}

#[test]
fn openapi_31_yaml() {
    let c = convert("notes", &fixture("notes-3.1.yaml"), &[]);
    let p = &c.policies["policies"];
    let notes = &p["notes"];
    assert_eq!(notes["headers"], json!({"required": ["x-request-sig"]}));
    assert!(notes.get("query").is_none());
    let note = &notes["payload"]["methods"]["POST"]["schema"]["$defs"]["Note"];
    assert_eq!(
        note["properties"]["body"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(note["properties"]["kind"], json!({"const": "note"}));
    assert_eq!(
        note["properties"]["score"],
        json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10})
    );
    assert_eq!(
        note["properties"]["title"],
        json!({"type": "string", "minLength": 1})
    );
    assert_eq!(note["properties"]["owner"], json!({"$ref": "#/$defs/User"}));
    assert_eq!(
        note["properties"]["tags"],
        json!({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "string"}})
    );
    assert!(note.get("dependentRequired").is_none());
    assert!(c
        .stderr
        .contains("#/components/schemas/Note/dependentRequired: keyword"));
    assert!(c.stderr.contains("#/components/schemas/User/nullable"));
    // x-api-guard-policy names the policy; a $ref with siblings (3.1) becomes allOf.
    let patch = &p["note-by-id"]["payload"]["methods"]["PATCH"];
    assert_eq!(
        patch["content_types"],
        json!(["application/merge-patch+json"])
    );
    assert_eq!(patch["schema"]["allOf"], json!([{"$ref": "#/$defs/Note"}]));
    assert_eq!(patch["schema"]["required"], json!(["title"]));
    assert!(patch["schema"]["$defs"]["User"].is_object());
    assert_eq!(
        matchers(&c.routes),
        [
            json!({"path": "/notes"}),
            json!({"safe_regex": {"regex": "^/notes/[^/]+$"}})
        ]
    );
}

/// Whether the filter's compiler accepts what `openapi` emits: this needs the filter's
/// `payload` / `query` / `headers` policy fields. Without --no-verify the tool compiles its
/// output itself and exits 1 if the compiler refuses it.
#[test]
fn emitted_policies_compile_with_the_filter() {
    for spec in [
        "petstore-expanded.yaml",
        "petstore.yaml",
        "shop-3.0.json",
        "notes-3.1.yaml",
    ] {
        let dir = scratch(&format!("compile-{spec}"));
        let policies = dir.join("policies.json");
        let out = api_guard(&[
            "openapi",
            &fixture(spec),
            "--policies",
            policies.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let bytes = std::fs::read(&policies).unwrap();
        if let Err(errors) = api_guard::config::compile(&bytes) {
            panic!("{spec}: the filter refuses the emitted policies:\n{errors}\n{stderr}");
        }
        assert!(out.status.success(), "{spec}: {stderr}");
    }
}

#[test]
fn errors_and_usage() {
    let dir = scratch("errors");
    let swagger = dir.join("swagger.yaml");
    std::fs::write(&swagger, "swagger: '2.0'\npaths: {}\n").unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"openapi\": ").unwrap();
    for (args, code, needle) in [
        (vec!["openapi", swagger.to_str().unwrap()], 1, "Swagger 2.0"),
        (
            vec!["openapi", broken.to_str().unwrap()],
            1,
            "not valid JSON",
        ),
        (vec!["openapi", "/nonexistent.yaml"], 2, "cannot read"),
        (vec!["openapi"], 2, "needs the OpenAPI document"),
        (vec!["openapi", "x.yaml", "--bogus"], 2, "unknown option"),
        (
            vec!["openapi", "x.yaml", "--routes", "-"],
            2,
            "both go to stdout",
        ),
        (vec!["frobnicate"], 2, "unknown command"),
        (vec![], 2, "Usage"),
    ] {
        let out = api_guard(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // A prefix that cannot start a policy name is refused (checked once the document is read).
    for prefix in ["-bad", "a b"] {
        let out = api_guard(&[
            "openapi",
            &fixture("petstore.yaml"),
            "--no-verify",
            "--prefix-policy-name",
            prefix,
        ]);
        assert_eq!(out.status.code(), Some(1), "{prefix}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--prefix-policy-name"));
    }
    let help = api_guard(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("api-guard openapi"));
}

#[test]
fn policies_to_stdout_by_default() {
    let out = api_guard(&["openapi", &fixture("petstore-expanded.yaml"), "--no-verify"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["policies"]["pets"].is_object());
}
