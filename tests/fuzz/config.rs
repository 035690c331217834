//! The config loader against arbitrary TOML text, mutations of the example
//! configuration and arbitrary `IDRECON__…` overrides: never a panic, and a
//! refusal names the key (or the TOML position) that was wrong.

use crate::{nasty_text, runner};
use idrecon::config::Config;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;

const EXAMPLE: &str = include_str!("../../idrecon.example.toml");

/// The keys the example sets, as `section.key`.
fn example_keys() -> Vec<(String, String)> {
    let table: toml::Table = EXAMPLE.parse().unwrap();
    let mut keys = Vec::new();
    for (section, value) in &table {
        if let toml::Value::Table(t) = value {
            for key in t.keys() {
                keys.push((section.clone(), key.clone()));
            }
        }
    }
    keys
}

fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        nasty_text().prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..3)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// A refusal is `key: what is wrong` (the key from the input or a known
/// section) or a TOML syntax error with its position.
fn names_what_was_wrong(message: &str, input: &str, touched: &[String]) -> bool {
    let sections = example_keys();
    let key = message.split(": ").next().unwrap_or("");
    let last = key.rsplit('.').next().unwrap_or(key);
    !message.is_empty()
        && (message.contains("invalid TOML")
            || touched.iter().any(|k| message.contains(k.as_str()))
            || sections
                .iter()
                .any(|(section, _)| message.starts_with(section.as_str()))
            || (!last.is_empty() && input.contains(last))
            || message.contains("IDRECON__"))
}

fn load(text: &str, env: &HashMap<String, String>, dir: &Path) -> Result<(), String> {
    match std::panic::catch_unwind(|| Config::from_toml_str(text, env, dir)) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => panic!("the loader panicked on:\n{text}\nenv {env:?}"),
    }
}

#[test]
fn arbitrary_text_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = runner(300);
    runner
        .run(&nasty_text(), |text| {
            if let Err(message) = load(&text, &HashMap::new(), dir.path()) {
                prop_assert!(
                    names_what_was_wrong(&message, &text, &[]),
                    "{text:?}: {message}"
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn mutated_example_values_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let keys = example_keys();
    let base: toml::Table = EXAMPLE.parse().unwrap();
    let mutation = (
        prop::collection::vec((prop::sample::select(keys), toml_value()), 1..4),
        prop::collection::vec(
            (
                prop::sample::select(example_keys()),
                nasty_text().prop_filter("env values have no NUL", |v| !v.contains('\0')),
            ),
            0..3,
        ),
    );
    let mut runner = runner(400);
    runner
        .run(&mutation, |(values, overrides)| {
            let mut table = base.clone();
            let mut touched = Vec::new();
            for ((section, key), value) in values {
                if let Some(toml::Value::Table(t)) = table.get_mut(&section) {
                    t.insert(key.clone(), value);
                }
                touched.push(format!("{section}.{key}"));
            }
            let mut env = HashMap::new();
            for ((section, key), value) in overrides {
                env.insert(
                    format!(
                        "IDRECON__{}__{}",
                        section.to_uppercase(),
                        key.to_uppercase()
                    ),
                    value,
                );
                touched.push(format!("{section}.{key}"));
            }
            let text = toml::to_string(&table).unwrap();
            if let Err(message) = load(&text, &env, dir.path()) {
                prop_assert!(
                    names_what_was_wrong(&message, &text, &touched),
                    "{touched:?}: {message}"
                );
            }
            Ok(())
        })
        .unwrap();
}
