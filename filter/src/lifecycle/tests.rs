//! The model test: a model of Envoy's filter-chain semantics (what a `Continue` or a resume
//! releases) drives [`Lifecycle`] with generated policies and every order of events — trailers
//! at any point, callouts answering before or after body chunks, duplicate and stale answers,
//! ticks, the stream ending early — and checks after every step that nothing reached the
//! upstream before the request was admitted and its body checked, and nothing after a refusal.

use proptest::prelude::*;

use super::*;

/// What the scripted decision returns on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scripted {
    Admit,
    Refuse,
    WaitCallout,
    WaitPeer,
}

/// The body check an admission carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyRule {
    None,
    Buffered { max: u64, passes: bool },
    Streamed { max: u64 },
}

#[derive(Debug, Clone)]
struct Policy {
    /// The ruling per attempt (the last one repeats).
    script: Vec<Scripted>,
    /// With the service treated as down (`may_wait: false`), admit (`on_failure: allow`) or not.
    admit_when_down: bool,
    body: BodyRule,
    /// Starting a callout or joining the waiters fails.
    wait_fails: bool,
    /// Applying the admission's header edits fails.
    edits_fail: bool,
}

/// One event Envoy delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// The next client event (headers, a chunk, the end).
    Client,
    /// The awaited callout answers (usable or failed).
    Answer {
        usable: bool,
    },
    /// An answer for a token nobody waits for (late, duplicate).
    Stale,
    Tick,
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The last chunk (or the headers) carries end-of-stream.
    Eos,
    Trailers,
    /// The client never finishes.
    Open,
}

#[derive(Debug, Clone)]
struct Client {
    chunks: Vec<u64>,
    end: End,
}

impl Client {
    /// The client's events in order: (kind, size).
    fn events(&self) -> Vec<ClientEvent> {
        let mut out = vec![ClientEvent::Headers {
            eos: self.chunks.is_empty() && self.end == End::Eos,
        }];
        let n = self.chunks.len();
        for (i, size) in self.chunks.iter().enumerate() {
            out.push(ClientEvent::Body {
                size: *size,
                eos: i + 1 == n && self.end == End::Eos,
            });
        }
        if self.end == End::Trailers {
            out.push(ClientEvent::Trailers);
        }
        out
    }

