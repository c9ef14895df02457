//! The host adapter: the only code that touches proxy-wasm. Each callback reads facts from
//! Envoy, calls the pure core, and applies the verdict.

mod abi;
mod fetch;
mod http;
mod probe;
mod root;
mod shared;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::GuardRoot::default())
    });
}}
