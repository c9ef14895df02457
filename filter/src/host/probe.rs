//! Stage probes: builds of the module that stop after one stage of the request path, so that
//! `make bench-stages` can price each stage inside Envoy by difference (probe N+1 minus probe
//! N). A probe build lets every request go on **undecided**; it exists only with the cargo
//! feature `stage-probes` and `API_GUARD_STAGE=<stage>` at build time (tools/stage-probes).
//! Without the feature [`STAGE`] is `None`, every [`stops_after`] is a constant `false` and the
//! probe branches compile to nothing: the shipped module has no probe switch at all.

/// The stages of the request path, in request order; each probe does every earlier stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The filter is in the chain; the headers callback lets the request go on at once.
    Noop,
    /// + reads every request header (one host call, decoded into the request view).
    Headers,
    /// + reads the route metadata (the policy name) and selects the policy.
    Meta,
    /// + reads the client address (when the policy needs it) and the clock.
    Facts,
    /// + runs the decision (rate-limit store calls included), applies nothing.
    Decide,
    /// Everything up to the body: headers applied, body held and buffered, not read.
    BodyWait,
    /// + reads the buffered body into the VM, does not check it.
    BodyRead,
    /// Not a stop: the whole module, with the body checked twice. The second check finds the
    /// check's code and tables in the CPU caches the first one warmed, so (twice - module) is
    /// the check's warm cost and (module - bodyread) its cost as a request meets it.
    BodyTwice,
}

impl Stage {
    /// The name `API_GUARD_STAGE` uses.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Noop => "noop",
            Stage::Headers => "headers",
            Stage::Meta => "meta",
            Stage::Facts => "facts",
            Stage::Decide => "decide",
            Stage::BodyWait => "bodywait",
            Stage::BodyRead => "bodyread",
            Stage::BodyTwice => "bodytwice",
        }
    }
}

#[cfg(feature = "stage-probes")]
const STAGE: Option<&str> = option_env!("API_GUARD_STAGE");
#[cfg(not(feature = "stage-probes"))]
const STAGE: Option<&str> = None;

/// Whether this build is the probe that stops after `stage`.
#[inline(always)]
pub fn stops_after(stage: Stage) -> bool {
    match STAGE {
        Some(name) => name == stage.name(),
        None => false,
    }
}

/// The stage this build stops after, if it is a probe (logged at configure time: a probe build
/// must never be mistaken for the module).
pub fn probe_stage() -> Option<&'static str> {
    STAGE
}
