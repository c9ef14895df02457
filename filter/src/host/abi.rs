//! Raw proxy-wasm host calls for the request path, wrapped to return `Result` on every status.
//!
//! The SDK's helpers `panic!` on statuses they do not expect (and `unwrap` UTF-8 when decoding
//! header maps); a panic traps the VM and fails every request on that worker until it is
//! replaced. These wrappers never panic: an unexpected status becomes an `Err` the caller maps
//! to a fail-closed response.

// The crate's only unsafe code: calls into the host ABI and taking ownership of the buffers it
// hands over. Each block carries its SAFETY argument; tools/structure-check/check.py refuses
// this allowance anywhere else.
#![allow(unsafe_code)]

use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, MapType, Status, StreamType};

/// A host status other than `Ok`, as its raw code (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

impl From<Status> for HostError {
    fn from(s: Status) -> Self {
        HostError(s as u32)
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_remove_header_map_value(map_type: MapType, key: *const u8, key_size: usize) -> Status;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> Status;
    fn proxy_set_tick_period_milliseconds(period: u32) -> Status;
    fn proxy_continue_stream(stream_type: StreamType) -> Status;
    fn proxy_get_header_map_value(
        map_type: MapType,
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
    ) -> Status;
    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> Status;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_send_local_response(
        status_code: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> Status;
}

fn check(status: Status) -> Result<(), HostError> {
    match status {
        Status::Ok => Ok(()),
        other => Err(other.into()),
    }
}

/// Takes ownership of a buffer the host allocated through the module's allocator.
///
/// SAFETY: `data` and `size` must come from a successful host call that allocated them with
/// `proxy_on_memory_allocate` (the SDK's allocator, a `Vec<u8>` of exactly `size` bytes).
unsafe fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

/// All request headers with their raw value bytes, in order: the one buffer the host hands
/// over, checked and read in place (a malformed map is an error, which the caller fails closed
/// on).
pub fn request_headers() -> Result<crate::request::HeaderMap, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers are valid; on Ok the host hands over an allocation of `size` bytes.
    let buffer = unsafe {
        check(proxy_get_header_map_pairs(
            MapType::HttpRequestHeaders,
            &mut data,
            &mut size,
        ))?;
        take_host_buffer(data, size)
    };
    crate::request::HeaderMap::parse(buffer).ok_or(HostError(Status::SerializationFailure as u32))
}

pub fn remove_request_header(name: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live &str.
    check(unsafe {
        proxy_remove_header_map_value(MapType::HttpRequestHeaders, name.as_ptr(), name.len())
    })
}

/// Sets (replaces every copy of) a request header.
pub fn set_request_header(name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths describe live &strs.
    check(unsafe {
        proxy_replace_header_map_value(
            MapType::HttpRequestHeaders,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// The host clock, in nanoseconds since the Unix epoch.
pub fn now_unix_nanos() -> Result<u64, HostError> {
    let mut nanos: u64 = 0;
    // SAFETY: valid out-pointer.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// A shared-data value and its CAS token; a missing key is `(None, None)`.
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: valid key buffer and out-pointers; on Ok the host hands over `size` bytes.
    unsafe {
        match proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) {
            Status::Ok => {
                let value = take_host_buffer(data, size);
                Ok((Some(value), (cas != 0).then_some(cas)))
            }
            Status::NotFound => Ok((None, None)),
            other => Err(other.into()),
        }
    }
}

/// Writes a shared-data value; with `Some(cas)` only if the key is unchanged since that read
/// (`Err(Status::CasMismatch)` otherwise). A missing key is created whatever `cas` is.
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
    // SAFETY: pointers and lengths describe live buffers for the duration of the call.
    let status = unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        )
    };
    match status {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}

/// Envoy's shared data (per `vm_id`, shared by every worker) as the limiter's store.
pub struct HostStore;

impl crate::store::SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<crate::store::Versioned, crate::store::StoreError> {
        get_shared_data(key).map_err(|e| crate::store::StoreError::Unavailable(e.0))
    }

    fn set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), crate::store::StoreError> {
        use crate::store::StoreError;
        set_shared_data(key, value, cas).map_err(|s| match s {
            Status::CasMismatch => StoreError::CasMismatch,
            other => StoreError::Unavailable(other as u32),
        })
    }
}

