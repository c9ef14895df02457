//! The request header map as the host hands it over (`request::Headers::parse`, the proxy-wasm
//! pair encoding read in place). Besides never panicking: a map it accepts iterates exactly its
//! count of headers, re-encodes to the same bytes (nothing skipped, nothing read twice), finds
//! every name's first value and all its values as a walk over the pairs does, and counts its
//! name and value bytes exactly; the owning `HeaderMap::parse` accepts the same inputs.
#![no_main]

use api_guard::request::{HeaderMap, Headers, NON_UTF8_NAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = Headers::parse(data);
    assert_eq!(parsed.is_some(), HeaderMap::parse(data.to_vec()).is_some());
    let Some(headers) = parsed else {
        return;
    };
    let pairs: Vec<(&str, &[u8])> = headers.iter().collect();
    assert_eq!(pairs.len(), headers.len());
    assert_eq!(headers.is_empty(), pairs.is_empty());
    let bytes: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
    let all_utf8 = pairs.iter().all(|(n, _)| *n != NON_UTF8_NAME);
    if all_utf8 {
        assert_eq!(headers.name_value_bytes(), bytes);
        let again = HeaderMap::from_pairs(&pairs).expect("a parsed map re-encodes");
        if !data.is_empty() {
            assert_eq!(again.as_bytes(), data);
        }
    }
    for (name, _) in &pairs {
        if *name == NON_UTF8_NAME {
            continue;
        }
        let first = pairs.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(headers.get(name), first);
        let all: Vec<&[u8]> = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(headers.values(name).collect::<Vec<_>>(), all);
    }
});
