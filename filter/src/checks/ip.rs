//! Client IP ranges: deny wins, and an empty allow list means every address not denied.

use crate::cidr::CidrSet;
use crate::rejection::Rejection;
use crate::request::RequestView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRule {
    pub allow: CidrSet,
    pub deny: CidrSet,
}

impl IpRule {
    pub fn check(&self, request: &RequestView<'_>) -> Result<(), Rejection<'static>> {
        // Without a trustworthy client address no IP rule can be satisfied: fail closed.
        let Some(ip) = request.client_ip else {
            return Err(Rejection::ClientIpUnknown);
        };
        if self.deny.contains(ip) {
            return Err(Rejection::IpDenied);
        }
        if !self.allow.is_empty() && !self.allow.contains(ip) {
            return Err(Rejection::IpDenied);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cidr::Cidr;

    fn set(items: &[&str]) -> CidrSet {
        CidrSet::new(items.iter().map(|s| s.parse::<Cidr>().unwrap()).collect())
    }

    #[test]
    fn ip_rule_table() {
        let rule = IpRule {
            allow: set(&["10.0.0.0/8", "2001:db8::/32"]),
            deny: set(&["10.6.6.0/24"]),
        };
        let open = IpRule {
            allow: set(&[]),
            deny: set(&["192.0.2.0/24"]),
        };
        let cases: &[(&IpRule, Option<&str>, Result<(), Rejection>)] = &[
            (&rule, Some("10.1.1.1"), Ok(())),
            (&rule, Some("::ffff:10.1.1.1"), Ok(())),
            (&rule, Some("2001:db8::5"), Ok(())),
            (&rule, Some("10.6.6.6"), Err(Rejection::IpDenied)),
            (&rule, Some("11.0.0.1"), Err(Rejection::IpDenied)),
            (&rule, None, Err(Rejection::ClientIpUnknown)),
            (&open, Some("203.0.113.1"), Ok(())),
            (&open, Some("192.0.2.9"), Err(Rejection::IpDenied)),
            (&open, None, Err(Rejection::ClientIpUnknown)),
        ];
        for (rule, ip, want) in cases {
            let view = RequestView {
                headers: Default::default(),
                client_ip: ip.map(|s| s.parse().unwrap()),
                route_policy: None,
                route_name: None,
                virtual_host: None,
            };
            assert_eq!(&rule.check(&view), want, "{ip:?}");
        }
    }
}
