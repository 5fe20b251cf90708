//! The SS 12000 page parser: a register's response body for each list endpoint Portvakt
//! reads, the deleted-entities page, and the page-token peek. The first byte chooses the
//! endpoint; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portvakt::sync::ss12000::parse::{Entity, deleted_page, page, peek_page_token};
use portvakt::sync::ss12000::types::{Duty, Group, Organisation, ParseReport, Person};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let peeked = peek_page_token(body);
    let mut report = ParseReport::default();
    let token = match mode % 5 {
        0 => list::<Organisation>(body, &mut report),
        1 => list::<Person>(body, &mut report),
        2 => list::<Duty>(body, &mut report),
        3 => list::<Group>(body, &mut report),
        _ => deleted_page(body, &mut report).ok().map(|p| {
            let d = &p.items[0];
            for id in d
                .organisations
                .iter()
                .chain(&d.persons)
                .chain(&d.groups)
                .chain(&d.duties)
            {
                assert!(!id.is_empty());
            }
            p.page_token
        }),
    };
    // The client asks for the next page from the peek while this page is parsed, and refuses
    // a page whose peek fails (a duplicated pageToken, found by this target: the regression
    // test is `a_page_that_names_its_page_token_twice_fails_the_run`). When both read the
    // page, they agree on the token.
    if let (Some(token), Ok(peeked)) = (token, peeked) {
        assert_eq!(peeked, token);
    }
    // Skipped and unknown entries are counted, never more than the body could hold.
    let counted: u64 = report
        .skipped
        .values()
        .chain(report.unknown_values.values())
        .chain(report.unknown_fields.values())
        .sum();
    assert!(counted <= body.len() as u64);
});

fn list<T: Entity>(body: &[u8], report: &mut ParseReport) -> Option<Option<String>> {
    page::<T>(body, report).ok().map(|p| p.page_token)
}
