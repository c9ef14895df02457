//! Route matchers: arbitrary `routes` lists and requests. Compiling never panics, and for every
//! list that compiles, the indexed selection picks exactly the matcher a walk of the list in
//! order picks (first match wins), whatever the route name, virtual host, `:authority` and
//! `:path` (raw bytes, as Envoy may hand them over).
#![no_main]

use api_guard::request::RequestView;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // <routes JSON> NUL <route name> NUL <virtual host> NUL <:authority> NUL <:path> NUL <:method>
    let mut parts = data.split(|b| *b == 0);
    let routes = parts.next().unwrap_or_default();
    let mut field = || parts.next().unwrap_or_default().to_vec();
    let (route_name, virtual_host, authority, path, method) =
        (field(), field(), field(), field(), field());
    let mut config = br#"{"policies":{"a":{},"b":{},"default":{}},"routes":"#.to_vec();
    config.extend_from_slice(routes);
    config.push(b'}');
    let Ok(guard) = api_guard::config::compile(&config) else {
        return;
    };
    let headers = vec![
        (":authority".to_string(), authority),
        (":path".to_string(), path),
        (":method".to_string(), method),
    ];
    let headers = api_guard::request::HeaderMap::from_pairs(&headers).expect("headers encode");
    let request = RequestView {
        headers: headers.headers(),
        client_ip: None,
        route_policy: None,
        route_name: std::str::from_utf8(&route_name)
            .ok()
            .filter(|s| !s.is_empty()),
        virtual_host: std::str::from_utf8(&virtual_host)
            .ok()
            .filter(|s| !s.is_empty()),
    };
    assert_eq!(
        guard.routes.select(&request),
        guard.routes.select_in_order(&request)
    );
});
