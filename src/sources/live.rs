//! The real connectors behind the [`Sources`] trait, built from the
//! configuration: Graph (Azure AD), IFS OData, and Flow (endpoint or CSV).
//!
//! Everything here is `Send + Sync`, so a run can fetch the three systems
//! concurrently (`tokio::join!`).

use crate::auth::{AccessTokenSource, ClientCredentials};
use crate::config::{Config, FlowSourceKind};
use crate::model::Snapshots;
use crate::model::{FlowUser, IfsUser};
use crate::sources::flow::FlowHttp;
use crate::sources::flow_csv::FlowCsv;
use crate::sources::graph::GraphSource;
use crate::sources::http::{build_client, HttpSettings};
use crate::sources::ifs::IfsSource;
use crate::sources::PersonFetch;
use crate::sources::{
    AzureFetch, FlowPages, FlowWriter, ListingLimits, SourceError, SourceErrorKind, Sources, System,
};
use async_trait::async_trait;
use std::sync::Arc;

/// Where Flow users come from.
#[derive(Debug)]
enum FlowSource {
    Http(Arc<FlowHttp>),
    Csv(FlowCsv),
}

/// The live connectors of one configuration.
#[derive(Debug)]
pub struct LiveSources {
    graph: GraphSource,
    azure_tokens: Arc<ClientCredentials>,
    ifs: IfsSource,
    flow: FlowSource,
    /// The shared client (for the Graph mail sender).
    http: reqwest::Client,
    limits: ListingLimits,
}

impl LiveSources {
    /// Builds the connectors with default timeouts and retries.
    pub fn from_config(cfg: &Config) -> Result<LiveSources, SourceError> {
        Self::with_settings(cfg, &HttpSettings::default())
    }

    /// Builds the connectors with the given timeouts and retry policy, and
    /// the configured listing bounds (`[limits]`, `ifs.concurrency`).
    pub fn with_settings(
        cfg: &Config,
        settings: &HttpSettings,
    ) -> Result<LiveSources, SourceError> {
        Self::with_limits(cfg, settings, ListingLimits::from_config(cfg))
    }

    /// Builds the connectors with the given timeouts, retry policy and
    /// listing bounds.
    pub fn with_limits(
        cfg: &Config,
        settings: &HttpSettings,
        limits: ListingLimits,
    ) -> Result<LiveSources, SourceError> {
        // The configured body and field limits, trust roots and secrets to mask.
        let settings = &settings.for_config(cfg);
        let http = build_client(System::Azure, settings)?;
        let azure_tokens =
            Arc::new(ClientCredentials::azure(&cfg.azure, http.clone())?.with_settings(settings));
        let graph =
            GraphSource::new(&cfg.azure, azure_tokens.clone(), settings)?.with_limits(limits);
        let ifs_tokens =
            Arc::new(ClientCredentials::ifs(&cfg.ifs, http.clone())?.with_settings(settings));
        let ifs = IfsSource::new(&cfg.ifs, ifs_tokens, http.clone(), settings)?.with_limits(limits);
        let flow = match cfg.flow.source {
            FlowSourceKind::Http => FlowSource::Http(Arc::new(
                FlowHttp::new(&cfg.flow, http.clone(), settings)?.with_limits(limits),
            )),
            FlowSourceKind::Csv => {
                let path = cfg.flow.csv_path.clone().ok_or_else(|| {
                    SourceError::new(
                        System::Flow,
                        SourceErrorKind::Config,
                        "flow.source = \"csv\" needs flow.csv_path",
                    )
                })?;
                FlowSource::Csv(FlowCsv::new(path))
            }
        };
        Ok(LiveSources {
            graph,
            azure_tokens,
            ifs,
            flow,
            http,
            limits,
        })
    }

    /// The Flow writer, or `None` when Flow is read from a CSV export.
    pub fn flow_writer(&self) -> Option<Arc<dyn FlowWriter>> {
        match &self.flow {
            FlowSource::Http(flow) => Some(flow.clone() as Arc<dyn FlowWriter>),
            FlowSource::Csv(_) => None,
        }
    }

    /// `"users"`, or `"group:<id>"` when only a group's members are read
    /// (a stored delta link belongs to one scope).
    pub fn azure_scope(&self) -> String {
        self.graph.scope()
    }

    /// The Graph reader (e.g. for single-user look-ups).
    pub fn graph(&self) -> &GraphSource {
        &self.graph
    }

    /// The HTTP client of the connectors (limits, trust roots, no redirects).
    pub fn http_client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// The Azure token source for Graph (shared with the Graph mail sender).
    pub fn azure_tokens(&self) -> Arc<dyn AccessTokenSource> {
        self.azure_tokens.clone()
    }
}

#[async_trait]
impl Sources for LiveSources {
    /// Without a group scope: a delta query (a full listing with a new
    /// delta link when no link is stored, only the changes otherwise; a link
    /// that expired or no longer fits `graph_url` falls back to one full
    /// listing, saying why). With a group scope: a full listing of the group.
    async fn fetch_azure(&self, delta_link: Option<&str>) -> Result<AzureFetch, SourceError> {
        self.limits
            .within_deadline(System::Azure, self.azure_listing(delta_link))
            .await
    }

