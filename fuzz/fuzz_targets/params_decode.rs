//! Percent-decoding of query names and values (`request::percent_decode`, with and
//! without `+` as a space) and the screening decoder (`screening::decode::decode`, up to
//! `ROUNDS` passes of percent, `%uHHHH`, HTML references and overlong forms). Both promise
//! never to grow their input; `percent_decode` borrows exactly when there is nothing to decode,
//! removes two bytes per valid `%hh` and nothing else, and `+` handling is a plain substitution.
//! The input also goes through a compiled query rule (`ParamRule::check`) as a request target.
#![no_main]

use std::borrow::Cow;
use std::sync::LazyLock;

use api_guard::request::percent_decode;
use api_guard::payload::{compile_params, ParamKind, ParamRule};
use api_guard::request::RequestView;
use api_guard::screening::decode;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

static QUERY: LazyLock<ParamRule> = LazyLock::new(|| {
    compile_params(
        &json!({
            "required": ["v"],
            "forbidden": ["debug"],
            "rules": {
                "v": {"pattern": "^[0-9]{1,3}$"},
                "q": {"max_length": 16},
                "sort": {"one_of": ["asc", "desc"]}
            }
        }),
        "policies.p.query",
        ParamKind::Query,
    )
    .unwrap_or_else(|e| panic!("fixed query rule must compile (harness bug): {e:?}"))
});

fn is_hex(b: Option<&u8>) -> bool {
    b.is_some_and(u8::is_ascii_hexdigit)
}

/// Valid `%hh` escapes, counted left to right as the decoder consumes them.
fn escapes(raw: &[u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        if raw[i] == b'%' && is_hex(raw.get(i + 1)) && is_hex(raw.get(i + 2)) {
            n += 1;
            i += 3;
        } else {
            i += 1;
        }
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let plain = percent_decode(data, false);
    let form = percent_decode(data, true);
    for (plus, out) in [(false, &plain), (true, &form)] {
        assert!(out.len() <= data.len(), "percent_decode grew its input");
        assert_eq!(out.len(), data.len() - 2 * escapes(data));
        let nothing_to_do = !data.iter().any(|&c| c == b'%' || (plus && c == b'+'));
        assert_eq!(matches!(out, Cow::Borrowed(_)), nothing_to_do);
        if nothing_to_do {
            assert_eq!(&**out, data);
        }
    }
    // `+` as space is the same as substituting first (an escaped `%2B` stays a `+`).
    let substituted: Vec<u8> = data
        .iter()
        .map(|&c| if c == b'+' { b' ' } else { c })
        .collect();
    assert_eq!(&*form, &*percent_decode(&substituted, false));

    for plus in [false, true] {
        let out = decode::decode(data, plus);
        assert!(out.len() <= data.len(), "screening decode grew its input");
        let _ = decode::scan(&out);
    }

    let mut target = b"/api?".to_vec();
    target.extend_from_slice(data);
    let headers = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), target),
    ];
    let headers = api_guard::request::HeaderMap::from_pairs(&headers).expect("headers encode");
    let req = RequestView {
        headers: headers.headers(),
        client_ip: None,
        route_policy: None,
        route_name: None,
        virtual_host: None,
    };
    if let Err(p) = QUERY.check(&req) {
        assert_eq!(p.status(), 400);
        assert!(p.parameter().is_some());
    }
});
