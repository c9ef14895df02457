//! The plugin configuration compiler: arbitrary bytes in, a `Guard` or a list of errors out,
//! never a panic (Envoy hands us whatever the operator wrote).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = api_guard::config::compile(data);
});
