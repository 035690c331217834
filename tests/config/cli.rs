//! Command-line parsing: every command, defaults, bad arguments and their
//! exit codes.

use clap::Parser;
use idrecon::cli::{usage_exit_code, Cli, Command, HistoryFormat, MAX_SIM_USERS};
use idrecon::error::ExitCode;
use idrecon::logging::LogFormat;
use idrecon::report::Format;
use std::path::Path;

fn parse(args: &[&str]) -> Cli {
    let mut argv = vec!["idrecon"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn parse_err(args: &[&str]) -> clap::Error {
    let mut argv = vec!["idrecon"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => panic!("{args:?} should fail, parsed {cli:?}"),
        Err(e) => e,
    }
}

#[test]
fn global_options_and_defaults() {
    let cli = parse(&["check"]);
    if std::env::var_os("IDRECON_CONFIG").is_none() {
        assert_eq!(cli.config, Path::new("./idrecon.toml"));
    }
    assert_eq!(cli.db, None);
    assert_eq!(cli.verbosity(), 0);
    assert_eq!(cli.log_format, None);
    assert!(matches!(cli.command, Command::Check));

    // Global options are accepted before and after the subcommand.
    let cli = parse(&[
        "--config",
        "/etc/idrecon.toml",
        "-vv",
        "run",
        "--db",
        "sqlite://x.db",
        "--log-format",
        "json",
    ]);
    assert_eq!(cli.config, Path::new("/etc/idrecon.toml"));
    assert_eq!(cli.db.as_deref(), Some("sqlite://x.db"));
    assert_eq!(cli.verbosity(), 2);
    assert_eq!(cli.log_format, Some(LogFormat::Json));
    assert!(matches!(cli.command, Command::Run));

    let cli = parse(&["-qqq", "migrate", "-v", "--log-format", "text"]);
    assert_eq!(cli.verbosity(), -2);
    assert_eq!(cli.log_format, Some(LogFormat::Text));
    assert!(matches!(cli.command, Command::Migrate));
}

#[test]
fn reconcile_options() {
    let cli = parse(&["reconcile"]);
    let Command::Reconcile(a) = cli.command else {
        panic!()
    };
    assert!(!a.apply && !a.email && !a.full);
    assert_eq!(
        (a.format, a.output, a.user, a.max_changes),
        (None, None, None, None)
    );

    let cli = parse(&[
        "reconcile",
        "--apply",
        "--format",
        "csv",
        "--output",
        "out.csv",
        "--email",
        "--full",
        "--user",
        "jdoe@contoso.com",
        "--max-changes",
        "7",
    ]);
    let Command::Reconcile(a) = cli.command else {
        panic!()
    };
    assert!(a.apply && a.email && a.full);
    assert_eq!(a.format, Some(Format::Csv));
    assert_eq!(a.output.as_deref(), Some(Path::new("out.csv")));
    assert_eq!(a.user.as_deref(), Some("jdoe@contoso.com"));
    assert_eq!(a.max_changes, Some(7));

    for (name, format) in [
        ("table", Format::Table),
        ("json", Format::Json),
        ("html", Format::Html),
    ] {
        let Command::Reconcile(a) = parse(&["reconcile", "--format", name]).command else {
            panic!()
        };
        assert_eq!(a.format, Some(format));
    }
}

#[test]
fn output_format_default_depends_on_terminal() {
    assert_eq!(Format::or_default(None, true), Format::Table);
    assert_eq!(Format::or_default(None, false), Format::Json);
    assert_eq!(Format::or_default(Some(Format::Html), true), Format::Html);
}

#[test]
fn history_and_show() {
    let Command::History(h) = parse(&["history"]).command else {
        panic!()
    };
    assert_eq!(h.limit, 20);
    assert_eq!(h.format, None);
    let Command::History(h) = parse(&["history", "--limit", "5", "--format", "json"]).command
    else {
        panic!()
    };
    assert_eq!(h.limit, 5);
    assert_eq!(h.format, Some(HistoryFormat::Json));

    let Command::Show(s) = parse(&["show", "42", "--format", "html", "--output", "r.html"]).command
    else {
        panic!()
    };
    assert_eq!(s.run_id, 42);
    assert_eq!(s.format, Some(Format::Html));
    assert_eq!(s.output.as_deref(), Some(Path::new("r.html")));
}

#[test]
fn demo_and_sim() {
    let Command::Demo(d) = parse(&["demo"]).command else {
        panic!()
    };
    assert_eq!((d.users, d.seed, d.apply, d.format), (2000, 1, false, None));
    let Command::Demo(d) = parse(&[
        "demo", "--users", "50", "--seed", "9", "--apply", "--format", "json",
    ])
    .command
    else {
        panic!()
    };
    assert_eq!(
        (d.users, d.seed, d.apply, d.format),
        (50, 9, true, Some(Format::Json))
    );

    let Command::Sim(s) = parse(&["sim"]).command else {
        panic!()
    };
    assert_eq!(s.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!((s.users, s.seed), (2000, 1));
    assert_eq!(s.faults, None);
    let Command::Sim(s) = parse(&[
        "sim",
        "--listen",
        "0.0.0.0:8080",
        "--users",
        "10",
        "--seed",
        "3",
        "--faults",
        "graph:429@2",
    ])
    .command
    else {
        panic!()
    };
    assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!((s.users, s.seed), (10, 3));
    assert_eq!(s.faults.as_deref(), Some("graph:429@2"));
}

#[test]
fn bad_arguments_are_usage_errors_with_exit_code_3() {
    let max_plus_one = (MAX_SIM_USERS + 1).to_string();
    let cases: &[&[&str]] = &[
        &[],                                     // no command
        &["frobnicate"],                         // unknown command
        &["reconcile", "--format", "xml"],       // unknown format
        &["reconcile", "--max-changes", "-1"],   // negative
        &["reconcile", "--max-changes", "lots"], // not a number
        &["reconcile", "--user", ""],            // empty user
        &["reconcile", "--bogus"],               // unknown flag
        &["history", "--limit", "0"],            // limit >= 1
        &["history", "--format", "csv"],         // history has table|json only
        &["show"],                               // RUN_ID missing
        &["show", "abc"],                        // RUN_ID not a number
        &["show", "0"],                          // RUN_ID >= 1
        &["demo", "--users", "0"],               // users >= 1
        &["demo", "--seed", "-5"],               // seed unsigned
        &["sim", "--listen", "localhost"],       // not ADDR:PORT
        &["sim", "--users", &max_plus_one],      // too many users
        &["check", "--log-format", "yaml"],      // unknown log format
        &["run", "--db", ""],                    // empty db URL
        &["migrate", "extra"],                   // unexpected positional
    ];
    for args in cases {
        let err = parse_err(args);
        assert_eq!(
            usage_exit_code(&err),
            ExitCode::Config,
            "{args:?}: {:?} {err}",
            err.kind()
        );
        assert_ne!(usage_exit_code(&err).as_i32(), 2);
    }
}

#[test]
fn help_and_version_exit_zero() {
    for args in [
        &["--help"][..],
        &["reconcile", "--help"],
        &["--version"],
        &["help"],
    ] {
        let err = parse_err(args);
        assert_eq!(usage_exit_code(&err), ExitCode::Ok, "{args:?}");
    }
    let help = parse_err(&["reconcile", "--help"]).to_string();
    for flag in [
        "--apply",
        "--format",
        "--output",
        "--email",
        "--full",
        "--user",
        "--max-changes",
    ] {
        assert!(help.contains(flag), "reconcile --help lacks {flag}");
    }
}

/// Runs `Cli::parse_from_or_exit` in a child process (this test binary,
/// re-entered through `child_parse_or_exit`) and returns its exit code and
/// output streams.
fn exit_of(args: &str) -> (i32, String, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cli::child_parse_or_exit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IDRECON_CLI_TEST_ARGS", args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn child_parse_or_exit() {
    // Only does something when re-entered by `exit_of`.
    if let Ok(args) = std::env::var("IDRECON_CLI_TEST_ARGS") {
        let argv = std::iter::once("idrecon").chain(args.split_whitespace());
        let _cli = Cli::parse_from_or_exit(argv);
        std::process::exit(0);
    }
}

#[test]
fn parse_or_exit_uses_contract_exit_codes() {
    let (code, _, stderr) = exit_of("history --limit 0");
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("--limit"), "{stderr}");
    let (code, _, stderr) = exit_of("nonsense");
    assert_eq!(code, 3, "{stderr}");
    let (code, stdout, _) = exit_of("--help");
    assert_eq!(code, 0);
    assert!(stdout.contains("reconcile"), "{stdout}");
    let (code, stdout, _) = exit_of("--version");
    assert_eq!(code, 0);
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    let (code, _, _) = exit_of("check");
    assert_eq!(code, 0);
}
