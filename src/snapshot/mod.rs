//! Record and replay a tenant: `idrecon snapshot export FILE` writes what
//! one run reads from Azure AD, IFS and Flow (the fields idrecon uses) to a
//! JSON file, optionally pseudonymised ([`pseudonymise`]); `idrecon sim
//! --from FILE` serves such a file, so an admin can reproduce their
//! tenant's shape in the simulator and send it with a bug report.

pub mod pseudonymise;

use crate::config::Config;
use crate::model::{AadUser, FlowUser, IfsUser};
use crate::sources::live::LiveSources;
use crate::sources::{AzureFetch, SourceError, Sources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `format` value of files this version writes and reads.
pub const FORMAT: &str = "idrecon-snapshot/1";

/// What one run read from the three systems.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// True when names and addresses were replaced by keyed pseudonyms.
    #[serde(default)]
    pub pseudonymised: bool,
    pub azure: Vec<AadUser>,
    pub ifs: Vec<IfsUser>,
    pub flow: Vec<FlowUser>,
    /// Group object ID → member object IDs, when the run reads one group.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

/// Why a snapshot could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an idrecon snapshot: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Reads the three systems as a reconcile does (a full Azure AD listing,
/// no stored delta link, nothing stored).
pub async fn export(cfg: &Config, sources: &LiveSources) -> Result<SnapshotFile, SnapshotError> {
    let (azure, ifs, flow) = tokio::join!(
        sources.fetch_azure(None),
        sources.fetch_ifs(),
        sources.fetch_flow()
    );
    let azure = match azure? {
        AzureFetch::Full { users, .. } => users,
        AzureFetch::Delta { changes, .. } => idrecon_core::delta::apply_delta(Vec::new(), changes),
    };
    let mut groups = BTreeMap::new();
    if let Some(group) = cfg
        .azure
        .group_id
        .as_deref()
        .filter(|g| !g.trim().is_empty())
    {
        groups.insert(
            group.to_string(),
            azure.iter().map(|u| u.id().to_string()).collect(),
        );
    }
    Ok(SnapshotFile {
        format: FORMAT.to_string(),
        pseudonymised: false,
        azure,
        ifs: ifs?,
        flow: flow?,
        groups,
    })
}

impl SnapshotFile {
    /// Writes the file as pretty JSON (created or replaced).
    pub fn write(&self, path: &Path) -> Result<(), SnapshotError> {
        let write_error = |source| SnapshotError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| write_error(e.into()))?;
        std::fs::write(path, json).map_err(write_error)
    }

    /// Reads and checks a file written by [`SnapshotFile::write`].
    pub fn read(path: &Path) -> Result<SnapshotFile, SnapshotError> {
        let bytes = std::fs::read(path).map_err(|source| SnapshotError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| SnapshotError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let file: SnapshotFile =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if file.format != FORMAT {
            return Err(invalid(format!(
                "format {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        Ok(file)
    }

    /// The simulated tenant that serves this snapshot.
    #[cfg(feature = "sim")]
    pub fn into_tenant(self) -> crate::sim::Tenant {
        crate::sim::Tenant {
            azure: self.azure,
            ifs: self.ifs,
            flow: self.flow,
            groups: self.groups.into_iter().collect(),
        }
    }
}