/// A property as raw bytes; `None` when Envoy does not have it.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    // The ABI takes the path segments joined by NULs.
    let joined = path.join("\0");
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: valid path buffer and out-pointers; on Ok the host hands over `size` bytes.
    unsafe {
        match proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) {
            Status::Ok if data.is_null() => Ok(None),
            Status::Ok => Ok(Some(take_host_buffer(data, size))),
            Status::NotFound => Ok(None),
            other => Err(other.into()),
        }
    }
}

/// The verified client certificate of the request's connection, from Envoy's `connection.*`
/// attributes; `None` when the connection has none (`connection.mtls` not true) or it cannot
/// be read (which the `mtls` check refuses: fail closed).
pub fn peer_certificate() -> Option<crate::checks::mtls::PeerCertificate> {
    let text = |name: &str| {
        property(&["connection", name])
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
    };
    // A bool attribute is one byte.
    let presented = property(&["connection", "mtls"]).ok().flatten();
    if presented.as_deref() != Some(&[1]) {
        return None;
    }
    Some(crate::checks::mtls::PeerCertificate {
        uri_san: text("uri_san_peer_certificate"),
        dns_san: text("dns_san_peer_certificate"),
        sha256: text("sha256_peer_certificate_digest"),
    })
}

/// Sets a property of the request (`proxy_set_property`): Envoy keeps it in the stream's filter
/// state as `wasm.<name>`, a string object access-log formats can print.
pub fn set_property(name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: valid name and value buffers for the duration of the call.
    unsafe {
        check(proxy_set_property(
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        ))
    }
}

/// Sends a local reply (the request is not forwarded).
pub fn send_local_response(
    status: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let encoded = crate::request::encode_header_pairs(headers);
    // SAFETY: all pointers and lengths describe live buffers for the duration of the call.
    check(unsafe {
        proxy_send_local_response(
            status,
            null_mut(),
            0,
            body.as_ptr(),
            body.len(),
            encoded.as_ptr(),
            encoded.len(),
            -1,
        )
    })
}

pub fn set_tick_period_ms(ms: u32) -> Result<(), HostError> {
    // SAFETY: plain value argument.
    check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// Lets a paused request continue (after an asynchronous step such as a JWKS refetch).
pub fn resume_request() -> Result<(), HostError> {
    // SAFETY: plain value argument.
    check(unsafe { proxy_continue_stream(StreamType::HttpRequest) })
}

/// The `:status` of the HTTP callout whose response is being delivered (`None` if absent or
/// not a number). Envoy synthesizes 503 for an unreachable cluster and 504 for a timeout.
pub fn http_call_status() -> Option<u16> {
    let key = ":status";
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: valid key buffer and out-pointers; on Ok the host hands over `size` bytes.
    let value = unsafe {
        match proxy_get_header_map_value(
            MapType::HttpCallResponseHeaders,
            key.as_ptr(),
            key.len(),
            &mut data,
            &mut size,
        ) {
            Status::Ok => take_host_buffer(data, size),
            _ => return None,
        }
    };
    std::str::from_utf8(&value).ok()?.parse().ok()
}

/// The body of the HTTP callout whose response is being delivered, up to `max` bytes
/// (`None`: larger than `max`, or unreadable).
pub fn http_call_body(size: usize, max: usize) -> Option<Vec<u8>> {
    if size > max {
        return None;
    }
    let mut data: *mut u8 = null_mut();
    let mut got: usize = 0;
    // SAFETY: valid out-pointers; on Ok the host hands over `got` bytes.
    unsafe {
        match proxy_get_buffer_bytes(
            BufferType::HttpCallResponseBody,
            0,
            size,
            &mut data,
            &mut got,
        ) {
            Status::Ok => Some(take_host_buffer(data, got)),
            Status::NotFound => Some(Vec::new()),
            _ => None,
        }
    }
}

/// The buffered request body (the first `size` bytes).
pub fn request_body(size: usize) -> Result<Vec<u8>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut got: usize = 0;
    // SAFETY: valid out-pointers; on Ok the host hands over `got` bytes.
    unsafe {
        match proxy_get_buffer_bytes(BufferType::HttpRequestBody, 0, size, &mut data, &mut got) {
            Status::Ok => Ok(take_host_buffer(data, got)),
            Status::NotFound => Ok(Vec::new()),
            other => Err(other.into()),
        }
    }
}
