//! The request lifecycle: when api-guard lets a request go on to the upstream.
//!
//! Envoy hands the filter a request in events — headers, body chunks, trailers — and each
//! callback either lets what it holds go on (`Continue`) or stops it. Any `Continue`, in any
//! callback, releases everything held before it: a trailers callback that returns `Continue`
//! forwards headers and body the filter was still deciding. Asynchronous events — a callout
//! answering, a tick re-deciding for a request that waits on another worker's callout, the stream
//! ending early — may arrive between any two of them. A stream that ends early takes its
//! lifecycle with it: Envoy deletes the context and cancels its callouts, and the root context
//! holds waiting requests only weakly, so nothing can reach a gone request.
//!
//! [`Lifecycle`] is that whole story as one state machine, fed by every event and asking a
//! [`Gate`] (the host adapter) only for facts and effects. Its invariant: **nothing is released
//! — no `Continue` for headers, body or trailers, no resume — until the request is admitted and
//! every check of its body has passed; after a refusal nothing is released at all.** A late or
//! duplicate callout answer, or a tick for a request that no longer waits, changes nothing.
//! The model test at the end of this file drives it with every order of events.

use crate::policy::PolicyId;
use crate::verdict::BodyCheck;

/// What a callback tells Envoy to do with what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Let everything held so far go on.
    Continue,
    /// Keep holding (headers and trailers stop; a body chunk is buffered).
    Stop,
}

/// What one decision of the headers may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The decision may pause the request (auth service callout, another worker's callout, a
    /// JWKS refetch). `false`: decide now, with the auth service treated as unavailable.
    pub may_wait: bool,
    /// An unknown `kid` may start a JWKS refetch (the first decision only: a second unknown
    /// `kid` after a refetch is refused).
    pub may_refetch: bool,
}

/// A decision of the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling<A, R, P> {
    /// Admitted, with the header edits to apply and the check its body still needs.
    Admit(A, Option<BodyCheck>),
    Refuse(R),
    /// The decision needs an answer that is not there yet.
    Wait(P),
}

/// A gate's decision: the policy it was taken under, and the ruling.
pub type Decided<G> = (
    Option<PolicyId>,
    Ruling<<G as Gate>::Admission, <G as Gate>::Refusal, <G as Gate>::Pending>,
);

/// What a waiting request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// This request's own callout (introspection or JWKS refetch), by its token.
    Callout(u32),
    /// Another worker's callout: a tick decides again.
    Peer,
}

/// The host adapter's side: facts and effects, no decisions about the request's state.
pub trait Gate {
    type Admission;
    type Refusal;
    type Pending;

    /// Reads the request's facts and decides its headers.
    fn decide(&mut self, attempt: Attempt) -> Decided<Self>;
    /// Starts what `pending` needs (a callout, or joining the waiters); `None` if it cannot.
    fn wait(&mut self, pending: Self::Pending) -> Option<Wait>;
    /// Applies an admission's header edits while the headers are still held.
    fn admit(
        &mut self,
        policy: Option<PolicyId>,
        admission: Self::Admission,
    ) -> Result<(), Self::Refusal>;
    /// Reads the whole held body (`len` bytes, as Envoy reported) and checks it.
    fn check_body(
        &mut self,
        policy: Option<PolicyId>,
        check: &BodyCheck,
        len: u64,
    ) -> Result<(), Self::Refusal>;
    /// The refusal for a body over its limit.
    fn body_too_large(&self) -> Self::Refusal;
    /// The refusal for a request the gate could not decide (the decision kept asking to wait).
    fn undecided(&self) -> Self::Refusal;
    /// Answers the client with the refusal (a local reply); counts and logs it.
    fn refuse(&mut self, policy: Option<PolicyId>, refusal: Self::Refusal);
    /// Counts and logs an admitted request, once, when all of it was let through.
    fn allowed(&mut self, policy: Option<PolicyId>);
    /// Resumes a request held across callbacks (everything held goes on).
    fn resume(&mut self);
}

/// How many callouts one request may wait for before it is decided with the service treated
/// as down (an introspection callout, a JWKS refetch, and one more for a claim that expired).
pub const MAX_WAITS: u8 = 3;

