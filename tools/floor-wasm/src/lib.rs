//! The floor of `make bench`: what any proxy-wasm filter with api-guard's exported callbacks
//! costs inside Envoy before it decides anything. It is built with the same SDK, the same
//! release profile and trimmed to the same exports as `api_guard.wasm` (the Makefile's
//! `floor-wasm` target checks the export lists are equal), so the difference between an
//! api-guard row and its floor row is what api-guard's own work costs.
//!
//! Two behaviours, chosen by the plugin configuration (one word, read once at configure time):
//! - `headers`: every callback returns at once (`Continue`); the request passes untouched.
//! - `body`: what api-guard does to check a body, minus the checks: hold the headers while a
//!   body follows, keep the body buffered until its end, then read all of it into the VM once
//!   and let the request go. The body floor of issue 19.
//! - `min`: the host calls any gate that checks an IP range and an API key through this ABI
//!   cannot avoid, and nothing else: read the request headers (one map, not decoded), read the
//!   client address, set one identity header. What "within 0.04 of the floor" leaves for
//!   everything else (issue 19).
//! - `calls`: the host calls api-guard makes on the IP + API key row, without its logic: `min`
//!   plus the route metadata, the clock, the decision record (`set_property`) and one counter.
//! - `calls:<list>`: only the listed calls of `calls` (`headers`, `route`, `address`, `clock`,
//!   `set`, `record`, `counter`, comma-separated), to price one at a time; `header` (not one of
//!   api-guard's calls) reads one header by name instead of the whole map.
//!
//! It enforces nothing by design: it exists only in `target/bench/floor.wasm` and
//! `envoy/bench/floor.yaml`, never in a shipped configuration.

#[cfg(target_arch = "wasm32")]
mod floor {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

    /// What the floor does with a request (the plugin configuration).
    #[derive(Clone, Copy, Default, PartialEq)]
    enum Mode {
        /// Nothing: the do-nothing floor.
        #[default]
        Headers,
        /// Hold, buffer and read the request body: the body floor.
        Body,
        /// Some of api-guard's host calls on the IP + API key row, without its logic.
        Calls(Calls),
    }

    /// Which host calls `Mode::Calls` makes, one bit each (names as in the configuration).
    #[derive(Clone, Copy, PartialEq)]
    struct Calls(u8);

    const CALL_NAMES: [&str; 8] = [
        "headers", "route", "address", "clock", "set", "record", "counter", "header",
    ];

    impl Calls {
        /// The unavoidable ones of an IP + API key gate: read the headers, the client address,
        /// set one identity header.
        const MIN: Calls = Calls(0b001_0101);
        const ALL: Calls = Calls(0b111_1111);

        fn parse(list: &[u8]) -> Option<Calls> {
            let mut bits = 0u8;
            for name in list.split(|&b| b == b',') {
                let index = CALL_NAMES
                    .iter()
                    .position(|n| n.as_bytes() == name.trim_ascii())?;
                bits |= 1 << index;
            }
            Some(Calls(bits))
        }

        fn has(self, name: &str) -> bool {
            CALL_NAMES
                .iter()
                .position(|n| *n == name)
                .is_some_and(|i| self.0 & (1 << i) != 0)
        }
    }

    #[derive(Default)]
    struct FloorRoot {
        mode: Mode,
        /// The counter `calls` increments (defined at configure time, as api-guard's are).
        counter: u32,
    }

    impl Context for FloorRoot {}

