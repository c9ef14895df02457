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
//!
//! It enforces nothing by design: it exists only in `target/bench/floor.wasm` and
//! `envoy/bench/floor.yaml`, never in a shipped configuration.

#[cfg(target_arch = "wasm32")]
mod floor {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

    /// What the floor does with a request (the plugin configuration).
    #[derive(Clone, Copy, Default, PartialEq)]
    enum Mode {
        /// Nothing: the do-nothing floor.
        #[default]
        Headers,
        /// Hold, buffer and read the request body: the body floor.
        Body,
    }

    #[derive(Default)]
    struct FloorRoot {
        mode: Mode,
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
                _ => return false,
            };
            true
        }

        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(FloorRequest { mode: self.mode }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct FloorRequest {
        mode: Mode,
    }

    impl Context for FloorRequest {}

    impl HttpContext for FloorRequest {
        fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
            // Like api-guard checking a body: the headers wait for it (the bootstrap sets
            // allow_on_headers_stop_iteration).
            if self.mode == Mode::Body && !end_of_stream {
                Action::Pause
            } else {
                Action::Continue
            }
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

    proxy_wasm::main! {{
        // As api-guard: the level is set once, nothing is logged per request.
        proxy_wasm::set_log_level(LogLevel::Info);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot::default()) });
    }}
}