/// A safety net on ticks spent waiting for another worker's callout. The real bound is time:
/// the other worker's claim expires after its callout's timeout (at most 60 s) and then this
/// request calls itself; at the 20 ms waiting tick that is under 3,100 rounds.
pub const MAX_PEER_ROUNDS: u16 = 4_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// No headers yet.
    Start,
    /// Headers held; the decision waits.
    Waiting(Wait),
    /// Headers admitted and held, body buffered until it can be checked whole.
    Holding(BodyCheck),
    /// Headers admitted and released; body bytes counted as they stream through.
    Streaming(BodyCheck),
    /// Everything goes on.
    Released,
    /// A local reply was sent; nothing goes on.
    Refused,
}

/// Where a call came from: a callback answers with its return value, an asynchronous event
/// (callout answer, tick) must resume the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Callback,
    Async,
}

/// One request's lifecycle.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    phase: Phase,
    policy: Option<PolicyId>,
    /// The client ended its side (end of stream on headers or body, or trailers).
    ended: bool,
    /// Body bytes Envoy holds for this filter (reported as a running total while held).
    held_bytes: u64,
    /// Body bytes already let through.
    passed_bytes: u64,
    waits: u8,
    peer_rounds: u16,
    /// A callout failed or could not be made: decide without waiting.
    may_wait: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

impl Lifecycle {
    pub fn new() -> Self {
        Lifecycle {
            phase: Phase::Start,
            policy: None,
            ended: false,
            held_bytes: 0,
            passed_bytes: 0,
            waits: 0,
            peer_rounds: 0,
            may_wait: true,
        }
    }

    /// The token of the callout this request waits for, if any.
    pub fn awaited_callout(&self) -> Option<u32> {
        match self.phase {
            Phase::Waiting(Wait::Callout(token)) => Some(token),
            _ => None,
        }
    }

    /// Whether the request waits for another worker's callout (a tick must decide again).
    pub fn waits_for_peer(&self) -> bool {
        self.phase == Phase::Waiting(Wait::Peer)
    }

    /// The request was refused (a local reply is on its way).
    pub fn is_refused(&self) -> bool {
        self.phase == Phase::Refused
    }

    /// The request headers arrived.
    pub fn on_headers<G: Gate>(&mut self, end_of_stream: bool, gate: &mut G) -> Flow {
        if self.phase != Phase::Start {
            return Flow::Stop;
        }
        self.ended = end_of_stream;
        self.decide(gate, Origin::Callback)
    }

    /// A body chunk arrived. `size` is what Envoy reports: the whole held body while this
    /// filter holds it, the chunk alone once the body streams through.
    pub fn on_body<G: Gate>(&mut self, size: usize, end_of_stream: bool, gate: &mut G) -> Flow {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        self.ended |= end_of_stream;
        match self.phase {
            Phase::Waiting(_) | Phase::Holding(_) => {
                self.held_bytes = size;
                self.progress(gate, Origin::Callback)
            }
            Phase::Streaming(_) => {
                // Released bytes are gone; this chunk is what is held now.
                self.held_bytes = size;
                self.progress(gate, Origin::Callback)
            }
            Phase::Released => Flow::Continue,
            Phase::Start | Phase::Refused => Flow::Stop,
        }
    }

    /// Trailers arrived: they end the request body.
    pub fn on_trailers<G: Gate>(&mut self, gate: &mut G) -> Flow {
        self.ended = true;
        match self.phase {
            Phase::Waiting(_) | Phase::Holding(_) | Phase::Streaming(_) => {
                self.progress(gate, Origin::Callback)
            }
            Phase::Released => Flow::Continue,
            Phase::Start | Phase::Refused => Flow::Stop,
        }
    }

    /// A callout answered. `usable`: the answer was installed (keys, introspection result);
    /// otherwise the request is decided with the service treated as unavailable. An answer this
    /// request does not wait for (late, duplicate, another request's) changes nothing.
    pub fn on_callout<G: Gate>(&mut self, token: u32, usable: bool, gate: &mut G) {
        if self.phase != Phase::Waiting(Wait::Callout(token)) {
            return;
        }
        if !usable {
            self.may_wait = false;
        }
        self.decide(gate, Origin::Async);
    }

