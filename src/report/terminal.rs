//! Text from the services made safe for a terminal. Display names, IDs and
//! error texts come from Azure AD, IFS and Flow; an ESC or OSC sequence in
//! one of them, written raw, would move the cursor, retitle the window,
//! fake a hyperlink or hide lines of the report. The terminal renderers
//! (the table report, `--user` steps, history) show every control character
//! as a visible escape instead (`\u{1b}`). JSON, CSV and HTML keep the
//! exact values (they escape in their own syntax).

use super::Report;
use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls (ESC, BEL,
/// CR, LF, …), DEL, and the bidirectional overrides and isolates that
/// reorder what is shown.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character replaced by its Rust-style escape
/// (`\u{1b}`); borrowed when there is nothing to replace.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn escape_in_place(text: &mut String) {
    if let Cow::Owned(safe) = escape_controls(text) {
        *text = safe;
    }
}

fn escape_opt(text: &mut Option<String>) {
    if let Some(t) = text {
        escape_in_place(t);
    }
}

/// `report` with every text from outside escaped ([`escape_controls`]);
/// borrowed (no copy) when nothing needs escaping, the usual case.
pub fn safe_report(report: &Report) -> Cow<'_, Report> {
    let needs = |t: &str| t.chars().any(is_unsafe);
    let needs_opt = |t: &Option<String>| t.as_deref().is_some_and(needs);
    let dirty = needs_opt(&report.abort_reason)
        || report.advice.iter().any(|a| needs(a))
        || report.findings.iter().any(|f| {
            needs_opt(&f.aad_id)
                || needs_opt(&f.upn)
                || needs_opt(&f.display_name)
                || needs_opt(&f.ifs_identity)
                || needs_opt(&f.ifs_directory_id)
                || needs_opt(&f.flow_user_id)
                || needs_opt(&f.expected_flow_user_id)
                || needs(&f.detail)
        })
        || report.actions.iter().any(|a| {
            needs(&a.flow_user_id) || needs_opt(&a.new_flow_user_id) || needs_opt(&a.error)
        });
    if !dirty {
        return Cow::Borrowed(report);
    }
    let mut safe = report.clone();
    escape_opt(&mut safe.abort_reason);
    safe.advice.iter_mut().for_each(escape_in_place);
    for f in &mut safe.findings {
        for field in [
            &mut f.aad_id,
            &mut f.upn,
            &mut f.display_name,
            &mut f.ifs_identity,
            &mut f.ifs_directory_id,
            &mut f.flow_user_id,
            &mut f.expected_flow_user_id,
        ] {
            escape_opt(field);
        }
        escape_in_place(&mut f.detail);
    }
    for a in &mut safe.actions {
        escape_in_place(&mut a.flow_user_id);
        escape_opt(&mut a.new_flow_user_id);
        escape_opt(&mut a.error);
    }
    Cow::Owned(safe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(
            escape_controls("a\u{1b}]0;pwned\u{7}b\u{9b}2J\r\n\u{202e}x"),
            "a\\u{1b}]0;pwned\\u{7}b\\u{9b}2J\\u{d}\\u{a}\\u{202e}x"
        );
        assert!(matches!(
            escape_controls("Åsa Öberg 山田"),
            Cow::Borrowed(_)
        ));
    }
}