    fn total(&self) -> u64 {
        self.chunks.iter().sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientEvent {
    Headers { eos: bool },
    Body { size: u64, eos: bool },
    Trailers,
}

/// Envoy and the host adapter, modelled: what is held, what went upstream, what was reported.
#[derive(Debug, Default)]
struct Model {
    policy: Option<Policy>,
    decisions: usize,
    next_token: u32,
    awaited: Option<u32>,
    answered: Vec<u32>,
    peer_waiting: bool,
    // Envoy's side.
    headers_held: bool,
    headers_up: bool,
    body_held: u64,
    body_up: u64,
    trailers_held: bool,
    trailers_up: bool,
    local_replies: u32,
    // What the gate was told or did.
    admitted: bool,
    body_rule: Option<BodyRule>,
    body_checked_ok: bool,
    allowed: u32,
    refused: u32,
    resumes: u32,
    violations: Vec<String>,
}

impl Model {
    fn policy(&self) -> &Policy {
        self.policy.as_ref().expect("policy set")
    }

    /// May anything go upstream now?
    fn release_ok(&self) -> Result<(), String> {
        if self.refused > 0 || self.local_replies > 0 {
            return Err("released after a refusal".into());
        }
        if !self.admitted {
            return Err("released before admission".into());
        }
        match self.body_rule {
            Some(BodyRule::Buffered { .. }) if !self.body_checked_ok => {
                Err("released before the body was checked".into())
            }
            _ => Ok(()),
        }
    }

    /// Everything held goes upstream (a `Continue` or a resume).
    fn release_held(&mut self) {
        if let Err(e) = self.release_ok() {
            self.violations.push(e);
        }
        if self.headers_held {
            self.headers_held = false;
            self.headers_up = true;
        }
        self.body_up += std::mem::take(&mut self.body_held);
        if std::mem::take(&mut self.trailers_held) {
            self.trailers_up = true;
        }
        if let Some(BodyRule::Streamed { max } | BodyRule::Buffered { max, .. }) = self.body_rule {
            if self.body_up > max {
                self.violations
                    .push(format!("{} body bytes went up, limit {max}", self.body_up));
            }
        }
    }
}

impl Gate for Model {
    type Admission = ();
    type Refusal = &'static str;
    type Pending = Scripted;

    fn decide(
        &mut self,
        attempt: Attempt,
    ) -> (Option<PolicyId>, Ruling<(), &'static str, Scripted>) {
        let p = self.policy().clone();
        let step = p
            .script
            .get(self.decisions)
            .or(p.script.last())
            .copied()
            .unwrap_or(Scripted::Refuse);
        self.decisions += 1;
        let body = match p.body {
            BodyRule::None => None,
            BodyRule::Buffered { max, .. } => Some(BodyCheck {
                max_bytes: max,
                buffer: true,
                ..BodyCheck::default()
            }),
            BodyRule::Streamed { max } => Some(BodyCheck {
                max_bytes: max,
                buffer: false,
                ..BodyCheck::default()
            }),
        };
        let ruling = match step {
            Scripted::Admit => Ruling::Admit((), body),
            Scripted::Refuse => Ruling::Refuse("refused"),
            // The pipeline honours `may_wait`: with the service down it decides by `on_failure`.
            Scripted::WaitCallout | Scripted::WaitPeer if !attempt.may_wait => {
                if p.admit_when_down {
                    Ruling::Admit((), body)
                } else {
                    Ruling::Refuse("service down")
                }
            }
            wait => Ruling::Wait(wait),
        };
        (Some(PolicyId(0)), ruling)
    }

    fn wait(&mut self, pending: Scripted) -> Option<Wait> {
        if self.policy().wait_fails {
            return None;
        }
        match pending {
            Scripted::WaitPeer => {
                self.peer_waiting = true;
                Some(Wait::Peer)
            }
            _ => {
                self.next_token += 1;
                self.awaited = Some(self.next_token);
                Some(Wait::Callout(self.next_token))
            }
        }
    }

    fn admit(&mut self, _policy: Option<PolicyId>, _admission: ()) -> Result<(), &'static str> {
        if self.policy().edits_fail {
            return Err("host failure");
        }
        self.admitted = true;
        self.body_rule = Some(self.policy().body);
        Ok(())
    }

    fn check_body(
        &mut self,
        _policy: Option<PolicyId>,
        check: &BodyCheck,
        len: u64,
    ) -> Result<(), &'static str> {
        let held = self.body_held;
        if len != held {
            self.violations
                .push(format!("checked {len} bytes, {held} held"));
        }
        if held > check.max_bytes {
            self.violations.push("checked a body over its limit".into());
        }
        match self.policy().body {
            BodyRule::Buffered { passes: true, .. } => {
                self.body_checked_ok = true;
                Ok(())
            }
            _ => Err("bad body"),
        }
    }

    fn body_too_large(&self) -> &'static str {
        "too large"
    }

    fn undecided(&self) -> &'static str {
        "undecided"
    }

    fn refuse(&mut self, _policy: Option<PolicyId>, _refusal: &'static str) {
        self.refused += 1;
        self.local_replies += 1;
    }

    fn allowed(&mut self, _policy: Option<PolicyId>) {
        self.allowed += 1;
    }

    fn resume(&mut self) {
        self.resumes += 1;
        self.release_held();
    }
}

