//! The Flow CSV reader against arbitrary bytes and CSV-shaped text: never a
//! panic, and a refusal names the file and what was wrong.

use crate::{nasty_text, runner};
use idrecon::sources::flow_csv::FlowCsv;
use proptest::prelude::*;

fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::collection::vec(
        prop::sample::select(vec![
            "UserId",
            "userid",
            "\u{feff}UserId",
            "Active",
            "Name",
            "Email",
            "",
            "UserId",
        ]),
        0..5,
    );
    let field = prop_oneof![
        nasty_text(),
        prop::sample::select(vec![
            "true".to_string(),
            "FALSE".to_string(),
            "1".to_string(),
            "\"quoted, with comma\"".to_string(),
            "\"unterminated".to_string(),
        ]),
    ];
    let rows = prop::collection::vec(prop::collection::vec(field, 0..6), 0..8);
    (header, rows).prop_map(|(header, rows)| {
        let mut text = header.join(",");
        for row in rows {
            text.push('\n');
            text.push_str(&row.join(","));
        }
        text.into_bytes()
    })
}

#[test]
fn csv_reader_never_panics_and_names_the_file() {
    let reader = FlowCsv::new("flow-users.csv");
    let input = prop_oneof![prop::collection::vec(any::<u8>(), 0..600), csv_text()];
    let mut runner = runner(600);
    runner
        .run(&input, |bytes| {
            let parsed = std::panic::catch_unwind(|| reader.parse(&bytes));
            let Ok(parsed) = parsed else {
                panic!("the CSV reader panicked on {bytes:?}");
            };
            if let Err(e) = parsed {
                let message = e.to_string();
                prop_assert!(message.starts_with("Flow: "), "{message}");
                prop_assert!(message.contains("flow-users.csv"), "{message}");
            }
            Ok(())
        })
        .unwrap();
}