    /// A tick for a request waiting on another worker's callout: decide again (the answer may
    /// be cached now, or the other worker's claim expired and this one calls).
    pub fn on_retry<G: Gate>(&mut self, gate: &mut G) {
        if self.phase == Phase::Waiting(Wait::Peer) {
            self.decide(gate, Origin::Async);
        }
    }

    /// Decides the headers, waiting if the decision needs it and may.
    fn decide<G: Gate>(&mut self, gate: &mut G, origin: Origin) -> Flow {
        loop {
            let attempt = Attempt {
                may_wait: self.may_wait
                    && self.waits < MAX_WAITS
                    && self.peer_rounds < MAX_PEER_ROUNDS,
                may_refetch: self.waits == 0,
            };
            let (policy, ruling) = gate.decide(attempt);
            self.policy = policy;
            match ruling {
                Ruling::Refuse(refusal) => return self.refuse(gate, refusal),
                Ruling::Admit(admission, body) => {
                    if let Err(refusal) = gate.admit(policy, admission) {
                        return self.refuse(gate, refusal);
                    }
                    self.phase = match body {
                        None => return self.release_all(gate, origin),
                        Some(check) if check.buffer => Phase::Holding(check),
                        Some(check) => Phase::Streaming(check),
                    };
                    return self.progress(gate, origin);
                }
                Ruling::Wait(_) if !attempt.may_wait => {
                    let refusal = gate.undecided();
                    return self.refuse(gate, refusal);
                }
                Ruling::Wait(pending) => match gate.wait(pending) {
                    Some(wait) => {
                        match wait {
                            Wait::Callout(_) => self.waits = self.waits.saturating_add(1),
                            Wait::Peer => self.peer_rounds = self.peer_rounds.saturating_add(1),
                        }
                        self.phase = Phase::Waiting(wait);
                        return Flow::Stop;
                    }
                    // Cannot call or wait: decide again as if the service were down.
                    None => self.may_wait = false,
                },
            }
        }
    }

    /// Judges the body received so far against the admitted body check.
    fn progress<G: Gate>(&mut self, gate: &mut G, origin: Origin) -> Flow {
        let total = self.passed_bytes.saturating_add(self.held_bytes);
        match &self.phase {
            Phase::Waiting(_) => Flow::Stop,
            Phase::Holding(check) | Phase::Streaming(check) if total > check.max_bytes => {
                let refusal = gate.body_too_large();
                self.refuse(gate, refusal)
            }
            Phase::Holding(_) if !self.ended => Flow::Stop,
            Phase::Holding(check) => match gate.check_body(self.policy, check, self.held_bytes) {
                Ok(()) => self.release_all(gate, origin),
                Err(refusal) => self.refuse(gate, refusal),
            },
            Phase::Streaming(_) if self.ended => self.release_all(gate, origin),
            Phase::Streaming(_) => {
                self.passed_bytes = total;
                self.held_bytes = 0;
                self.release(gate, origin)
            }
            Phase::Start | Phase::Released | Phase::Refused => Flow::Stop,
        }
    }

    /// The whole request is admitted: count it once and let everything go on.
    fn release_all<G: Gate>(&mut self, gate: &mut G, origin: Origin) -> Flow {
        self.phase = Phase::Released;
        gate.allowed(self.policy);
        self.passed_bytes = self.passed_bytes.saturating_add(self.held_bytes);
        self.held_bytes = 0;
        self.release(gate, origin)
    }

    fn release<G: Gate>(&mut self, gate: &mut G, origin: Origin) -> Flow {
        match origin {
            Origin::Callback => Flow::Continue,
            Origin::Async => {
                gate.resume();
                Flow::Stop
            }
        }
    }

    fn refuse<G: Gate>(&mut self, gate: &mut G, refusal: G::Refusal) -> Flow {
        self.phase = Phase::Refused;
        gate.refuse(self.policy, refusal);
        Flow::Stop
    }
}

#[cfg(test)]
mod tests;