/// Runs one scenario; returns the model for the final checks.
fn run(policy: Policy, client: &Client, events: &[Event]) -> Model {
    let mut model = Model {
        policy: Some(policy),
        ..Model::default()
    };
    let mut life = Lifecycle::new();
    let mut pending_client = client.events().into_iter();
    let mut gone = false;
    let deliver = |model: &mut Model, life: &mut Lifecycle, e: ClientEvent| {
        // Envoy stops calling the filter once a local reply was sent.
        if model.local_replies > 0 {
            return;
        }
        let flow = match e {
            ClientEvent::Headers { eos } => {
                model.headers_held = true;
                life.on_headers(eos, model)
            }
            ClientEvent::Body { size, eos } => {
                model.body_held += size;
                // While the filter holds the body Envoy reports the running total, once it
                // streams through the chunk alone.
                let reported = model.body_held;
                life.on_body(usize::try_from(reported).unwrap_or(usize::MAX), eos, model)
            }
            ClientEvent::Trailers => {
                model.trailers_held = true;
                life.on_trailers(model)
            }
        };
        if flow == Flow::Continue {
            model.release_held();
        }
    };
    let answer = |model: &mut Model, life: &mut Lifecycle, usable: bool| {
        if let Some(token) = model.awaited.take() {
            model.answered.push(token);
            life.on_callout(token, usable, model);
        }
    };
    // A tick for a request that does not wait must change nothing; one that waits decides again.
    let tick = |model: &mut Model, life: &mut Lifecycle| {
        model.peer_waiting = false;
        life.on_retry(model);
    };
    for event in events {
        if gone {
            break;
        }
        match *event {
            Event::Client => {
                if let Some(e) = pending_client.next() {
                    deliver(&mut model, &mut life, e);
                }
            }
            Event::Answer { usable } => answer(&mut model, &mut life, usable),
            Event::Stale => {
                // A token never handed out, and every token answered already (duplicates).
                life.on_callout(model.next_token.wrapping_add(1000), true, &mut model);
                for token in model.answered.clone() {
                    life.on_callout(token, true, &mut model);
                }
            }
            Event::Tick => tick(&mut model, &mut life),
            // Envoy deletes the context: nothing reaches this lifecycle any more.
            Event::Gone => gone = true,
        }
        if !model.violations.is_empty() {
            return model;
        }
    }
    if gone {
        return model;
    }
    // The client finishes, and every awaited answer comes (bounded).
    for e in pending_client {
        deliver(&mut model, &mut life, e);
    }
    for _ in 0..usize::from(MAX_PEER_ROUNDS) + 10 {
        if model.awaited.is_some() {
            answer(&mut model, &mut life, true);
        } else if model.peer_waiting {
            tick(&mut model, &mut life);
        } else {
            break;
        }
    }
    model
}