    impl RootContext for FloorRoot {
        fn on_configure(&mut self, size: usize) -> bool {
            let config = if size == 0 {
                Vec::new()
            } else {
                match proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
                    Ok(bytes) => bytes.unwrap_or_default(),
                    Err(_) => return false,
                }
            };
            // Anything else is refused: a typo must not silently measure the other floor.
            self.mode = match config.trim_ascii() {
                b"" | b"headers" => Mode::Headers,
                b"body" => Mode::Body,
                b"min" => Mode::Calls(Calls::MIN),
                b"calls" => Mode::Calls(Calls::ALL),
                other => match other.strip_prefix(b"calls:").and_then(Calls::parse) {
                    Some(calls) => Mode::Calls(calls),
                    None => return false,
                },
            };
            if let Mode::Calls(calls) = self.mode {
                if !calls.has("counter") {
                    return true;
                }
                match proxy_wasm::hostcalls::define_metric(MetricType::Counter, "floor.requests") {
                    Ok(id) => self.counter = id,
                    Err(_) => return false,
                }
            }
            true
        }

        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(FloorRequest {
                mode: self.mode,
                counter: self.counter,
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct FloorRequest {
        mode: Mode,
        counter: u32,
    }

    impl Context for FloorRequest {}

    impl HttpContext for FloorRequest {
        fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
            // Like api-guard checking a body: the headers wait for it (the bootstrap sets
            // allow_on_headers_stop_iteration).
            match self.mode {
                Mode::Body if !end_of_stream => return Action::Pause,
                Mode::Calls(calls) => host_calls(calls, self.counter),
                _ => {}
            }
            Action::Continue
        }

        fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
            if self.mode == Mode::Headers {
                return Action::Continue;
            }
            if !end_of_stream {
                // Envoy keeps buffering until the end of the body.
                return Action::Pause;
            }
            // One copy of the whole body into the VM, as api-guard reads it; black_box keeps
            // the read from being optimised away.
            let body = proxy_wasm::hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size);
            std::hint::black_box(body.ok().flatten().map_or(0, |b| b.len()));
            Action::Continue
        }
    }

    /// The chosen host calls, in api-guard's order; results are only kept alive (black_box),
    /// never acted on.
    fn host_calls(calls: Calls, counter: u32) {
        if calls.has("headers") {
            std::hint::black_box(raw::request_header_bytes());
        }
        // Not one of api-guard's calls: one header read by name, to price it against the map.
        if calls.has("header") {
            let key =
                proxy_wasm::hostcalls::get_map_value(MapType::HttpRequestHeaders, "x-api-key");
            std::hint::black_box(key.ok());
        }
        if calls.has("route") {
            let route = vec![
                "xds",
                "route_metadata",
                "filter_metadata",
                "api_guard",
                "policy",
            ];
            std::hint::black_box(proxy_wasm::hostcalls::get_property(route).ok());
        }
        if calls.has("address") {
            let address = proxy_wasm::hostcalls::get_property(vec!["source", "address"]);
            std::hint::black_box(address.ok());
        }
        if calls.has("clock") {
            std::hint::black_box(proxy_wasm::hostcalls::get_current_time().ok());
        }
        if calls.has("set") {
            let _ = proxy_wasm::hostcalls::set_map_value(
                MapType::HttpRequestHeaders,
                "x-api-guard-client",
                Some("demo-client"),
            );
        }
        if calls.has("record") {
            let line = b"policy=default outcome=allowed client=demo-client";
            let _ = proxy_wasm::hostcalls::set_property(vec!["api_guard.decision"], Some(line));
        }
        if calls.has("counter") {
            let _ = proxy_wasm::hostcalls::increment_metric(counter, 1);
        }
    }

    /// The header map as the host serialises it, not decoded: api-guard reads it in place, the
    /// SDK's `get_map_bytes` would add a `String` and a `Vec` per header.
    #[allow(unsafe_code)]
    mod raw {
        use proxy_wasm::types::{MapType, Status};

        extern "C" {
            fn proxy_get_header_map_pairs(
                map_type: MapType,
                return_map_data: *mut *mut u8,
                return_map_size: *mut usize,
            ) -> Status;
        }

        /// The length of the serialised map (0 if the host had none).
        pub fn request_header_bytes() -> usize {
            let mut data: *mut u8 = std::ptr::null_mut();
            let mut size: usize = 0;
            // SAFETY: valid out-pointers; on Ok the host allocated `size` bytes through the
            // SDK's `proxy_on_memory_allocate` (a `Vec<u8>` of exactly `size`), owned here.
            unsafe {
                match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size)
                {
                    Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size).len(),
                    _ => 0,
                }
            }
        }
    }

    proxy_wasm::main! {{
        // As api-guard: the level is set once, nothing is logged per request.
        proxy_wasm::set_log_level(LogLevel::Info);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot::default()) });
    }}
}
