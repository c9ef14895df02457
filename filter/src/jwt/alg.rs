//! The JWS algorithms api-guard verifies. `none` is not one of them, in any letter case.

/// A signature algorithm (RFC 7518 section 3, RFC 8037 for EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The exact, case-sensitive `alg` name (RFC 7515: `alg` values are case-sensitive, so
    /// `hs256` or `None` are not aliases of anything).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.iter().copied().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Symmetric (shared-secret) algorithms: a key of this family must never verify a token
    /// of another family, and the other way round (the classic RS256/HS256 key confusion).
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    /// Dense index, for bit sets and metric tables.
    pub fn index(self) -> usize {
        Algorithm::ALL.iter().position(|a| *a == self).unwrap_or(0)
    }
}

/// A set of algorithms, as a bit mask (a provider's `algorithms`, a key's allowed ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    pub const EMPTY: AlgorithmSet = AlgorithmSet(0);

    pub fn all() -> AlgorithmSet {
        AlgorithmSet::from_iter(Algorithm::ALL)
    }

    pub fn with(self, a: Algorithm) -> AlgorithmSet {
        AlgorithmSet(self.0 | (1 << a.index()))
    }

    pub fn contains(self, a: Algorithm) -> bool {
        self.0 & (1 << a.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersect(self, other: AlgorithmSet) -> AlgorithmSet {
        AlgorithmSet(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter()
            .fold(AlgorithmSet::EMPTY, AlgorithmSet::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            assert_eq!(Algorithm::ALL[a.index()], a);
        }
        for bad in [
            "none", "None", "NONE", "nOnE", "hs256", "Rs256", "", "ES512", "HS256 ",
        ] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sets() {
        let s: AlgorithmSet = [Algorithm::RS256, Algorithm::ES256].into_iter().collect();
        assert!(s.contains(Algorithm::RS256) && !s.contains(Algorithm::HS256));
        assert_eq!(s.iter().count(), 2);
        assert!(s
            .intersect(AlgorithmSet::EMPTY.with(Algorithm::HS256))
            .is_empty());
        assert_eq!(AlgorithmSet::all().iter().count(), 12);
    }
}