fn scripted() -> impl Strategy<Value = Scripted> {
    prop_oneof![
        Just(Scripted::Admit),
        Just(Scripted::Refuse),
        Just(Scripted::WaitCallout),
        Just(Scripted::WaitPeer),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    let body = prop_oneof![
        Just(BodyRule::None),
        (0u64..40, any::<bool>()).prop_map(|(max, passes)| BodyRule::Buffered { max, passes }),
        (0u64..40).prop_map(|max| BodyRule::Streamed { max }),
    ];
    (
        proptest::collection::vec(scripted(), 1..5),
        any::<bool>(),
        body,
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(script, admit_when_down, body, wait_fails, edits_fail)| Policy {
                script,
                admit_when_down,
                body,
                wait_fails,
                edits_fail,
            },
        )
}

fn client() -> impl Strategy<Value = Client> {
    let end = prop_oneof![Just(End::Eos), Just(End::Trailers), Just(End::Open)];
    (proptest::collection::vec(0u64..20, 0..5), end)
        .prop_map(|(chunks, end)| Client { chunks, end })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => Just(Event::Client),
        2 => any::<bool>().prop_map(|usable| Event::Answer { usable }),
        1 => Just(Event::Stale),
        1 => Just(Event::Tick),
        1 => Just(Event::Gone),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// Nothing reaches the upstream undecided or unchecked, nothing after a refusal; every
    /// request whose client finished and whose answers came is decided (no hang); an admitted
    /// request reaches the upstream whole.
    #[test]
    fn nothing_is_released_undecided(
        policy in policy(),
        client in client(),
        events in proptest::collection::vec(event(), 0..16),
    ) {
        let m = run(policy.clone(), &client, &events);
        prop_assert!(m.violations.is_empty(), "{:?}", m.violations);
        prop_assert!(m.refused <= 1 && m.allowed <= 1, "refused {} allowed {}", m.refused, m.allowed);
        prop_assert!(m.refused == 0 || m.allowed == 0, "both allowed and refused");
        // Only a streamed body can be refused after its headers went on (at the chunk that
        // passes its limit; Envoy then resets the upstream request).
        prop_assert!(
            m.refused == 0 || !m.headers_up || matches!(policy.body, BodyRule::Streamed { .. }),
            "refused after the headers went up"
        );
        let gone = events.contains(&Event::Gone);
        if !gone && client.end != End::Open {
            prop_assert_eq!(m.refused + m.allowed, 1, "undecided at the end: {:?}", m);
            if m.allowed == 1 {
                prop_assert!(m.headers_up, "admitted but the headers never went up");
                prop_assert_eq!(m.body_up, client.total(), "admitted but the body did not go up whole");
                prop_assert_eq!(m.trailers_up, client.end == End::Trailers);
                prop_assert_eq!(m.body_held, 0);
            }
        }
        // Agreement with the policy: a buffered body that fails its check is never admitted
        // whole; one over its limit neither.
        if m.allowed == 1 {
            match policy.body {
                BodyRule::Buffered { passes: false, .. } => prop_assert!(false, "bad body admitted"),
                BodyRule::Buffered { max, .. } | BodyRule::Streamed { max } => {
                    prop_assert!(client.total() <= max, "over-limit body admitted")
                }
                BodyRule::None => {}
            }
            prop_assert!(!policy.edits_fail);
        }
        if m.headers_up {
            prop_assert!(m.admitted);
        }
    }
}

/// The cases the model found most interesting, written out: each fails on a lifecycle that
/// lets trailers (or a late answer) release a held request.
#[test]
fn trailers_while_waiting_for_a_callout_do_not_release() {
    let policy = Policy {
        script: vec![Scripted::WaitCallout, Scripted::Refuse],
        admit_when_down: false,
        body: BodyRule::None,
        wait_fails: false,
        edits_fail: false,
    };
    let client = Client {
        chunks: vec![5],
        end: End::Trailers,
    };
    let m = run(
        policy,
        &client,
        &[
            Event::Client,
            Event::Client,
            Event::Client,
            Event::Answer { usable: true },
        ],
    );
    assert!(m.violations.is_empty(), "{:?}", m.violations);
    assert_eq!((m.refused, m.allowed, m.headers_up), (1, 0, false));
}

#[test]
fn trailers_end_a_held_body_which_is_checked_before_release() {
    let policy = Policy {
        script: vec![Scripted::Admit],
        admit_when_down: false,
        body: BodyRule::Buffered {
            max: 100,
            passes: false,
        },
        wait_fails: false,
        edits_fail: false,
    };
    let client = Client {
        chunks: vec![3, 4],
        end: End::Trailers,
    };
    let m = run(policy, &client, &[Event::Client; 4]);
    assert!(m.violations.is_empty(), "{:?}", m.violations);
    assert_eq!((m.refused, m.headers_up, m.body_up), (1, false, 0));
}

#[test]
fn a_late_answer_after_a_refusal_resumes_nothing() {
    let policy = Policy {
        script: vec![Scripted::WaitCallout, Scripted::Admit],
        admit_when_down: true,
        body: BodyRule::Streamed { max: 3 },
        wait_fails: false,
        edits_fail: false,
    };
    let mut model = Model {
        policy: Some(policy),
        ..Model::default()
    };
    let mut life = Lifecycle::new();
    model.headers_held = true;
    assert_eq!(life.on_headers(false, &mut model), Flow::Stop);
    let token = model.awaited.expect("a callout");
    model.body_held = 10;
    assert_eq!(life.on_body(10, true, &mut model), Flow::Stop);
    life.on_callout(token, true, &mut model);
    // Admitted, but the held body is over the streamed limit: refused, never resumed.
    assert_eq!((model.refused, model.resumes), (1, 0));
    life.on_callout(token, true, &mut model);
    life.on_retry(&mut model);
    assert_eq!((model.refused, model.resumes, model.decisions), (1, 0, 2));
}

#[test]
fn waiting_is_bounded() {
    let policy = Policy {
        script: vec![Scripted::WaitPeer],
        admit_when_down: false,
        body: BodyRule::None,
        wait_fails: false,
        edits_fail: false,
    };
    let client = Client {
        chunks: vec![],
        end: End::Eos,
    };
    let m = run(policy, &client, &[Event::Client]);
    assert_eq!(m.refused, 1);
    assert_eq!(m.decisions, usize::from(MAX_PEER_ROUNDS) + 1);
}