    async fn fetch_ifs(&self) -> Result<Vec<IfsUser>, SourceError> {
        self.limits
            .within_deadline(System::Ifs, self.ifs.fetch_all())
            .await
    }

    async fn fetch_flow(&self) -> Result<Vec<FlowUser>, SourceError> {
        self.limits
            .within_deadline(System::Flow, self.flow_listing())
            .await
    }

    async fn fetch_flow_pages(&self, pages: &FlowPages) -> Result<(), SourceError> {
        self.limits
            .within_deadline(System::Flow, self.flow_pages(pages))
            .await
    }

    async fn fetch_person(&self, upn_or_id: &str) -> Result<PersonFetch, SourceError> {
        self.limits
            .within_deadline(System::Azure, self.person(upn_or_id))
            .await
    }
}

impl LiveSources {
    /// Without a group scope: a delta query (a full listing with a new
    /// delta link when no link is stored, only the changes otherwise; a link
    /// that expired or no longer fits `graph_url` falls back to one full
    /// listing, saying why). With a group scope: a full listing of the group.
    async fn azure_listing(&self, delta_link: Option<&str>) -> Result<AzureFetch, SourceError> {
        if self.graph.has_group_scope() {
            let users = self.graph.fetch_full().await?;
            return Ok(AzureFetch::Full {
                users,
                delta_link: None,
                fallback: None,
            });
        }
        match self.graph.fetch_delta(delta_link).await {
            Err(e) if e.kind == SourceErrorKind::DeltaExpired && delta_link.is_some() => {
                tracing::warn!(error = %e, "the stored delta link cannot be used; listing all users once");
                match self.graph.fetch_delta(None).await? {
                    AzureFetch::Full {
                        users, delta_link, ..
                    } => Ok(AzureFetch::Full {
                        users,
                        delta_link,
                        fallback: Some(e.to_string()),
                    }),
                    delta => Ok(delta),
                }
            }
            other => other,
        }
    }

    async fn flow_listing(&self) -> Result<Vec<FlowUser>, SourceError> {
        match &self.flow {
            FlowSource::Http(flow) => flow.fetch_all().await,
            FlowSource::Csv(csv) => csv.fetch_all().await,
        }
    }

    async fn flow_pages(&self, pages: &FlowPages) -> Result<(), SourceError> {
        match &self.flow {
            // A closed receiver means the run stopped waiting for Flow.
            FlowSource::Http(flow) => {
                flow.fetch_pages(|page| {
                    let _ = pages.send(page);
                })
                .await
            }
            FlowSource::Csv(csv) => {
                let _ = pages.send(csv.fetch_all().await?);
                Ok(())
            }
        }
    }

    /// One person: Azure by key, IFS by Directory ID, every Flow user.
    async fn person(&self, upn_or_id: &str) -> Result<PersonFetch, SourceError> {
        let mut steps = Vec::new();
        let mut snapshots = Snapshots::default();
        let Some(user) = self.graph.fetch_one(upn_or_id).await? else {
            steps.push(format!("Azure AD: no user {upn_or_id}"));
            return Ok(PersonFetch { snapshots, steps });
        };
        steps.push(format!(
            "Azure AD: found {} ({}), object ID {}, account {}",
            user.display_name().unwrap_or("(no display name)"),
            user.user_principal_name(),
            user.id(),
            if user.account_enabled() {
                "enabled"
            } else {
                "disabled"
            }
        ));
        // Every value an IFS Directory ID may hold for this person (docs/semantics.md §2).
        let mut keys: Vec<&str> = vec![user.user_principal_name(), user.id()];
        keys.extend(user.mail());
        keys.extend(user.on_premises_sam_account_name());
        let mut seen = std::collections::HashSet::new();
        for key in keys.into_iter().filter(|k| !k.trim().is_empty()) {
            if !seen.insert(key.to_string()) {
                continue;
            }
            let found = self.ifs.fetch_by_directory_id(key).await?;
            steps.push(format!(
                "IFS: Directory ID = '{key}': {}",
                if found.is_empty() {
                    "no user".to_string()
                } else {
                    found
                        .iter()
                        .map(|u| u.identity())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
            for u in found {
                if !snapshots.ifs.iter().any(|x| x.identity() == u.identity()) {
                    snapshots.ifs.push(u);
                }
            }
        }
        snapshots.flow = self.flow_listing().await?;
        steps.push(format!(
            "Flow: read {} users (the Flow endpoint has no search)",
            snapshots.flow.len()
        ));
        snapshots.azure.push(user);
        Ok(PersonFetch { snapshots, steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn connectors_are_send_and_sync() {
        assert_send_sync::<LiveSources>();
        assert_send_sync::<GraphSource>();
        assert_send_sync::<IfsSource>();
        assert_send_sync::<FlowHttp>();
        assert_send_sync::<ClientCredentials>();
    }
}
