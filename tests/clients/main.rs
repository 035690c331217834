//! The connectors against mock servers and the simulator: Azure/IFS login, Graph, IFS, Flow, the shared HTTP layer, and mail (SMTP, Graph sendMail).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/clients.rs"]
pub mod clients_support;
#[path = "../support/smtp.rs"]
pub mod smtp_support;

mod auth;
mod flow;
mod graph;
mod http;
mod ifs;
mod live;
mod mail_graph;
mod mail_smtp;
