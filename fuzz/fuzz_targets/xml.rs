//! The XML reader of body screening (`screening::xml`): never panics, reads in bounded work,
//! every value it hands over is inside the body or shorter than the raw text it came from
//! (entity references only shrink), the element path never passes `MAX_DEPTH`, and a body it
//! reads is screened without panicking as an XML body (and refused as malformed when the
//! reader refuses it, unless a finding came first).
#![no_main]

use api_guard::screening::xml::{read, Node, MAX_DEPTH};
use api_guard::screening::{ScreenedBody, ScreeningRule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut values = 0usize;
    let result = read::<()>(data, |path, node, value| {
        assert!(path.len() <= MAX_DEPTH);
        assert!(value.len() <= data.len());
        if let Node::Attribute(name) = node {
            assert!(!name.is_empty());
        }
        values += 1;
        None
    });
    // Every value comes from at least one byte of the body.
    assert!(values <= data.len());
    let rule = ScreeningRule::default();
    let screened = rule.screen_body_of(&ScreenedBody::Xml, data);
    if data.is_empty() {
        return;
    }
    // A finding stops the reading (the request is refused for it), so a body malformed
    // after a finding is reported as that finding.
    match result {
        Ok(_) => assert!(screened.is_ok()),
        Err(_) => assert!(matches!(screened, Err(_) | Ok(Some(_)))),
    }
});
