//! Allowed HTTP methods per policy.

use crate::rejection::Rejection;
use crate::request::RequestView;

/// The methods a policy admits, plus the precomputed `allow` header value for 405 responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodSet {
    methods: Vec<String>,
    allow_header: String,
}

impl MethodSet {
    /// `methods` must already be validated tokens without duplicates (the config compiler does it).
    pub fn new(methods: Vec<String>) -> MethodSet {
        let allow_header = methods.join(", ");
        MethodSet {
            methods,
            allow_header,
        }
    }

    /// Whether `method` is one of the set. Methods are case-sensitive (RFC 9110 §9.1): `get` is
    /// not `GET`.
    pub fn admits(&self, method: &[u8]) -> bool {
        self.methods.iter().any(|m| m.as_bytes() == method)
    }

    pub fn check<'g>(&'g self, request: &RequestView<'_>) -> Result<(), Rejection<'g>> {
        self.check_method(request.method())
    }

    /// Checks a method given by value (the method a CORS preflight asks for).
    pub fn check_method<'g>(&'g self, method: &[u8]) -> Result<(), Rejection<'g>> {
        if self.admits(method) {
            Ok(())
        } else {
            Err(Rejection::MethodNotAllowed {
                allow: &self.allow_header,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_table() {
        let set = MethodSet::new(vec!["GET".into(), "HEAD".into()]);
        for (method, ok) in [
            ("GET", true),
            ("HEAD", true),
            ("POST", false),
            ("get", false),
            ("", false),
        ] {
            let h = vec![(":method".to_string(), method.as_bytes().to_vec())];
            let view = RequestView {
                headers: crate::request::leaked_headers(&h),
                client_ip: None,
                route_policy: None,
                route_name: None,
                virtual_host: None,
            };
            match set.check(&view) {
                Ok(()) => assert!(ok, "{method} admitted"),
                Err(r) => {
                    assert!(!ok, "{method} refused");
                    assert_eq!(r, Rejection::MethodNotAllowed { allow: "GET, HEAD" });
                }
            }
        }
    }
}
